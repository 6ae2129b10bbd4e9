//! 快手小店 (Kuaishou): order and after-sale codes of its pushes (`docs/status-codes.md`
//! § kuaishou).

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::RefundId;
use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, kind_of, lookup};
use serde::{Deserialize, Serialize};

use crate::model::secret::{ApiAccess, ApiTokens, Secret};
use crate::sources::json::{first_time, flag, text};
use crate::sources::kuaishou::sign::kuaishou_decrypt;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, message_id_or_hash, slot};

/// Opens a push: the body is base64 AES-128-CBC ciphertext (zero IV) under the shop's message
/// key. Kuaishou signs nothing, so authenticity is "decrypts, with the current or the previous
/// message key, to JSON whose `appKey` is the shop's app key".
pub fn open(cb: &RawCallback, secret: &KuaishouSecret) -> Result<Opened, Refusal> {
    let app_key = secret.app_key.as_deref().ok_or_else(|| Refusal::Signature("shop secret has no app_key".into()))?;
    let keys =
        secret.message_key.iter().map(|k| (k, false)).chain(secret.previous_message_key.iter().map(|k| (k, true)));
    let mut any_key = false;
    for (key, previous) in keys {
        any_key = true;
        let Ok(plain) = kuaishou_decrypt(key.expose(), &cb.body) else { continue };
        let Ok(message) = serde_json::from_slice::<Value>(&plain) else { continue };
        if text(&message, "appKey").as_deref() != Some(app_key) {
            continue;
        }
        let key_slot = slot(previous);
        if flag(&message, "test") {
            return Ok(Opened::Probe { key_slot });
        }
        let id = text(&message, "msgId").or_else(|| text(&message, "eventId"));
        let message_id = message_id_or_hash(id.as_deref(), &plain);
        return Ok(Opened::Message { message_id, payload: plain, key_slot });
    }
    if any_key {
        Err(Refusal::Signature("does not decrypt to a message for this app key".into()))
    } else {
        Err(Refusal::Signature("shop secret has no message_key".into()))
    }
}

/// Parses an opened push: `{eventId, msgId, bizId, appKey, event, info (JSON string), status,
/// createTime, updateTime, test}`.
pub fn parse(shop: &ShopId, payload: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    let message: Value =
        serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("not a JSON object".into()))?;
    if flag(&message, "test") {
        return Ok(vec![SourceEvent::Ignored("kuaishou heartbeat".into())]);
    }
    let event = text(&message, "event").unwrap_or_default();
    let info: Value = match message.get("info") {
        Some(Value::String(raw)) => serde_json::from_str(raw).unwrap_or(Value::Null),
        Some(object @ Value::Object(_)) => object.clone(),
        _ => Value::Null,
    };
    let order_id = text(&info, "oid")
        .or_else(|| text(&info, "orderId"))
        .or_else(|| text(&message, "bizId"))
        .ok_or(ParseError::Field("oid"))?;
    let key = OrderKey::parse(Source::Kuaishou, shop.as_str(), &order_id)?;
    let refund = event.to_ascii_uppercase().contains("REFUND") || info.get("refundId").is_some();
    // The state is `info.status`; a push without one (`paySuccess`, `orderFail` may carry none)
    // means what its event name says, where the table knows the name.
    let raw = match text(&info, "status").or_else(|| text(&message, "status")) {
        Some(status) => RawStatus::new(if refund { "refund_status" } else { "status" }, status),
        None if !matches!(map_status("event", &event), Unmapped) => RawStatus::new("event", event.clone()),
        None => return Ok(vec![SourceEvent::Ignored(format!("kuaishou {event} without a status"))]),
    };
    let mut facts = OrderFacts::default();
    if refund {
        if let Some(id) = text(&info, "refundId") {
            facts.refund.id = Some(RefundId::parse(&id)?);
        }
        facts.refund_kind = text(&info, "handlingWay").and_then(|way| kind_of(STATUS_TABLE, "handling_way", &way));
        // 价保 (specialRefundType 1) is money back without goods: it wins over the handling way.
        if let Some(special) =
            text(&info, "specialRefundType").and_then(|t| kind_of(STATUS_TABLE, "special_refund_type", &t))
        {
            facts.refund_kind = Some(special);
        }
    }
    let id = text(&message, "msgId").or_else(|| text(&message, "eventId"));
    Ok(vec![SourceEvent::Status(StatusEvent {
        key,
        message_id: message_id_or_hash(id.as_deref(), payload),
        event_time: first_time(&info, &["updateTime", "updatedTime"])
            .or_else(|| first_time(&message, &["updateTime"]))
            .or_else(|| first_time(&info, &["createTime"]))
            .or_else(|| first_time(&message, &["createTime"])),
        raw,
        facts,
    })])
}

