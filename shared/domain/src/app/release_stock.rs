//! Releasing an order's reserved stock after its refund: exactly once per line.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::app::failure::Failure;
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, OrderKey};
use crate::model::stock::{OrderLine, ReleaseOutcome, Reservation};
use crate::model::time::business_day;
use crate::ports::{InventoryStore, OrderStore};
use crate::rules::timing::Rules;

/// What releasing an order's reserved stock did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Released {
    /// Lines released by this call.
    pub lines: Vec<OrderLine>,
    /// Lines released before for the same reason (a redelivery, a retry, a concurrent run).
    pub before: Vec<OrderLine>,
    /// The counters added (in the same write as the release) for the lines released by this
    /// call.
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
/// empty): exactly once each, in one conditional write with their counters. When another run
/// released some of them in between, the reservations are read again and the rest released.
/// Lines released before for the same `reason` are reported in [`Released::before`].
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
    let mut reserved = reserved;
    for attempt in 0..4 {
        let mut released = Released::default();
        let covered: Vec<Reservation> =
            reserved.into_iter().filter(|r| only.is_empty() || only.contains(&r.line)).collect();
        let (open, done): (Vec<Reservation>, Vec<Reservation>) =
            covered.into_iter().partition(|r| r.released_at.is_none());
        released.before =
            done.iter().filter(|r| r.released_by.as_deref() == Some(reason)).map(Reservation::order_line).collect();
        if open.is_empty() {
            return Ok(released);
        }
        let counters = release_counters(key, open.len(), refunded_at, now, reason, rules);
        let lines: Vec<LineId> = open.iter().map(|r| r.line.clone()).collect();
        match inventory.release(key, &lines, now, reason, &counters).await? {
            ReleaseOutcome::Released => {
                released.lines = open.iter().map(Reservation::order_line).collect();
                released.counters = counters;
                tracing::info!(source = %key.source, shop = %key.shop, order_id = %key.order_id, lines = released.lines.len(), reason, "stock released");
                return Ok(released);
            }
            // Some line went in between (or our own write landed and its answer was lost):
            // read again and release what is still open.
            ReleaseOutcome::AlreadyReleased | ReleaseOutcome::NotReserved => {
                crate::app::failure::backoff(attempt).await;
                reserved = inventory.reservations(key).await?;
            }
        }
    }
    Err(Failure::Retry("stock release kept conflicting".into()))
}

/// The counters of releasing `lines` lines now for a refund at `refunded_at`.
fn release_counters(
    key: &OrderKey,
    lines: usize,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Vec<CounterAdd> {
    let day = business_day(now);
    let shard = key.shard(rules.shards);
    let delay = (now - refunded_at).num_seconds().max(0);
    let lines = i64::try_from(lines).unwrap_or(i64::MAX);
    let mut counters = Vec::new();
    let mut add = |name: &str, by: i64| {
        counters.push(CounterAdd { channel: key.source, day, shard, name: name.into(), by });
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
    counters
}

/// Releases the reserved stock of an order's lines `only` (every line when empty), counts it,
/// keeps the `InventoryReleased` event in the order's outbox (so it is published even if this
/// function dies before it does) and returns it (none when nothing was released for `reason`).
#[allow(clippy::too_many_arguments)]
pub async fn release_order(
    inventory: &dyn InventoryStore,
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
    let events: Vec<DomainEvent> = released.event(key, reason).into_iter().collect();
    orders.keep(key, key.shard(rules.shards), &events, now).await?;
    Ok(events)
}
