//! What order-sync keeps and moves: feeds and their time windows, the checkpoint of each shop
//! and feed, a pulled row as it travels (the platform's own JSON in a small envelope), the
//! shop's API tokens with their ledger, and Kuaidi100 subscriptions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ids::{MessageId, OrderId, ShopId, Source, body_hash_id};
use crate::model::secret::Secret;

/// What a pull lists: changed orders, or changed refunds / after-sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    /// Orders by the platform's update time.
    Orders,
    /// Refunds / after-sales by their update time.
    Refunds,
}

impl Feed {
    /// Both feeds.
    pub const ALL: [Feed; 2] = [Feed::Orders, Feed::Refunds];

    /// The name in keys, events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Orders => "orders",
            Feed::Refunds => "refunds",
        }
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Feed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Feed::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| format!("unknown feed `{s}`"))
    }
}

/// A half-open time window `[start, end)` of platform update times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First update time included.
    pub start: DateTime<Utc>,
    /// First update time not included.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Its length.
    pub fn span(&self) -> Duration {
        self.end - self.start
    }

    /// The two halves (for a window too full to page).
    pub fn halves(&self) -> (Window, Window) {
        let mid = self.start + self.span() / 2;
        (Window { start: self.start, end: mid }, Window { start: mid, end: self.end })
    }
}

/// One changed order or refund as a platform's list API returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedRow {
    /// The platform's order id.
    pub order_id: OrderId,
    /// The refund / after-sale id, for refund rows.
    pub refund_id: Option<String>,
    /// The platform's update time of this row.
    pub updated_at: DateTime<Utc>,
    /// The row exactly as the platform sent it.
    pub row: Value,
}

impl ChangedRow {
    /// The dedupe key of this change: the order (or refund) and the platform's update time.
    /// A row seen again — a repeated pull, an overlapping window, the backward pager's
    /// duplicates — has the same key; a later change of the same order has another.
    pub fn message_id(&self, feed: Feed) -> MessageId {
        let subject = match (feed, &self.refund_id) {
            (Feed::Refunds, Some(refund)) => format!("r-{}-{refund}", self.order_id),
            (Feed::Refunds, None) => format!("r-{}", self.order_id),
            (Feed::Orders, _) => format!("o-{}", self.order_id),
        };
        let id = format!("pull-{subject}-{}", self.updated_at.timestamp_millis());
        MessageId::parse(&id).unwrap_or_else(|_| body_hash_id(id.as_bytes()))
    }
}

/// A pulled row as it travels through the inbox and the inbound queue: the platform's row in
/// an envelope that names the API it came from. The source module parses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledPayload {
    /// Which list it came from.
    pub pull: PullOrigin,
    /// The row as the platform sent it.
    pub row: Value,
}

/// Where a pulled row came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullOrigin {
    /// Orders or refunds.
    pub feed: Feed,
    /// The platform API that listed it (`pdd.order.number.list.increment.get`, …).
    pub api: String,
}

impl PulledPayload {
    /// Reads a payload as a pulled row, if it is one (`None` for anything else).
    pub fn read(payload: &[u8]) -> Option<PulledPayload> {
        // Cheap test first: callbacks never start with this key.
        let head = payload.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &payload[i..])?;
        if !head.starts_with(b"{\"pull\"") {
            return None;
        }
        serde_json::from_slice(payload).ok()
    }
}

/// Where one shop's feed stands: everything the platform changed before `through` (less the
/// overlap margin) is safely on the inbound queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The platform.
    pub source: Source,
    /// The shop.
    pub shop: ShopId,
    /// The feed.
    pub feed: Feed,
    /// The end of the last window whose every page was enqueued; `None` before the first run.
    pub through: Option<DateTime<Utc>>,
    /// Incremented by every write; writes are conditional on it.
    pub version: u64,
    /// The run holding the shop, and until when.
    pub lease: Option<Lease>,
    /// Consecutive failed runs.
    pub failures: u32,
    /// The shop is not pulled before this (back-off after failures).
    pub backoff_until: Option<DateTime<Utc>>,
    /// Why the last run failed.
    pub last_error: Option<String>,
}

