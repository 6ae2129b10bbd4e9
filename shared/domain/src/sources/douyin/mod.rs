//! 抖店 (Douyin shop): push messages, order and after-sale codes.

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::LineId;
use crate::model::ids::body_hash_id;
use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent, Waybill};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, lookup};
use crate::model::stock::OrderLine;
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
        if let Some(logistics) = data.get("logistics_msg")
            && let (Some(carrier), Some(number)) =
                (text(logistics, "express_company_id"), text(logistics, "logistics_code"))
        {
            facts.waybill = Some(Waybill { carrier, number });
            // TradeSellerShip is Douyin's own shipped code: the platform saw the parcel leave.
            facts.scanned_out = true;
        }
        if matches!(tag.as_str(), "101") {
            facts.lines = data
                .get("s_ids")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_i64().map(|i| i.to_string()).or_else(|| id.as_str().map(str::to_owned)))
                        .filter_map(|id| crate::model::ids::Sku::parse(&id).ok())
                        .map(|sku| OrderLine { line: LineId::of_sku(&sku), sku, qty: 1 })
                        .collect()
                })
                .unwrap_or_default();
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

/// Douyin's status tables (`../shared/reference/platforms.md`, zsmhub/doudian-sdk).
pub const STATUS_TABLE: &[MappingRow] = &[
    // order_status
    ("order_status", "1", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "105", Mapped(Target::lifecycle(Paid))),
    ("order_status", "2", Mapped(Target::lifecycle(WarehouseAccepted))),
    ("order_status", "101", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "3", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "4", Mapped(Target::lifecycle(Cancelled))),
    ("order_status", "5", Mapped(Target::lifecycle(Completed))),
    // main_status adds these
    ("main_status", "103", Mapped(Target::lifecycle(PendingPayment))),
    ("main_status", "21", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("main_status", "22", Mapped(Target::refund(RefundState::Succeeded))),
    ("main_status", "39", Mapped(Target::refund(RefundState::Succeeded))),
    // push message tags: trade
    ("tag", "100", Mapped(Target::lifecycle(PendingPayment))),
    ("tag", "101", Mapped(Target::lifecycle(Paid))),
    ("tag", "102", Mapped(Target::lifecycle(Shipped))),
    ("tag", "103", Mapped(Target::lifecycle(Completed))),
    ("tag", "104", Informational("logistics changed: carrier or waybill updated")),
    ("tag", "105", Informational("delivery address changed")),
    ("tag", "106", Mapped(Target::lifecycle(Cancelled))),
    ("tag", "108", Mapped(Target::lifecycle(Shipped))),
    ("tag", "109", Informational("order amount changed")),
    ("tag", "110", Mapped(Target::lifecycle(PendingPayment))),
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
    // refund_status
    ("refund_status", "1", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "2", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "3", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_status", "4", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "5", Informational("refund clawed back from the buyer (追缴成功)")),
    // after_sale_status: wins over refund_status (a buyer who cancels leaves refund_status at 1)
    ("after_sale_status", "6", Mapped(Target::refund(RefundState::Requested))),
    ("after_sale_status", "7", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sale_status", "12", Mapped(Target::refund(RefundState::Succeeded))),
    ("after_sale_status", "27", Mapped(Target::refund(RefundState::Rejected))),
    ("after_sale_status", "28", Mapped(Target::refund(RefundState::Closed))),
    ("after_sale_status", "29", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("after_sale_status", "51", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("after_sale_status", "53", Mapped(Target::refund(RefundState::Succeeded))),
];

/// Maps a Douyin code (`order_status`, `main_status`, `tag`, `refund_status`, `after_sale_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`after_sale_type`): `None` for an exchange, which is no refund.
pub fn refund_kind(after_sale_type: &str) -> Option<crate::model::lifecycle::RefundKind> {
    match after_sale_type {
        "0" => Some(ReturnAndRefund),
        "1" | "2" => Some(RefundOnly),
        _ => None,
    }
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
                ("2", Some(WarehouseAccepted), None),
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
                ("110", Some(PendingPayment), None),
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
        for informational in ["104", "105", "109"] {
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
    }

    #[test]
    fn unknown_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("order_status", "999"), Unmapped);
        assert_eq!(map_status("tag", "0"), Unmapped);
        assert_eq!(map_status("no_such_field", "1"), Unmapped);
    }
}
