//! notify: carries what the hub finds to people and what a customer must be told to the customer.
//!
//! Triggers: EventBridge rules deliver findings (`SlaBreached`, `ChannelSilent`, …) from the
//! orderhub bus and CloudWatch alarm state changes from the default bus, one event per invocation;
//! the `notify` SQS queue delivers customer notices in batches (partial batch failures); its
//! schedule sends `{"flush": "all"}` every 5 minutes. Ops events: `{"ack": {"id": …, "by": …}}`,
//! `{"redrive": {"max": …}}` (its dead-letter queue), `{"resend_notice": {"notice_id": …,
//! "checked_not_delivered": …}}`. The work is [`domain::app::notify::Notify`]'s.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use adapters::lambda::receive_count;
use adapters::notify::robots::{RobotDirectory, RobotEndpoints};
use adapters::notify::sms::{SmsEndpoints, SmsGateway};
use adapters::notify::{ChannelConfig, aliyun_sms, dingtalk, tencent_sms, wecom};
use adapters::trigger::{DecodeError, ErrorAnswer, Invocation, Shape};
use adapters::{BusPublisher, Clients, DynamoContacts, DynamoNotify, SqsDeadLetters, SqsQueue};
use domain::app::apply::Failure;
use domain::app::notify::{
    AckOutcome, FindingOutcome, FlushReport, NoticeOutcome, Notify, NotifyPolicy, NotifyPorts, RedriveReport,
};
use domain::app::sign_check::Notice;
use domain::model::domain_event::DomainEvent;
use domain::ports::clock::Clock;
use domain::ports::notify::{robot_parameter_prefix, routing_parameter, sms_parameter};
use domain::ports::{EventPublisher, OutboundMessage, Queue, Secrets};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables (notify's records live in the inbox table under `N#`), stage.
    pub resources: Resources,
    /// `EVENT_BUS_NAME`: where `NotifyFailed` goes.
    pub event_bus: String,
    /// `NOTIFY_DLQ_URL`: robot messages, findings and notices that could not be delivered, with
    /// their reasons.
    pub dead_letter_url: String,
    /// `NOTIFY_ROUTING_PARAMETER` (default `/orderhub/<stage>/notify/routing`).
    pub routing_parameter: String,
    /// `NOTIFY_ROBOTS_PREFIX` (default `/orderhub/<stage>/notify/robots/`).
    pub robots_prefix: String,
    /// `NOTIFY_SMS_PARAMETER` (default `/orderhub/<stage>/notify/sms`).
    pub sms_parameter: String,
    /// `DINGTALK_BASE_URL`, `WECOM_BASE_URL`, `ALIYUN_SMS_BASE_URL`, `TENCENT_SMS_BASE_URL`: the
    /// providers' origins (their real ones by default; the fake's in tests and the demo).
    pub endpoints: [String; 4],
    /// `NOTIFY_TIMEOUT_MS` (default 5000): per request to a robot or an SMS provider.
    pub timeout_ms: u64,
    /// `NOTIFY_CONFIG_TTL_SECONDS` (default 120): how long routing, robots and the SMS provider
    /// are cached.
    pub config_ttl_s: i64,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let resources = Resources::from_env(env)?;
        let stage = resources.stage.clone();
        let or = |var: &'static str, default: String| {
            env.var(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).unwrap_or(default)
        };
        let config = Self {
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            dead_letter_url: config::queue_url(env, "NOTIFY_DLQ_URL")?,
            routing_parameter: or("NOTIFY_ROUTING_PARAMETER", routing_parameter(&stage)),
            robots_prefix: or("NOTIFY_ROBOTS_PREFIX", robot_parameter_prefix(&stage)),
            sms_parameter: or("NOTIFY_SMS_PARAMETER", sms_parameter(&stage)),
            endpoints: [
                or("DINGTALK_BASE_URL", dingtalk::DINGTALK_BASE_URL.to_owned()),
                or("WECOM_BASE_URL", wecom::WECOM_BASE_URL.to_owned()),
                or("ALIYUN_SMS_BASE_URL", aliyun_sms::ALIYUN_SMS_BASE_URL.to_owned()),
                or("TENCENT_SMS_BASE_URL", tencent_sms::TENCENT_SMS_BASE_URL.to_owned()),
            ],
            timeout_ms: config::parsed(env, "NOTIFY_TIMEOUT_MS", 5_000)?,
            config_ttl_s: config::parsed(env, "NOTIFY_CONFIG_TTL_SECONDS", 120)?,
            resources,
        };
        for (name, value) in
            [("NOTIFY_ROUTING_PARAMETER", &config.routing_parameter), ("NOTIFY_SMS_PARAMETER", &config.sms_parameter)]
        {
            if !value.starts_with('/') {
                return Err(ConfigError::Malformed { var: name, reason: "expected a parameter name".into() });
            }
        }
        Ok(config)
    }

    /// How hard notify tries, from this configuration.
    pub fn policy(&self) -> NotifyPolicy {
        let mut policy = NotifyPolicy::new(self.routing_parameter.clone());
        policy.config_ttl = chrono::Duration::seconds(self.config_ttl_s);
        policy
    }

    fn channel(&self, index: usize, var: &'static str, clock: &Arc<dyn Clock>) -> Result<ChannelConfig, ConfigError> {
        ChannelConfig::new(&self.endpoints[index])
            .map(|c| c.with_timeout(std::time::Duration::from_millis(self.timeout_ms)).with_clock(clock.clone()))
            .map_err(|e| ConfigError::Malformed { var, reason: e.to_string() })
    }
}

