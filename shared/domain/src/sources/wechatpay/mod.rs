//! 微信支付 (WeChat Pay) APIv3 payment and refund notices, for orders of the seller's own
//! mini-program (the `app` channel).

pub mod sign;
/// What a WeChat Pay merchant's secret parameter holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WechatpaySecret {
    /// The APIv3 key (32 bytes) that decrypts `resource`.
    #[serde(default)]
    pub api_v3_key: Option<Secret>,
    /// The platform public keys (PEM) by serial number: add the new serial before WeChat Pay
    /// switches to it.
    #[serde(default)]
    pub platform_keys: BTreeMap<String, String>,
}

/// 微信支付 in the registry.
pub struct Wechatpay;

impl SourceModule for Wechatpay {
    fn source(&self) -> Source {
        Source::Wechatpay
    }

    fn delivery(&self) -> Delivery {
        Delivery::Callbacks
    }

    fn load_secret(&self, json: &str) -> Result<ShopSecret, String> {
        ShopSecret::parse::<WechatpaySecret>(json)
    }

    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
        open(cb, secret.typed()?)
    }

    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = query;
        parse(shop, payload)
    }

    fn status_table(&self) -> &'static [MappingRow] {
        STATUS_TABLE
    }

    fn ack(&self) -> Ack {
        Ack { status: 204, body: "" }
    }
}

#[cfg(test)]
pub(crate) mod test_keys;

use serde_json::Value;

use crate::model::callback::RawCallback;
use crate::model::ids::{OrderKey, ShopId, Source};
use crate::model::lifecycle::Lifecycle::*;
use crate::model::lifecycle::RefundState;
use crate::model::source_event::{OrderFacts, ParseError, SourceEvent, StatusEvent};
use crate::model::status::{MappingRow, RawStatus, StatusMapping, StatusMapping::*, Target, lookup};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::secret::Secret;
use crate::sources::json::{first_time, text};
use crate::sources::signing::{SignatureError, check_window};
use crate::sources::wechatpay::sign::{wechatpay_decrypt_resource, wechatpay_verify};
use crate::sources::{Ack, Delivery, ShopSecret, SourceModule};
use crate::sources::{Opened, Refusal, header, message_id_or_hash};

/// How far a notice's timestamp may be from its receipt.
pub const WINDOW_S: i64 = 300;

