//! status-normalize: consumes the `inbound` queue (batches, partial batch failures), applies
//! every event through the domain's state machine, publishes domain events in batches of 10
//! (and records which once-a-day alerts went out); fetches a paid Douyin order's lines from the
//! platform before reserving stock; and, on its schedule, sweeps SLA due markers and asks again
//! for the lines of orders held without them.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use adapters::lambda::receive_count;
use adapters::trigger::{DecodeError, ErrorAnswer, Invocation, Shape};
use domain::Source;
use domain::app::announce::{OutboxReport, sweep};
use domain::app::apply::{Failure, unmapped_marker};
use domain::app::apply_message::ApplyMessage;
use domain::app::dead_letters::{DeadLetterOps, LetterRequest};
use domain::app::order_lines::{LinesReport, LinesRetry};
use domain::app::sla_sweep::{SlaSweepReport, sla_sweep};
use domain::model::callback::InboundMessage;
use domain::model::domain_event::DomainEvent;
use domain::ports::{EventPublisher, OutboundMessage, Queue, Stats};
use domain::rules::timing::{Rules, SlaRules};

/// How long an event may sit in the outbox before the sweep publishes it (the normal path does
/// within seconds of the write; this keeps the sweep from racing it).
pub const OUTBOX_GRACE: chrono::Duration = chrono::Duration::minutes(2);

/// Deliveries after which a retryable failure goes to the dead-letter queue with its reason
/// (the template's `maxReceiveCount` is the safety net behind this).
pub const MAX_RECEIVES: u32 = 4;

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables (the inbox: archived payloads too large for the queue), stage, shards.
    pub resources: Resources,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `INBOUND_DLQ_URL`: where messages go with the reason they failed.
    pub dead_letter_url: String,
    /// `INBOUND_QUEUE_URL`: where a redrive sends dead-lettered messages back to.
    pub inbound_url: String,
    /// `SLA_LIMITS` (JSON minutes per state, per channel) over the defaults, and
    /// `REFUND_CHECK_AFTER_MINUTES` (default 120).
    pub rules: Rules,
    /// Each registered platform client's endpoint override (`DOUYIN_API_URL`, … from
    /// `adapters::platform::CLIENTS`, as refund-dual-check reads them); absent: the real one.
    pub api_urls: BTreeMap<Source, String>,
    /// `PLATFORM_TIMEOUT_MS` (default 5000).
    pub platform_timeout_ms: u64,
    /// `SECRET_TTL_SECONDS` (default 120): how long a shop's API credentials are cached.
    pub secret_ttl_s: i64,
    /// `SYNC_TABLE`: the token ledger (shared with order-sync and refund-dual-check): an order
    /// detail call whose token expired refreshes it under the ledger's lease.
    pub sync_table: String,
    /// `TOKEN_REFRESH_BEFORE_MINUTES` (default 30): an access token expiring within this is
    /// refreshed before an order detail call.
    pub token_refresh_before_minutes: i64,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let resources = Resources::from_env(env)?;
        let sla = match env.var("SLA_LIMITS").filter(|v| !v.trim().is_empty()) {
            Some(json) => {
                SlaRules::from_json(&json).map_err(|reason| ConfigError::Malformed { var: "SLA_LIMITS", reason })?
            }
            None => SlaRules::default(),
        };
        let refund_minutes: i64 = config::parsed(env, "REFUND_CHECK_AFTER_MINUTES", 120)?;
        let rules = Rules {
            sla,
            refund_check_after: chrono::Duration::minutes(refund_minutes),
            shards: resources.shards,
            ..Rules::default()
        };
        let mut api_urls = BTreeMap::new();
        for row in &adapters::platform::CLIENTS {
            if let Some(url) = env.var(row.url_var).filter(|v| !v.trim().is_empty()) {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::Malformed { var: row.url_var, reason: "expected an http(s) URL".into() });
                }
                api_urls.insert(row.source, url);
            }
        }
        Ok(Self {
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            dead_letter_url: config::queue_url(env, "INBOUND_DLQ_URL")?,
            inbound_url: config::queue_url(env, "INBOUND_QUEUE_URL")?,
            resources,
            rules,
            api_urls,
            platform_timeout_ms: config::parsed(env, "PLATFORM_TIMEOUT_MS", 5000)?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 120)?,
            sync_table: config::required(env, "SYNC_TABLE")?,
            token_refresh_before_minutes: config::parsed(env, "TOKEN_REFRESH_BEFORE_MINUTES", 30)?,
        })
    }
}