/// What notify is invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A batch of the `notify` queue: customer notices.
    Sqs(SqsEvent),
    /// One event from an EventBridge rule: a finding, or a CloudWatch alarm state change.
    Bus(EventBridgeEvent<Value>),
}

/// notify's invocation: its triggers or an ops event.
pub type Trigger = Invocation<Incoming, Ops>;

/// The ops events (its schedule sends the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// `{"flush": "all"}`: send folds whose window ended, release the night's held messages in
    /// the morning, retry the outbox, escalate unacknowledged criticals, retry waiting notices.
    Flush(Flush),
    /// `{"ack": {"id": "ev-…", "by": "值班-王"}}`: a person acknowledges a critical.
    Ack(AckRequest),
    /// `{"redrive": {"max": 100}}`: handle the dead-letter queue's messages again.
    Redrive(RedriveRequest),
    /// `{"resend_notice": {"notice_id": "…", "checked_not_delivered": true}}`.
    ResendNotice(ResendRequest),
}

/// What a flush covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flush {
    /// Everything due.
    All,
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// The id the message showed.
    pub id: String,
    /// Who (kept with the record, not logged).
    #[serde(default)]
    pub by: String,
}

/// A redrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// At most this many messages (default 100).
    #[serde(default = "default_redrive")]
    pub max: u32,
}

fn default_redrive() -> u32 {
    100
}

/// A notice resent by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The notice.
    pub notice_id: String,
    /// For a notice whose outcome is unknown: the provider's receipt shows it was not delivered.
    #[serde(default)]
    pub checked_not_delivered: bool,
}

const EXPECTED: &str = r#"an SQS batch, an EventBridge event, {"flush": "all"}, {"ack": {"id": …}}, {"redrive": {"max": …}} or {"resend_notice": {"notice_id": …}}"#;

/// How notify tells an SQS batch from its ops events.
pub const SQS_SHAPE: Shape = Shape { trigger_marker: Some("Records"), trigger_name: "SQS", expected: EXPECTED };
/// How notify tells an EventBridge event from its ops events.
pub const BUS_SHAPE: Shape =
    Shape { trigger_marker: Some("detail-type"), trigger_name: "EventBridge", expected: EXPECTED };

