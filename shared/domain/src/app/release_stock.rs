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
    /// Lines released before (a redelivery, a retry, a concurrent run, or a release whose
    /// answer was lost), with the reason they were released for.
    pub before: Vec<(OrderLine, String)>,
    /// The counters added (in the same write as the release) for the lines released by this
    /// call.
    pub counters: Vec<CounterAdd>,
}

impl Released {
    /// The `InventoryReleased` events of every line released — by this call for `reason`, or
    /// earlier for whatever reason it was — one per reason, so a retry after a failed publish,
    /// or a later run that finds the lines released (for its own reason or another: a refund's
    /// release whose answer was lost, found by the dual-check's follow-up), derives the same
    /// events (same ids).
    pub fn events(&self, key: &OrderKey, reason: &str) -> Vec<DomainEvent> {
        let mut by_reason: std::collections::BTreeMap<&str, Vec<OrderLine>> = std::collections::BTreeMap::new();
        for line in &self.lines {
            by_reason.entry(reason).or_default().push(line.clone());
        }
        for (line, why) in &self.before {
            by_reason.entry(why.as_str()).or_default().push(line.clone());
        }
        by_reason
            .into_iter()
            .map(|(reason, mut lines)| {
                lines.sort();
                DomainEvent::InventoryReleased { key: key.clone(), lines, reason: reason.to_owned() }
            })
            .collect()
    }
}

/// Releases the still-reserved lines of `reserved` that `only` names (every line when `only` is
/// empty): exactly once each, in one conditional write with their counters. When another run
/// released some of them in between, the reservations are read again and the rest released.
/// Lines released before (for any reason) are reported in [`Released::before`].
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
            done.iter().map(|r| (r.order_line(), r.released_by.clone().unwrap_or_else(|| reason.to_owned()))).collect();
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
    let events = released.events(key, reason);
    orders.keep(key, key.shard(rules.shards), &events, now).await?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::Sku;
    use crate::ports::{OrderStore, Stats};
    use crate::testing::faults::{Fault, FaultPlan, Faults, Faulty};
    use crate::testing::memory::MemoryStore;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_release_whose_answer_was_lost_is_announced_by_whoever_finds_it_released() {
        // Found by the soak (tests/soak, seed 12): a refund released a line, the store's answer
        // was lost, and the function failed before keeping its `InventoryReleased`. The
        // dual-check's follow-up ("poll") found the line released for "refund" — another reason —
        // and derived no event at all: the release was never announced.
        let store = MemoryStore::default();
        let key =
            OrderKey::parse(crate::model::ids::Source::Douyin, "shop-1", "6941").unwrap_or_else(|e| panic!("{e}"));
        let at = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default();
        let sku = Sku::parse("69411").unwrap_or_else(|e| panic!("{e}"));
        let line = Reservation {
            key: key.clone(),
            line: LineId::of_sku(&sku),
            sku,
            qty: 1,
            reserved_at: at,
            released_at: None,
            released_by: None,
        };
        store.reserve(std::slice::from_ref(&line)).await.unwrap_or_else(|e| panic!("{e}"));
        let rules = Rules::default();
        let lost = Faults::new(FaultPlan::new(1).rate("inventory.release", Fault::After, 1.0));
        let faulty = Faulty::new(&store, &lost);
        let everything = BTreeSet::new();
        let first = release_order(&faulty, &store, &key, &everything, at, at, "refund", &rules).await;
        assert!(first.is_err(), "the answer was lost");
        let events = release_order(&store, &store, &key, &everything, at, at, "poll", &rules)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&events[..], [DomainEvent::InventoryReleased { lines, reason, .. }]
                if reason == "refund" && lines.len() == 1),
            "the release, announced as what it was: {events:?}"
        );
        let kept = store.unpublished(key.shard(rules.shards), at, None, 10).await.map(|p| p.items).unwrap_or_default();
        assert_eq!(kept.len(), 1, "and kept in the outbox until published");
        // Counted once: with the release, in its own write (the soak, seed 12, found a count
        // lost when it was a separate write).
        release_order(&store, &store, &key, &everything, at, at, "poll", &rules)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let month = store.month(key.source, at.date_naive()).await.unwrap_or_default();
        assert_eq!(month.iter().map(|d| d.get(names::STOCK_RELEASED)).sum::<i64>(), 1);
    }
}
