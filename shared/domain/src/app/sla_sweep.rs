//! The SLA sweep: orders stuck in a state past its limit.

use crate::app::failure::add_counters_once;
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::record::DueKind;
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::{OrderStore, Stats};
use crate::rules::timing::Rules;

/// What an SLA sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SlaSweepReport {
    /// Due markers looked at.
    pub due: u32,
    /// Breaches raised (one per order and state).
    pub breached: u32,
    /// Markers of orders that had moved on (removed).
    pub resolved: u32,
    /// Markers left for the next run (a read or write failed).
    pub errors: u32,
}

/// Finds orders stuck past their SLA limit (a query of the due index per shard: reads scale
/// with what is due, not with the table) and raises `SlaBreached` once per order and state.
pub async fn sla_sweep(
    orders: &dyn OrderStore,
    stats: &dyn Stats,
    clock: &dyn Clock,
    rules: &Rules,
) -> (Vec<DomainEvent>, SlaSweepReport) {
    let now = clock.now();
    let mut events = Vec::new();
    let mut report = SlaSweepReport::default();
    for shard in 0..rules.shards.max(1) {
        let mut cursor: Option<String> = None;
        loop {
            let page = match orders.due(DueKind::Sla, shard, now, cursor.as_deref(), 100).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(shard, error = %err, "SLA sweep could not read the due index");
                    report.errors += 1;
                    break;
                }
            };
            for marker in page.items {
                report.due += 1;
                let order = match orders.get(&marker.key).await {
                    Ok(order) => order,
                    Err(_) => {
                        report.errors += 1;
                        continue;
                    }
                };
                let stuck = order.as_ref().and_then(|o| {
                    let state = o.lifecycle?;
                    (marker.note.as_deref() == Some(state.as_str())).then_some((state, o.entered.get(&state).copied()))
                });
                let Some((state, since)) = stuck else {
                    // Moved on: the marker is done.
                    match orders.clear_due(&marker.key, DueKind::Sla, marker.due_at, &[]).await {
                        Ok(_) => report.resolved += 1,
                        Err(_) => report.errors += 1,
                    }
                    continue;
                };
                let since = since.unwrap_or(marker.due_at);
                let limit = rules.sla.limit(marker.key.source, state).unwrap_or_else(|| marker.due_at - since);
                let breach = DomainEvent::SlaBreached {
                    key: marker.key.clone(),
                    state,
                    since,
                    limit_minutes: limit.num_minutes(),
                };
                // Kept in the order's outbox before the marker, its only other trace, is cleared:
                // a publish that fails, or a sweep that dies, loses no breach. Two overlapping
                // sweeps keep and publish the same event (the same id) and count it once; one
                // clears the marker.
                if orders.keep(&marker.key, marker.shard, std::slice::from_ref(&breach), now).await.is_err() {
                    report.errors += 1;
                    continue;
                }
                // Counted once per breach (its order, state and since when), before the marker
                // goes: a count whose answer was lost, or a sweep that dies after it, is neither
                // repeated nor lost (the next sweep finds the marker; a move that ends the
                // breach first reports it with the same token, see `apply::breach_ended_by`).
                let add = breach_count(&marker.key, marker.shard, since + limit);
                if !add_counters_once(stats, &breach_token(&marker.key, state, since), &[add], "SLA breach").await {
                    report.errors += 1;
                    continue;
                }
                match orders.clear_due(&marker.key, DueKind::Sla, marker.due_at, &[]).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => {
                        report.errors += 1;
                        continue;
                    }
                }
                report.breached += 1;
                tracing::warn!(source = %marker.key.source, shop = %marker.key.shop, order_id = %marker.key.order_id, state = %state, "SLA breached");
                events.push(breach);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    (events, report)
}

/// The once-token of a breach: what its `SlaBreached` says — the order, the state and since
/// when (the first time the order entered it, which an older event arriving late can move
/// earlier: then it is the same breach, told with the earlier time) — whoever reports it.
pub(crate) fn breach_token(
    key: &crate::model::ids::OrderKey,
    state: crate::model::lifecycle::Lifecycle,
    since: chrono::DateTime<chrono::Utc>,
) -> String {
    format!("sla#{key}#{state}#{}", since.timestamp_millis())
}

/// The count of a breach, on the day it was due.
pub(crate) fn breach_count(
    key: &crate::model::ids::OrderKey,
    shard: u16,
    due_at: chrono::DateTime<chrono::Utc>,
) -> CounterAdd {
    CounterAdd { channel: key.source, day: business_day(due_at), shard, name: names::SLA_BREACHED.into(), by: 1 }
}