/// Decodes an invocation: an SQS batch (`Records`), an EventBridge event (`detail-type`), or an
/// ops event.
pub fn decode(event: Value) -> Result<Trigger, DecodeError> {
    if event.get("Records").is_some() {
        return adapters::trigger::decode::<SqsEvent, Ops>(event, SQS_SHAPE).map(|decoded| match decoded {
            Invocation::Trigger(batch) => Invocation::Trigger(Incoming::Sqs(batch)),
            Invocation::Ops(ops) => Invocation::Ops(ops),
        });
    }
    adapters::trigger::decode::<EventBridgeEvent<Value>, Ops>(event, BUS_SHAPE).map(|decoded| match decoded {
        Invocation::Trigger(bus) => Invocation::Trigger(Incoming::Bus(bus)),
        Invocation::Ops(ops) => Invocation::Ops(ops),
    })
}

/// The EventBridge detail-type of a CloudWatch alarm state change
/// (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// A CloudWatch alarm state change as a domain event: `detail.alarmName`, `detail.state.value`,
/// `.reason`, `.timestamp`, `detail.previousState.value`, as the CloudWatch page's examples show
/// them (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).
pub fn alarm_event(detail: &Value) -> Option<DomainEvent> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    Some(DomainEvent::AlarmStateChanged {
        alarm: text(&detail["alarmName"])?,
        state: text(&detail["state"]["value"])?,
        previous: text(&detail["previousState"]["value"]),
        reason: text(&detail["state"]["reason"]).unwrap_or_default(),
        at: text(&detail["state"]["timestamp"]).unwrap_or_default(),
    })
}

/// Asks Lambda to invoke again (an async invocation that errs is retried; the function's
/// on-failure destination keeps it after the last retry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryAnswer {
    /// Why.
    pub retry: String,
}

/// What notify answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// The failed message ids of a batch (partial batch failure).
    Batch(SqsBatchResponse),
    /// What became of a finding.
    Finding(FindingOutcome),
    /// What a flush did.
    Flush(FlushReport),
    /// What an acknowledgement did.
    Ack(AckOutcome),
    /// What a redrive did.
    Redrive(RedriveReport),
    /// What a resend did.
    Notice(NoticeOutcome),
    /// The invocation must be retried (the entry point answers Lambda with an error).
    Retry(RetryAnswer),
    /// An event that could not be decoded, or an ops call that failed.
    Error(ErrorAnswer),
}

/// The function's dependencies.
pub struct Handler<'a> {
    /// The use case.
    pub notify: Notify<'a>,
    /// The event bus (`NotifyFailed`).
    pub events: &'a dyn EventPublisher,
    /// The dead-letter queue (unreadable notices).
    pub dead_letter: &'a dyn Queue,
}

