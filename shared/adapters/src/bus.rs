//! EventBridge implementation of the event publisher: PutEvents with at most 10 entries.

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
        let mut failed = Vec::new();
        for (chunk_index, chunk) in events.chunks(PER_REQUEST).enumerate() {
            let entries = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENT_SOURCE)
                        .detail_type(event.detail_type())
                        .detail(event.detail().to_string())
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
                    failed.push(chunk_index * PER_REQUEST + i);
                }
            }
        }
        Ok(failed)
    }
}
