//! signin-trust-check: scores every "signed" that reaches the `trust` queue (an event-bus rule
//! on `OrderStatusChanged` to `Signed`), re-checks pending signs on its schedule, and answers the
//! ops events `{"evidence": {"order": "channel/shop/order_id"}}` and
//! `{"recheck": {"orders": ["channel/shop/order_id", …]}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use adapters::trigger::{DecodeError, ErrorAnswer, Invocation, Shape};
use domain::app::dead_letters::{DeadLetterOps, LetterRequest};
use domain::app::sign_check::{Evidence, RecheckReport, SignCheck};
use domain::model::domain_event::DomainEvent;
use domain::model::ids::OrderRef;
use domain::model::lifecycle::Lifecycle;
use domain::ports::EventPublisher;
use domain::rules::sign_trust::TrustRules;

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Tables, stage, shards.
    pub resources: Resources,
    /// `NOTIFY_QUEUE_URL`.
    pub notify_queue_url: String,
    /// `TRUST_QUEUE_URL`: where a redrive sends dead-lettered signs back to.
    pub trust_queue_url: String,
    /// `TRUST_DLQ_URL`: the trust queue's dead-letter queue, read back for ops.
    pub trust_dlq_url: String,
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
            notify_queue_url: config::queue_url(env, "NOTIFY_QUEUE_URL")?,
            trust_queue_url: config::queue_url(env, "TRUST_QUEUE_URL")?,
            trust_dlq_url: config::queue_url(env, "TRUST_DLQ_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            trust: TrustRules { threshold, ..TrustRules::default() },
        })
    }
}

/// What signin-trust-check is invoked with: an SQS batch of the `trust` queue, or an ops event.
pub type Trigger = Invocation<SqsEvent, Ops>;

/// The ops events (its schedule sends the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// `{"sweep": "rechecks"}`: look again at the pending signs that are due.
    Sweep(Sweep),
    /// `{"evidence": {"order": "channel/shop/order_id"}}`: the evidence page of one sign.
    Evidence(OneOrder),
    /// `{"recheck": {"orders": […]}}`: re-check these signs now.
    Recheck(Orders),
    /// `{"dead_letters": {"inspect": {"max": 20}}}`: the signs that failed every check, with
    /// their receives and orders; `{"dead_letters": {"redrive": {"max": 100}}}`: back to the
    /// trust queue once the cause is fixed.
    DeadLetters(LetterRequest),
}

/// What a sweep looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// The trust re-check due markers.
    Rechecks,
}

/// One order named `channel/shop/order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneOrder {
    /// The order.
    pub order: OrderRef,
}

/// A list of orders named `channel/shop/order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orders {
    /// The orders.
    pub orders: Vec<OrderRef>,
}

/// How signin-trust-check tells its trigger from its ops events.
pub const SHAPE: Shape = Shape {
    trigger_marker: Some("Records"),
    trigger_name: "SQS",
    expected: r#"an SQS batch, {"sweep": "rechecks"}, {"evidence": {"order": …}}, {"recheck": {"orders": […]}} or {"dead_letters": {"inspect"|"redrive": {"max": n}}}"#,
};

/// One order's re-check: its new state, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RecheckAnswer {
    /// The state after the re-check.
    State {
        /// `None` when the order was not pending.
        state: Option<Lifecycle>,
    },
    /// Why it could not be re-checked.
    Error(ErrorAnswer),
}

/// What signin-trust-check answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// The failed message ids of a batch (partial batch failure).
    Batch(SqsBatchResponse),
    /// What a re-check sweep did.
    Sweep(RecheckReport),
    /// The evidence page.
    Evidence(Box<Evidence>),
    /// Per order, its re-check.
    Recheck(BTreeMap<String, RecheckAnswer>),
    /// What an inspection or a redrive of the dead-letter queue did.
    DeadLetters(Value),
    /// An event that could not be decoded, or an order not found.
    Error(ErrorAnswer),
}

/// The function's dependencies.
pub struct Handler<'a> {
    /// The use case.
    pub checker: SignCheck<'a>,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// The trust queue's dead-letter queue read back, and the trust queue.
    pub letters: DeadLetterOps<'a>,
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

impl Handler<'_> {
    /// Handles one invocation with no deadline (tests); an unreadable SQS event is answered
    /// with an error.
    pub async fn handle(&self, event: Value) -> Answer {
        self.handle_within(event, None).await.unwrap_or_else(|err| Answer::Error(ErrorAnswer::new(err)))
    }

    /// Handles one invocation that may work for `time_left`. An SQS event that does not decode
    /// is an `Err`: the invocation fails and Lambda returns every message of the batch to the
    /// queue.
    pub async fn handle_within(&self, event: Value, time_left: Option<Duration>) -> Result<Answer, DecodeError> {
        Ok(match adapters::trigger::decode::<SqsEvent, Ops>(event, SHAPE) {
            Ok(Invocation::Trigger(batch)) => Answer::Batch(self.batch(batch.records, time_left).await),
            Ok(Invocation::Ops(Ops::Sweep(Sweep::Rechecks))) => {
                let (events, report) = self.checker.sweep().await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Sweep(report)
            }
            Ok(Invocation::Ops(Ops::Evidence(OneOrder { order }))) => match self.checker.evidence(&order.0).await {
                Ok(Some(evidence)) => Answer::Evidence(Box::new(evidence)),
                Ok(None) => Answer::Error(ErrorAnswer::new("order not found")),
                Err(err) => Answer::Error(ErrorAnswer::new(err)),
            },
            Ok(Invocation::Ops(Ops::DeadLetters(request))) => Answer::DeadLetters(self.letters.run(request).await),
            Ok(Invocation::Ops(Ops::Recheck(Orders { orders }))) => {
                let mut answers = BTreeMap::new();
                for order in orders {
                    let answer = match self.checker.recheck(&order.0).await {
                        Ok((events, state)) => {
                            adapters::lambda::publish(self.events, &events).await;
                            RecheckAnswer::State { state }
                        }
                        Err(err) => RecheckAnswer::Error(ErrorAnswer::new(err)),
                    };
                    answers.insert(order.0.to_string(), answer);
                }
                Answer::Recheck(answers)
            }
            Err(err @ DecodeError::Trigger { .. }) => {
                tracing::error!(error = %err, "unreadable SQS event: the whole batch returns to the queue");
                return Err(err);
            }
            Err(err) => Answer::Error(ErrorAnswer::new(err)),
        })
    }

    async fn batch(&self, records: Vec<SqsMessage>, time_left: Option<Duration>) -> SqsBatchResponse {
        adapters::lambda::batch(&records, self.events, time_left, |record| async move {
            match signed_order(record.body.as_deref().unwrap_or_default()) {
                Ok(Some(key)) => {
                    tracing::Span::current()
                        .record("source", key.source.as_str())
                        .record("shop", key.shop.as_str())
                        .record("order_id", key.order_id.as_str());
                    self.checker.on_signed(&key).await.map_err(|err| {
                        tracing::warn!(order_id = %key.order_id, error = %err, "trust check failed; will retry");
                    })
                }
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