/// Kuaishou's status tables: one row per row of `docs/status-codes.md` § kuaishou, where each
/// code's meaning and public source are listed (a test reads both and checks they agree).
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "0", Informational("unknown state (未知状态)")),
    ("status", "10", Mapped(Target::lifecycle(PendingPayment))),
    ("status", "30", Mapped(Target::lifecycle(Paid))),
    // 已发货: the seller's declaration, not a carrier scan-out.
    ("status", "40", Mapped(Target::lifecycle(Shipped))),
    ("status", "50", Mapped(Target::lifecycle(Signed))),
    ("status", "70", Mapped(Target::lifecycle(Completed))),
    // 订单失败 (订单取消会转为“订单失败”状态): a close; the money's return comes with the refund's
    // own status 60, as for every platform whose "closed" does not say the money went back.
    ("status", "80", Mapped(Target::lifecycle(Cancelled))),
    // refund_status (the after-sale's `status`; two public wordings, one meaning per code)
    ("refund_status", "10", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "11", Mapped(Target::refund_of(RefundState::Requested, ReturnAndRefund))),
    ("refund_status", "12", Mapped(Target::refund(RefundState::Rejected))),
    ("refund_status", "20", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "21", Mapped(Target::refund_of(RefundState::Requested, ReturnAndRefund))),
    ("refund_status", "22", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "30", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "40", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("refund_status", "45", Informational("exchange or re-send: waiting for the buyer to receive")),
    ("refund_status", "50", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "60", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_status", "70", Mapped(Target::refund(RefundState::Closed))),
    // handling_way (`info.handlingWay`): the kind of the after-sale
    ("handling_way", "1", Mapped(Target::kind(ReturnAndRefund))),
    ("handling_way", "10", Mapped(Target::kind(RefundOnly))),
    ("handling_way", "3", Informational("exchange: no refund")),
    ("handling_way", "4", Informational("re-send: no refund")),
    ("handling_way", "5", Informational("repair: no refund")),
    // special_refund_type (`info.specialRefundType`)
    ("special_refund_type", "0", Informational("not a special refund")),
    ("special_refund_type", "1", Mapped(Target::kind(PriceProtection))),
    // event names, read when the push carries no `status`
    ("event", "kwaishop_order_addOrder", Informational("order created")),
    ("event", "kwaishop_order_paySuccess", Mapped(Target::lifecycle(Paid))),
    ("event", "kwaishop_order_orderFail", Mapped(Target::lifecycle(Cancelled))),
    ("event", "kwaishop_aftersales_addRefund", Informational("after-sale created: its state is info.status")),
    ("event", "kwaishop_aftersales_updateRefund", Informational("after-sale updated: its state is info.status")),
];

/// Maps a Kuaishou code (`status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// What a Kuaishou shop's secret parameter holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KuaishouSecret {
    /// The app key (must equal the message's `appKey`; also the open API's app key).
    #[serde(default)]
    pub app_key: Option<String>,
    /// The base64 AES-128 message key, and the one before its last rotation.
    #[serde(default)]
    pub message_key: Option<Secret>,
    /// The message key before the last rotation, still accepted.
    #[serde(default)]
    pub previous_message_key: Option<Secret>,
    /// The open API's sign secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The shop's open-API tokens.
    #[serde(flatten)]
    pub tokens: ApiTokens,
}

