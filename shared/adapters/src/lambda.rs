//! What every SQS-triggered function does the same way: process a batch concurrently, publish
//! the resulting domain events in batches, and report only the failed messages (partial batch
//! failure) — a message whose events did not go out is failed too, and its redelivery publishes
//! them again.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::model::domain_event::DomainEvent;
use domain::ports::EventPublisher;

/// The records of an SQS trigger's event, or the event back when it is not one (no `Records`:
/// a schedule or an ops event). An SQS event that does not deserialise has no message ids to
/// report as failed; it is logged and read as an empty batch.
pub fn sqs_records(event: serde_json::Value) -> Result<Vec<SqsMessage>, serde_json::Value> {
    if event.get("Records").is_none() {
        return Err(event);
    }
    match serde_json::from_value::<SqsEvent>(event) {
        Ok(batch) => Ok(batch.records),
        Err(err) => {
            tracing::error!(error = %err, "unreadable SQS event");
            Ok(Vec::new())
        }
    }
}

/// How many times SQS has delivered this message.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Publishes; returns the positions of the events that did not go out.
pub async fn publish(bus: &dyn EventPublisher, events: &[DomainEvent]) -> Vec<usize> {
    if events.is_empty() {
        return Vec::new();
    }
    match bus.publish(events).await {
        Ok(failed) => failed,
        Err(err) => {
            tracing::warn!(error = %err, "event bus unavailable");
            (0..events.len()).collect()
        }
    }
}

/// Runs `handle` on every record (concurrently), publishes what they produced, and answers
/// with the ids of the records that failed or whose events were not published.
pub async fn batch<'r, F, Fut>(records: &'r [SqsMessage], bus: &dyn EventPublisher, handle: F) -> SqsBatchResponse
where
    F: Fn(&'r SqsMessage) -> Fut,
    Fut: Future<Output = Result<Vec<DomainEvent>, ()>>,
{
    batch_published(records, bus, handle).await.0
}

/// [`batch`], also returning the events the bus took (for a caller that records what went out,
/// e.g. the once-a-day alerts).
pub async fn batch_published<'r, F, Fut>(
    records: &'r [SqsMessage],
    bus: &dyn EventPublisher,
    handle: F,
) -> (SqsBatchResponse, Vec<DomainEvent>)
where
    F: Fn(&'r SqsMessage) -> Fut,
    Fut: Future<Output = Result<Vec<DomainEvent>, ()>>,
{
    let outcomes = futures::future::join_all(records.iter().map(handle)).await;
    let mut failed: Vec<String> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut events: Vec<DomainEvent> = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(produced) => {
                owners.extend(std::iter::repeat_n(index, produced.len()));
                events.extend(produced);
            }
            Err(()) => failed.push(records[index].message_id.clone().unwrap_or_default()),
        }
    }
    let unpublished = publish(bus, &events).await;
    for position in &unpublished {
        if let Some(id) = owners.get(*position).and_then(|i| records[*i].message_id.clone())
            && !failed.contains(&id)
        {
            failed.push(id);
        }
    }
    let published: Vec<DomainEvent> = events
        .into_iter()
        .enumerate()
        .filter(|(position, _)| !unpublished.contains(position))
        .map(|(_, event)| event)
        .collect();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    (response, published)
}
