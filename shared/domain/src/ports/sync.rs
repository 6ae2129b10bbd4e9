//! order-sync's own records: per shop and feed a checkpoint with its lease and back-off, per
//! shop a token ledger entry (versioned, with a refresh lease; the tokens themselves live in
//! their own secret parameter), per waybill a Kuaidi100 subscription, and per channel and day
//! the last callback-outage summary. One small port per capability; the AWS adapter keeps all
//! four in the `sync` table, a platform's shops in one partition so one read lists them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::model::ids::{ShopId, Source};
use crate::model::sync::{Checkpoint, Claim, Feed, Lease, TokenRecord};
use crate::ports::StoreError;

/// A platform's registered shops and where their feeds stand, read in one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    /// Every shop with a token ledger entry (a registered shop).
    pub tokens: Vec<TokenRecord>,
    /// Every checkpoint of those shops' feeds.
    pub checkpoints: Vec<Checkpoint>,
}

impl Roster {
    /// The checkpoint of a shop's feed (a fresh one when never pulled).
    pub fn checkpoint(&self, shop: &ShopId, feed: Feed, source: Source) -> Checkpoint {
        self.checkpoints
            .iter()
            .find(|c| &c.shop == shop && c.feed == feed)
            .cloned()
            .unwrap_or_else(|| Checkpoint::new(source, shop.clone(), feed))
    }
}

/// Checkpoints: where each shop's feed stands.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// A platform's shops (token ledger entries) and checkpoints, in one read.
    async fn roster(&self, source: Source) -> Result<Roster, StoreError>;

    /// One checkpoint (a fresh one, version 0, when never written).
    async fn checkpoint(&self, source: Source, shop: &ShopId, feed: Feed) -> Result<Checkpoint, StoreError>;

    /// Writes `checkpoint` (its `version` must be `expected_version + 1`) if the stored one is
    /// still at `expected_version` (`0`: none stored); else [`StoreError::Conflict`]: another
    /// run moved it, and this run leaves the shop alone.
    async fn save_checkpoint(&self, checkpoint: &Checkpoint, expected_version: u64) -> Result<(), StoreError>;
}

/// The token ledger: what decides when a shop's tokens are refreshed and who refreshes them.
#[async_trait]
pub trait TokenLedger: Send + Sync {
    /// Every registered shop of a platform.
    async fn all(&self, source: Source) -> Result<Vec<TokenRecord>, StoreError>;

    /// A shop's entry.
    async fn token(&self, source: Source, shop: &ShopId) -> Result<Option<TokenRecord>, StoreError>;

    /// Registers a shop (its first tokens stored) unless it has an entry; returns whether it
    /// created one.
    async fn register(&self, record: &TokenRecord) -> Result<bool, StoreError>;

    /// Takes the refresh lease if the entry is still at `expected_version` and nobody else
    /// holds an unexpired lease at `now` (`lease.owner`'s own lease is taken again: a retry of
    /// a write whose answer was lost); returns whether this run has it.
    async fn lease(
        &self,
        source: Source,
        shop: &ShopId,
        expected_version: u64,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records a refresh done under `owner`'s lease: `record` (version incremented, lease
    /// released). [`StoreError::Conflict`] when the lease was lost.
    async fn commit(&self, record: &TokenRecord, owner: &str) -> Result<(), StoreError>;

    /// Releases `owner`'s lease after a failed refresh, keeping why.
    async fn release(&self, source: Source, shop: &ShopId, owner: &str, error: &str) -> Result<(), StoreError>;

    /// Notes that `TokenExpiring` was raised on `day`; false when it already was that day.
    async fn warned(&self, source: Source, shop: &ShopId, day: NaiveDate) -> Result<bool, StoreError>;
}

/// Kuaidi100 subscriptions, one per waybill.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Claims a waybill's subscription for `lease.owner`: [`Claim::Claimed`] when it was never
    /// subscribed, or was subscribed before `stopped_at` (tracking stopped since: subscribe
    /// again), and no other run holds it; [`Claim::Done`] when subscribed already;
    /// [`Claim::Busy`] when another run holds it.
    async fn claim(
        &self,
        carrier: &str,
        number: &str,
        stopped_at: Option<DateTime<Utc>>,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Kuaidi100 took the subscription at `at` (or said it already had it).
    async fn subscribed(&self, carrier: &str, number: &str, owner: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The attempt failed: release the claim, keeping why.
    async fn failed(&self, carrier: &str, number: &str, owner: &str, error: &str) -> Result<(), StoreError>;
}

/// The last callback-outage summary of a channel and day.
#[async_trait]
pub trait SummaryMarks: Send + Sync {
    /// What was reported (`missing`, `refunds`) and the mark's version (`0`: none).
    async fn mark(&self, channel: Source, day: NaiveDate) -> Result<((i64, i64), u64), StoreError>;

    /// Moves the mark if it is still at `expected_version` ([`StoreError::Conflict`] else: an
    /// overlapping run reported it).
    async fn set_mark(
        &self,
        channel: Source,
        day: NaiveDate,
        reported: (i64, i64),
        expected_version: u64,
    ) -> Result<(), StoreError>;
}
