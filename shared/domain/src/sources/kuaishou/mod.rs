//! 快手小店 (Kuaishou): order status codes. Its refund codes are not in the reference, so every
//! refund code is unmapped (kept and alerted on) until a row is added.

pub mod pull;
pub mod sign;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::Lifecycle::*;
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, lookup};
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
    let Some(status) = text(&info, "status").or_else(|| text(&message, "status")) else {
        return Ok(vec![SourceEvent::Ignored(format!("kuaishou {event} without a status"))]);
    };
    let field = if event.to_ascii_uppercase().contains("REFUND") { "refund_status" } else { "status" };
    let id = text(&message, "msgId").or_else(|| text(&message, "eventId"));
    Ok(vec![SourceEvent::Status(StatusEvent {
        key,
        message_id: message_id_or_hash(id.as_deref(), payload),
        event_time: first_time(&info, &["updateTime", "updatedTime"])
            .or_else(|| first_time(&message, &["updateTime", "createTime"])),
        raw: RawStatus::new(field, status),
        facts: OrderFacts::default(),
    })])
}

/// Kuaishou's status table.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "10", Mapped(Target::lifecycle(PendingPayment))),
    ("status", "30", Mapped(Target::lifecycle(Paid))),
    ("status", "40", Mapped(Target::lifecycle(Shipped))),
    ("status", "50", Mapped(Target::lifecycle(Signed))),
    ("status", "70", Mapped(Target::lifecycle(Completed))),
    ("status", "80", Mapped(Target::lifecycle(Cancelled))),
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
    fn refund_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("refund_status", "10"), Unmapped);
        assert_eq!(map_status("status", "20"), Unmapped);
    }
}
