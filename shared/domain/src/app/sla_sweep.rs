//! The SLA sweep: orders stuck in a state past its limit.

use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::record::DueKind;
use crate::model::time::business_day;
use crate::ports::OrderStore;
use crate::ports::clock::Clock;
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
                // sweeps keep and publish the same event (the same id); one clears the marker
                // and counts it.
                if orders.keep(&marker.key, marker.shard, std::slice::from_ref(&breach), now).await.is_err() {
                    report.errors += 1;
                    continue;
                }
                // Counted with the marker's removal, in one write: exactly once.
                let add = CounterAdd {
                    channel: marker.key.source,
                    day: business_day(now),
                    shard: marker.shard,
                    name: names::SLA_BREACHED.into(),
                    by: 1,
                };
                match orders.clear_due(&marker.key, DueKind::Sla, marker.due_at, std::slice::from_ref(&add)).await {
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