/// WeChat Pay's `trade_state` and `refund_status` values (APIv3 notices).
pub const STATUS_TABLE: &[MappingRow] = &[
    ("trade_state", "SUCCESS", Mapped(Target::lifecycle(Paid))),
    ("trade_state", "NOTPAY", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_state", "USERPAYING", Mapped(Target::lifecycle(PendingPayment))),
    ("trade_state", "CLOSED", Mapped(Target::lifecycle(Cancelled))),
    ("trade_state", "REVOKED", Mapped(Target::lifecycle(Cancelled))),
    ("trade_state", "PAYERROR", Informational("payment failed; the buyer may retry")),
    ("trade_state", "REFUND", Informational("a refund was started for this payment")),
    ("refund_status", "SUCCESS", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_status", "CLOSED", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "PROCESSING", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "ABNORMAL", Informational("refund abnormal: the buyer's account refused it")),
    // The refund notice's `event_type`: the same outcome as the decrypted refund_status.
    ("event_type", "REFUND.SUCCESS", Mapped(Target::refund(RefundState::Succeeded))),
    ("event_type", "REFUND.ABNORMAL", Informational("refund abnormal notice")),
    ("event_type", "REFUND.CLOSED", Mapped(Target::refund(RefundState::Closed))),
];

/// Maps a WeChat Pay code (`trade_state`, `refund_status`, `event_type`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// Verifies a notice (SHA256withRSA over `ts\nnonce\nbody\n` with the platform key named by
/// `Wechatpay-Serial`, timestamp within 300 s of receipt, `WECHATPAY/SIGNTEST/` probes refused)
/// and decrypts its `resource` (AES-256-GCM with the APIv3 key). The payload enqueued is
/// `{id, event_type, create_time, resource: <decrypted JSON>}`.
pub fn open(cb: &RawCallback, secret: &WechatpaySecret) -> Result<Opened, Refusal> {
    let timestamp =
        header(cb, "wechatpay-timestamp").ok_or_else(|| Refusal::Signature("missing Wechatpay-Timestamp".into()))?;
    let nonce = header(cb, "wechatpay-nonce").ok_or_else(|| Refusal::Signature("missing Wechatpay-Nonce".into()))?;
    let signature =
        header(cb, "wechatpay-signature").ok_or_else(|| Refusal::Signature("missing Wechatpay-Signature".into()))?;
    let serial = header(cb, "wechatpay-serial").ok_or_else(|| Refusal::Signature("missing Wechatpay-Serial".into()))?;
    let ts: i64 = timestamp.parse().map_err(|_| Refusal::Signature("timestamp is not a number".into()))?;
    check_window(ts, cb.received_at.timestamp(), WINDOW_S).map_err(|_| {
        Refusal::Stale(format!("timestamp {}s from receipt", ts.saturating_sub(cb.received_at.timestamp())))
    })?;
    let key = secret.platform_keys.get(serial).ok_or_else(|| {
        Refusal::Signature(format!("unknown platform key serial `{}`", serial.chars().take(40).collect::<String>()))
    })?;
    match wechatpay_verify(key, timestamp, nonce, &cb.body, signature) {
        Ok(()) => {}
        Err(SignatureError::Probe) => return Err(Refusal::Signature("signature probe (WECHATPAY/SIGNTEST)".into())),
        Err(_) => return Err(Refusal::Signature("signature mismatch".into())),
    }
    let key_slot = format!("serial:{}", serial.chars().take(40).collect::<String>());
    let body: Value = serde_json::from_slice(&cb.body).map_err(|_| Refusal::Malformed("body is not JSON".into()))?;
    let resource = body.get("resource").ok_or_else(|| Refusal::Malformed("no resource".into()))?;
    let api_v3_key =
        secret.api_v3_key.as_ref().ok_or_else(|| Refusal::Signature("shop secret has no api_v3_key".into()))?;
    let (Some(ciphertext), Some(res_nonce)) = (text(resource, "ciphertext"), text(resource, "nonce")) else {
        return Err(Refusal::Malformed("resource without ciphertext or nonce".into()));
    };
    let associated = text(resource, "associated_data").unwrap_or_default();
    let plain = wechatpay_decrypt_resource(api_v3_key.expose().as_bytes(), &res_nonce, &associated, &ciphertext)
        .map_err(|_| Refusal::Signature("resource does not decrypt with the APIv3 key".into()))?;
    let decrypted: Value =
        serde_json::from_slice(&plain).map_err(|_| Refusal::Malformed("resource is not JSON".into()))?;
    let payload = serde_json::json!({
        "id": body.get("id"),
        "event_type": body.get("event_type"),
        "create_time": body.get("create_time"),
        "resource": decrypted,
    });
    let message_id = message_id_or_hash(text(&body, "id").as_deref(), &cb.body);
    Ok(Opened::Message { message_id, payload: payload.to_string().into_bytes(), key_slot })
}

/// Parses an opened notice into a status event of the `app` channel order `out_trade_no`.
pub fn parse(shop: &ShopId, payload: &[u8]) -> Result<Vec<SourceEvent>, ParseError> {
    let notice: Value = serde_json::from_slice(payload).map_err(|_| ParseError::Malformed("not JSON".into()))?;
    let resource = notice.get("resource").ok_or(ParseError::Field("resource"))?;
    let order_id = text(resource, "out_trade_no").ok_or(ParseError::Field("out_trade_no"))?;
    let key = OrderKey::parse(Source::App, shop.as_str(), &order_id)?;
    let event_type = text(&notice, "event_type").unwrap_or_default();
    let raw = if let Some(state) = text(resource, "trade_state") {
        RawStatus::new("trade_state", state)
    } else if let Some(status) = text(resource, "refund_status") {
        RawStatus::new("refund_status", status)
    } else {
        return Ok(vec![SourceEvent::Ignored(format!("wechatpay {event_type} without a state"))]);
    };
    let event_time = first_time(resource, &["success_time"])
        .or_else(|| notice.get("create_time").and_then(Value::as_str).and_then(crate::sources::json::parse_time_text));
    let id = text(&notice, "id");
    Ok(vec![SourceEvent::Status(StatusEvent {
        key,
        message_id: message_id_or_hash(id.as_deref(), payload),
        event_time,
        raw,
        facts: OrderFacts::default(),
    })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn trade_state_row() {
        assert_rows(
            map_status,
            "trade_state",
            &[
                ("SUCCESS", Some(Paid), None),
                ("NOTPAY", Some(PendingPayment), None),
                ("USERPAYING", Some(PendingPayment), None),
                ("CLOSED", Some(Cancelled), None),
                ("REVOKED", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("SUCCESS", None, Some(RefundState::Succeeded)),
                ("CLOSED", None, Some(RefundState::Closed)),
                ("PROCESSING", None, Some(RefundState::Approved)),
            ],
        );
        assert!(matches!(map_status("refund_status", "ABNORMAL"), Informational(_)));
    }

    // Found while writing the fuzz targets, and kept as their regression input
    // (fuzz/corpus/open_wechatpay/regress-timestamp-i64-min): the refusal's message computed
    // `timestamp - receipt` and overflowed for `i64::MIN`.
    #[test]
    fn a_timestamp_of_i64_min_is_stale_not_an_overflow() {
        use chrono::TimeZone;
        let headers = [
            ("wechatpay-timestamp", "-9223372036854775808"),
            ("wechatpay-nonce", "n"),
            ("wechatpay-signature", "c2ln"),
            ("wechatpay-serial", "5157F09EFDC096DE15EBE81A47057A72"),
        ];
        let cb = RawCallback {
            source: Source::Wechatpay,
            shop: ShopId::parse("shop-1").unwrap(),
            received_at: chrono::Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).unwrap(),
            query: vec![],
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: b"{}".to_vec(),
        };
        assert!(matches!(open(&cb, &WechatpaySecret::default()), Err(Refusal::Stale(_))));
    }
}
