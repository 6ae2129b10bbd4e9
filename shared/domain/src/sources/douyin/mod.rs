//! 抖店 (Douyin shop): push messages, order and after-sale codes.

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::body_hash_id;
use crate::model::ids::{LineId, OrderKey, RefundId, ShopId, Source};
use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent, Waybill};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, kind_of, lookup};
use serde::{Deserialize, Serialize};

use crate::model::secret::{ApiAccess, ApiTokens, RotatedSecret};
use crate::sources::douyin::sign::douyin_event_sign;
use crate::sources::json::{first_time, text};
use crate::sources::signing::verify_hex_sign;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, header, message_id_or_hash, slot};

/// Verifies a push: `app-id` is the shop's app key and `event-sign` is the lowercase hex
/// MD5(app_key + raw body + app_secret) with the current or the previous secret.
///
/// A `sign-method` other than MD5 is refused (and so quarantined): Douyin's HMAC variant is not
/// documented in our sources, and guessing would accept forgeries or lose callbacks silently.
pub fn open(cb: &RawCallback, secret: &DouyinSecret) -> Result<Opened, Refusal> {
    let app_key = secret.app_key.as_deref().ok_or_else(|| Refusal::Signature("shop secret has no app_key".into()))?;
    if header(cb, "app-id") != Some(app_key) {
        return Err(Refusal::Signature("app-id does not match the shop's app key".into()));
    }
    if let Some(method) = header(cb, "sign-method")
        && !method.eq_ignore_ascii_case("md5")
    {
        return Err(Refusal::Signature(format!(
            "unsupported sign-method `{}`",
            method.chars().take(32).collect::<String>()
        )));
    }
    let given = header(cb, "event-sign").ok_or_else(|| Refusal::Signature("missing event-sign".into()))?;
    let key_slot = secret
        .keys
        .in_order()
        .find(|(s, _)| verify_hex_sign(&douyin_event_sign(app_key, &cb.body, s.expose()), given).is_ok())
        .map(|(_, previous)| slot(previous))
        .ok_or_else(|| Refusal::Signature("event-sign mismatch".into()))?;
    let messages: Vec<Value> = serde_json::from_slice(&cb.body)
        .map_err(|_| Refusal::Malformed("body is not a JSON array of messages".into()))?;
    if messages.is_empty() {
        return Err(Refusal::Malformed("empty message array".into()));
    }
    if messages.iter().all(|m| text(m, "tag").as_deref() == Some("0")) {
        return Ok(Opened::Probe { key_slot });
    }
    // One message: its msg_id is the dedupe key; several: the body's hash.
    let message_id = match messages.as_slice() {
        [only] => message_id_or_hash(text(only, "msg_id").as_deref(), &cb.body),
        _ => body_hash_id(&cb.body),
    };
    Ok(Opened::Message { message_id, payload: cb.body.clone(), key_slot })
}

/// The time field each tag carries, most specific first.
fn time_fields(tag: &str) -> &'static [&'static str] {
    match tag {
        "100" => &["create_time", "update_time"],
        "101" => &["pay_time", "update_time"],
        "103" => &["complete_time", "update_time"],
        "106" => &["cancel_time", "update_time"],
        "200" => &["apply_time", "update_time"],
        "206" => &["success_time", "update_time"],
        _ => &["update_time", "modify_time", "create_time"],
    }
}

