//! Releasing an order's reserved stock after its refund: exactly once per line.

use chrono::{DateTime, Utc};

use crate::app::apply::Failure;
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{OrderKey, Sku};
use crate::model::stock::{ReleaseOutcome, Reservation};
use crate::model::time::business_day;
use crate::ports::{InventoryStore, Stats};
use crate::rules::timing::Rules;

/// What releasing an order's reserved stock did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Released {
    /// Lines released by this call (lines released before are not repeated).
    pub lines: Vec<(Sku, u32)>,
    /// The counters to add (not yet written: a batch writes them once).
    pub counters: Vec<CounterAdd>,
}

impl Released {
    /// The `InventoryReleased` event, when anything was released.
    pub fn event(&self, key: &OrderKey, reason: &str) -> Option<DomainEvent> {
        (!self.lines.is_empty()).then(|| DomainEvent::InventoryReleased {
            key: key.clone(),
            lines: self.lines.clone(),
            reason: reason.to_owned(),
        })
    }
}

/// Releases every still-reserved line of `reserved` (exactly once each: a conditional write per
/// line, the lines of an order at the same time) and computes the counters.
pub async fn release_lines(
    inventory: &dyn InventoryStore,
    key: &OrderKey,
    reserved: Vec<Reservation>,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Released, Failure> {
    let open: Vec<Reservation> = reserved.into_iter().filter(|line| line.released_at.is_none()).collect();
    let outcomes = futures::future::join_all(open.iter().map(|line| inventory.release(key, &line.sku, now))).await;
    let mut released = Released::default();
    for (line, outcome) in open.iter().zip(outcomes) {
        if outcome? == ReleaseOutcome::Released {
            released.lines.push((line.sku.clone(), line.qty));
        }
    }
    if released.lines.is_empty() {
        return Ok(released);
    }
    let day = business_day(now);
    let shard = key.shard(rules.shards);
    let delay = (now - refunded_at).num_seconds().max(0);
    let lines = i64::try_from(released.lines.len()).unwrap_or(i64::MAX);
    let mut add = |name: &str, by: i64| {
        released.counters.push(CounterAdd { channel: key.source, day, shard, name: name.into(), by });
    };
    add(names::STOCK_RELEASE_DUE, lines);
    add(names::STOCK_RELEASED, lines);
    add(names::STOCK_RELEASE_DELAY_SUM_S, delay * lines);
    if now - refunded_at <= rules.release_within {
        add(names::STOCK_RELEASED_ON_TIME, lines);
    }
    if reason == "ops" {
        add(names::OPS_RELEASES, lines);
    }
    tracing::info!(source = %key.source, shop = %key.shop, order_id = %key.order_id, lines = released.lines.len(), reason, "stock released");
    Ok(released)
}

/// Releases one order's reserved stock, counts it, and returns the `InventoryReleased` event
/// (none when nothing was left to release).
pub async fn release_order(
    inventory: &dyn InventoryStore,
    stats: &dyn Stats,
    key: &OrderKey,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Vec<DomainEvent>, Failure> {
    let reserved = inventory.reservations(key).await?;
    let released = release_lines(inventory, key, reserved, refunded_at, now, reason, rules).await?;
    if !released.counters.is_empty()
        && let Err(err) = stats.add(&released.counters).await
    {
        // The release itself happened exactly once; a lost counter only dims the report.
        tracing::warn!(order_id = %key.order_id, error = %err, "could not count the release");
    }
    Ok(released.event(key, reason).into_iter().collect())
}
