//! The ports: one small trait per capability. Adapters implement them over AWS; the `testing`
//! room implements them in process for the domain's tests, and holds the one contract suite
//! both must pass.

pub mod carrier;
pub mod clock;
pub mod dead_letters;
pub mod notify;
pub mod platform;
pub mod pull;
pub mod secrets;
pub mod sync;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined};
use crate::model::counters::{CounterAdd, DayCounters, StoredReport};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Source};
use crate::model::order::Order;
use crate::model::record::{DueKind, DueMarker, HistoryEntry, OrderWrite, Unpublished};
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

    /// Removes a due marker if it is still due at `due_at` (a marker moved since is kept), and
    /// adds `counters` in the same write. Returns whether it removed it (a retry of a removal
    /// whose answer was lost returns false and counts nothing twice).
    async fn clear_due(
        &self,
        key: &OrderKey,
        kind: DueKind,
        due_at: DateTime<Utc>,
        counters: &[CounterAdd],
    ) -> Result<bool, StoreError>;

    /// Creates or moves one due marker outside an order write (e.g. "re-check now").
    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError>;

    /// The order's history, oldest first, a page at a time.
    async fn history(&self, key: &OrderKey, cursor: Option<&str>, limit: u32)
    -> Result<Page<HistoryEntry>, StoreError>;

    /// Keeps events about an order in its outbox (shard `shard`) until they are published: for
    /// events made outside an order's write (a release, a breach), written before whatever
    /// would otherwise be their only trace is cleared. Keeping the same event again is a no-op.
    async fn keep(
        &self,
        key: &OrderKey,
        shard: u16,
        events: &[DomainEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Drops the outbox entries of events that went out: (order, [`DomainEvent::id`]) pairs.
    async fn published(&self, entries: &[(OrderKey, String)]) -> Result<(), StoreError>;

    /// Outbox entries of `shard` written at or before `until`, oldest first: events whose
    /// publish failed, or whose function died before it.
    async fn unpublished(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Unpublished>, StoreError>;

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

    /// Releases order lines, all or none, exactly once each, recording when and why (`refund`,
    /// `ops`), and adds `counters` in the same write: [`ReleaseOutcome::Released`] when every
    /// line was still reserved; otherwise nothing is written and the outcome says why (one line
    /// released before, or never reserved). A retry of a write that was applied but whose answer
    /// was lost finds the lines released: the counters are never added twice.
    async fn release(
        &self,
        key: &OrderKey,
        lines: &[LineId],
        at: DateTime<Utc>,
        reason: &str,
        counters: &[CounterAdd],
    ) -> Result<ReleaseOutcome, StoreError>;

    /// All lines of an order.
    async fn reservations(&self, key: &OrderKey) -> Result<Vec<Reservation>, StoreError>;
}

/// Dedupe, raw archive and quarantine of callbacks.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Claims a verified callback's dedupe record (source, shop, message id) for the attempt
    /// `attempt` until `lease_until`, archiving it: [`Claim::Claimed`] when no record exists,
    /// when the record is `attempt`'s own (a retried write whose answer was lost), or when an
    /// earlier attempt's lease ended before `now`; [`Claim::Done`] when it is on its way;
    /// [`Claim::InFlight`] otherwise.
    async fn claim(
        &self,
        accepted: &Accepted,
        attempt: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Marks a claimed callback done: it is on the queue.
    async fn complete(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError>;

    /// [`Inbox::complete`] for many records `attempt` claimed (a pull's window, distinct message
    /// ids): an implementation may mark them in fewer requests. A record another attempt took
    /// over is left to it, as `complete` leaves it.
    async fn complete_many(&self, accepted: &[&Accepted], attempt: &str) -> Result<(), StoreError> {
        for one in accepted {
            self.complete(one, attempt).await?;
        }
        Ok(())
    }

    /// Ends `attempt`'s lease now (the enqueue failed), so the sender's retry is taken at once.
    async fn abandon(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError>;

    /// The archived copy of an accepted callback.
    async fn archived(
        &self,
        source: Source,
        shop: &ShopId,
        message_id: &MessageId,
    ) -> Result<Option<Accepted>, StoreError>;

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

/// A marker that holds once per Beijing day: e.g. "the `UnmappedStatus` alert of
/// (douyin, tag, 999) went out today".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DailyMarker {
    /// The Beijing business day.
    pub day: NaiveDate,
    /// What it marks (bounded: built from bounded parts).
    pub name: String,
}

impl DailyMarker {
    /// The marker of an unmapped code's alert: one per (source, field, code) per day.
    pub fn unmapped(day: NaiveDate, source: Source, raw: &crate::model::status::RawStatus) -> Self {
        Self { day, name: format!("unmapped#{source}#{}#{}", raw.field, raw.code) }
    }
}

/// How long an unconfirmed daily claim keeps others off: after it, the claimant's publish is
/// taken to have failed and the next occurrence claims (and publishes) instead.
pub const DAILY_CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(15);

/// Daily counters and stored reports.
#[async_trait]
pub trait Stats: Send + Sync {
    /// Claims a daily marker for `claimant` with one conditional write: `true` when nobody
    /// published it today — it is new, or `claimant` holds it already (a redelivery), or its
    /// holder never confirmed a publish within `lease`. Stores that cannot claim say `true`
    /// (the event then goes out every time: at least once, never lost).
    async fn claim_daily(
        &self,
        marker: &DailyMarker,
        claimant: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let _ = (marker, claimant, now, lease);
        Ok(true)
    }

    /// Records that `claimant`'s event of the marker was published: nobody claims it again
    /// today. A marker someone else took over since is left alone.
    async fn confirm_daily(&self, marker: &DailyMarker, claimant: &str) -> Result<(), StoreError> {
        let _ = (marker, claimant);
        Ok(())
    }

    /// Adds to counters atomically (each add is applied once per call).
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError>;

    /// Adds to counters atomically, at most once per `token`: a call with a token used before
    /// — a retry whose first answer was lost, a later run that finds the same work done — adds
    /// nothing and succeeds. For counts of what happens outside an order's write (an SLA
    /// breach, a stock release), whose plain [`Stats::add`] a lost answer would repeat. A store
    /// that cannot keep the promise refuses ([`StoreError::Rejected`], the default); it never
    /// adds twice.
    async fn add_once(&self, token: &str, adds: &[CounterAdd]) -> Result<(), StoreError> {
        let _ = (token, adds);
        Err(StoreError::Rejected("this store cannot add counters once per token".into()))
    }

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

/// A stored page and the link people open it with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PageLink {
    /// Where the page is kept (the store's key).
    pub key: String,
    /// The link: it works without credentials until `expires_at`.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// Where the health report's HTML page is kept for people to open.
#[async_trait]
pub trait ReportPages: Send + Sync {
    /// Stores `html` under `key` (replacing what was there) and returns an expiring link to it.
    async fn put_page(&self, key: &str, html: &str) -> Result<PageLink, StoreError>;
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