impl Handler<'_> {
    /// Handles one invocation with no deadline (tests).
    pub async fn handle(&self, event: Value) -> Answer {
        self.handle_within(event, None).await
    }

    /// Handles one invocation that may work for `time_left` (a batch stops taking records
    /// before the deadline and reports the rest failed).
    pub async fn handle_within(&self, event: Value, time_left: Option<std::time::Duration>) -> Answer {
        let answer = match decode(event) {
            Ok(Invocation::Trigger(Incoming::Sqs(batch))) => Answer::Batch(self.batch(batch.records, time_left).await),
            Ok(Invocation::Trigger(Incoming::Bus(event))) => self.finding(&event).await,
            Ok(Invocation::Ops(Ops::Flush(Flush::All))) => Answer::Flush(self.notify.flush().await),
            Ok(Invocation::Ops(Ops::Ack(AckRequest { id, by }))) => match self.notify.ack(&id, &by).await {
                Ok(outcome) => Answer::Ack(outcome),
                Err(err) => Answer::Error(ErrorAnswer::new(err)),
            },
            Ok(Invocation::Ops(Ops::Redrive(RedriveRequest { max }))) => {
                Answer::Redrive(self.notify.redrive(max.min(1_000)).await)
            }
            Ok(Invocation::Ops(Ops::ResendNotice(ResendRequest { notice_id, checked_not_delivered }))) => {
                match self.notify.resend_notice(&notice_id, checked_not_delivered).await {
                    Ok(outcome) => Answer::Notice(outcome),
                    Err(err) => Answer::Error(ErrorAnswer::new(err)),
                }
            }
            // An SQS event that does not decode has no message ids to fail one by one: the
            // invocation fails, so Lambda returns the whole batch to the queue (an empty
            // failure list would delete every message unread).
            Err(err @ DecodeError::Trigger { what: "SQS", .. }) => {
                tracing::error!(error = %err, "unreadable SQS event: the whole batch returns to the queue");
                Answer::Retry(RetryAnswer { retry: err.to_string() })
            }
            Err(err) => Answer::Error(ErrorAnswer::new(err)),
        };
        record_alerts(&answer);
        let events = self.notify.take_events();
        let failed = adapters::lambda::publish(self.events, &events).await;
        if !failed.is_empty() {
            tracing::warn!(unpublished = failed.len(), "NotifyFailed events not published");
        }
        answer
    }

    async fn finding(&self, event: &EventBridgeEvent<Value>) -> Answer {
        let outcome = if event.detail_type == ALARM_DETAIL_TYPE && event.source == "aws.cloudwatch" {
            match alarm_event(&event.detail) {
                Some(alarm) => self.notify.on_event(&alarm, None).await,
                None => {
                    let reason = "CloudWatch alarm event without alarmName or state.value";
                    self.notify.on_unreadable(&event.detail_type, &event.detail, reason).await
                }
            }
        } else {
            self.notify.on_bus_event(&event.detail_type, &event.detail).await
        };
        match outcome {
            Ok(outcome) => Answer::Finding(outcome),
            Err(Failure::Retry(reason)) => {
                tracing::warn!(detail_type = %event.detail_type, %reason, "finding will be retried");
                Answer::Retry(RetryAnswer { retry: reason })
            }
            Err(Failure::Permanent(reason)) => {
                match self.notify.on_unreadable(&event.detail_type, &event.detail, &reason).await {
                    Ok(outcome) => Answer::Finding(outcome),
                    Err(err) => Answer::Retry(RetryAnswer { retry: err.to_string() }),
                }
            }
        }
    }

    /// Processes a batch of notices within `time_left`; returns only the failed message ids.
    pub async fn batch(&self, records: Vec<SqsMessage>, time_left: Option<std::time::Duration>) -> SqsBatchResponse {
        adapters::lambda::batch(&records, self.events, time_left, |record| self.notice(record)).await
    }

    async fn notice(&self, record: &SqsMessage) -> Result<Vec<DomainEvent>, ()> {
        let notice: Notice = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(notice)) => notice,
            _ => return self.dead_letter(record, "body is not a customer notice").await,
        };
        match self.notify.on_notice(&notice).await {
            Ok(outcome) => {
                record_notice(&outcome);
                Ok(Vec::new())
            }
            Err(Failure::Permanent(reason)) => {
                tracing::error!(notice_id = %notice.notice_id, %reason, "notice cannot be handled");
                self.dead_letter(record, &reason).await
            }
            Err(Failure::Retry(reason)) => {
                tracing::warn!(notice_id = %notice.notice_id, receives = receive_count(record), %reason, "notice will be retried");
                Err(())
            }
        }
    }

    /// Moves a message to the dead-letter queue with its reason; acknowledges it when that
    /// worked, fails it (so SQS retries) when it did not.
    async fn dead_letter(&self, record: &SqsMessage, reason: &str) -> Result<Vec<DomainEvent>, ()> {
        let message = OutboundMessage {
            id: "0".into(),
            body: record.body.clone().unwrap_or_default(),
            attributes: vec![
                ("kind".into(), "notice".into()),
                ("reason".into(), reason.chars().take(500).collect()),
                ("sqs_message_id".into(), record.message_id.clone().unwrap_or_default()),
            ],
        };
        match self.dead_letter.send(std::slice::from_ref(&message)).await {
            Ok(failed) if failed.is_empty() => Ok(Vec::new()),
            _ => Err(()),
        }
    }
}

