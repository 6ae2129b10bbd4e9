//! Publishing with the outbox: the events of a change are written with it (see
//! [`crate::model::record::OrderWrite::outbox`]); [`Announce`] publishes and then drops the
//! outbox entries of the events that went out, and [`Announce::sweep`] publishes what is left —
//! events whose publish failed or whose function died after the commit — so every state change
//! is announced at least once. Consumers dedupe on [`DomainEvent::id`].

use async_trait::async_trait;
use chrono::Duration;

use crate::model::domain_event::DomainEvent;
use crate::ports::clock::Clock;
use crate::ports::{EventPublisher, OrderStore, PublishError};

/// An event publisher that clears the outbox of what it published.
pub struct Announce<'a> {
    /// The bus.
    pub bus: &'a dyn EventPublisher,
    /// The order store holding the outbox.
    pub orders: &'a dyn OrderStore,
}

#[async_trait]
impl EventPublisher for Announce<'_> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        let failed = self.bus.publish(events).await?;
        let out: Vec<_> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .filter_map(|(_, e)| e.order().map(|key| (key.clone(), e.id())))
            .collect();
        if !out.is_empty()
            && let Err(err) = self.orders.published(&out).await
        {
            // Published; the entries left are published once more by the sweep (same ids).
            tracing::warn!(error = %err, entries = out.len(), "published; could not clear the outbox");
        }
        Ok(failed)
    }
}

/// What an outbox sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OutboxReport {
    /// Events found left in the outbox.
    pub found: u32,
    /// Of those, published now.
    pub published: u32,
    /// Shards whose index could not be read, or whose events could not be published.
    pub errors: u32,
}

/// Publishes every event left in the outbox for longer than `grace` (the normal path publishes
/// within seconds; the grace keeps the sweep from racing it), shard by shard, through
/// `announce` (an [`Announce`], which clears what it published).
pub async fn sweep(
    announce: &dyn EventPublisher,
    orders: &dyn OrderStore,
    clock: &dyn Clock,
    shards: u16,
    grace: Duration,
) -> OutboxReport {
    let until = clock.now() - grace;
    let mut report = OutboxReport::default();
    for shard in 0..shards.max(1) {
        let mut cursor: Option<String> = None;
        loop {
            let page = match orders.unpublished(shard, until, cursor.as_deref(), 100).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(shard, error = %err, "outbox sweep could not read its index");
                    report.errors += 1;
                    break;
                }
            };
            let events: Vec<DomainEvent> = page.items.into_iter().map(|u| u.event).collect();
            report.found += u32::try_from(events.len()).unwrap_or(u32::MAX);
            match announce.publish(&events).await {
                Ok(failed) => {
                    report.published += u32::try_from(events.len() - failed.len()).unwrap_or(u32::MAX);
                    if !failed.is_empty() {
                        report.errors += 1;
                    }
                }
                Err(err) => {
                    tracing::warn!(shard, error = %err, "outbox sweep could not publish");
                    report.errors += 1;
                    break;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if report.found > 0 {
        tracing::warn!(found = report.found, published = report.published, "outbox sweep published events left behind");
    }
    report
}
