//! One module per source, each of the same shape: `open` (verify the callback as the sender
//! signs it, decrypt where it encrypts), `parse` (payload → platform-neutral events),
//! `map_status` (raw code → unified lifecycle) and `ack` (the body the sender expects).
//! Adding a platform is adding one module and one row in each dispatch below.

pub mod app;
pub mod douyin;
pub mod jd;
pub mod json;
pub mod kuaidi100;
pub mod kuaishou;
pub mod pdd;
pub mod signature;
pub mod taobao;
pub mod wechatpay;
pub mod youzan;

use chrono::{DateTime, Utc};

use crate::model::callback::RawCallback;
use crate::model::ids::{MessageId, ShopId, Source, body_hash_id};
use crate::model::source_event::{ParseError, SourceEvent};
use crate::model::status::StatusMapping;
use crate::ports::secrets::{Secret, SourceSecret};

/// A callback that passed its source's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A message to archive and enqueue.
    Message {
        /// Dedupe key.
        message_id: MessageId,
        /// The payload as status-normalize will parse it (decrypted where the source encrypts).
        payload: Vec<u8>,
        /// Which key verified it: `current`, `previous`, or `serial:<n>` (never the key).
        key_slot: String,
    },
    /// A verified test push or heartbeat: acknowledge, enqueue nothing.
    Probe {
        /// Which key verified it.
        key_slot: String,
    },
}

/// Why a callback was refused. The text is for logs and quarantine, never secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature (or decryption, for sources that authenticate that way) failed.
    #[error("signature: {0}")]
    Signature(String),
    /// The timestamp is outside the replay window.
    #[error("outside the replay window: {0}")]
    Stale(String),
    /// Authentic or not, the body is not what the source sends.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// The HTTP answer a sender expects on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// HTTP status.
    pub status: u16,
    /// Body (may be empty).
    pub body: &'static str,
}

/// Which secret slot verified a callback.
pub(crate) fn slot(previous: bool) -> String {
    if previous { "previous".to_owned() } else { "current".to_owned() }
}

/// The shop's current secret, then its previous one (rotation).
pub(crate) fn secrets_in_order(secret: &SourceSecret) -> impl Iterator<Item = (&Secret, bool)> {
    std::iter::once((&secret.secret, false)).chain(secret.previous_secret.iter().map(|s| (s, true)))
}

/// The sender's id when acceptable as a key, else a hash of `fallback`.
pub(crate) fn message_id_or_hash(id: Option<&str>, fallback: &[u8]) -> MessageId {
    id.and_then(|id| MessageId::parse(id).ok()).unwrap_or_else(|| body_hash_id(fallback))
}

/// A header of the callback (case-insensitive), trimmed.
pub(crate) fn header<'a>(cb: &'a RawCallback, name: &str) -> Option<&'a str> {
    cb.header(name).map(str::trim).filter(|v| !v.is_empty())
}

/// Verifies and opens a callback with the shop's secret. The replay window is measured from
/// the callback's receipt time, so a quarantined callback replayed later is judged as it
/// arrived.
pub fn open(cb: &RawCallback, secret: &SourceSecret) -> Result<Opened, Refusal> {
    match cb.source {
        Source::Douyin => douyin::open(cb, secret),
        Source::Youzan => youzan::open(cb, secret),
        Source::Kuaishou => kuaishou::open(cb, secret),
        Source::Kuaidi100 => kuaidi100::open(cb, secret),
        Source::Wechatpay => wechatpay::open(cb, secret),
        Source::App => app::open(cb, secret),
        // These deliver over long connections or are pulled: no callbacks to verify.
        Source::Pdd | Source::Taobao | Source::Jd => {
            Err(Refusal::Malformed(format!("{} does not deliver callbacks over HTTP", cb.source)))
        }
    }
}

/// Whether a source delivers callbacks over HTTP (has an `open`).
pub fn accepts_callbacks(source: Source) -> bool {
    !matches!(source, Source::Pdd | Source::Taobao | Source::Jd)
}

/// The body the sender expects when its callback was taken.
pub fn ack(source: Source) -> Ack {
    match source {
        Source::Douyin | Source::Youzan => Ack { status: 200, body: r#"{"code":0,"msg":"success"}"# },
        Source::Kuaishou => Ack { status: 200, body: r#"{"result":1}"# },
        Source::Kuaidi100 => Ack { status: 200, body: r#"{"result":true,"returnCode":"200","message":"成功"}"# },
        Source::Wechatpay | Source::App => Ack { status: 204, body: "" },
        Source::Pdd | Source::Taobao | Source::Jd => Ack { status: 200, body: r#"{"code":0}"# },
    }
}

/// Parses an opened payload into platform-neutral events.
pub fn parse(
    source: Source,
    shop: &ShopId,
    payload: &[u8],
    query: &[(String, String)],
    received_at: DateTime<Utc>,
) -> Result<Vec<SourceEvent>, ParseError> {
    let _ = received_at;
    match source {
        Source::Douyin => douyin::parse(shop, payload),
        Source::Youzan => youzan::parse(shop, payload),
        Source::Kuaishou => kuaishou::parse(shop, payload),
        Source::Kuaidi100 => kuaidi100::parse(payload, query),
        Source::Wechatpay => wechatpay::parse(shop, payload),
        Source::App => app::parse(shop, payload),
        Source::Pdd | Source::Taobao | Source::Jd => {
            Err(ParseError::Malformed(format!("{source} payloads arrive through polling, not callbacks")))
        }
    }
}

/// Maps a raw code of any source. Unknown codes are [`StatusMapping::Unmapped`].
pub fn map_status(source: Source, field: &str, code: &str) -> StatusMapping {
    match source {
        Source::Douyin => douyin::map_status(field, code),
        Source::Pdd => pdd::map_status(field, code),
        Source::Taobao => taobao::map_status(field, code),
        Source::Jd => jd::map_status(field, code),
        Source::Kuaishou => kuaishou::map_status(field, code),
        Source::Youzan => youzan::map_status(field, code),
        Source::App => app::map_status(field, code),
        Source::Kuaidi100 => kuaidi100::map_status(field, code),
        Source::Wechatpay => wechatpay::map_status(field, code),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::model::lifecycle::{Lifecycle, RefundState};
    use crate::model::status::StatusMapping;

    /// Asserts each `(code, lifecycle, refund)` of one table row.
    pub fn assert_rows(
        map: fn(&str, &str) -> StatusMapping,
        field: &str,
        rows: &[(&str, Option<Lifecycle>, Option<RefundState>)],
    ) {
        for (code, lifecycle, refund) in rows {
            match map(field, code) {
                StatusMapping::Mapped(target) => {
                    assert_eq!(target.lifecycle, *lifecycle, "{field}={code} lifecycle");
                    assert_eq!(target.refund, *refund, "{field}={code} refund");
                }
                other => panic!("{field}={code} should be mapped, got {other:?}"),
            }
        }
    }
}