/// Counts what an answer says became of alerts (`AlertsSent`, `AlertsFolded`, `AlertsFailed`,
/// by target): a finding's per-robot outcomes, a flush's messages, a resent notice.
pub fn record_alerts(answer: &Answer) {
    use adapters::metrics::{AlertOutcome, AlertTarget, alerts};
    match answer {
        Answer::Finding(FindingOutcome::Routed { robots, .. }) => {
            for outcome in robots.values() {
                match outcome.as_str() {
                    "sent" => alerts(AlertTarget::Robot, AlertOutcome::Sent, 1),
                    "folded" => alerts(AlertTarget::Robot, AlertOutcome::Folded, 1),
                    "dead_lettered" => alerts(AlertTarget::Robot, AlertOutcome::Failed, 1),
                    // held (quiet hours), deferred (outbox): counted when a flush sends them.
                    _ => {}
                }
            }
        }
        Answer::Finding(FindingOutcome::DeadLettered { .. }) => alerts(AlertTarget::Robot, AlertOutcome::Failed, 1),
        Answer::Flush(report) => {
            alerts(AlertTarget::Robot, AlertOutcome::Sent, u64::from(report.outbox_sent + report.fold_messages));
            alerts(AlertTarget::Robot, AlertOutcome::Failed, u64::from(report.dead_lettered));
            alerts(AlertTarget::Sms, AlertOutcome::Sent, u64::from(report.notices_sent));
        }
        Answer::Notice(outcome) => record_notice(outcome),
        _ => {}
    }
}

/// Counts one customer notice's outcome (sent, or refused for good).
pub fn record_notice(outcome: &NoticeOutcome) {
    use adapters::metrics::{AlertOutcome, AlertTarget, alerts};
    match outcome {
        NoticeOutcome::Sent { .. } => alerts(AlertTarget::Sms, AlertOutcome::Sent, 1),
        NoticeOutcome::Failed { .. } => alerts(AlertTarget::Sms, AlertOutcome::Failed, 1),
        _ => {}
    }
}

/// notify's adapters, built once per instance from its configuration.
pub struct Wired<'a> {
    /// Records, folds, counters (inbox table).
    pub store: DynamoNotify,
    /// Customers' contacts (inbox table).
    pub contacts: DynamoContacts,
    /// Robots by name.
    pub robots: RobotDirectory<'a>,
    /// The SMS provider.
    pub sms: SmsGateway<'a>,
    /// The dead-letter queue (write).
    pub dead_letter: SqsQueue,
    /// The dead-letter queue (read back).
    pub dead_letters: SqsDeadLetters,
    /// The event bus.
    pub bus: BusPublisher,
    /// How hard notify tries.
    pub policy: NotifyPolicy,
    secrets: &'a dyn Secrets,
    clock: &'a dyn Clock,
}

impl<'a> Wired<'a> {
    /// Builds the adapters over `clients`, reading parameters through `secrets`; `clock` is the
    /// use case's, `shared_clock` the HTTP clients' (the same clock, shared).
    pub fn new(
        config: &Config,
        clients: &Clients,
        secrets: &'a dyn Secrets,
        clock: &'a dyn Clock,
        shared_clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let ttl = chrono::Duration::seconds(config.config_ttl_s);
        let robots = RobotEndpoints {
            dingtalk: config.channel(0, "DINGTALK_BASE_URL", &shared_clock)?,
            wecom: config.channel(1, "WECOM_BASE_URL", &shared_clock)?,
        };
        let sms = SmsEndpoints {
            aliyun: config.channel(2, "ALIYUN_SMS_BASE_URL", &shared_clock)?,
            tencent: config.channel(3, "TENCENT_SMS_BASE_URL", &shared_clock)?,
        };
        Ok(Self {
            store: DynamoNotify::new(clients.dynamodb.clone(), &config.resources.inbox_table),
            contacts: DynamoContacts::new(clients.dynamodb.clone(), &config.resources.inbox_table),
            robots: RobotDirectory::new(secrets, &config.robots_prefix, robots, ttl, clock),
            sms: SmsGateway::new(secrets, &config.sms_parameter, sms, ttl, clock),
            dead_letter: SqsQueue::new(clients.sqs.clone(), &config.dead_letter_url),
            dead_letters: SqsDeadLetters::new(clients.sqs.clone(), &config.dead_letter_url),
            bus: BusPublisher::new(clients.eventbridge.clone(), &config.event_bus),
            policy: config.policy(),
            secrets,
            clock,
        })
    }