/// What status-normalize is invoked with: an SQS batch of the `inbound` queue, or an ops event.
pub type Trigger = Invocation<SqsEvent, Ops>;

/// The ops events (its schedule sends the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// `{"sweep": "sla"}`: raise `SlaBreached` for orders stuck past their limit (and ask again
    /// for the lines of held orders); `{"sweep": "lines"}`: only the latter;
    /// `{"sweep": "outbox"}`: publish the events a failed publish or a dead function left behind.
    Sweep(Sweep),
    /// `{"dead_letters": {"inspect": {"max": 20}}}`: the inbound dead-letter queue's messages
    /// with their reasons (never their payload); `{"dead_letters": {"redrive": {"max": 100}}}`:
    /// send them back to the inbound queue once the cause is fixed.
    DeadLetters(LetterRequest),
}

/// What a sweep looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// The SLA due markers (the schedule's: the held orders' lines too).
    Sla,
    /// The outbox of events written with their changes and not yet published.
    Outbox,
    /// The held orders' lines.
    Lines,
}

/// How status-normalize tells its trigger from its ops events.
pub const SHAPE: Shape = Shape {
    trigger_marker: Some("Records"),
    trigger_name: "SQS",
    expected: r#"an SQS batch, {"sweep": "sla"|"lines"|"outbox"} or {"dead_letters": {"inspect"|"redrive": {"max": n}}}"#,
};

/// What status-normalize answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// The failed message ids of a batch (partial batch failure).
    Batch(SqsBatchResponse),
    /// What an SLA sweep did.
    Sweep(SlaSweepReport),
    /// What an outbox sweep did.
    Outbox(OutboxReport),
    /// What a lines sweep did.
    Lines(LinesReport),
    /// What an inspection or a redrive of the dead-letter queue did.
    DeadLetters(Value),
    /// An event that could not be decoded.
    Error(ErrorAnswer),
}

/// The function's dependencies.
pub struct Handler<'a> {
    /// The use case.
    pub messages: ApplyMessage<'a>,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// The dead-letter queue.
    pub dead_letter: &'a dyn Queue,
    /// The dead-letter queue read back, and the inbound queue to send its messages back to.
    pub letters: DeadLetterOps<'a>,
    /// The once-a-day alert markers.
    pub stats: &'a dyn Stats,
}

