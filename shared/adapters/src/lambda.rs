//! What every SQS-triggered function does the same way: process a batch concurrently, publish
//! the resulting domain events in batches, and report only the failed messages (partial batch
//! failure) — a message whose events did not go out is failed too, and its redelivery publishes
//! them again.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

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

/// How long an invocation may still work: until the Lambda deadline (`deadline_ms`, epoch
/// milliseconds, from the invocation's context) less `margin` for publishing and answering.
/// `None` when the deadline is unknown (tests) or already past.
pub fn time_left(deadline_ms: u64, margin: Duration) -> Option<Duration> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0),
    )
    .unwrap_or(u64::MAX);
    Duration::from_millis(deadline_ms.saturating_sub(now_ms)).checked_sub(margin)
}

/// Runs `handle` on every record (concurrently, each in a span carrying its SQS message id; the
/// handler records `source`, `shop`, `order_id` and `message_id` on it), publishes what they
/// produced, and answers with the ids of the records that failed or whose events were not
/// published. A record still running when `time_left` runs out is stopped and reported failed,
/// so the invocation answers before Lambda's deadline instead of losing the whole batch's answer;
/// its redelivery finds whatever it had already written.
pub async fn batch<'r, F, Fut>(
    records: &'r [SqsMessage],
    bus: &dyn EventPublisher,
    time_left: Option<Duration>,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(&'r SqsMessage) -> Fut,
    Fut: Future<Output = Result<Vec<DomainEvent>, ()>>,
{
    batch_published(records, bus, time_left, handle).await.0
}

/// [`batch`], also returning the events the bus took (for a caller that records what went out,
/// e.g. the once-a-day alerts).
pub async fn batch_published<'r, F, Fut>(
    records: &'r [SqsMessage],
    bus: &dyn EventPublisher,
    time_left: Option<Duration>,
    handle: F,
) -> (SqsBatchResponse, Vec<DomainEvent>)
where
    F: Fn(&'r SqsMessage) -> Fut,
    Fut: Future<Output = Result<Vec<DomainEvent>, ()>>,
{
    let until = time_left.map(|left| tokio::time::Instant::now() + left);
    let outcomes = futures::future::join_all(records.iter().map(|record| {
        let span = tracing::info_span!(
            "record",
            sqs_message_id = record.message_id.as_deref().unwrap_or_default(),
            source = tracing::field::Empty,
            shop = tracing::field::Empty,
            order_id = tracing::field::Empty,
            message_id = tracing::field::Empty,
        );
        let work = handle(record).instrument(span);
        async move {
            match until {
                Some(until) => tokio::time::timeout_at(until, work).await.unwrap_or_else(|_| {
                    tracing::warn!(
                        sqs_message_id = record.message_id.as_deref().unwrap_or_default(),
                        "stopped at the deadline; it will be redelivered"
                    );
                    Err(())
                }),
                None => work.await,
            }
        }
    }))
    .await;
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use domain::testing::memory::MemoryPublisher;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(id: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.to_owned());
        record
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_record_logs_inside_its_span_and_a_late_one_is_failed_not_lost() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let bus = MemoryPublisher::default();
        let records = [record("sqs-1"), record("sqs-2")];
        let response = batch(&records, &bus, Some(Duration::from_millis(200)), |r| async move {
            tracing::Span::current().record("source", "douyin").record("order_id", "6921");
            if r.message_id.as_deref() == Some("sqs-2") {
                // Hangs past the time left: stopped and reported, the batch still answers.
                std::future::pending::<()>().await;
            }
            tracing::info!("applied");
            Ok(Vec::new())
        })
        .await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["sqs-2"]);
        let logs = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        let applied = logs.lines().find(|l| l.contains("\"applied\"")).unwrap_or_else(|| panic!("{logs}"));
        for field in ["\"sqs_message_id\":\"sqs-1\"", "\"source\":\"douyin\"", "\"order_id\":\"6921\""] {
            assert!(applied.contains(field), "{field} in {applied}");
        }
        assert!(logs.contains("stopped at the deadline"), "{logs}");
    }
}
