//! 有赞 (Youzan): trade and refund pushes (`docs/status-codes.md` § youzan).

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::{LineId, OrderKey, RefundId, ShopId, Sku, Source};
use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, lookup};
use crate::model::stock::OrderLine;
use serde::{Deserialize, Serialize};

use crate::model::secret::RotatedSecret;
use crate::sources::json::{first_time, flag, text};
use crate::sources::signing::verify_hex_sign;
use crate::sources::youzan::sign::youzan_event_sign;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, header, message_id_or_hash, slot};

/// Verifies a push: `Event-Sign` is the lowercase hex MD5(client_id + raw body + client_secret)
/// with the shop's client id and its current or previous secret, and the push is the shop's:
/// its body's `client_id` (or, in a push whose body has none, the `Client-Id` header) is the
/// shop's client id. Youzan's own push demo checks the sign with the configured client id and
/// never reads a `Client-Id` header (cuncle/youzanyun-push-demo `pushdemo.go`); the body carries
/// `client_id` (TsangJx/YouZanYunSDK `Msg/*.cs`). A header, when sent, must agree.
pub fn open(cb: &RawCallback, secret: &YouzanSecret) -> Result<Opened, Refusal> {
    let client_id =
        secret.app_key.as_deref().ok_or_else(|| Refusal::Signature("shop secret has no app_key (client id)".into()))?;
    let given = header(cb, "event-sign").ok_or_else(|| Refusal::Signature("missing Event-Sign".into()))?;
    let key_slot = secret
        .keys
        .in_order()
        .find(|(s, _)| verify_hex_sign(&youzan_event_sign(client_id, &cb.body, s.expose()), given).is_ok())
        .map(|(_, previous)| slot(previous))
        .ok_or_else(|| Refusal::Signature("Event-Sign mismatch".into()))?;
    let body: Value =
        serde_json::from_slice(&cb.body).map_err(|_| Refusal::Malformed("body is not a JSON object".into()))?;
    if !body.is_object() {
        return Err(Refusal::Malformed("body is not a JSON object".into()));
    }
    let header_id = header(cb, "client-id");
    let named = text(&body, "client_id");
    if header_id.is_some_and(|h| h != client_id) || named.as_deref().or(header_id).is_some_and(|c| c != client_id) {
        return Err(Refusal::Signature("client_id does not match the shop's client id".into()));
    }
    if named.is_none() && header_id.is_none() {
        return Err(Refusal::Signature("push names no client_id".into()));
    }
    if flag(&body, "test") {
        return Ok(Opened::Probe { key_slot });
    }
    Ok(Opened::Message { message_id: dedupe_key(&body, &cb.body), payload: cb.body.clone(), key_slot })
}

/// The push's `msg_id` (消息唯一标示, TsangJx/YouZanYunSDK `Msg/TradeTradebuyerpayData.cs`
/// L84-L89; present in real pushes). Pushes without one (a 2018 capture has none) are named by
/// `{type}-{id}-{version}`, which holds across retries (a retry changes `sendCount`, so a body
/// hash would not).
fn dedupe_key(body: &Value, raw: &[u8]) -> crate::model::ids::MessageId {
    let fallback = match (text(body, "type"), text(body, "id"), text(body, "version")) {
        (Some(t), Some(id), Some(version)) => Some(format!("{t}-{id}-{version}")),
        _ => None,
    };
    let by_msg_id = text(body, "msg_id").and_then(|id| crate::model::ids::MessageId::parse(&id).ok());
    by_msg_id.unwrap_or_else(|| message_id_or_hash(fallback.as_deref(), raw))
}