impl Checkpoint {
    /// A feed never pulled.
    pub fn new(source: Source, shop: ShopId, feed: Feed) -> Self {
        Self {
            source,
            shop,
            feed,
            through: None,
            version: 0,
            lease: None,
            failures: 0,
            backoff_until: None,
            last_error: None,
        }
    }

    /// Whether another run holds it at `now`.
    pub fn leased_by_other(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.lease.as_ref().is_some_and(|l| l.owner != owner && l.until > now)
    }
}

/// A run's hold on a shop: others leave the shop alone until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The run (an invocation id).
    pub owner: String,
    /// When the hold ends by itself.
    pub until: DateTime<Utc>,
}

/// A shop's API tokens, as their own parameter holds them (apart from the webhook secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopTokens {
    /// The access token.
    pub access_token: Secret,
    /// When it expires.
    #[serde(default)]
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// The refresh token.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires, where the platform says.
    #[serde(default)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// The ledger version these tokens belong to (a reader with an older one reads again).
    #[serde(default)]
    pub generation: u64,
}

/// The token ledger's entry of a shop: no secret, only what decides when to refresh, who is
/// refreshing, and the version the stored tokens carry. Its presence registers the shop for
/// order-sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The platform.
    pub source: Source,
    /// The shop.
    pub shop: ShopId,
    /// The generation of the stored tokens; every refresh increments it.
    pub version: u64,
    /// When the access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// A refresh in progress.
    pub lease: Option<Lease>,
    /// Why the last refresh failed.
    pub last_error: Option<String>,
    /// The Beijing day `TokenExpiring` was last raised (once a day).
    pub warned_on: Option<chrono::NaiveDate>,
}

/// What a token refresh gives a shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMeta {
    /// When the access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// One waybill's Kuaidi100 subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Carrier code.
    pub carrier: String,
    /// Tracking number.
    pub number: String,
    /// When Kuaidi100 took it; `None` while pending.
    pub subscribed_at: Option<DateTime<Utc>>,
    /// Attempts so far.
    pub attempts: u32,
}

/// What claiming a subscription said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This run subscribes it now.
    Claimed(Subscription),
    /// Subscribed already (after the given stop, if any): nothing to do.
    Done,
    /// Another run is subscribing it.
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_dedupe_key_is_the_order_and_its_update_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default();
        let row = |id: &str, at| ChangedRow {
            order_id: OrderId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            refund_id: None,
            updated_at: at,
            row: Value::Null,
        };
        assert_eq!(row("240101-1", at).message_id(Feed::Orders), row("240101-1", at).message_id(Feed::Orders));
        assert_ne!(
            row("240101-1", at).message_id(Feed::Orders),
            row("240101-1", at + Duration::seconds(1)).message_id(Feed::Orders)
        );
        assert_ne!(row("240101-1", at).message_id(Feed::Orders), row("240101-1", at).message_id(Feed::Refunds));
        let mut refund = row("240101-1", at);
        refund.refund_id = Some("as-9".into());
        assert_eq!(
            refund.message_id(Feed::Refunds).as_str(),
            format!("pull-r-240101-1-as-9-{}", at.timestamp_millis())
        );
    }

    #[test]
    fn only_pull_envelopes_read_as_pulled_rows() {
        let payload = br#"{"pull":{"feed":"orders","api":"x"},"row":{"a":1}}"#;
        assert_eq!(PulledPayload::read(payload).map(|p| p.pull.feed), Some(Feed::Orders));
        assert!(PulledPayload::read(br#"{"tag":"101","msg":"{}"}"#).is_none());
        assert!(PulledPayload::read(b"not json").is_none());
    }
}
