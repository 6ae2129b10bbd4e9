//! signin-trust-check: scores every "signed" that reaches the `trust` queue (an event-bus rule
//! on `OrderStatusChanged` to `Signed`), re-checks pending signs on its schedule, and answers the
//! ops events `{"evidence": {"order": "channel/shop/order_id"}}` and
//! `{"recheck": {"orders": ["channel/shop/order_id", …]}}`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use domain::events::DomainEvent;
use domain::lifecycle::Lifecycle;
use domain::ports::EventPublisher;
use domain::refundcheck::parse_order_ref;
use domain::trust::TrustRules;
use domain::trustcheck::TrustChecker;

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Tables, stage, shards.
    pub resources: Resources,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `NOTIFY_QUEUE_URL`.
    pub notify_queue_url: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `TRUST_THRESHOLD` (default 92, the health target) over the default scoring rules.
    pub trust: TrustRules,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let threshold: u8 = config::parsed(env, "TRUST_THRESHOLD", TrustRules::default().threshold)?;
        if threshold > 100 {
            return Err(ConfigError::Malformed { var: "TRUST_THRESHOLD", reason: "must be 0–100".into() });
        }
        Ok(Self {
            resources: Resources::from_env(env)?,
            inbox_table: config::required(env, "INBOX_TABLE")?,
            notify_queue_url: config::queue_url(env, "NOTIFY_QUEUE_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            trust: TrustRules { threshold, ..TrustRules::default() },
        })
    }
}

/// The function's dependencies.
pub struct App<'a> {
    /// The domain service.
    pub checker: TrustChecker<'a>,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
}

/// The order an event-bus envelope is about, if it is an `OrderStatusChanged` to `Signed`.
pub fn signed_order(body: &str) -> Result<Option<domain::OrderKey>, String> {
    let envelope: Value = serde_json::from_str(body).map_err(|_| "not an EventBridge event".to_owned())?;
    let detail_type = envelope.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    let detail = envelope.get("detail").cloned().unwrap_or(Value::Null);
    match DomainEvent::from_parts(detail_type, detail) {
        Ok(DomainEvent::OrderStatusChanged { key, to: Lifecycle::Signed, .. }) => Ok(Some(key)),
        Ok(_) => Ok(None),
        Err(err) => Err(format!("unreadable {detail_type}: {err}")),
    }
}

impl App<'_> {
    /// Handles one invocation.
    pub async fn handle(&self, event: Value) -> Value {
        let event = match adapters::lambda::sqs_records(event) {
            Ok(records) => return serde_json::to_value(self.batch(records).await).unwrap_or(Value::Null),
            Err(event) => event,
        };
        if event.get("sweep").and_then(Value::as_str) == Some("rechecks") {
            let (events, report) = self.checker.sweep().await;
            adapters::lambda::publish(self.events, &events).await;
            return serde_json::to_value(report).unwrap_or(Value::Null);
        }
        if let Some(order) = event.pointer("/evidence/order").and_then(Value::as_str) {
            return match parse_order_ref(order) {
                Ok(key) => match self.checker.evidence(&key).await {
                    Ok(Some(evidence)) => serde_json::to_value(evidence).unwrap_or(Value::Null),
                    Ok(None) => serde_json::json!({ "error": "order not found" }),
                    Err(err) => serde_json::json!({ "error": err.to_string() }),
                },
                Err(reason) => serde_json::json!({ "error": reason }),
            };
        }
        if let Some(orders) = event.pointer("/recheck/orders").and_then(Value::as_array) {
            let mut answers = serde_json::Map::new();
            for raw in orders.iter().filter_map(Value::as_str) {
                let answer = match parse_order_ref(raw) {
                    Ok(key) => match self.checker.recheck(&key).await {
                        Ok((events, state)) => {
                            adapters::lambda::publish(self.events, &events).await;
                            serde_json::json!({ "state": state })
                        }
                        Err(err) => serde_json::json!({ "error": err.to_string() }),
                    },
                    Err(reason) => serde_json::json!({ "error": reason }),
                };
                answers.insert(raw.to_owned(), answer);
            }
            return Value::Object(answers);
        }
        serde_json::json!({ "error": "unrecognised event: expected an SQS batch, {\"sweep\":\"rechecks\"}, {\"evidence\":…} or {\"recheck\":…}" })
    }

    async fn batch(&self, records: Vec<SqsMessage>) -> SqsBatchResponse {
        adapters::lambda::batch(&records, self.events, |record| async move {
            match signed_order(record.body.as_deref().unwrap_or_default()) {
                Ok(Some(key)) => self.checker.on_signed(&key).await.map_err(|err| {
                    tracing::warn!(order_id = %key.order_id, error = %err, "trust check failed; will retry");
                }),
                Ok(None) => Ok(Vec::new()),
                Err(reason) => {
                    // Not ours to judge and retrying will not help: the queue's DLQ keeps it.
                    tracing::error!(%reason, "unreadable trust message");
                    Err(())
                }
            }
        })
        .await
    }
}