    /// The handler over these adapters.
    pub fn handler(&self) -> Handler<'_> {
        self.handler_with(&self.bus)
    }

    /// The handler over these adapters, publishing through `events` (tests record them).
    pub fn handler_with<'b>(&'b self, events: &'b dyn EventPublisher) -> Handler<'b> {
        let ports = NotifyPorts {
            store: &self.store,
            robots: &self.robots,
            sms: &self.sms,
            contacts: &self.contacts,
            dead_letter: &self.dead_letter,
            dead_letters: &self.dead_letters,
            secrets: self.secrets,
            clock: self.clock,
        };
        Handler { notify: Notify::new(ports, &self.policy), events, dead_letter: &self.dead_letter }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/notify/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_sample_decodes_to_what_it_is() {
        assert!(matches!(decode(sample("sqs-notice.json")), Ok(Invocation::Trigger(Incoming::Sqs(_)))));
        for finding in [
            "finding-sla-breached.json",
            "finding-channel-silent.json",
            "finding-channel-recovered.json",
            "finding-callback-missing.json",
            "finding-token-refresh-failed.json",
            "finding-health-threshold-breached.json",
            "finding-unmapped-status.json",
            "finding-webhook-rejected.json",
            "finding-orders-missing.json",
            "finding-token-expiring.json",
        ] {
            let Ok(Invocation::Trigger(Incoming::Bus(event))) = decode(sample(finding)) else {
                panic!("{finding} is not an EventBridge event")
            };
            let domain = DomainEvent::from_parts(&event.detail_type, event.detail.clone())
                .unwrap_or_else(|e| panic!("{finding}: {e}"));
            assert_eq!(domain.detail_type(), event.detail_type, "{finding}");
            assert_eq!(event.detail["event_id"].as_str(), Some(domain.id().as_str()), "{finding}: event_id is the id");
            assert!(domain::rules::alerting::describe(&domain).is_some(), "{finding} is a finding");
        }
        let Ok(Invocation::Trigger(Incoming::Bus(alarm))) = decode(sample("alarm-state-change.json")) else {
            panic!("alarm sample")
        };
        assert_eq!(alarm.detail_type, ALARM_DETAIL_TYPE);
        assert!(
            matches!(alarm_event(&alarm.detail), Some(DomainEvent::AlarmStateChanged { state, .. }) if state == "ALARM")
        );
        assert_eq!(decode(sample("ops-flush.json")), Ok(Invocation::Ops(Ops::Flush(Flush::All))));
        assert!(matches!(decode(sample("ops-ack.json")), Ok(Invocation::Ops(Ops::Ack(_)))));
        assert!(matches!(
            decode(sample("ops-redrive.json")),
            Ok(Invocation::Ops(Ops::Redrive(RedriveRequest { max: 50 })))
        ));
        assert!(matches!(decode(sample("ops-resend-notice.json")), Ok(Invocation::Ops(Ops::ResendNotice(_)))));
    }

    #[test]
    fn a_wrong_event_is_named() {
        let err = decode(serde_json::json!({"flush": "everything"})).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("expected an SQS batch"), "{err}");
        let err = decode(serde_json::json!({"detail-type": 3})).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("unreadable EventBridge event"), "{err}");
    }

    #[test]
    fn configuration_defaults_to_the_stage_and_the_real_providers() {
        let env: HashMap<String, String> = [
            ("ORDERHUB_STAGE", "prod"),
            ("ORDERS_TABLE", "o"),
            ("STATS_TABLE", "s"),
            ("INBOX_TABLE", "i"),
            ("EVENT_BUS_NAME", "bus"),
            ("NOTIFY_DLQ_URL", "https://sqs.example/dlq"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config::from_env(&env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.routing_parameter, "/orderhub/prod/notify/routing");
        assert_eq!(config.robots_prefix, "/orderhub/prod/notify/robots/");
        assert_eq!(config.endpoints[0], "https://oapi.dingtalk.com");
        let mut missing = env.clone();
        missing.remove("NOTIFY_DLQ_URL");
        assert_eq!(Config::from_env(&missing), Err(ConfigError::Missing("NOTIFY_DLQ_URL")));
    }
}
