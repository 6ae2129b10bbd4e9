//! One module per source, each of the same shape: `open` (verify the callback as the sender
//! signs it, decrypt where it encrypts), `parse` (payload → platform-neutral events), its status
//! table and `map_status` (raw code → unified lifecycle), `ack` (the body the sender expects), its
//! secret's own type, and `sign` (its signing scheme, inbound and outbound). Each module
//! registers one [`SourceModule`] in [`REGISTRY`]; everything else finds it with [`module`].
//! Adding a platform is one module here and one row in [`REGISTRY`] (see
//! `docs/adding-a-platform.md`).

pub mod app;
pub mod douyin;
pub mod jd;
pub mod json;
pub mod kuaidi100;
pub mod kuaishou;
pub mod pdd;
pub mod pulled;
pub mod signing;
pub mod taobao;
pub mod wechatpay;
pub mod youzan;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::model::callback::RawCallback;
use crate::model::ids::{MessageId, ShopId, Source, body_hash_id};
use crate::model::secret::ApiAccess;
use crate::model::source_event::{ParseError, SourceEvent};
use crate::model::status::{MappingRow, StatusMapping, lookup};
use crate::model::sync::PulledPayload;

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

/// The sender's id when acceptable as a key, else a hash of `fallback`.
pub(crate) fn message_id_or_hash(id: Option<&str>, fallback: &[u8]) -> MessageId {
    id.and_then(|id| MessageId::parse(id).ok()).unwrap_or_else(|| body_hash_id(fallback))
}

/// A header of the callback (case-insensitive), trimmed.
pub(crate) fn header<'a>(cb: &'a RawCallback, name: &str) -> Option<&'a str> {
    cb.header(name).map(str::trim).filter(|v| !v.is_empty())
}

/// How a source reaches orderhub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Signed callbacks to `POST /webhooks/{source}/{shop}`.
    Callbacks,
    /// No HTTP callbacks (a long connection a Lambda cannot hold): its changes are pulled.
    Pulled,
}

/// A shop's secret as its source's module reads it: its own type, parsed once when the secret
/// cache loads it, then shared. Never printed.
#[derive(Clone)]
pub struct ShopSecret(Arc<dyn Any + Send + Sync>);

impl ShopSecret {
    /// Parses a secret parameter (JSON) as `T`. The error names the line and column, never a
    /// value.
    pub fn parse<T: DeserializeOwned + Send + Sync + 'static>(json: &str) -> Result<Self, String> {
        serde_json::from_str::<T>(json)
            .map(|value| Self(Arc::new(value)))
            .map_err(|e| format!("line {} column {}", e.line(), e.column()))
    }

    /// A secret of type `T` (tests, fixtures).
    pub fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Self(Arc::new(value))
    }

    /// The secret as `T`, or a refusal when it is another source's type (a wiring error).
    pub fn typed<T: 'static>(&self) -> Result<&T, Refusal> {
        self.0.downcast_ref::<T>().ok_or_else(|| Refusal::Signature("shop secret is of another source".into()))
    }
}

impl fmt::Debug for ShopSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShopSecret(***)")
    }
}

/// Everything orderhub knows about one source, behind one trait: the registry's row type.
pub trait SourceModule: Sync {
    /// Which source.
    fn source(&self) -> Source;

    /// How it reaches orderhub.
    fn delivery(&self) -> Delivery;

    /// Parses a shop's secret parameter (JSON) into this source's own secret type.
    fn load_secret(&self, json: &str) -> Result<ShopSecret, String>;

    /// Verifies and opens a callback with the shop's secret. The replay window is measured from
    /// the callback's receipt time, so a quarantined callback replayed later is judged as it
    /// arrived.
    fn open(&self, cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal>;

    /// Parses an opened payload into platform-neutral events (`query`: the callback URL's).
    fn parse(&self, shop: &ShopId, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError>;

    /// Parses a row order-sync pulled from the source's list APIs (a [`PulledPayload`]);
    /// sources orderhub does not pull refuse it.
    fn parse_pulled(&self, shop: &ShopId, pulled: &PulledPayload) -> Result<Vec<SourceEvent>, ParseError> {
        let _ = shop;
        Err(pulled::unknown(self.source(), pulled))
    }

    /// Every raw code this source's table knows, with what it means.
    fn status_table(&self) -> &'static [MappingRow];

    /// Maps a raw code; unknown codes are [`StatusMapping::Unmapped`].
    fn map_status(&self, field: &str, code: &str) -> StatusMapping {
        lookup(self.status_table(), field, code)
    }

    /// The body the sender expects when its callback was taken.
    fn ack(&self) -> Ack;

    /// The shop's open-API access, where the source has an API orderhub queries.
    fn api_access(&self, secret: &ShopSecret) -> Option<ApiAccess> {
        let _ = secret;
        None
    }
}

/// The registry: one row per source.
pub const REGISTRY: [&dyn SourceModule; 9] = [
    &douyin::Douyin,
    &pdd::Pdd,
    &taobao::Taobao,
    &jd::Jd,
    &kuaishou::Kuaishou,
    &youzan::Youzan,
    &app::App,
    &kuaidi100::Kuaidi100,
    &wechatpay::Wechatpay,
];

/// The module of a source.
pub fn module(source: Source) -> &'static dyn SourceModule {
    // `REGISTRY` is in `Source::ALL` order (a test checks it), so the position is the index.
    let index = Source::ALL.iter().position(|s| *s == source).unwrap_or(0);
    REGISTRY[index]
}

/// Verifies and opens a callback with the shop's secret (see [`SourceModule::open`]).
pub fn open(cb: &RawCallback, secret: &ShopSecret) -> Result<Opened, Refusal> {
    module(cb.source).open(cb, secret)
}

/// Whether a source delivers callbacks over HTTP.
pub fn accepts_callbacks(source: Source) -> bool {
    module(source).delivery() == Delivery::Callbacks
}

/// The body the sender expects when its callback was taken.
pub fn ack(source: Source) -> Ack {
    module(source).ack()
}

/// Parses an opened payload into platform-neutral events: a row order-sync pulled (a
/// [`PulledPayload`]) with the source's pulled-row parser, anything else with its callback
/// parser.
pub fn parse(
    source: Source,
    shop: &ShopId,
    payload: &[u8],
    query: &[(String, String)],
) -> Result<Vec<SourceEvent>, ParseError> {
    match PulledPayload::read(payload) {
        Some(pulled) => module(source).parse_pulled(shop, &pulled),
        None => module(source).parse(shop, payload, query),
    }
}

/// Maps a raw code of any source. Unknown codes are [`StatusMapping::Unmapped`].
pub fn map_status(source: Source, field: &str, code: &str) -> StatusMapping {
    module(source).map_status(field, code)
}

/// The refusal of a callback to a source that delivers none.
pub(crate) fn no_callbacks(source: Source) -> Refusal {
    Refusal::Malformed(format!("{source} does not deliver callbacks over HTTP"))
}

/// The parse error of a payload from a source that delivers none.
pub(crate) fn pulled_only(source: Source) -> ParseError {
    ParseError::Malformed(format!("{source} payloads arrive through polling, not callbacks"))
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
