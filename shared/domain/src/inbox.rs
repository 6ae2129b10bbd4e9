//! The inbox: every callback that reached us, deduplicated, archived raw, and (when its
//! signature failed) quarantined so it can be replayed after a key fix.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, ShopId, Source};

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

/// What recording a verified callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcceptOutcome {
    /// First time: archived.
    New,
    /// Seen before: ack, do not enqueue again.
    Duplicate,
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
}

/// What quarantining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuarantineOutcome {
    /// Stored for replay.
    Stored,
    /// The shop's hourly quota is used up: not stored (someone is posting garbage).
    OverQuota,
}
