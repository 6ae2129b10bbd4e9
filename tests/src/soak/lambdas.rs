//! The functions as their triggers call them — `webhook_verify::handle` with an HTTP API event,
//! the SQS functions' `handle_within` with an SQS batch or an ops event, refund-dual-check's
//! `handle` — over whatever ports they were built with.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use domain::app::intake::{Incoming, Intake};
use domain::ports::clock::Clock;
use domain::ports::{EventPublisher, OrderStore};
use domain::testing::fixtures::{self, Signed};

use super::run::Functions;

/// The outbox sweep with a grace of its own (status-normalize's is a constant, two minutes, too
/// long for a run on a compressed clock): the same use case, `domain::app::announce::sweep`.
pub struct OutboxSweep<'a> {
    /// The publisher that clears the outbox.
    pub announce: &'a dyn EventPublisher,
    /// The order store holding the outbox.
    pub orders: &'a dyn OrderStore,
    /// Shards.
    pub shards: u16,
    /// How old an entry must be.
    pub grace: chrono::Duration,
}

/// The five functions' handlers (health-report aside).
pub struct Lambdas<'a> {
    /// webhook-verify's use case.
    pub intake: &'a Intake<'a>,
    /// "Now" for the HTTP event.
    pub clock: &'a dyn Clock,
    /// status-normalize.
    pub normalize: &'a status_normalize::Handler<'a>,
    /// signin-trust-check.
    pub trust: &'a signin_trust_check::Handler<'a>,
    /// refund-dual-check.
    pub refunds: &'a refund_dual_check::Handler<'a>,
    /// When set, `{"sweep": "outbox"}` runs this instead of status-normalize's own.
    pub outbox: Option<OutboxSweep<'a>>,
}

#[async_trait(?Send)]
impl Functions for Lambdas<'_> {
    async fn webhook(&self, incoming: Incoming) -> u16 {
        let signed = Signed { headers: incoming.headers, body: incoming.body, query: incoming.query };
        let event = fixtures::http_event("POST", &incoming.source, &incoming.shop, &signed, incoming.received_at);
        match webhook_verify::handle(self.intake, event, self.clock.now()).await {
            webhook_verify::Answer::Http(response) => u16::try_from(response.status_code).unwrap_or(500),
            other => panic!("webhook-verify answered an HTTP request with {other:?}"),
        }
    }

    async fn normalize(&self, event: Value, time_left: Duration) -> Result<Value, String> {
        if let Some(outbox) = &self.outbox
            && event.get("sweep").and_then(Value::as_str) == Some("outbox")
        {
            let report =
                domain::app::announce::sweep(outbox.announce, outbox.orders, self.clock, outbox.shards, outbox.grace)
                    .await;
            return serde_json::to_value(report).map_err(|e| e.to_string());
        }
        let answer = self.normalize.handle_within(event, Some(time_left)).await.map_err(|e| e.to_string())?;
        serde_json::to_value(answer).map_err(|e| e.to_string())
    }

    async fn trust(&self, event: Value, time_left: Duration) -> Result<Value, String> {
        let answer = self.trust.handle_within(event, Some(time_left)).await.map_err(|e| e.to_string())?;
        serde_json::to_value(answer).map_err(|e| e.to_string())
    }

    async fn refunds(&self, event: Value) -> Value {
        serde_json::to_value(self.refunds.handle(event).await).unwrap_or(Value::Null)
    }
}