fn url_decoded(raw: &str) -> String {
    form_urlencoded::parse(format!("m={raw}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The order's lines from a trade push's `msg.full_order_info.orders[]`: the line is `oid`, the
/// SKU the seller's own code (`outer_sku_id`, else `outer_item_id`), else Youzan's `sku_id` (when
/// not 0), else `item_id` — the first that is a usable SKU; the quantity `num` (the keys of the
/// real captured `trade_TradeBuyerPay` push, youzan [4]; which code an ERP keys on is
/// unconfirmed, so the seller's own code goes first). A line without an id, a SKU or a quantity
/// makes the whole list empty: an order is reserved whole or not at all, never in part.
fn lines(msg: &Value) -> Vec<OrderLine> {
    let orders = msg.get("full_order_info").and_then(|f| f.get("orders")).and_then(Value::as_array);
    let mut out = Vec::new();
    for order in orders.into_iter().flatten() {
        let line = text(order, "oid").and_then(|oid| LineId::parse(&oid).ok());
        let sku = ["outer_sku_id", "outer_item_id", "sku_id", "item_id"]
            .iter()
            .filter_map(|field| text(order, field))
            .filter(|code| code != "0")
            .find_map(|code| Sku::parse(&code).ok());
        let qty = text(order, "num").and_then(|n| n.parse::<u32>().ok()).filter(|n| *n > 0);
        match (line, sku, qty) {
            (Some(line), Some(sku), Some(qty)) => out.push(OrderLine { line, sku, qty }),
            _ => return Vec::new(),
        }
    }
    out
}

/// Parses a push: `{type, id, msg_id, status, version, msg (URL-encoded JSON), …}`.
///
/// A trade push's state is its `status` (a push without one, `trade_TradePartlySellerShip`,
/// means its `type`). A refund push's `status` is deprecated and empty, so its state is its
/// `type`; `msg` names the refund (`refund_id`) and the sub-orders it covers (`oids`). A
/// `TRADE_CLOSED` push also carries the order's `refund_state`: 12 全额退款成功 makes the close a
/// refund outcome, as Taobao's `TRADE_CLOSED` is.
pub fn parse(shop: &ShopId, payload: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    let body: Value = serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("not a JSON object".into()))?;
    if flag(&body, "test") {
        return Ok(vec![SourceEvent::Ignored("youzan test push".into())]);
    }
    let kind = text(&body, "type").ok_or(ParseError::Field("type"))?;
    let msg: Value = match body.get("msg") {
        Some(Value::String(raw)) => {
            serde_json::from_str(raw).or_else(|_| serde_json::from_str(&url_decoded(raw))).unwrap_or(Value::Null)
        }
        Some(object @ Value::Object(_)) => object.clone(),
        _ => Value::Null,
    };
    let order_info = msg.get("full_order_info").and_then(|f| f.get("order_info")).cloned().unwrap_or(Value::Null);
    let order_id = text(&msg, "tid")
        .or_else(|| text(&order_info, "tid"))
        .or_else(|| text(&body, "id"))
        .ok_or(ParseError::Field("tid"))?;
    let key = OrderKey::parse(Source::Youzan, shop.as_str(), &order_id)?;
    let refund = kind.to_ascii_lowercase().contains("refund");
    let status = text(&body, "status").or_else(|| text(&order_info, "status"));
    let raw = match status {
        Some(status) if !refund => RawStatus::new("status", status),
        _ if !matches!(map_status("type", &kind), Unmapped) || refund => RawStatus::new("type", kind.clone()),
        _ => return Ok(vec![SourceEvent::Ignored(format!("youzan {kind} without a status"))]),
    };
    let mut facts = OrderFacts::default();
    if refund {
        if let Some(id) = text(&msg, "refund_id") {
            facts.refund.id = Some(RefundId::parse(&id)?);
        }
        for oid in text(&msg, "oids").unwrap_or_default().split(',').map(str::trim).filter(|o| !o.is_empty()) {
            facts.refund.lines.push(LineId::parse(oid)?);
        }
    } else {
        facts.lines = lines(&msg);
    }
    let message_id = dedupe_key(&body, payload);
    // `version` is the message's update time (epoch seconds): newer versions win.
    let event_time = first_time(&body, &["version"]).or_else(|| first_time(&msg, &["update_time", "updated"]));
    let mut events = Vec::with_capacity(2);
    if raw.field == "status"
        && raw.code == "TRADE_CLOSED"
        && let Some(refund_state) = text(&order_info, "refund_state")
    {
        let id = format!("{}-refund_state", message_id.as_str());
        events.push(SourceEvent::Status(StatusEvent {
            key: key.clone(),
            message_id: message_id_or_hash(Some(&id), id.as_bytes()),
            event_time,
            raw: RawStatus::new("order_refund_state", refund_state),
            facts: OrderFacts::default(),
        }));
    }
    events.insert(0, SourceEvent::Status(StatusEvent { key, message_id, event_time, raw, facts }));
    Ok(events)
}

/// Youzan's status tables: one row per row of `docs/status-codes.md` § youzan, where each code's
/// meaning and public source are listed (a test reads both and checks they agree). `status` and
/// `type` are the push's; `refund_status` is the refund query's `status`; `refund_state` the
/// trade query's `refund_order[].refund_state`; `order_refund_state` the order's
/// `order_info.refund_state`; `demand` the refund's 退款诉求.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "WAIT_BUYER_PAY", Mapped(Target::lifecycle(PendingPayment))),
    // 订单已支付 (瞬时状态): paid.
    ("status", "TRADE_PAID", Mapped(Target::lifecycle(Paid))),
    // 待确认 (待成团、待接单): paid, may not ship yet — a platform hold, as PDD's 拼团中.
    ("status", "WAIT_CONFIRM", Mapped(Target::lifecycle(RiskHold))),
    ("status", "WAIT_SELLER_SEND_GOODS", Mapped(Target::lifecycle(Paid))),
    ("status", "WAIT_BUYER_CONFIRM_GOODS", Mapped(Target::lifecycle(Shipped))),
    ("status", "TRADE_SUCCESS", Mapped(Target::lifecycle(Completed))),
    // 交易关闭: a cancellation or a full refund; which one is the push's order_info.refund_state
    // (read as its own `order_refund_state` code).
    ("status", "TRADE_CLOSED", Mapped(Target::lifecycle(Cancelled))),
    ("type", "trade_TradeCreate", Informational("trade created (its status says the state)")),
    ("type", "trade_TradeBuyerPay", Informational("buyer paid (its status says the state)")),
    ("type", "trade_TradePartlySellerShip", Mapped(Target::lifecycle(Shipped))),
    ("type", "trade_TradeSuccess", Informational("trade succeeded (its status says the state)")),
    ("type", "trade_TradeClose", Informational("trade closed (its status says the state)")),
    ("type", "trade_refund_BuyerCreated", Mapped(Target::refund(RefundState::Requested))),
    ("type", "trade_refund_RefundAgain", Mapped(Target::refund(RefundState::Requested))),
    ("type", "trade_refund_RefundSellerCreated", Mapped(Target::refund(RefundState::Approved))),
    ("type", "trade_refund_RefundSellerAgree", Mapped(Target::refund(RefundState::Approved))),
    (
        "type",
        "trade_refund_RefundSellerAgreeReturnGoods",
        Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund)),
    ),
    ("type", "trade_refund_RefundBuyerReturnGoods", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("type", "trade_refund_RefundSellerRefuse", Mapped(Target::refund(RefundState::Rejected))),
    (
        "type",
        "trade_refund_RefundSellerRefuseBuyerReturnGoods",
        Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund)),
    ),
    ("type", "trade_refund_RefundSuccess", Mapped(Target::refund(RefundState::Succeeded))),
    ("type", "trade_refund_RefundClosed", Mapped(Target::refund(RefundState::Closed))),
    ("type", "trade_refund_SysRefund", Mapped(Target::refund(RefundState::Approved))),
    ("type", "trade_refund_YouzanInterApplied", Informational("buyer asked Youzan's customer service to step in")),
    ("refund_status", "WAIT_SELLER_AGREE", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "WAIT_BUYER_RETURN_GOODS", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "WAIT_SELLER_CONFIRM_GOODS", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "SELLER_REFUSE_BUYER", Mapped(Target::refund(RefundState::Rejected))),
    (
        "refund_status",
        "SELLER_REFUSE_BUYER_RETURN_GOODS",
        Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund)),
    ),
    ("refund_status", "SELLER_RETURN_GOODS", Informational("exchange: seller received and sent the replacement")),
    ("refund_status", "CUSTOMER_SERVICE_IN", Informational("customer service stepped in")),
    ("refund_status", "CLOSED", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "SUCCESS", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_state", "1", Mapped(Target::refund(RefundState::Requested))),
    ("refund_state", "10", Mapped(Target::refund(RefundState::Rejected))),
    ("refund_state", "20", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_state", "30", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_state", "40", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("refund_state", "45", Informational("exchange: seller shipped, waiting for the buyer")),
    ("refund_state", "50", Mapped(Target::refund(RefundState::Closed))),
    ("refund_state", "60", Mapped(Target::refund(RefundState::Succeeded))),
    ("order_refund_state", "0", Informational("no refund")),
    ("order_refund_state", "1", Informational("partial refund in progress (transient)")),
    (
        "order_refund_state",
        "2",
        Informational("partial refund succeeded: the refunded lines come with their refund pushes"),
    ),
    ("order_refund_state", "11", Mapped(Target::refund(RefundState::Approved))),
    ("order_refund_state", "12", Mapped(Target::refund(RefundState::Succeeded))),
    ("demand", "1", Mapped(Target::kind(RefundOnly))),
    ("demand", "2", Mapped(Target::kind(ReturnAndRefund))),
    ("demand", "3", Informational("exchange: no refund")),
];

/// Maps a Youzan code (`status`, `type`, `refund_status`, `refund_state`, `order_refund_state`,
/// `demand`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// What a Youzan shop's secret parameter holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct YouzanSecret {
    /// The client id (`Client-Id`).
    #[serde(default)]
    pub app_key: Option<String>,
    /// The client secret, and the one before its last rotation.
    #[serde(flatten)]
    pub keys: RotatedSecret,
}

