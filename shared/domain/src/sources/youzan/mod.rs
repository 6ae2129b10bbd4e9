//! 有赞 (Youzan): trade status codes. Its refund codes are not in the reference, so every refund
//! code is unmapped (kept and alerted on) until a row is added.

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::Lifecycle::*;
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, lookup};
use serde::{Deserialize, Serialize};

use crate::model::secret::RotatedSecret;
use crate::sources::json::{first_time, flag, text};
use crate::sources::signing::verify_hex_sign;
use crate::sources::youzan::sign::youzan_event_sign;
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, header, message_id_or_hash, slot};

/// Verifies a push: `Client-Id` is the shop's client id and `Event-Sign` is the lowercase hex
/// MD5(client_id + raw body + client_secret) with the current or the previous secret.
pub fn open(cb: &RawCallback, secret: &YouzanSecret) -> Result<Opened, Refusal> {
    let client_id =
        secret.app_key.as_deref().ok_or_else(|| Refusal::Signature("shop secret has no app_key (client id)".into()))?;
    if header(cb, "client-id") != Some(client_id) {
        return Err(Refusal::Signature("Client-Id does not match the shop's client id".into()));
    }
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
    if flag(&body, "test") {
        return Ok(Opened::Probe { key_slot });
    }
    Ok(Opened::Message { message_id: dedupe_key(&body, &cb.body), payload: cb.body.clone(), key_slot })
}

/// Youzan has no message id: `{type}-{id}-{version}` names a message across retries (a retry
/// changes `sendCount`, so a body hash would not).
fn dedupe_key(body: &Value, raw: &[u8]) -> crate::model::ids::MessageId {
    let key = match (text(body, "type"), text(body, "id"), text(body, "version")) {
        (Some(t), Some(id), Some(version)) => Some(format!("{t}-{id}-{version}")),
        _ => None,
    };
    message_id_or_hash(key.as_deref(), raw)
}

fn url_decoded(raw: &str) -> String {
    form_urlencoded::parse(format!("m={raw}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Parses a push: `{type, id, status, version, msg (URL-encoded JSON), …}`.
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
    let order_id = text(&msg, "tid").or_else(|| text(&body, "id")).ok_or(ParseError::Field("tid"))?;
    let key = OrderKey::parse(Source::Youzan, shop.as_str(), &order_id)?;
    let Some(status) = text(&body, "status").or_else(|| text(&msg, "status")) else {
        return Ok(vec![SourceEvent::Ignored(format!("youzan {kind} without a status"))]);
    };
    let field = if kind.to_ascii_lowercase().contains("refund") { "refund_status" } else { "status" };
    Ok(vec![SourceEvent::Status(StatusEvent {
        key,
        message_id: dedupe_key(&body, payload),
        // `version` is the message's update time (epoch seconds): newer versions win.
        event_time: first_time(&body, &["version"]).or_else(|| first_time(&msg, &["update_time", "updated"])),
        raw: RawStatus::new(field, status),
        facts: OrderFacts::default(),
    })])
}

/// Youzan's status table.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "WAIT_BUYER_PAY", Mapped(Target::lifecycle(PendingPayment))),
    // 待确认: paid, waiting for the group to form or the shop to accept.
    ("status", "WAIT_CONFIRM", Mapped(Target::lifecycle(Paid))),
    ("status", "WAIT_SELLER_SEND_GOODS", Mapped(Target::lifecycle(Paid))),
    ("status", "WAIT_BUYER_CONFIRM_GOODS", Mapped(Target::lifecycle(Shipped))),
    ("status", "TRADE_SUCCESS", Mapped(Target::lifecycle(Completed))),
    ("status", "TRADE_CLOSED", Mapped(Target::lifecycle(Cancelled))),
];

/// Maps a Youzan code (`status`).
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
    use crate::sources::testing::assert_rows;

    #[test]
    fn status_row() {
        assert_rows(
            map_status,
            "status",
            &[
                ("WAIT_BUYER_PAY", Some(PendingPayment), None),
                ("WAIT_CONFIRM", Some(Paid), None),
                ("WAIT_SELLER_SEND_GOODS", Some(Paid), None),
                ("WAIT_BUYER_CONFIRM_GOODS", Some(Shipped), None),
                ("TRADE_SUCCESS", Some(Completed), None),
                ("TRADE_CLOSED", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("refund_status", "WAIT_SELLER_AGREE"), Unmapped);
    }
}
