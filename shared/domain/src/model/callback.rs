//! A callback as it travels: received raw, archived in the inbox (deduplicated), quarantined when
//! its signature failed (replayable after a key fix), and put on the `inbound` queue as an
//! [`InboundMessage`] once verified.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::ids::{MessageId, ShopId, Source};
use crate::model::order::Provenance;

/// A callback exactly as received: the bytes that were signed, and the headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawCallback {
    /// Who sent it (from the path).
    pub source: Source,
    /// Which shop (from the path).
    pub shop: ShopId,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Query parameters of the callback URL.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Headers, lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl RawCallback {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A verified callback, archived under its message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The dedupe key: the sender's message id, or a hash of the body.
    pub message_id: MessageId,
    /// The callback.
    pub callback: RawCallback,
    /// Which secret verified it (`current` or `previous`), never the secret itself.
    pub key_slot: Option<String>,
    /// The opened payload, kept only when it differs from the body and is too large to travel
    /// in the queue message (status-normalize reads it from here).
    pub opened: Option<Vec<u8>>,
}

impl Accepted {
    /// The payload to parse: the opened one, else the body.
    pub fn payload(&self) -> &[u8] {
        self.opened.as_deref().unwrap_or(&self.callback.body)
    }
}

/// What claiming a verified callback's dedupe record found. The record is written before the
/// callback is enqueued and marked done after: a delivery still in flight is not a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claim {
    /// Ours to enqueue: the first delivery, our own write whose answer was lost, or a retry
    /// after an earlier attempt's lease ran out. Enqueue, then mark it done.
    Claimed,
    /// An earlier delivery is on its way: ack, do not enqueue again.
    Done,
    /// Another delivery is in flight until its lease ends: ask the sender to retry.
    InFlight {
        /// When its lease ends.
        until: DateTime<Utc>,
    },
}

/// Why the door refused a callback. The HTTP status each one is answered with is webhook-verify's
/// choice; the events and logs carry this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not a POST.
    MethodNotAllowed,
    /// No such source, or one that delivers no callbacks.
    UnknownSource,
    /// No such shop (no secret configured for it), or a shop id that does not parse.
    UnknownShop,
    /// Over the body size limit.
    TooLarge,
    /// Authentic or not, the body is not what the source sends.
    Malformed,
    /// The signature, decryption or replay window failed.
    Unverified,
}

impl Rejection {
    /// The name used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::UnknownSource => "unknown_source",
            Rejection::UnknownShop => "unknown_shop",
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::Unverified => "unverified",
        }
    }
}

/// A callback whose verification failed, kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Unique id of the quarantined copy.
    pub id: String,
    /// The callback.
    pub callback: RawCallback,
    /// Why it was rejected (no secret material).
    pub reason: String,
    /// The hourly quota this copy counts against, within its source: see [`quota_bucket`].
    #[serde(default)]
    pub bucket: String,
}

/// The quota bucket of a refused callback: per shop (or one bucket for all shops not configured
/// yet, so random shop names in URLs cannot grow the table without bound) and per sender network
/// (IPv4 /24, IPv6 /48), so nobody can use up a platform's quota for a shop by sending junk from
/// elsewhere.
pub fn quota_bucket(shop: Option<&ShopId>, sender: Option<std::net::IpAddr>) -> String {
    let shop = shop.map_or("?unconfigured", ShopId::as_str);
    let net = match sender {
        Some(std::net::IpAddr::V4(ip)) => {
            let [a, b, c, _] = ip.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Some(std::net::IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        None => "?".to_owned(),
    };
    format!("{shop}@{net}")
}

/// What quarantining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuarantineOutcome {
    /// Stored for replay.
    Stored,
    /// The shop's hourly quota is used up: not stored (someone is posting garbage).
    OverQuota,
}

/// Payloads larger than this travel through the inbox archive instead of the queue message
/// (SQS takes 256 KiB per message, attributes and envelope included).
pub const INLINE_PAYLOAD_LIMIT: usize = 200 * 1024;

/// One verified callback on the `inbound` queue (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Sender.
    pub source: Source,
    /// Shop from the URL.
    pub shop: ShopId,
    /// Dedupe key of the callback (the sender's message id, or a hash of the body).
    pub message_id: MessageId,
    /// When webhook-verify received it.
    pub received_at: DateTime<Utc>,
    /// Query parameters of the callback URL (e.g. kuaidi100's `order`).
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// The opened payload, when small enough to travel inline.
    pub payload: Option<String>,
    /// Callback, poll or ops replay.
    #[serde(default = "default_origin")]
    pub origin: String,
}

fn default_origin() -> String {
    ORIGIN_CALLBACK.to_owned()
}

/// [`InboundMessage::origin`] of a callback through the front door.
pub const ORIGIN_CALLBACK: &str = "callback";
/// [`InboundMessage::origin`] of a quarantined callback replayed by ops.
pub const ORIGIN_REPLAY: &str = "replay";
/// [`InboundMessage::origin`] of a change found by order-sync's scheduled pull.
pub const ORIGIN_PULL: &str = "pull";

impl InboundMessage {
    /// Who told us: a pulled change is [`Provenance::Pull`], anything through the front door
    /// (a callback, or one replayed from quarantine) is [`Provenance::Callback`].
    pub fn provenance(&self) -> Provenance {
        if self.origin == ORIGIN_PULL { Provenance::Pull } else { Provenance::Callback }
    }
}