impl Handler<'_> {
    /// Handles one invocation with no deadline (tests); an unreadable SQS event is answered
    /// with an error.
    pub async fn handle(&self, event: Value) -> Answer {
        self.handle_within(event, None).await.unwrap_or_else(|err| Answer::Error(ErrorAnswer::new(err)))
    }

    /// Handles one invocation that may work for `time_left`. An SQS event that does not decode
    /// is an `Err`: the invocation fails and Lambda returns every message of the batch to the
    /// queue (an empty failure list would delete them all unread).
    pub async fn handle_within(&self, event: Value, time_left: Option<Duration>) -> Result<Answer, DecodeError> {
        Ok(match adapters::trigger::decode::<SqsEvent, Ops>(event, SHAPE) {
            Ok(Invocation::Trigger(batch)) => Answer::Batch(self.batch(batch.records, time_left).await),
            Ok(Invocation::Ops(Ops::Sweep(Sweep::Sla))) => {
                let write = &self.messages.write;
                let (events, report) =
                    sla_sweep(write.ports.orders, write.ports.stats, write.ports.clock, write.rules).await;
                let failed = adapters::lambda::publish(self.events, &events).await;
                tracing::info!(
                    due = report.due,
                    breached = report.breached,
                    unpublished = failed.len(),
                    "SLA sweep done"
                );
                // The same schedule asks again for the lines of held orders.
                self.lines_sweep().await;
                Answer::Sweep(report)
            }
            Ok(Invocation::Ops(Ops::Sweep(Sweep::Outbox))) => {
                let write = &self.messages.write;
                let ports = &write.ports;
                Answer::Outbox(sweep(self.events, ports.orders, ports.clock, write.rules.shards, OUTBOX_GRACE).await)
            }
            Ok(Invocation::Ops(Ops::Sweep(Sweep::Lines))) => Answer::Lines(self.lines_sweep().await),
            Ok(Invocation::Ops(Ops::DeadLetters(request))) => Answer::DeadLetters(self.letters.run(request).await),
            Err(err @ DecodeError::Trigger { .. }) => {
                tracing::error!(error = %err, "unreadable SQS event: the whole batch returns to the queue");
                return Err(err);
            }
            Err(err) => Answer::Error(ErrorAnswer::new(err)),
        })
    }

    /// Processes a batch within `time_left`; returns only the failed message ids. The
    /// once-a-day alerts the bus took are recorded as published, so no other occurrence that day
    /// publishes them again; an alert the bus refused stays unconfirmed, and its message's
    /// redelivery (or, after the claim's lease, the next occurrence) publishes it.
    pub async fn batch(&self, records: Vec<SqsMessage>, time_left: Option<Duration>) -> SqsBatchResponse {
        let (response, published) =
            adapters::lambda::batch_published(&records, self.events, time_left, |record| self.record(record)).await;
        for (marker, claimant) in published.iter().filter_map(unmapped_marker) {
            if let Err(err) = self.stats.confirm_daily(&marker, &claimant).await {
                tracing::warn!(marker = %marker.name, error = %err, "published alert not recorded: it may go out again today");
            }
        }
        response
    }

    /// Asks again for the lines of orders held without them (when a platform is wired).
    async fn lines_sweep(&self) -> LinesReport {
        let Some(lines) = self.messages.lines else { return LinesReport::default() };
        let retry = LinesRetry {
            write: self.messages.write,
            lines,
            // After a failed retry, twice the first wait (10 minutes by default).
            retry_after: self.messages.write.rules.lines_retry_after * 2,
        };
        let (events, report) = retry.sweep().await;
        let failed = adapters::lambda::publish(self.events, &events).await;
        tracing::info!(
            due = report.due,
            reserved = report.reserved,
            still_pending = report.still_pending,
            unpublished = failed.len(),
            "lines sweep done"
        );
        report
    }

    async fn record(&self, record: &SqsMessage) -> Result<Vec<DomainEvent>, ()> {
        let id = record.message_id.clone().unwrap_or_default();
        let message: InboundMessage = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(message)) => message,
            _ => return self.dead_letter(record, "body is not an inbound message").await,
        };
        tracing::Span::current()
            .record("source", message.source.as_str())
            .record("shop", message.shop.as_str())
            .record("message_id", message.message_id.as_str());
        match self.messages.handle(&message).await {
            Ok(events) => Ok(events),
            Err(Failure::Permanent(reason)) => {
                tracing::error!(source = %message.source, message_id = %message.message_id, %reason, "message cannot be applied");
                self.dead_letter(record, &reason).await
            }
            Err(Failure::Retry(reason)) if receive_count(record) >= MAX_RECEIVES => {
                tracing::error!(source = %message.source, message_id = %message.message_id, %reason, "giving up after retries");
                self.dead_letter(record, &format!("gave up after {} deliveries: {reason}", receive_count(record))).await
            }
            Err(Failure::Retry(reason)) => {
                tracing::warn!(source = %message.source, message_id = %message.message_id, sqs_message_id = %id, %reason, "will retry");
                Err(())
            }
        }
    }

    /// Moves a message to the dead-letter queue with the reason attached; acknowledges it when
    /// that worked, fails it (so SQS retries) when it did not.
    async fn dead_letter(&self, record: &SqsMessage, reason: &str) -> Result<Vec<DomainEvent>, ()> {
        let message = OutboundMessage {
            id: "0".into(),
            body: record.body.clone().unwrap_or_default(),
            attributes: vec![
                ("reason".into(), reason.chars().take(500).collect()),
                ("sqs_message_id".into(), record.message_id.clone().unwrap_or_default()),
                ("receive_count".into(), receive_count(record).to_string()),
            ],
        };
        match self.dead_letter.send(std::slice::from_ref(&message)).await {
            Ok(failed) if failed.is_empty() => Ok(Vec::new()),
            _ => Err(()),
        }
    }
}