/// Parses a push body (a JSON array of `{tag, msg_id, data}` where `data` is a JSON string).
pub fn parse(shop: &ShopId, payload: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    let messages: Vec<Value> =
        serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("not a JSON array of messages".into()))?;
    let mut events = Vec::with_capacity(messages.len());
    for (n, message) in messages.iter().enumerate() {
        let tag = text(message, "tag").ok_or(ParseError::Field("tag"))?;
        if tag == "0" {
            events.push(SourceEvent::Ignored("douyin test push".into()));
            continue;
        }
        let data: Value = match message.get("data") {
            Some(Value::String(raw)) => serde_json::from_str(raw).map_err(|_| ParseError::Field("data"))?,
            Some(object @ Value::Object(_)) => object.clone(),
            _ => return Err(ParseError::Field("data")),
        };
        let Some(order_id) = text(&data, "p_id") else {
            events.push(SourceEvent::Ignored(format!("douyin tag {tag} without an order id")));
            continue;
        };
        let key = OrderKey::parse(Source::Douyin, shop.as_str(), &order_id)?;
        let fallback = format!("{n}:{tag}:{order_id}");
        let message_id = message_id_or_hash(text(message, "msg_id").as_deref(), fallback.as_bytes());
        let mut facts = OrderFacts::default();
        // 卖家发货 names the waybill; it is the seller's declaration, not the carrier's scan-out.
        if let Some(logistics) = data.get("logistics_msg")
            && let (Some(carrier), Some(number)) =
                (text(logistics, "express_company_id"), text(logistics, "logistics_code"))
        {
            facts.waybill = Some(Waybill { carrier, number });
        }
        // `s_ids` are sub-order ids (子订单ID列表), without SKUs or quantities: the write path
        // fetches the order's lines (`/order/orderDetail`) before it reserves anything.
        if matches!(tag.as_str(), "101" | "110") {
            for id in data.get("s_ids").and_then(Value::as_array).into_iter().flatten() {
                if let Some(id) = id_text(id) {
                    facts.line_ids.push(LineId::parse(&id)?);
                }
            }
        }
        // An after-sale names its case and the sub-order it is about.
        if let Some(after_sale) = text(&data, "aftersale_id") {
            facts.refund.id = Some(RefundId::parse(&after_sale)?);
            if let Some(line) = data.get("s_id").and_then(id_text) {
                facts.refund.lines.push(LineId::parse(&line)?);
            }
        }
        if let Some(kind) = text(&data, "aftersale_type") {
            facts.refund_kind = refund_kind(&kind);
        }
        events.push(SourceEvent::Status(StatusEvent {
            key,
            message_id,
            event_time: first_time(&data, time_fields(&tag)),
            raw: RawStatus::new("tag", tag),
            facts,
        }));
    }
    Ok(events)
}

