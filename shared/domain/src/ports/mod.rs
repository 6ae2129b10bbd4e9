//! The ports: one small trait per capability. Adapters implement them over AWS; the `testing`
//! room implements them in process for the domain's tests, and holds the one contract suite
//! both must pass.

pub mod carrier;
pub mod clock;
pub mod platform;
pub mod pull;
pub mod secrets;
pub mod sync;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::model::callback::{AcceptOutcome, Accepted, QuarantineOutcome, Quarantined};
use crate::model::counters::{CounterAdd, DayCounters, StoredReport};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Source};
use crate::model::order::Order;
use crate::model::record::{DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::model::signal::{AddressSign, SignalRecord};
use crate::model::stock::{ReleaseOutcome, Reservation};

/// A page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Opaque cursor for the next page; `None` at the end.
    pub next: Option<String>,
}

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The order's version is not the expected one: someone else wrote first. Reload and retry.
    #[error("version conflict")]
    Conflict,
    /// This history entry exists already: the event was processed before.
    #[error("duplicate event")]
    Duplicate,
    /// Throttled, timed out or the service failed: the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request was refused as invalid (too large, malformed key): retrying will not help.
    #[error("store refused the request: {0}")]
    Rejected(String),
    /// A stored item could not be decoded.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict)
    }
}

/// Orders, their history and due markers.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// The order, if known.
    async fn get(&self, key: &OrderKey) -> Result<Option<Order>, StoreError>;

    /// Writes the order (conditional on `expected_version`), its history entry (refused if it
    /// exists: [`StoreError::Duplicate`]), due marker changes and counters, all or nothing.
    async fn commit(&self, write: &OrderWrite) -> Result<(), StoreError>;

    /// One history entry, if recorded.
    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError>;

    /// Removes a due marker if it is still due at `due_at` (a marker moved since is kept).
    /// Returns whether it removed it.
    async fn clear_due(&self, key: &OrderKey, kind: DueKind, due_at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Creates or moves one due marker outside an order write (e.g. "re-check now").
    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError>;

    /// The order's history, oldest first, a page at a time.
    async fn history(&self, key: &OrderKey, cursor: Option<&str>, limit: u32)
    -> Result<Page<HistoryEntry>, StoreError>;

    /// Markers of `kind` in `shard` due at or before `until`, earliest first.
    async fn due(
        &self,
        kind: DueKind,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DueMarker>, StoreError>;
}

/// App signals per customer and sign history per address.
#[async_trait]
pub trait SignalStore: Send + Sync {
    /// Records a signal (kept 7 days) and adds `counters`, atomically; recording the same
    /// signal again changes nothing.
    async fn record_signal(
        &self,
        customer: &str,
        signal: &SignalRecord,
        counters: &[CounterAdd],
    ) -> Result<(), StoreError>;

    /// A customer's signals in `[from, to]`, oldest first.
    async fn signals(
        &self,
        customer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SignalRecord>, StoreError>;

    /// Records a sign at an address; a proxy receipt also adds to the address's count for
    /// `month` (`yyyy-mm`, Beijing). Recording the same sign again changes nothing. Returns the
    /// month's proxy receipts after this sign.
    async fn record_sign(
        &self,
        addr_key: &str,
        month: &str,
        sign: &AddressSign,
        proxy: bool,
    ) -> Result<u32, StoreError>;

    /// Proxy receipts at an address in `month`.
    async fn proxy_receipts(&self, addr_key: &str, month: &str) -> Result<u32, StoreError>;

    /// The last `n` signs at an address, newest first.
    async fn address_signs(&self, addr_key: &str, n: u32) -> Result<Vec<AddressSign>, StoreError>;
}

/// Per-order stock reservations.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Records reservations; an existing reservation of the same order line is kept as is
    /// (reserving twice is a no-op).
    async fn reserve(&self, reservations: &[Reservation]) -> Result<(), StoreError>;

    /// Releases one order line, exactly once, recording when and why (`refund`, `ops`).
    async fn release(
        &self,
        key: &OrderKey,
        line: &LineId,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<ReleaseOutcome, StoreError>;

    /// All lines of an order.
    async fn reservations(&self, key: &OrderKey) -> Result<Vec<Reservation>, StoreError>;
}

/// Dedupe, raw archive and quarantine of callbacks.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Archives a verified callback unless its message id was seen before.
    async fn accept(&self, accepted: &Accepted) -> Result<AcceptOutcome, StoreError>;

    /// The archived copy of an accepted callback.
    async fn archived(&self, source: Source, message_id: &MessageId) -> Result<Option<Accepted>, StoreError>;

    /// Removes a dedupe record (the enqueue after it failed, so the sender's retry must pass).
    async fn forget(&self, source: Source, message_id: &MessageId) -> Result<(), StoreError>;

    /// Keeps a rejected callback for replay, within the shop's hourly quota.
    async fn quarantine(&self, quarantined: &Quarantined, quota_per_hour: u32)
    -> Result<QuarantineOutcome, StoreError>;

    /// Quarantined callbacks of a shop received in `[from, to)`, oldest first.
    async fn quarantined(
        &self,
        source: Source,
        shop: &ShopId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Quarantined>, StoreError>;

    /// Drops a quarantined copy once it was replayed.
    async fn release_quarantined(&self, quarantined: &Quarantined) -> Result<(), StoreError>;
}

/// Daily counters and stored reports.
#[async_trait]
pub trait Stats: Send + Sync {
    /// Adds to counters atomically (each add is applied once per call).
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError>;

    /// The counters of one channel for each day of the month containing `month_of` that has any.
    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError>;

    /// Stores a report (replacing one of the same kind and period).
    async fn put_report(&self, report: &StoredReport) -> Result<(), StoreError>;

    /// A stored report.
    async fn report(&self, kind: &str, period: &str) -> Result<Option<StoredReport>, StoreError>;
}

/// Why publishing failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The bus could not be reached or refused the call.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// The event bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes events; returns the indices of those that failed (the rest went out).
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError>;
}

/// The largest message a queue takes, body and attributes together (SQS: 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// One message to put on a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Caller's id for this entry (unique within one call).
    pub id: String,
    /// The body.
    pub body: String,
    /// String attributes.
    pub attributes: Vec<(String, String)>,
}

/// Why sending failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or refused the call.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// A message is over the size limit.
    #[error("message too large: {0} bytes")]
    TooLarge(usize),
}

/// A queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends messages; returns the ids of those that failed (the rest were sent).
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError>;
}

/// Why reading or writing a secret failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The parameter store could not be reached.
    #[error("secrets unavailable: {0}")]
    Unavailable(String),
}

/// Per-shop secrets (SSM Parameter Store, SecureString).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret stored under `name`, if any.
    async fn get(&self, name: &str) -> Result<Option<String>, SecretsError>;

    /// Stores a secret (refreshed access tokens).
    async fn put(&self, name: &str, value: &str) -> Result<(), SecretsError>;
}
