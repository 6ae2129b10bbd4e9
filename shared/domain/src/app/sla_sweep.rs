//! The SLA sweep: orders stuck in a state past its limit.

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
                // Clearing first makes the breach once-only even if two sweeps overlap.
                match orders.clear_due(&marker.key, DueKind::Sla, marker.due_at).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => {
                        report.errors += 1;
                        continue;
                    }
                }
                let Some((state, since)) = stuck else {
                    report.resolved += 1;
                    continue;
                };
                let since = since.unwrap_or(marker.due_at);
                let limit = rules.sla.limit(marker.key.source, state).unwrap_or_else(|| marker.due_at - since);
                report.breached += 1;
                tracing::warn!(source = %marker.key.source, shop = %marker.key.shop, order_id = %marker.key.order_id, state = %state, "SLA breached");
                let add = CounterAdd {
                    channel: marker.key.source,
                    day: business_day(now),
                    shard: marker.shard,
                    name: names::SLA_BREACHED.into(),
                    by: 1,
                };
                if let Err(err) = stats.add(&[add]).await {
                    tracing::warn!(error = %err, "could not count the SLA breach");
                }
                events.push(DomainEvent::SlaBreached {
                    key: marker.key,
                    state,
                    since,
                    limit_minutes: limit.num_minutes(),
                });
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    (events, report)
}
