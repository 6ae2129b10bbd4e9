//! EventBridge implementation of the event publisher: PutEvents with at most 10 entries and
//! 256 KiB per request, the entry sizes counted as EventBridge counts them.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use domain::model::domain_event::DomainEvent;
use domain::ports::{EventPublisher, PublishError};

use crate::aws::error_code;

/// The `source` of every event orderhub publishes.
pub const EVENT_SOURCE: &str = "orderhub";

/// PutEvents takes at most 10 entries per request.
const PER_REQUEST: usize = 10;

/// PutEvents takes at most 256 KiB per request (the sum of its entries' sizes).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The size EventBridge counts for one entry ("Calculating PutEvents event entry size",
/// docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html): 14 bytes for the
/// time if set, plus the UTF-8 bytes of the source, the detail-type and the detail (orderhub
/// sets no time and no resources).
pub fn entry_size(detail_type: &str, detail: &str) -> usize {
    EVENT_SOURCE.len() + detail_type.len() + detail.len()
}

/// Consecutive runs of entries that each fit one request: at most [`PER_REQUEST`] entries and
/// [`MAX_REQUEST_BYTES`]. An entry larger than a whole request is a run of its own (EventBridge
/// refuses it, and the caller reports it failed rather than dropping it).
pub fn requests(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == PER_REQUEST || bytes + size > MAX_REQUEST_BYTES) {
            runs.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// Publishes to one event bus.
#[derive(Debug, Clone)]
pub struct BusPublisher {
    client: Client,
    bus: String,
}

impl BusPublisher {
    /// A publisher to the bus named `bus`.
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }
}

#[async_trait]
impl EventPublisher for BusPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        let bodies: Vec<(&'static str, String)> =
            events.iter().map(|event| (event.detail_type(), event.detail().to_string())).collect();
        let sizes: Vec<usize> = bodies.iter().map(|(kind, detail)| entry_size(kind, detail)).collect();
        let mut failed = Vec::new();
        for run in requests(&sizes) {
            if run.len() == 1 && sizes[run.start] > MAX_REQUEST_BYTES {
                tracing::error!(
                    detail_type = bodies[run.start].0,
                    bytes = sizes[run.start],
                    "an event larger than a PutEvents request stays unpublished"
                );
                failed.push(run.start);
                continue;
            }
            let entries = bodies[run.clone()]
                .iter()
                .map(|(kind, detail)| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENT_SOURCE)
                        .detail_type(*kind)
                        .detail(detail)
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PublishError::Unavailable(error_code(&e).1))?;
            for (i, entry) in out.entries().iter().enumerate() {
                if entry.error_code().is_some() {
                    failed.push(run.start + i);
                }
            }
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_hold_at_most_ten_entries_and_256_kib() {
        assert_eq!(requests(&[100; 25]), vec![0..10, 10..20, 20..25]);
        let big = MAX_REQUEST_BYTES / 3;
        assert_eq!(requests(&[big, big, big, big, 10]), vec![0..3, 3..5]);
        assert_eq!(requests(&[10, MAX_REQUEST_BYTES + 1, 10]), vec![0..1, 1..2, 2..3]);
        assert_eq!(requests(&[MAX_REQUEST_BYTES, 1]), vec![0..1, 1..2]);
        assert!(requests(&[]).is_empty());
        for sizes in [vec![1; 31], vec![MAX_REQUEST_BYTES / 7; 30], vec![40_000, 90_000, 130_000, 5, 200_000, 60_000]] {
            let runs = requests(&sizes);
            assert_eq!(runs.iter().map(ExactSizeIterator::len).sum::<usize>(), sizes.len(), "every entry once");
            for run in &runs {
                assert!(run.len() <= PER_REQUEST);
                let bytes: usize = sizes[run.clone()].iter().sum();
                assert!(run.len() == 1 || bytes <= MAX_REQUEST_BYTES, "{run:?} is {bytes} bytes");
            }
        }
    }
}