/// An id sent as a JSON number (19 digits, within `i64`) or as a string.
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Douyin's status tables: one row per row of `docs/status-codes.md` § douyin, where each code's
/// meaning and public source are listed (a test reads both and checks they agree).
pub const STATUS_TABLE: &[MappingRow] = &[
    // order_status (`/order/orderDetail`, push `order_status`)
    ("order_status", "1", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "105", Mapped(Target::lifecycle(Paid))),
    // 备货中（只有此状态下，才可发货）: paid, awaiting shipment — never the warehouse's acceptance.
    ("order_status", "2", Mapped(Target::lifecycle(Paid))),
    ("order_status", "101", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "3", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "4", Mapped(Target::lifecycle(Cancelled))),
    ("order_status", "5", Mapped(Target::lifecycle(Completed))),
    // main_status: order_status plus the payment and refund outcomes
    ("main_status", "1", Mapped(Target::lifecycle(PendingPayment))),
    ("main_status", "103", Mapped(Target::lifecycle(PendingPayment))),
    ("main_status", "105", Mapped(Target::lifecycle(Paid))),
    ("main_status", "2", Mapped(Target::lifecycle(Paid))),
    ("main_status", "101", Mapped(Target::lifecycle(Shipped))),
    ("main_status", "3", Mapped(Target::lifecycle(Shipped))),
    ("main_status", "4", Mapped(Target::lifecycle(Cancelled))),
    ("main_status", "5", Mapped(Target::lifecycle(Completed))),
    ("main_status", "21", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("main_status", "22", Mapped(Target::refund(RefundState::Succeeded))),
    ("main_status", "39", Mapped(Target::refund(RefundState::Succeeded))),
    // push message tags: trade
    ("tag", "100", Mapped(Target::lifecycle(PendingPayment))),
    ("tag", "101", Mapped(Target::lifecycle(Paid))),
    // 卖家发货: the seller's declaration with a waybill, not a carrier scan-out.
    ("tag", "102", Mapped(Target::lifecycle(Shipped))),
    ("tag", "103", Mapped(Target::lifecycle(Completed))),
    ("tag", "104", Informational("logistics changed: carrier or waybill updated")),
    ("tag", "105", Informational("delivery address changed")),
    ("tag", "106", Mapped(Target::lifecycle(Cancelled))),
    ("tag", "108", Mapped(Target::lifecycle(Shipped))),
    ("tag", "109", Informational("order amount changed")),
    // 订单已支付待处理: already paid.
    ("tag", "110", Mapped(Target::lifecycle(Paid))),
    ("tag", "111", Informational("buyer asked to change the delivery address")),
    ("tag", "113", Informational("seller added a remark")),
    ("tag", "126", Informational("promised ship time changed")),
    // push message tags: after-sale
    ("tag", "200", Mapped(Target::refund(RefundState::Requested))),
    ("tag", "201", Mapped(Target::refund(RefundState::Approved))),
    ("tag", "202", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("tag", "203", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("tag", "204", Mapped(Target::refund(RefundState::Rejected))),
    ("tag", "205", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("tag", "206", Mapped(Target::refund(RefundState::Succeeded))),
    ("tag", "207", Mapped(Target::refund(RefundState::Closed))),
    ("tag", "208", Mapped(Target::refund(RefundState::Requested))),
    ("tag", "209", Informational("after-sale deadline changed")),
    ("tag", "211", Informational("exchange: seller sent the replacement")),
    ("tag", "212", Informational("buyer asked for arbitration")),
    ("tag", "213", Informational("arbitration: seller asked for evidence")),
    ("tag", "214", Informational("arbitration: seller uploaded evidence")),
    ("tag", "215", Informational("buyer withdrew arbitration")),
    ("tag", "216", Informational("arbitration decided")),
    ("tag", "217", Informational("arbitration: customer service stepped in")),
    ("tag", "218", Informational("negotiation: evidence uploaded")),
    ("tag", "224", Informational("special-right after-sale (no stock movement)")),
    ("tag", "225", Informational("special-right refund paid (no stock movement)")),
    ("tag", "226", Informational("re-send: seller shipped")),
    ("tag", "227", Informational("re-send agreed")),
    // refund_status
    ("refund_status", "1", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "2", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "3", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_status", "4", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "5", Informational("refund clawed back from the buyer (追缴成功)")),
    // after_sale_status: wins over refund_status (a buyer who cancels leaves refund_status at 1)
    ("after_sale_status", "3", Informational("exchange: waiting for the buyer to receive")),
    ("after_sale_status", "6", Mapped(Target::refund(RefundState::Requested))),
    ("after_sale_status", "7", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sale_status", "8", Informational("re-send or repair: waiting for the seller to ship")),
    // 售后已发货 / 待商家收货: the buyer sent the goods back.
    ("after_sale_status", "11", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sale_status", "12", Mapped(Target::refund(RefundState::Succeeded))),
    ("after_sale_status", "13", Informational("exchange, re-send or repair: seller shipped")),
    ("after_sale_status", "14", Informational("exchange, re-send or repair: buyer received")),
    ("after_sale_status", "27", Mapped(Target::refund(RefundState::Rejected))),
    ("after_sale_status", "28", Mapped(Target::refund(RefundState::Closed))),
    ("after_sale_status", "29", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("after_sale_status", "51", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("after_sale_status", "53", Mapped(Target::refund(RefundState::Succeeded))),
    // after_sale_type (push `aftersale_type`): the kind of the after-sale
    ("after_sale_type", "0", Mapped(Target::kind(ReturnAndRefund))),
    ("after_sale_type", "1", Mapped(Target::kind(RefundOnly))),
    ("after_sale_type", "2", Mapped(Target::kind(RefundOnly))),
    ("after_sale_type", "3", Informational("exchange: no refund")),
    // 系统取消 / 用户取消: a cancellation with the money back.
    ("after_sale_type", "4", Mapped(Target::kind(RefundOnly))),
    ("after_sale_type", "5", Mapped(Target::kind(RefundOnly))),
    // 价保: part of the price back, no goods move, the order still ships.
    ("after_sale_type", "6", Mapped(Target::kind(PriceProtection))),
    ("after_sale_type", "7", Informational("re-send: no refund")),
    ("after_sale_type", "8", Informational("repair: no refund")),
];

/// Maps a Douyin code (`order_status`, `main_status`, `tag`, `refund_status`, `after_sale_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`after_sale_type`, its table rows): `None` for an exchange, a
/// re-send or a repair, which are no refund.
pub fn refund_kind(after_sale_type: &str) -> Option<crate::model::lifecycle::RefundKind> {
    kind_of(STATUS_TABLE, "after_sale_type", after_sale_type)
}

/// What a Douyin shop's secret parameter holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DouyinSecret {
    /// The app key: the push's `app-id`, and the open API's app key.
    #[serde(default)]
    pub app_key: Option<String>,
    /// The app secret (push MD5 and API HMAC), and the one before its last rotation.
    #[serde(flatten)]
    pub keys: RotatedSecret,
    /// The shop's open-API tokens.
    #[serde(flatten)]
    pub tokens: ApiTokens,
}

impl DouyinSecret {
    /// The open-API access this secret gives (the current app secret signs).
    pub fn api_access(&self) -> Option<ApiAccess> {
        Some(ApiAccess {
            app_key: self.app_key.clone()?,
            app_secret: self.keys.secret.clone(),
            tokens: self.tokens.clone(),
        })
    }
}

/// 抖店 in the registry.
pub struct Douyin;

impl SourceModule for Douyin {
    fn source(&self) -> Source {
        Source::Douyin
    }

    fn delivery(&self) -> Delivery {
        Delivery::Callbacks
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<DouyinSecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        open(cb, secret.typed()?)
    }

    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        parse(shop, payload)
    }

    fn parse_pulled(
        &self,
        shop: &ShopId,
        pulled: &crate::model::sync::PulledPayload,
    ) -> Result<Vec<SourceEvent>, ParseError> {
        pull::parse(shop, pulled)
    }

    fn status_table(&self) -> &'static [MappingRow] {
        STATUS_TABLE
    }

    fn ack(&self) -> Ack {
        Ack { status: 200, body: r#"{"code":0,"msg":"success"}"# }
    }

    fn api_access(&self, secret: &ShopSecret) -> Option<ApiAccess> {
        secret.typed::<DouyinSecret>().ok().and_then(DouyinSecret::api_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn order_status_row() {
        assert_rows(
            map_status,
            "order_status",
            &[
                ("1", Some(PendingPayment), None),
                ("105", Some(Paid), None),
                // 备货中: paid, awaiting shipment (not the warehouse's acceptance).
                ("2", Some(Paid), None),
                ("101", Some(Shipped), None),
                ("3", Some(Shipped), None),
                ("4", Some(Cancelled), None),
                ("5", Some(Completed), None),
            ],
        );
    }

    #[test]
    fn main_status_row() {
        assert_rows(
            map_status,
            "main_status",
            &[
                ("1", Some(PendingPayment), None),
                ("105", Some(Paid), None),
                ("2", Some(Paid), None),
                ("101", Some(Shipped), None),
                ("3", Some(Shipped), None),
                ("4", Some(Cancelled), None),
                ("5", Some(Completed), None),
                ("103", Some(PendingPayment), None),
                ("21", Some(Cancelled), Some(RefundState::Succeeded)),
                ("22", None, Some(RefundState::Succeeded)),
                ("39", None, Some(RefundState::Succeeded)),
            ],
        );
    }

    #[test]
    fn push_tags_row() {
        assert_rows(
            map_status,
            "tag",
            &[
                ("100", Some(PendingPayment), None),
                ("101", Some(Paid), None),
                ("102", Some(Shipped), None),
                ("103", Some(Completed), None),
                ("106", Some(Cancelled), None),
                ("108", Some(Shipped), None),
                // 订单已支付待处理: already paid.
                ("110", Some(Paid), None),
                ("200", None, Some(RefundState::Requested)),
                ("201", None, Some(RefundState::Approved)),
                ("202", None, Some(RefundState::Approved)),
                ("203", None, Some(RefundState::Approved)),
                ("204", None, Some(RefundState::Rejected)),
                ("205", None, Some(RefundState::Rejected)),
                ("206", None, Some(RefundState::Succeeded)),
                ("207", None, Some(RefundState::Closed)),
                ("208", None, Some(RefundState::Requested)),
            ],
        );
        for informational in
            ["104", "105", "109", "111", "113", "126", "209", "211", "212", "216", "218", "224", "225", "226", "227"]
        {
            assert!(matches!(map_status("tag", informational), Informational(_)), "{informational}");
        }
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("1", None, Some(RefundState::Requested)),
                ("2", None, Some(RefundState::Approved)),
                ("3", None, Some(RefundState::Succeeded)),
                ("4", None, Some(RefundState::Closed)),
            ],
        );
        assert!(matches!(map_status("refund_status", "5"), Informational(_)));
    }

    #[test]
    fn after_sale_status_row() {
        assert_rows(
            map_status,
            "after_sale_status",
            &[
                ("6", None, Some(RefundState::Requested)),
                ("7", None, Some(RefundState::Approved)),
                // 售后已发货 / 待商家收货: the buyer sent the goods back.
                ("11", None, Some(RefundState::Approved)),
                ("12", None, Some(RefundState::Succeeded)),
                ("27", None, Some(RefundState::Rejected)),
                ("28", None, Some(RefundState::Closed)),
                ("29", None, Some(RefundState::Rejected)),
                ("51", Some(Cancelled), Some(RefundState::Succeeded)),
                ("53", None, Some(RefundState::Succeeded)),
            ],
        );
    }

    #[test]
    fn after_sale_type_row() {
        assert_eq!(refund_kind("0"), Some(ReturnAndRefund));
        assert_eq!(refund_kind("1"), Some(RefundOnly));
        assert_eq!(refund_kind("2"), Some(RefundOnly));
        assert_eq!(refund_kind("3"), None, "an exchange is not a refund");
        assert_eq!(refund_kind("4"), Some(RefundOnly), "系统取消: money back");
        assert_eq!(refund_kind("5"), Some(RefundOnly), "用户取消: money back");
        assert_eq!(refund_kind("6"), Some(PriceProtection), "价保: no stock movement");
        assert!(!PriceProtection.releases_stock());
        for no_refund in ["7", "8"] {
            assert_eq!(refund_kind(no_refund), None, "{no_refund}");
        }
        for exchange in ["3", "8", "13", "14"] {
            assert!(matches!(map_status("after_sale_status", exchange), Informational(_)), "{exchange}");
        }
    }

    fn events(payload: &[u8]) -> Vec<StatusEvent> {
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        parse(&shop, payload)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|e| match e {
                SourceEvent::Status(s) => s,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn s_ids_are_sub_order_ids_never_skus() {
        let [paid] = events(include_bytes!("../../../../../events/real/douyin/tag-101-trade-paid.json"))
            .try_into()
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(paid.facts.lines.is_empty(), "no SKU or quantity in the push: nothing to reserve from it");
        let ids: Vec<&str> = paid.facts.line_ids.iter().map(LineId::as_str).collect();
        assert_eq!(ids, ["4987650000000000101", "4987650000000000102"]);
        let [pending] = events(include_bytes!("../../../../../events/real/douyin/tag-110-trade-pending.json"))
            .try_into()
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(map_status(&pending.raw.field, &pending.raw.code), Mapped(Target::lifecycle(Paid)));
    }

    #[test]
    fn the_seller_ship_push_names_a_waybill_but_is_no_scan_out() {
        let [shipped] = events(include_bytes!("../../../../../events/real/douyin/tag-102-seller-ship.json"))
            .try_into()
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(shipped.facts.waybill.as_ref().map(|w| w.number.as_str()), Some("78912345678901"));
        assert!(!shipped.facts.scanned_out, "卖家发货 is the seller's declaration");
    }

    #[test]
    fn after_sales_name_their_case_and_sub_order() {
        for file in [
            include_bytes!("../../../../../events/real/douyin/tag-200-refund-created.json").as_slice(),
            include_bytes!("../../../../../events/real/douyin/tag-206-refund-success.json").as_slice(),
        ] {
            let [event] = events(file).try_into().unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(event.facts.refund.id.as_ref().map(RefundId::as_str), Some("7300000000000000201"));
            let lines: Vec<&str> = event.facts.refund.lines.iter().map(LineId::as_str).collect();
            assert_eq!(lines, ["4987650000000000102"]);
            assert_eq!(event.facts.refund_kind, Some(RefundOnly), "aftersale_type 2 未发货仅退款");
        }
    }

    #[test]
    fn unknown_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("order_status", "999"), Unmapped);
        assert_eq!(map_status("tag", "0"), Unmapped);
        assert_eq!(map_status("no_such_field", "1"), Unmapped);
    }
}