/// 有赞 in the registry.
pub struct Youzan;

impl SourceModule for Youzan {
    fn source(&self) -> Source {
        Source::Youzan
    }

    fn delivery(&self) -> Delivery {
        Delivery::Callbacks
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<YouzanSecret>(json)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::ShopId;
    use crate::model::secret::Secret;
    use crate::sources::testing::assert_rows;
    use chrono::TimeZone;

    const CLIENT: &str = "yzfixtureclient01";
    const SECRET: &str = "yzfixturesecret01";
    const PAID: &str = include_str!("../../../../../events/real/youzan/trade-buyer-pay-trade-paid.json");
    const REFUND_CREATED: &str = include_str!("../../../../../events/real/youzan/refund-buyer-created.json");
    const REFUND_SUCCESS: &str = include_str!("../../../../../events/real/youzan/refund-success.json");

    fn shop() -> ShopId {
        ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn callback(body: &[u8], headers: &[(&str, &str)]) -> RawCallback {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default();
        let mut all: Vec<(String, String)> =
            vec![("event-sign".into(), youzan_event_sign(CLIENT, body, SECRET)), ("event-type".into(), "trade".into())];
        all.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        RawCallback {
            source: Source::Youzan,
            shop: shop(),
            received_at: at,
            query: vec![],
            headers: all,
            body: body.to_vec(),
        }
    }

    fn secret() -> YouzanSecret {
        YouzanSecret {
            app_key: Some(CLIENT.into()),
            keys: RotatedSecret { secret: Secret::new(SECRET), previous_secret: None },
        }
    }

    fn events(payload: &str) -> Vec<StatusEvent> {
        parse(&shop(), payload.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|e| match e {
                SourceEvent::Status(s) => s,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn status_row() {
        assert_rows(
            map_status,
            "status",
            &[
                ("WAIT_BUYER_PAY", Some(PendingPayment), None),
                ("TRADE_PAID", Some(Paid), None),
                ("WAIT_CONFIRM", Some(RiskHold), None),
                ("WAIT_SELLER_SEND_GOODS", Some(Paid), None),
                ("WAIT_BUYER_CONFIRM_GOODS", Some(Shipped), None),
                ("TRADE_SUCCESS", Some(Completed), None),
                ("TRADE_CLOSED", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn a_push_without_a_client_id_header_opens_by_its_body_client_id_and_its_msg_id() {
        let opened = open(&callback(PAID.as_bytes(), &[]), &secret());
        let Ok(Opened::Message { message_id, .. }) = opened else { panic!("{opened:?}") };
        assert_eq!(message_id.as_str(), "5b6c1e0a-0000-4000-8000-000000000101", "msg_id is the dedupe key");
        assert!(open(&callback(PAID.as_bytes(), &[("client-id", CLIENT)]), &secret()).is_ok());
        let other = open(&callback(PAID.as_bytes(), &[("client-id", "someone-else")]), &secret());
        assert!(matches!(other, Err(Refusal::Signature(_))), "a header that disagrees is refused");
        // Signed with the shop's secret but naming another client: not this shop's push.
        let foreign = PAID.replace(CLIENT, "another-client");
        assert!(matches!(open(&callback(foreign.as_bytes(), &[]), &secret()), Err(Refusal::Signature(_))));
    }

    #[test]
    fn a_push_without_msg_id_falls_back_to_type_id_version() {
        let body: Value = serde_json::from_str(PAID).unwrap_or_default();
        let mut old = body.clone();
        old.as_object_mut().map(|o| o.remove("msg_id"));
        let raw = old.to_string();
        assert_eq!(
            dedupe_key(&old, raw.as_bytes()).as_str(),
            "trade_TradeBuyerPay-E20261111100000000000001-1794363302"
        );
    }

    #[test]
    fn the_paid_push_is_paid_with_its_lines() {
        let [paid] = events(PAID).try_into().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(paid.raw, RawStatus::new("status", "TRADE_PAID"));
        assert_eq!(map_status("status", "TRADE_PAID"), Mapped(Target::lifecycle(Paid)));
        let lines: Vec<(&str, &str, u32)> =
            paid.facts.lines.iter().map(|l| (l.line.as_str(), l.sku.as_str(), l.qty)).collect();
        assert_eq!(lines, [("2792000000000000001", "TEA-LJ-250", 2)]);
    }

    #[test]
    fn refund_pushes_map_by_their_type_and_name_their_case() {
        let [created] = events(REFUND_CREATED).try_into().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(created.raw, RawStatus::new("type", "trade_refund_BuyerCreated"));
        assert_eq!(map_status(&created.raw.field, &created.raw.code), Mapped(Target::refund(RefundState::Requested)));
        assert_eq!(created.facts.refund.id.as_ref().map(RefundId::as_str), Some("201611111000000001"));
        assert_eq!(created.facts.refund.lines.iter().map(LineId::as_str).collect::<Vec<_>>(), ["2792000000000000001"]);
        let [success] = events(REFUND_SUCCESS).try_into().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(map_status(&success.raw.field, &success.raw.code), Mapped(Target::refund(RefundState::Succeeded)));
        assert_eq!(success.facts.refund, created.facts.refund, "the same case");
    }

    #[test]
    fn a_close_after_a_full_refund_says_the_money_went_back() {
        let closed = PAID
            .replace(r#""status": "TRADE_PAID""#, r#""status": "TRADE_CLOSED""#)
            .replace("%22refund_state%22%3A+0", "%22refund_state%22%3A+12")
            .replace("%22refund_state%22%3A0", "%22refund_state%22%3A12");
        let got = events(&closed);
        let raws: Vec<String> = got.iter().map(|e| e.raw.to_string()).collect();
        assert_eq!(raws, ["status=TRADE_CLOSED", "order_refund_state=12"], "{closed}");
        assert_eq!(map_status("order_refund_state", "12"), Mapped(Target::refund(RefundState::Succeeded)));
        assert_ne!(got[0].message_id, got[1].message_id);
    }
}