impl KuaishouSecret {
    /// The open-API access this secret gives.
    pub fn api_access(&self) -> Option<ApiAccess> {
        Some(ApiAccess {
            app_key: self.app_key.clone()?,
            app_secret: self.secret.clone()?,
            tokens: self.tokens.clone(),
        })
    }
}

/// 快手小店 in the registry.
pub struct Kuaishou;

impl SourceModule for Kuaishou {
    fn source(&self) -> Source {
        Source::Kuaishou
    }

    fn delivery(&self) -> Delivery {
        Delivery::Callbacks
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<KuaishouSecret>(json)
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
        Ack { status: 200, body: r#"{"result":1}"# }
    }

    fn api_access(&self, secret: &ShopSecret) -> Option<ApiAccess> {
        secret.typed::<KuaishouSecret>().ok().and_then(KuaishouSecret::api_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn status_row() {
        assert_rows(
            map_status,
            "status",
            &[
                ("10", Some(PendingPayment), None),
                ("30", Some(Paid), None),
                ("40", Some(Shipped), None),
                ("50", Some(Signed), None),
                ("70", Some(Completed), None),
                ("80", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("10", None, Some(RefundState::Requested)),
                ("11", None, Some(RefundState::Requested)),
                ("12", None, Some(RefundState::Rejected)),
                ("20", None, Some(RefundState::Requested)),
                ("21", None, Some(RefundState::Requested)),
                ("22", None, Some(RefundState::Approved)),
                ("30", None, Some(RefundState::Approved)),
                ("40", None, Some(RefundState::Approved)),
                ("50", None, Some(RefundState::Approved)),
                ("60", None, Some(RefundState::Succeeded)),
                ("70", None, Some(RefundState::Closed)),
            ],
        );
        assert!(matches!(map_status("refund_status", "45"), Informational(_)));
        assert_eq!(map_status("status", "20"), Unmapped, "not a Kuaishou order state");
    }

    fn shop() -> ShopId {
        ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn status_event(payload: &[u8]) -> StatusEvent {
        match parse(&shop(), payload).unwrap_or_else(|e| panic!("{e}")).as_slice() {
            [SourceEvent::Status(event)] => event.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_real_shaped_refund_push_names_its_case_and_kind() {
        let event = status_event(include_bytes!("../../../../../events/real/kuaishou/refund-add-plaintext.json"));
        assert_eq!(event.raw, RawStatus::new("refund_status", "10"));
        assert_eq!(map_status(&event.raw.field, &event.raw.code), Mapped(Target::refund(RefundState::Requested)));
        assert_eq!(event.facts.refund.id.as_ref().map(RefundId::as_str), Some("2611110000009001"));
        assert_eq!(event.facts.refund_kind, Some(RefundOnly), "handlingWay 10 仅退款");
        assert_eq!(event.key.order_id.as_str(), "2611110000000001");
    }

    #[test]
    fn price_protection_wins_and_an_event_without_a_status_maps_by_its_name() {
        let info = r#"{\"orderId\":1,\"refundId\":2,\"handlingWay\":10,\"specialRefundType\":1,\"status\":60}"#;
        let push =
            format!(r#"{{"eventId":"e1","appKey":"k","event":"kwaishop_aftersales_updateRefund","info":"{info}"}}"#);
        assert_eq!(status_event(push.as_bytes()).facts.refund_kind, Some(PriceProtection));
        let paid = r#"{"eventId":"e2","appKey":"k","event":"kwaishop_order_paySuccess","info":"{\"orderId\":1}"}"#;
        let event = status_event(paid.as_bytes());
        assert_eq!(event.raw, RawStatus::new("event", "kwaishop_order_paySuccess"));
        assert_eq!(map_status("event", "kwaishop_order_paySuccess"), Mapped(Target::lifecycle(Paid)));
    }
}
