//! Releasing an order's reserved stock after its refund: exactly once per line.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::app::failure::{Failure, add_counters};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, OrderKey};
use crate::model::stock::{OrderLine, ReleaseOutcome, Reservation};
use crate::model::time::business_day;
use crate::ports::{InventoryStore, OrderStore, Stats};
use crate::rules::timing::Rules;

/// What releasing an order's reserved stock did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Released {
    /// Lines released by this call.
    pub lines: Vec<OrderLine>,
    /// Lines released before for the same reason (a redelivery, a retry, a concurrent run).
    pub before: Vec<OrderLine>,
    /// The counters to add for the lines released by this call (not yet written: a batch
    /// writes them once).
    pub counters: Vec<CounterAdd>,
}

impl Released {
    /// The `InventoryReleased` event of every line released for this reason — by this call or
    /// an earlier one — so a retry after a failed publish derives the same event (same id).
    pub fn event(&self, key: &OrderKey, reason: &str) -> Option<DomainEvent> {
        let mut lines: Vec<OrderLine> = self.lines.iter().chain(&self.before).cloned().collect();
        lines.sort();
        (!lines.is_empty()).then(|| DomainEvent::InventoryReleased {
            key: key.clone(),
            lines,
            reason: reason.to_owned(),
        })
    }
}

/// Releases the still-reserved lines of `reserved` that `only` names (every line when `only` is
/// empty): exactly once each, a conditional write per line, the lines of an order at the same
/// time. Lines released before for the same `reason` are reported in [`Released::before`].
#[allow(clippy::too_many_arguments)]
pub async fn release_lines(
    inventory: &dyn InventoryStore,
    key: &OrderKey,
    reserved: Vec<Reservation>,
    only: &BTreeSet<LineId>,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Released, Failure> {
    let mut released = Released::default();
    let covered: Vec<Reservation> =
        reserved.into_iter().filter(|r| only.is_empty() || only.contains(&r.line)).collect();
    let (open, done): (Vec<Reservation>, Vec<Reservation>) = covered.into_iter().partition(|r| r.released_at.is_none());
    released.before =
        done.iter().filter(|r| r.released_by.as_deref() == Some(reason)).map(Reservation::order_line).collect();
    let outcomes =
        futures::future::join_all(open.iter().map(|line| inventory.release(key, &line.line, now, reason))).await;
    for (line, outcome) in open.iter().zip(outcomes) {
        if outcome? == ReleaseOutcome::Released {
            released.lines.push(line.order_line());
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

/// Releases the reserved stock of an order's lines `only` (every line when empty), counts it,
/// keeps the `InventoryReleased` event in the order's outbox (so it is published even if this
/// function dies before it does) and returns it (none when nothing was released for `reason`).
#[allow(clippy::too_many_arguments)]
pub async fn release_order(
    inventory: &dyn InventoryStore,
    stats: &dyn Stats,
    orders: &dyn OrderStore,
    key: &OrderKey,
    only: &BTreeSet<LineId>,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Vec<DomainEvent>, Failure> {
    let reserved = inventory.reservations(key).await?;
    let released = release_lines(inventory, key, reserved, only, refunded_at, now, reason, rules).await?;
    // The release itself happened exactly once; the counters are retried, then logged.
    add_counters(stats, &released.counters, "stock release").await;
    let events: Vec<DomainEvent> = released.event(key, reason).into_iter().collect();
    orders.keep(key, key.shard(rules.shards), &events, now).await?;
    Ok(events)
}
