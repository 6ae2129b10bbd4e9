//! notify's use case: what the hub finds reaches a person, and what a customer must be told
//! reaches the customer, once.
//!
//! **Findings** (domain events from the bus, CloudWatch alarm changes): deduplicated on their
//! stable event id (a record claimed with a lease, so a crash mid-way is redone, not lost), routed
//! by the routing table ([`crate::rules::alerting`]) to group robots, folded per robot, kind and
//! window: the first finding of a window goes out at once, the rest become one message with the
//! count and the first few when the window ends ([`Notify::flush`], every 5 minutes). In quiet
//! hours non-criticals are held in a fold that closes in the morning. Each robot has a budget of
//! 20 messages in any sliding minute, kept in the store so every instance shares it. A robot that
//! fails or rate-limits is retried with backoff from the outbox; what still fails, or is refused
//! for good (a bad key, a removed robot), goes to the dead-letter queue with its reason. One
//! robot's trouble holds up no other robot: every message is its own record. A critical nobody
//! acknowledges ([`Notify::ack`]) within the configured time (2 h) is escalated to the next group.
//!
//! **Customer notices** (the `notify` queue): at most one SMS per notice id. The notice's record
//! moves `pending → attempting` with a conditional write *before* the provider is called, and
//! only a definite answer moves it on: `sent`, `retry` (the provider refused for rate, or the
//! connection never opened: certainly not sent), `failed` (refused for good). An answer that
//! leaves it open whether the SMS went (a timeout after sending, a 5xx, a crash mid-call) moves it
//! to `unknown`, which nothing resends on its own: a person checks the provider's receipt (the
//! notice id travels as Aliyun `OutId` / Tencent `SessionContext`) and resends with
//! [`Notify::resend_notice`]. With no provider, template or contact the notice is `parked` with
//! its reason and counted, and tried again later — never dropped. Phone numbers exist only as
//! [`crate::model::alert::MobileNumber`] (masked when printed) between the contacts port and the
//! SMS port; records and logs never hold one.
//!
//! **Bad input** — an event type notify does not know, a malformed robot URL or key, a provider
//! refusing, a malformed routing table — gives one clear log line and one `NotifyFailed` event
//! per cause and window (a once-record), keeps what it could not deliver (dead-letter queue,
//! deferred record), and never retries in a storm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::app::apply::Failure;
use crate::app::sign_check::Notice;
use crate::model::alert::{AlertMessage, RobotOutcome, Severity, SmsNotice, SmsOutcome};
use crate::model::domain_event::DomainEvent;
use crate::model::health::Scope;
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::notify::{
    Contacts, DeadLetter, DeadLetters, FoldOpen, NotifyStore, Record, RecordKind, RobotLookupError, Robots,
    SmsNotReady, SmsProvider, Tally,
};
use crate::ports::{OutboundMessage, Queue, Secrets};
use crate::rules::alerting::{
    self, Finding, FoldSummary, RateBudget, RoutingConfig, SendLog, Unacknowledged, Window, describe, fold_window,
    render_escalation, render_fold, render_one, retry_delay, short_id,
};

/// Counter names (per Beijing day) notify keeps in its store.
pub mod counters {
    /// Notices sent.
    pub const NOTICES_SENT: &str = "notices_sent";
    /// Notices parked: no provider configured.
    pub const NOTICES_NO_PROVIDER: &str = "notices_parked_no_provider";
    /// Notices parked: no template configured for their template name.
    pub const NOTICES_NO_TEMPLATE: &str = "notices_parked_no_template";
    /// Notices parked: no contact for the customer, or no customer on the notice.
    pub const NOTICES_NO_CONTACT: &str = "notices_parked_no_contact";
    /// Notices whose send may or may not have happened (waiting for a person).
    pub const NOTICES_UNKNOWN: &str = "notices_unknown";
    /// Notices the provider refused for good.
    pub const NOTICES_FAILED: &str = "notices_failed";
}

/// notify's ports.
#[derive(Clone, Copy)]
pub struct NotifyPorts<'a> {
    /// Dedupe, fold, outbox, escalation and notice records.
    pub store: &'a dyn NotifyStore,
    /// The group robots, by name.
    pub robots: &'a dyn Robots,
    /// The SMS provider.
    pub sms: &'a dyn SmsProvider,
    /// Customers' contacts.
    pub contacts: &'a dyn Contacts,
    /// The dead-letter queue (write).
    pub dead_letter: &'a dyn Queue,
    /// The dead-letter queue (read back, for redrive).
    pub dead_letters: &'a dyn DeadLetters,
    /// The parameter store (the routing table).
    pub secrets: &'a dyn Secrets,
    /// Now.
    pub clock: &'a dyn Clock,
}

/// How hard notify tries, and where its configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPolicy {
    /// The routing table's parameter name.
    pub routing_parameter: String,
    /// How long the routing table is cached.
    pub config_ttl: Duration,
    /// Sends of one message within one invocation when the robot is unavailable.
    pub inline_attempts: u32,
    /// The first pause between those (doubling).
    pub inline_backoff: std::time::Duration,
    /// The longest wait for a rate-budget slot within one invocation; longer waits go to the
    /// outbox.
    pub inline_wait: Duration,
    /// Attempts of a robot message (from the outbox) or a notice before the dead-letter queue.
    pub max_attempts: u32,
    /// How long a claimed finding or an attempting notice is someone else's.
    pub lease: Duration,
    /// How long records are kept.
    pub keep: Duration,
    /// Records of each kind looked at per flush.
    pub flush_limit: usize,
    /// Folds are closed this long after their window ends (stragglers still count in).
    pub fold_grace: Duration,
    /// One failure event per cause within this window.
    pub failure_window_minutes: i64,
    /// When a parked notice is tried again.
    pub park_retry: Duration,
}

impl NotifyPolicy {
    /// The defaults, with the routing table at `routing_parameter`.
    pub fn new(routing_parameter: impl Into<String>) -> Self {
        Self {
            routing_parameter: routing_parameter.into(),
            config_ttl: Duration::minutes(2),
            inline_attempts: 3,
            inline_backoff: std::time::Duration::from_millis(200),
            inline_wait: Duration::seconds(3),
            max_attempts: 6,
            lease: Duration::minutes(5),
            keep: Duration::days(14),
            flush_limit: 200,
            fold_grace: Duration::seconds(30),
            failure_window_minutes: 10,
            park_retry: Duration::minutes(30),
        }
    }
}

/// What became of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum FindingOutcome {
    /// Routed: what became of it per robot.
    Routed {
        /// The event id.
        event_id: String,
        /// Robot → `sent`, `folded`, `held`, `deferred`, `dead_lettered`.
        robots: BTreeMap<String, String>,
    },
    /// Seen before.
    Duplicate {
        /// The event id.
        event_id: String,
    },
    /// Being handled by another invocation (if that one dies, the next flush routes it once its
    /// lease ends).
    InFlight {
        /// The event id.
        event_id: String,
    },
    /// No route matches it (recorded, nobody told).
    Unrouted {
        /// The event id.
        event_id: String,
    },
    /// Kept to be routed later (the routing table is missing or malformed).
    Deferred {
        /// The event id.
        event_id: String,
        /// Why.
        reason: String,
    },
    /// Not something notify can route: put on the dead-letter queue with the reason.
    DeadLettered {
        /// Why.
        reason: String,
    },
}

/// What became of a robot message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Sent,
    Held,
    Deferred,
    DeadLettered,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Held => "held",
            Delivery::Deferred => "deferred",
            Delivery::DeadLettered => "dead_lettered",
        }
    }
}

/// What a flush did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlushReport {
    /// Deferred findings routed now.
    pub findings_routed: u32,
    /// Folds closed.
    pub folds_closed: u32,
    /// Folded messages sent (or queued, if the robot was busy).
    pub fold_messages: u32,
    /// Outbox messages sent.
    pub outbox_sent: u32,
    /// Outbox messages deferred again (rate budget, robot failing, quiet hours).
    pub outbox_deferred: u32,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u32,
    /// Criticals escalated to the next group.
    pub escalated: u32,
    /// Notices sent.
    pub notices_sent: u32,
    /// Notices still parked or waiting.
    pub notices_waiting: u32,
    /// Notices whose interrupted attempt became `unknown`.
    pub notices_unknown: u32,
    /// Store errors (left for the next run).
    pub errors: u32,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AckOutcome {
    /// Acknowledged now: no escalation.
    Acknowledged {
        /// The id.
        id: String,
    },
    /// Acknowledged before.
    AlreadyAcknowledged {
        /// The id.
        id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// No critical with this id is waiting.
    Unknown {
        /// The id.
        id: String,
    },
}

/// Where a customer notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// Received, not attempted yet.
    Pending,
    /// A send is under way (or was interrupted: after the lease it becomes `unknown`).
    Attempting,
    /// Sent (the provider's receipt kept).
    Sent,
    /// Certainly not sent; due for another attempt.
    Retry,
    /// Waiting for configuration (provider, template, contact): tried again later.
    Parked,
    /// Refused for good (dead-lettered with the code).
    Failed,
    /// May have been sent: never resent without a person.
    Unknown,
}

/// A notice's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NoticeRecord {
    state: NoticeState,
    notice: Notice,
    attempts: u32,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    receipt: Option<String>,
    #[serde(default)]
    attempt_started: Option<DateTime<Utc>>,
}

/// What became of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum NoticeOutcome {
    /// Sent now.
    Sent {
        /// The notice id.
        notice_id: String,
    },
    /// Sent before, or already decided (failed, unknown): nothing sent now.
    AlreadyHandled {
        /// The notice id.
        notice_id: String,
        /// Its state.
        state: NoticeState,
    },
    /// Kept, waiting: parked (configuration) or scheduled for another attempt.
    Waiting {
        /// The notice id.
        notice_id: String,
        /// Its state.
        state: NoticeState,
        /// Why.
        reason: String,
    },
    /// Refused for good: dead-lettered with the code.
    Failed {
        /// The notice id.
        notice_id: String,
        /// Why.
        reason: String,
    },
    /// May have been sent: not resent; a person checks the receipt.
    Unknown {
        /// The notice id.
        notice_id: String,
        /// Why.
        reason: String,
    },
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RedriveReport {
    /// Messages read from the dead-letter queue.
    pub read: u32,
    /// Handled again (sent, queued, or dead-lettered anew with a fresh reason) and removed.
    pub redriven: u32,
    /// Not recognised: left in the queue.
    pub skipped: u32,
    /// Failed to handle (left in the queue).
    pub errors: u32,
}

/// A finding's dedupe record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EventRecord {
    state: EventState,
    #[serde(default)]
    lease_until: Option<DateTime<Utc>>,
    /// Kept while deferred, to route it later.
    #[serde(default)]
    detail_type: Option<String>,
    #[serde(default)]
    detail: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventState {
    Claimed,
    Done,
    Deferred,
}

/// A robot message in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OutboxRecord {
    robot: String,
    message: AlertMessage,
    attempts: u32,
    #[serde(default)]
    last_reason: Option<String>,
    #[serde(default)]
    done: bool,
}

/// A critical waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EscalationRecord {
    ack_id: String,
    title: String,
    /// The group that got it first.
    robot: String,
    /// The group that has it now.
    current: String,
    level: u32,
    created_at: DateTime<Utc>,
    #[serde(default)]
    acked_at: Option<DateTime<Utc>>,
    #[serde(default)]
    acked_by: Option<String>,
}

enum Claim {
    Mine(Record),
    Duplicate,
    InFlight,
}

struct CachedRouting {
    fetched_at: DateTime<Utc>,
    value: Result<Arc<RoutingConfig>, String>,
}

/// notify's use case over its ports.
pub struct Notify<'a> {
    ports: NotifyPorts<'a>,
    policy: &'a NotifyPolicy,
    routing: RwLock<Option<CachedRouting>>,
    events: Mutex<Vec<DomainEvent>>,
    /// Robots that failed or rate-limited, and until when this instance leaves them alone: the
    /// messages meanwhile go straight to the outbox, so one bad robot costs one timeout, not one
    /// per message, and holds up nothing else.
    tripped: Mutex<HashMap<String, DateTime<Utc>>>,
}

fn decode<T: DeserializeOwned>(record: &Record) -> Result<T, Failure> {
    serde_json::from_value(record.data.clone())
        .map_err(|e| Failure::Permanent(format!("{} record {} is corrupt: {e}", record.kind.as_str(), record.id)))
}

fn encode<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Event ids as `DomainEvent::id` makes them (`ev-` and 32 hex); anything else is recomputed.
fn valid_event_id(id: &str) -> bool {
    id.len() == 35 && id.starts_with("ev-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn channel_name(source: crate::model::ids::Source) -> String {
    let label = Scope::Channel(source).label();
    label.split(' ').next().unwrap_or_default().to_owned()
}

impl<'a> Notify<'a> {
    /// The use case over `ports`, trying as hard as `policy` says.
    pub fn new(ports: NotifyPorts<'a>, policy: &'a NotifyPolicy) -> Self {
        Self {
            ports,
            policy,
            routing: RwLock::new(None),
            events: Mutex::new(Vec::new()),
            tripped: Mutex::new(HashMap::new()),
        }
    }

    /// The failure events raised since the last call, to publish.
    pub fn take_events(&self) -> Vec<DomainEvent> {
        self.events.lock().map(|mut events| std::mem::take(&mut *events)).unwrap_or_default()
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// Until when `robot` is left alone, if it is.
    fn tripped_until(&self, robot: &str) -> Option<DateTime<Utc>> {
        let now = self.now();
        self.tripped.lock().ok().and_then(|t| t.get(robot).copied()).filter(|until| *until > now)
    }

    fn trip(&self, robot: &str, until: DateTime<Utc>) {
        if let Ok(mut tripped) = self.tripped.lock() {
            tripped.insert(robot.to_owned(), until);
        }
    }

    // ------------------------------------------------------------------ configuration

    /// The routing table, from the cache while fresh. `Err` carries why it cannot be used.
    async fn routing(&self) -> Result<Arc<RoutingConfig>, RoutingProblem> {
        let now = self.now();
        if let Some(cached) = self.routing.read().await.as_ref()
            && now - cached.fetched_at < self.policy.config_ttl
        {
            return cached.value.clone().map_err(RoutingProblem::Invalid);
        }
        let value = match self.ports.secrets.get(&self.policy.routing_parameter).await {
            Ok(Some(text)) => RoutingConfig::from_json(&text).map(Arc::new).map_err(|e| e.to_string()),
            Ok(None) => Err("no routing table configured".to_owned()),
            // Not cached: the next call asks again.
            Err(err) => return Err(RoutingProblem::Unavailable(err.to_string())),
        };
        *self.routing.write().await = Some(CachedRouting { fetched_at: now, value: value.clone() });
        value.map_err(RoutingProblem::Invalid)
    }

    /// The routing table, or (for the parts of a flush that need only its policy) the defaults.
    async fn routing_or_default(&self) -> Arc<RoutingConfig> {
        match self.routing().await {
            Ok(config) => config,
            Err(_) => Arc::new(empty_routing()),
        }
    }

    // ------------------------------------------------------------------ failures

    /// Logs a failure once per cause and window, and raises its `NotifyFailed` event then.
    async fn failed(&self, stage: &str, target: &str, code: &str, reason: &str) {
        let now = self.now();
        let (start, end) = fold_window(now, self.policy.failure_window_minutes);
        let id = short_id("once", &[stage, target, code, &start.to_rfc3339()]);
        let first = self
            .ports
            .store
            .put(&Record::new(RecordKind::Once, id, json!({}), end + Duration::days(1)))
            .await
            // When the store cannot say, report: a duplicate event is better than silence.
            .unwrap_or(true);
        if first {
            tracing::error!(stage, target, code, reason, "notify could not deliver (reported once per 10 minutes)");
            let event = DomainEvent::NotifyFailed {
                stage: stage.to_owned(),
                target: target.to_owned(),
                code: code.to_owned(),
                reason: alerting::scrub(reason),
                at: start,
            };
            if let Ok(mut events) = self.events.lock() {
                events.push(event);
            }
        } else {
            tracing::debug!(stage, target, code, "notify failure already reported in this window");
        }
    }

    /// Puts a message on the dead-letter queue with its reason. `false` if that failed.
    async fn dead_letter(&self, kind: &str, body: Value, reason: &str, extra: &[(&str, &str)]) -> bool {
        let mut attributes = vec![("kind".to_owned(), kind.to_owned()), ("reason".to_owned(), alerting::scrub(reason))];
        attributes.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let message = OutboundMessage { id: "0".into(), body: body.to_string(), attributes };
        match self.ports.dead_letter.send(std::slice::from_ref(&message)).await {
            Ok(failed) if failed.is_empty() => true,
            Ok(_) => false,
            Err(err) => {
                tracing::warn!(error = %err, kind, "dead-letter queue unavailable");
                false
            }
        }
    }

    // ------------------------------------------------------------------ findings

    /// A bus event that is not a finding notify can read: dead-lettered with the reason, one
    /// log line and one `NotifyFailed` per event type and window. No retry.
    pub async fn on_unreadable(
        &self,
        detail_type: &str,
        detail: &Value,
        reason: &str,
    ) -> Result<FindingOutcome, Failure> {
        let kind = alerting::scrub(detail_type);
        let body = json!({"detail-type": detail_type, "detail": detail});
        if !self.dead_letter("finding", body, reason, &[("detail_type", &kind)]).await {
            return Err(Failure::Retry("dead-letter queue unavailable".into()));
        }
        self.failed("route", &kind, "unknown_event", reason).await;
        Ok(FindingOutcome::DeadLettered { reason: reason.to_owned() })
    }

    /// One finding from the bus (its detail-type and detail as received).
    pub async fn on_bus_event(&self, detail_type: &str, detail: &Value) -> Result<FindingOutcome, Failure> {
        let event = match DomainEvent::from_parts(detail_type, detail.clone()) {
            Ok(event) => event,
            Err(err) => {
                let reason = format!("not a domain event notify knows: {}", alerting::scrub(&err.to_string()));
                return self.on_unreadable(detail_type, detail, &reason).await;
            }
        };
        let id = detail.get("event_id").and_then(Value::as_str).filter(|id| valid_event_id(id));
        self.on_event(&event, id).await
    }

    /// One finding, deduplicated on `event_id` (recomputed from the event when absent).
    pub async fn on_event(&self, event: &DomainEvent, event_id: Option<&str>) -> Result<FindingOutcome, Failure> {
        let detail_type = event.detail_type();
        let Some(finding) = describe(event) else {
            let reason = format!("{detail_type} is not a finding notify routes");
            return self.on_unreadable(detail_type, &event.detail(), &reason).await;
        };
        let event_id = event_id.map_or_else(|| event.id(), str::to_owned);
        let record = match self.claim(&event_id, detail_type, &event.detail()).await? {
            Claim::Mine(record) => record,
            Claim::Duplicate => return Ok(FindingOutcome::Duplicate { event_id }),
            Claim::InFlight => return Ok(FindingOutcome::InFlight { event_id }),
        };
        self.route_claimed(record, event, &finding, &event_id).await
    }

    /// Claims a finding: `Mine` if new (or deferred, or claimed by someone whose lease ran out).
    /// The claim keeps the event and is due when its lease ends, so a flush routes a finding
    /// whose invocation died mid-way.
    async fn claim(&self, event_id: &str, detail_type: &str, detail: &Value) -> Result<Claim, Failure> {
        let now = self.now();
        let claimed = |record: &mut Record| {
            record.data = encode(&EventRecord {
                state: EventState::Claimed,
                lease_until: Some(now + self.policy.lease),
                detail_type: Some(detail_type.to_owned()),
                detail: Some(detail.clone()),
                reason: None,
            });
            record.due = Some(now + self.policy.lease);
        };
        // A new finding (the common case) costs one conditional put; only a seen one is read.
        let mut fresh = Record::new(RecordKind::Event, event_id, Value::Null, now + self.policy.keep);
        claimed(&mut fresh);
        if self.ports.store.put(&fresh).await? {
            fresh.version += 1;
            return Ok(Claim::Mine(fresh));
        }
        for _ in 0..3 {
            let existing = self.ports.store.get(RecordKind::Event, event_id).await?;
            let mut record = match existing {
                None => Record::new(RecordKind::Event, event_id, Value::Null, now + self.policy.keep),
                Some(record) => {
                    let state: EventRecord = decode(&record)?;
                    match state.state {
                        EventState::Done => return Ok(Claim::Duplicate),
                        EventState::Claimed if state.lease_until.is_some_and(|l| l > now) => {
                            return Ok(Claim::InFlight);
                        }
                        EventState::Claimed | EventState::Deferred => record,
                    }
                }
            };
            claimed(&mut record);
            if self.ports.store.put(&record).await? {
                record.version += 1;
                return Ok(Claim::Mine(record));
            }
        }
        Ok(Claim::InFlight)
    }

    async fn finish(&self, mut record: Record, state: EventRecord, due: Option<DateTime<Utc>>) -> Result<(), Failure> {
        record.data = encode(&state);
        record.due = due;
        if !self.ports.store.put(&record).await? {
            tracing::warn!(event_id = %record.id, "finding record moved meanwhile");
        }
        Ok(())
    }

    async fn route_claimed(
        &self,
        record: Record,
        event: &DomainEvent,
        finding: &Finding,
        event_id: &str,
    ) -> Result<FindingOutcome, Failure> {
        let config = match self.routing().await {
            Ok(config) => config,
            Err(problem) => {
                let (reason, due) = match &problem {
                    RoutingProblem::Unavailable(reason) => (reason.clone(), self.now() + Duration::minutes(1)),
                    RoutingProblem::Invalid(reason) => {
                        self.failed("config", "routing", "routing_invalid", reason).await;
                        (reason.clone(), self.now() + Duration::minutes(5))
                    }
                };
                let state = EventRecord {
                    state: EventState::Deferred,
                    lease_until: None,
                    detail_type: Some(event.detail_type().to_owned()),
                    detail: Some(event.detail()),
                    reason: Some(reason.clone()),
                };
                self.finish(record, state, Some(due)).await?;
                tracing::warn!(event_id, kind = finding.kind, %reason, "finding kept for later: routing table unusable");
                return Ok(FindingOutcome::Deferred { event_id: event_id.to_owned(), reason });
            }
        };
        let robots = match self.route(&config, finding, event_id).await {
            Ok(robots) => robots,
            Err(err) => {
                // Kept: the next flush routes it again (a robot that got it already may count it
                // twice in a fold, never lose it).
                let reason = err.to_string();
                let state = EventRecord {
                    state: EventState::Deferred,
                    lease_until: None,
                    detail_type: Some(event.detail_type().to_owned()),
                    detail: Some(event.detail()),
                    reason: Some(reason.clone()),
                };
                self.finish(record, state, Some(self.now() + Duration::minutes(1))).await?;
                tracing::warn!(event_id, kind = finding.kind, %reason, "finding kept for the next flush");
                return Ok(FindingOutcome::Deferred { event_id: event_id.to_owned(), reason });
            }
        };
        let state =
            EventRecord { state: EventState::Done, lease_until: None, detail_type: None, detail: None, reason: None };
        self.finish(record, state, None).await?;
        if robots.is_empty() {
            tracing::info!(event_id, kind = finding.kind, "no route matches this finding");
            return Ok(FindingOutcome::Unrouted { event_id: event_id.to_owned() });
        }
        Ok(FindingOutcome::Routed { event_id: event_id.to_owned(), robots })
    }

    /// Routes a finding: per robot, counts it into its fold and sends it at once when it opens a
    /// window that is not held.
    async fn route(
        &self,
        config: &RoutingConfig,
        finding: &Finding,
        event_id: &str,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let now = self.now();
        let severity = config.severity(finding);
        let robots = config.robots_for(finding, severity);
        let outcomes = futures::future::join_all(robots.iter().map(|robot| async move {
            let window = config.window(severity, now);
            let fold = FoldOpen {
                id: short_id("f", &[robot, &finding.fold_key(severity), &window.start.to_rfc3339()]),
                robot: robot.clone(),
                kind: finding.kind.to_owned(),
                severity,
                start: window.start,
                end: window.end,
                held: window.held,
                expires_at: window.end + self.policy.keep,
            };
            let outcome = match self.ports.store.tally(&fold, &finding.line, config.fold_show).await? {
                Tally::Counted(1) if !window.held => {
                    let ack = (severity == Severity::Critical).then_some(event_id);
                    self.produce(config, robot, render_one(finding, severity, ack, now)).await?.as_str()
                }
                Tally::Counted(_) if window.held => "held",
                Tally::Counted(_) => "folded",
                // Its window's message already went out: this straggler goes on its own.
                Tally::Closed => {
                    let ack = (severity == Severity::Critical).then_some(event_id);
                    self.produce(config, robot, render_one(finding, severity, ack, now)).await?.as_str()
                }
            };
            Ok::<_, Failure>((robot.clone(), outcome.to_owned()))
        }))
        .await;
        outcomes.into_iter().collect()
    }

    /// A new message for `robot`: a critical's escalation record first, then the delivery.
    async fn produce(&self, config: &RoutingConfig, robot: &str, message: AlertMessage) -> Result<Delivery, Failure> {
        if message.severity == Severity::Critical
            && let Some(ack_id) = &message.ack_id
        {
            let now = self.now();
            let escalation = EscalationRecord {
                ack_id: ack_id.clone(),
                title: message.title.clone(),
                robot: robot.to_owned(),
                current: robot.to_owned(),
                level: 0,
                created_at: now,
                acked_at: None,
                acked_by: None,
            };
            let mut record =
                Record::new(RecordKind::Escalation, ack_id.clone(), encode(&escalation), now + self.policy.keep);
            record.due = Some(now + config.escalate_after());
            // Already there: the same critical produced again (a redelivery); keep the first.
            self.ports.store.put(&record).await?;
        }
        self.deliver(config, robot, message, 0, None).await
    }

    /// Sends one message to one robot now, or keeps it (outbox, dead-letter queue) with why.
    async fn deliver(
        &self,
        config: &RoutingConfig,
        robot_name: &str,
        message: AlertMessage,
        attempts: u32,
        outbox: Option<Record>,
    ) -> Result<Delivery, Failure> {
        let now = self.now();
        if let Some(morning) = config.hold_until(message.severity, now) {
            self.to_outbox(robot_name, message, attempts, None, morning, outbox).await?;
            return Ok(Delivery::Held);
        }
        if let Some(until) = self.tripped_until(robot_name) {
            self.to_outbox(robot_name, message, attempts, None, until, outbox).await?;
            return Ok(Delivery::Deferred);
        }
        let robot = match self.ports.robots.robot(robot_name).await {
            Ok(robot) => robot,
            Err(RobotLookupError::Unavailable(reason)) => {
                self.to_outbox(robot_name, message, attempts, Some(reason), now + Duration::minutes(1), outbox).await?;
                return Ok(Delivery::Deferred);
            }
            Err(err @ (RobotLookupError::NotConfigured | RobotLookupError::Malformed(_))) => {
                let code = if matches!(err, RobotLookupError::NotConfigured) {
                    "robot_not_configured"
                } else {
                    "malformed_robot"
                };
                return self.give_up(robot_name, message, attempts, code, &err.to_string(), outbox).await;
            }
        };
        let mut pause = self.policy.inline_backoff;
        let mut tries = 0;
        loop {
            if let Some(until) = self.take_slot(config, robot_name).await? {
                self.to_outbox(robot_name, message, attempts, None, until, outbox).await?;
                return Ok(Delivery::Deferred);
            }
            tries += 1;
            match robot.send(&message).await {
                RobotOutcome::Sent => {
                    tracing::info!(robot = robot_name, kind = %message.kind, severity = message.severity.as_str(), "robot message sent");
                    if let Some(mut record) = outbox {
                        record.data = encode(&OutboxRecord {
                            robot: robot_name.to_owned(),
                            message,
                            attempts: attempts + 1,
                            last_reason: None,
                            done: true,
                        });
                        record.due = None;
                        record.expires_at = now + Duration::days(1);
                        self.ports.store.put(&record).await?;
                    }
                    return Ok(Delivery::Sent);
                }
                RobotOutcome::Unavailable(reason) if tries < self.policy.inline_attempts => {
                    tracing::debug!(robot = robot_name, %reason, tries, "robot unavailable; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                RobotOutcome::Unavailable(reason) => {
                    self.trip(robot_name, now + Duration::minutes(1));
                    return self.retry_later(robot_name, message, attempts + 1, &reason, None, outbox).await;
                }
                RobotOutcome::RateLimited { retry_after } => {
                    self.trip(robot_name, now + retry_after);
                    let reason = format!("rate limited by the robot for {}s", retry_after.num_seconds());
                    return self
                        .retry_later(robot_name, message, attempts + 1, &reason, Some(retry_after), outbox)
                        .await;
                }
                RobotOutcome::Rejected { code, message: text } => {
                    let reason = format!("refused ({code}): {text}");
                    return self.give_up(robot_name, message, attempts + 1, &code, &reason, outbox).await;
                }
            }
        }
    }

    /// A failed attempt: the outbox with backoff, or the dead-letter queue once attempts run out.
    async fn retry_later(
        &self,
        robot: &str,
        message: AlertMessage,
        attempts: u32,
        reason: &str,
        asked: Option<Duration>,
        outbox: Option<Record>,
    ) -> Result<Delivery, Failure> {
        if attempts >= self.policy.max_attempts {
            let reason = format!("gave up after {attempts} attempts: {reason}");
            return self.give_up(robot, message, attempts, "retries_exhausted", &reason, outbox).await;
        }
        let due = self.now() + retry_delay(attempts, asked);
        tracing::warn!(robot, kind = %message.kind, attempts, %reason, "robot message will be retried");
        self.to_outbox(robot, message, attempts, Some(reason.to_owned()), due, outbox).await?;
        Ok(Delivery::Deferred)
    }

    /// Dead-letters a robot message with its reason (kept in the outbox if even that fails).
    async fn give_up(
        &self,
        robot: &str,
        message: AlertMessage,
        attempts: u32,
        code: &str,
        reason: &str,
        outbox: Option<Record>,
    ) -> Result<Delivery, Failure> {
        let body = json!({"robot": robot, "message": message, "attempts": attempts});
        if !self.dead_letter("robot", body, reason, &[("robot", robot), ("code", code)]).await {
            let due = self.now() + Duration::minutes(5);
            self.to_outbox(robot, message, attempts, Some(reason.to_owned()), due, outbox).await?;
            return Ok(Delivery::Deferred);
        }
        tracing::warn!(robot, kind = %message.kind, code, "robot message dead-lettered");
        self.failed("robot", robot, code, reason).await;
        if let Some(mut record) = outbox {
            record.data = encode(&OutboxRecord {
                robot: robot.to_owned(),
                message,
                attempts,
                last_reason: Some(reason.to_owned()),
                done: true,
            });
            record.due = None;
            record.expires_at = self.now() + Duration::days(1);
            self.ports.store.put(&record).await?;
        }
        Ok(Delivery::DeadLettered)
    }

    async fn to_outbox(
        &self,
        robot: &str,
        message: AlertMessage,
        attempts: u32,
        last_reason: Option<String>,
        due: DateTime<Utc>,
        existing: Option<Record>,
    ) -> Result<(), Failure> {
        let now = self.now();
        let mut record = existing.unwrap_or_else(|| {
            let id = short_id("m", &[robot, &message.title, &message.markdown, &now.to_rfc3339()]);
            Record::new(RecordKind::Outbox, id, Value::Null, now + self.policy.keep)
        });
        record.data = encode(&OutboxRecord { robot: robot.to_owned(), message, attempts, last_reason, done: false });
        record.due = Some(due);
        if !self.ports.store.put(&record).await? {
            return Err(Failure::Retry(format!("outbox record {} moved meanwhile", record.id)));
        }
        Ok(())
    }

    /// Takes one slot of the robot's rate budget: `None` when taken, else when one frees up.
    async fn take_slot(&self, config: &RoutingConfig, robot: &str) -> Result<Option<DateTime<Utc>>, Failure> {
        let budget: RateBudget = config.budget();
        for _ in 0..8 {
            let now = self.now();
            let mut record = self
                .ports
                .store
                .get(RecordKind::Rate, robot)
                .await?
                .unwrap_or_else(|| Record::new(RecordKind::Rate, robot, Value::Null, now));
            let mut log: SendLog = if record.data.is_null() { SendLog::default() } else { decode(&record)? };
            if let Some(free) = log.next_free(budget, now) {
                if free - now <= self.policy.inline_wait {
                    let wait = (free - now).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    if self.now() >= free {
                        continue;
                    }
                }
                return Ok(Some(free));
            }
            log.record(budget, now);
            record.data = encode(&log);
            record.expires_at = now + Duration::days(1);
            if self.ports.store.put(&record).await? {
                return Ok(None);
            }
        }
        // Many instances racing for the same robot: let the outbox take it.
        Ok(Some(self.now() + Duration::seconds(5)))
    }

    // ------------------------------------------------------------------ flush

    /// The scheduled run: routes deferred findings, closes folds whose window ended (the morning
    /// releases the quiet spell's), retries the outbox, escalates unacknowledged criticals, and
    /// tries waiting notices again.
    pub async fn flush(&self) -> FlushReport {
        let mut report = FlushReport::default();
        self.flush_deferred(&mut report).await;
        let config = self.routing_or_default().await;
        self.flush_folds(&config, &mut report).await;
        self.flush_outbox(&config, &mut report).await;
        self.flush_escalations(&config, &mut report).await;
        self.flush_notices(&mut report).await;
        tracing::info!(?report, "flush done");
        report
    }

    async fn flush_deferred(&self, report: &mut FlushReport) {
        let now = self.now();
        let records = match self.ports.store.due(RecordKind::Event, now, self.policy.flush_limit).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "deferred findings unreadable");
                report.errors += 1;
                return;
            }
        };
        for record in records {
            let Ok(state) = decode::<EventRecord>(&record) else {
                report.errors += 1;
                continue;
            };
            let (Some(detail_type), Some(detail)) = (state.detail_type, state.detail) else { continue };
            let Ok(event) = DomainEvent::from_parts(&detail_type, detail) else { continue };
            let detail_type = event.detail_type();
            let Some(finding) = describe(&event) else { continue };
            let id = record.id.clone();
            let claimed = match self.claim(&id, detail_type, &event.detail()).await {
                Ok(Claim::Mine(record)) => record,
                Ok(_) => continue,
                Err(_) => {
                    report.errors += 1;
                    continue;
                }
            };
            match self.route_claimed(claimed, &event, &finding, &id).await {
                Ok(FindingOutcome::Routed { .. } | FindingOutcome::Unrouted { .. }) => report.findings_routed += 1,
                Ok(_) => {}
                Err(_) => report.errors += 1,
            }
        }
    }

    async fn flush_folds(&self, config: &RoutingConfig, report: &mut FlushReport) {
        let now = self.now();
        let ids = match self.ports.store.due_folds(now - self.policy.fold_grace, self.policy.flush_limit).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(error = %err, "folds unreadable");
                report.errors += 1;
                return;
            }
        };
        for id in ids {
            let state = match self.ports.store.close_fold(&id, now).await {
                Ok(Some(state)) => state,
                Ok(None) => continue,
                Err(_) => {
                    report.errors += 1;
                    continue;
                }
            };
            report.folds_closed += 1;
            let open = &state.open;
            // The opening finding of a window that was not held went out on its own.
            let count = if open.held { state.count } else { state.count.saturating_sub(1) };
            if count == 0 {
                continue;
            }
            let window = Window { start: open.start, end: open.end, held: open.held };
            let summary = FoldSummary {
                kind: &open.kind,
                severity: open.severity,
                window,
                count,
                first_sent: !open.held,
                lines: &state.lines,
            };
            let ack = (open.severity == Severity::Critical).then_some(open.id.as_str());
            let message = render_fold(&summary, ack);
            match self.produce(config, &open.robot, message).await {
                Ok(delivery) => {
                    report.fold_messages += 1;
                    if delivery == Delivery::DeadLettered {
                        report.dead_lettered += 1;
                    }
                }
                Err(err) => {
                    tracing::warn!(fold = %id, error = %err, "folded message not produced");
                    report.errors += 1;
                }
            }
        }
    }

    async fn flush_outbox(&self, config: &RoutingConfig, report: &mut FlushReport) {
        let now = self.now();
        let records = match self.ports.store.due(RecordKind::Outbox, now, self.policy.flush_limit).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "outbox unreadable");
                report.errors += 1;
                return;
            }
        };
        let mut by_robot: BTreeMap<String, Vec<(Record, OutboxRecord)>> = BTreeMap::new();
        for record in records {
            match decode::<OutboxRecord>(&record) {
                Ok(item) if !item.done => by_robot.entry(item.robot.clone()).or_default().push((record, item)),
                Ok(_) => {}
                Err(_) => report.errors += 1,
            }
        }
        // Robots concurrently; within one robot, stop at its first trouble so a failing robot
        // costs one attempt per run, and nothing of the other robots waits for it.
        let results = futures::future::join_all(by_robot.into_values().map(|items| async move {
            let mut tally = FlushReport::default();
            let mut stopped = false;
            for (record, item) in items {
                if stopped {
                    tally.outbox_deferred += 1;
                    continue;
                }
                match self.deliver(config, &item.robot, item.message, item.attempts, Some(record)).await {
                    Ok(Delivery::Sent) => tally.outbox_sent += 1,
                    Ok(Delivery::DeadLettered) => tally.dead_lettered += 1,
                    Ok(Delivery::Held | Delivery::Deferred) => {
                        tally.outbox_deferred += 1;
                        stopped = true;
                    }
                    Err(_) => {
                        tally.errors += 1;
                        stopped = true;
                    }
                }
            }
            tally
        }))
        .await;
        for tally in results {
            report.outbox_sent += tally.outbox_sent;
            report.outbox_deferred += tally.outbox_deferred;
            report.dead_lettered += tally.dead_lettered;
            report.errors += tally.errors;
        }
    }

    async fn flush_escalations(&self, config: &RoutingConfig, report: &mut FlushReport) {
        let now = self.now();
        let records = match self.ports.store.due(RecordKind::Escalation, now, self.policy.flush_limit).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "escalations unreadable");
                report.errors += 1;
                return;
            }
        };
        let mut by_next: BTreeMap<String, Vec<(Record, EscalationRecord)>> = BTreeMap::new();
        for record in records {
            let Ok(item) = decode::<EscalationRecord>(&record) else {
                report.errors += 1;
                continue;
            };
            if item.acked_at.is_some() {
                continue;
            }
            match config.next_group(&item.current) {
                Some(next) => by_next.entry(next.to_owned()).or_default().push((record, item)),
                None => {
                    tracing::warn!(ack_id = %item.ack_id, robot = %item.current, "critical unacknowledged; no next group to escalate to");
                    let mut record = record;
                    record.due = None;
                    if self.ports.store.put(&record).await.is_err() {
                        report.errors += 1;
                    }
                }
            }
        }
        for (next, items) in by_next {
            let listed: Vec<Unacknowledged> = items
                .iter()
                .map(|(_, item)| Unacknowledged {
                    ack_id: item.ack_id.clone(),
                    title: item.title.clone(),
                    robot: item.current.clone(),
                    since: item.created_at,
                })
                .collect();
            let message = render_escalation(&listed, config.escalate_after(), config.fold_show);
            if let Err(err) = self.deliver(config, &next, message, 0, None).await {
                tracing::warn!(robot = %next, error = %err, "escalation not delivered; next run tries again");
                report.errors += 1;
                continue;
            }
            for (mut record, mut item) in items {
                item.current = next.clone();
                item.level += 1;
                record.data = encode(&item);
                // Further up the chain after the same wait, if there is a further group.
                record.due = config.next_group(&next).map(|_| now + config.escalate_after());
                match self.ports.store.put(&record).await {
                    Ok(true) => report.escalated += 1,
                    // Acknowledged meanwhile: nothing to do.
                    Ok(false) => {}
                    Err(_) => report.errors += 1,
                }
                tracing::warn!(ack_id = %item.ack_id, to = %next, level = item.level, "critical escalated");
            }
        }
    }

    async fn flush_notices(&self, report: &mut FlushReport) {
        let now = self.now();
        let records = match self.ports.store.due(RecordKind::Notice, now, self.policy.flush_limit).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "notices unreadable");
                report.errors += 1;
                return;
            }
        };
        for record in records {
            match self.attempt_notice(record).await {
                Ok(NoticeOutcome::Sent { .. }) => report.notices_sent += 1,
                Ok(NoticeOutcome::Waiting { .. }) => report.notices_waiting += 1,
                Ok(NoticeOutcome::Unknown { .. }) => report.notices_unknown += 1,
                Ok(_) => {}
                Err(_) => report.errors += 1,
            }
        }
    }

    // ------------------------------------------------------------------ acknowledgements

    /// Acknowledges a critical by the id its message shows: it will not be escalated (further).
    pub async fn ack(&self, id: &str, by: &str) -> Result<AckOutcome, Failure> {
        let now = self.now();
        for _ in 0..3 {
            let Some(mut record) = self.ports.store.get(RecordKind::Escalation, id).await? else {
                return Ok(AckOutcome::Unknown { id: id.to_owned() });
            };
            let mut item: EscalationRecord = decode(&record)?;
            if let Some(at) = item.acked_at {
                return Ok(AckOutcome::AlreadyAcknowledged { id: id.to_owned(), at });
            }
            item.acked_at = Some(now);
            item.acked_by = Some(by.chars().take(64).collect());
            record.data = encode(&item);
            record.due = None;
            if self.ports.store.put(&record).await? {
                tracing::info!(ack_id = id, "critical acknowledged");
                return Ok(AckOutcome::Acknowledged { id: id.to_owned() });
            }
        }
        Err(Failure::Retry("acknowledgement raced with an escalation; try again".into()))
    }

    // ------------------------------------------------------------------ customer notices

    /// One customer notice from the queue: sent at most once per notice id.
    pub async fn on_notice(&self, notice: &Notice) -> Result<NoticeOutcome, Failure> {
        let id = notice.notice_id.as_str();
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
            return Err(Failure::Permanent("notice id is empty, too long or has control characters".into()));
        }
        let now = self.now();
        let record = match self.ports.store.get(RecordKind::Notice, id).await? {
            Some(record) => record,
            None => {
                let state = NoticeRecord {
                    state: NoticeState::Pending,
                    notice: notice.clone(),
                    attempts: 0,
                    reason: None,
                    receipt: None,
                    attempt_started: None,
                };
                let mut record = Record::new(RecordKind::Notice, id, encode(&state), now + Duration::days(30));
                if !self.ports.store.put(&record).await? {
                    // A concurrent delivery of the same notice stored it first: theirs to send.
                    return Err(Failure::Retry(format!("notice {id} is being handled")));
                }
                record.version += 1;
                record
            }
        };
        let state: NoticeRecord = decode(&record)?;
        match state.state {
            NoticeState::Sent | NoticeState::Failed | NoticeState::Unknown => {
                Ok(NoticeOutcome::AlreadyHandled { notice_id: id.to_owned(), state: state.state })
            }
            NoticeState::Retry | NoticeState::Parked if record.due.is_some_and(|due| due > now) => {
                Ok(NoticeOutcome::Waiting {
                    notice_id: id.to_owned(),
                    state: state.state,
                    reason: state.reason.unwrap_or_default(),
                })
            }
            NoticeState::Attempting if state.attempt_started.is_some_and(|at| at + self.policy.lease > now) => {
                Err(Failure::Retry(format!("notice {id} is being sent")))
            }
            _ => self.attempt_notice(record).await,
        }
    }

    /// Attempts a stored notice (pending, parked, due for retry); an attempt interrupted before
    /// its outcome was recorded becomes `unknown`.
    async fn attempt_notice(&self, mut record: Record) -> Result<NoticeOutcome, Failure> {
        let now = self.now();
        let mut state: NoticeRecord = decode(&record)?;
        let id = record.id.clone();
        let day = business_day(now);
        match state.state {
            NoticeState::Sent | NoticeState::Failed | NoticeState::Unknown => {
                record.due = None;
                self.ports.store.put(&record).await?;
                return Ok(NoticeOutcome::AlreadyHandled { notice_id: id, state: state.state });
            }
            NoticeState::Attempting => {
                if state.attempt_started.is_some_and(|at| at + self.policy.lease > now) {
                    return Err(Failure::Retry(format!("notice {id} is being sent")));
                }
                let reason = "an attempt was interrupted before its outcome was recorded; check the provider's \
                              receipt for this notice id before resending"
                    .to_owned();
                return self.notice_unknown(record, state, reason).await;
            }
            NoticeState::Pending | NoticeState::Retry | NoticeState::Parked => {}
        }
        let template = state.notice.template.clone();
        let not_ready = match self.ports.sms.ready(&template).await {
            Ok(()) => None,
            Err(SmsNotReady::NoProvider) => {
                Some((counters::NOTICES_NO_PROVIDER, "no SMS provider configured".to_owned()))
            }
            Err(SmsNotReady::NoTemplate(name)) => Some((
                counters::NOTICES_NO_TEMPLATE,
                format!("no SMS template configured for `{}`", alerting::scrub(&name)),
            )),
            Err(SmsNotReady::Malformed(reason)) => {
                self.failed("sms", "sms", "malformed_provider", &reason).await;
                Some((counters::NOTICES_NO_PROVIDER, reason))
            }
            Err(SmsNotReady::Unavailable(reason)) => {
                return Err(Failure::Retry(format!("SMS configuration unavailable: {reason}")));
            }
        };
        if let Some((counter, reason)) = not_ready {
            let due = Some(now + self.policy.park_retry);
            return self.park_notice(record, state, counter, reason, due).await;
        }
        let Some(customer) = state.notice.customer.clone() else {
            // Nothing will ever resolve it: parked without a due time, for a person.
            let reason = "the notice names no customer".to_owned();
            return self.park_notice(record, state, counters::NOTICES_NO_CONTACT, reason, None).await;
        };
        let Some(mobile) = self.ports.contacts.mobile(&customer).await? else {
            let due = Some(now + self.policy.park_retry);
            let reason = "no contact for the customer".to_owned();
            return self.park_notice(record, state, counters::NOTICES_NO_CONTACT, reason, due).await;
        };
        // The one write that makes "at most once" hold: only the invocation that moves the notice
        // to `attempting` calls the provider.
        state.state = NoticeState::Attempting;
        state.attempt_started = Some(now);
        state.attempts += 1;
        record.data = encode(&state);
        record.due = Some(now + self.policy.lease);
        if !self.ports.store.put(&record).await? {
            return Err(Failure::Retry(format!("notice {id} moved meanwhile")));
        }
        record.version += 1;
        let notice = &state.notice;
        let sms = SmsNotice {
            notice_id: id.clone(),
            template: template.clone(),
            values: vec![
                ("order_id".into(), notice.order.order_id.as_str().to_owned()),
                ("channel".into(), channel_name(notice.order.source)),
                ("text".into(), notice.text.clone()),
            ],
        };
        let outcome = self.ports.sms.send(&mobile, &sms).await;
        drop(mobile);
        match outcome {
            SmsOutcome::Sent { receipt } => {
                state.state = NoticeState::Sent;
                state.receipt = receipt;
                state.reason = None;
                record.data = encode(&state);
                record.due = None;
                self.ports.store.put(&record).await?;
                let _ = self.ports.store.add_count(counters::NOTICES_SENT, day, 1).await;
                tracing::info!(notice_id = %id, order_id = %notice.order.order_id, template = %template, "customer notice sent");
                Ok(NoticeOutcome::Sent { notice_id: id })
            }
            SmsOutcome::NotSent { retry_after, reason } => {
                if state.attempts >= self.policy.max_attempts {
                    let reason = format!("gave up after {} attempts: {reason}", state.attempts);
                    return self.notice_failed(record, state, "retries_exhausted", reason).await;
                }
                let wait = retry_delay(state.attempts, retry_after);
                state.state = NoticeState::Retry;
                state.reason = Some(reason.clone());
                record.data = encode(&state);
                record.due = Some(now + wait);
                self.ports.store.put(&record).await?;
                tracing::warn!(notice_id = %id, %reason, "customer notice not sent; will retry");
                Ok(NoticeOutcome::Waiting { notice_id: id, state: NoticeState::Retry, reason })
            }
            SmsOutcome::Rejected { code, message } => {
                let reason = format!("refused ({code}): {message}");
                self.notice_failed(record, state, &code, reason).await
            }
            SmsOutcome::Unknown(reason) => self.notice_unknown(record, state, reason).await,
        }
    }

    async fn park_notice(
        &self,
        mut record: Record,
        mut state: NoticeRecord,
        counter: &str,
        reason: String,
        due: Option<DateTime<Utc>>,
    ) -> Result<NoticeOutcome, Failure> {
        let first_time = state.state != NoticeState::Parked;
        state.state = NoticeState::Parked;
        state.reason = Some(reason.clone());
        record.data = encode(&state);
        record.due = due;
        if !self.ports.store.put(&record).await? {
            return Err(Failure::Retry(format!("notice {} moved meanwhile", record.id)));
        }
        if first_time {
            let _ = self.ports.store.add_count(counter, business_day(self.now()), 1).await;
            tracing::warn!(notice_id = %record.id, reason = %reason, "customer notice kept: parked");
        }
        Ok(NoticeOutcome::Waiting { notice_id: record.id, state: NoticeState::Parked, reason })
    }

    async fn notice_failed(
        &self,
        mut record: Record,
        mut state: NoticeRecord,
        code: &str,
        reason: String,
    ) -> Result<NoticeOutcome, Failure> {
        let id = record.id.clone();
        // Recorded first: the provider's refusal is certain, whatever happens to the queue next.
        state.state = NoticeState::Failed;
        state.reason = Some(reason.clone());
        record.data = encode(&state);
        record.due = None;
        self.ports.store.put(&record).await?;
        if !self.dead_letter("notice", encode(&state.notice), &reason, &[("code", code)]).await {
            tracing::warn!(notice_id = %id, "refused notice kept in its record only: the dead-letter queue is unavailable");
        }
        let _ = self.ports.store.add_count(counters::NOTICES_FAILED, business_day(self.now()), 1).await;
        tracing::warn!(notice_id = %id, code, "customer notice refused; dead-lettered");
        self.failed("sms", "sms", code, &reason).await;
        Ok(NoticeOutcome::Failed { notice_id: id, reason })
    }

    async fn notice_unknown(
        &self,
        mut record: Record,
        mut state: NoticeRecord,
        reason: String,
    ) -> Result<NoticeOutcome, Failure> {
        let id = record.id.clone();
        state.state = NoticeState::Unknown;
        state.reason = Some(reason.clone());
        record.data = encode(&state);
        record.due = None;
        if !self.ports.store.put(&record).await? {
            return Err(Failure::Retry(format!("notice {id} moved meanwhile")));
        }
        let _ = self.ports.store.add_count(counters::NOTICES_UNKNOWN, business_day(self.now()), 1).await;
        tracing::warn!(notice_id = %id, reason = %reason, "customer notice outcome unknown: not resent; check the provider's receipt by this notice id");
        self.failed("sms", "sms", "outcome_unknown", &reason).await;
        Ok(NoticeOutcome::Unknown { notice_id: id, reason })
    }

    /// Sends a notice again after a person decided so: a `failed` one (its cause fixed), or an
    /// `unknown` one only when `checked_not_delivered` (the provider's receipt shows no delivery).
    pub async fn resend_notice(&self, notice_id: &str, checked_not_delivered: bool) -> Result<NoticeOutcome, Failure> {
        let Some(mut record) = self.ports.store.get(RecordKind::Notice, notice_id).await? else {
            return Err(Failure::Permanent(format!("no notice {notice_id}")));
        };
        let mut state: NoticeRecord = decode(&record)?;
        match state.state {
            NoticeState::Unknown if !checked_not_delivered => {
                return Err(Failure::Permanent(
                    "the notice may have been delivered: check the provider's receipt, then resend with \
                     checked_not_delivered"
                        .into(),
                ));
            }
            NoticeState::Failed | NoticeState::Unknown | NoticeState::Parked | NoticeState::Retry => {}
            other => return Ok(NoticeOutcome::AlreadyHandled { notice_id: notice_id.to_owned(), state: other }),
        }
        state.state = NoticeState::Pending;
        record.data = encode(&state);
        record.due = None;
        if !self.ports.store.put(&record).await? {
            return Err(Failure::Retry("notice moved meanwhile".into()));
        }
        record.version += 1;
        tracing::info!(notice_id, "customer notice resent by ops");
        self.attempt_notice(record).await
    }

    // ------------------------------------------------------------------ redrive

    /// Takes up to `max` messages off the dead-letter queue and handles each again: robot
    /// messages are delivered afresh, findings routed, notices retried (a `failed` one is sent
    /// again: the redrive is the person's decision). What fails again is dead-lettered anew with
    /// its new reason; what is not recognised stays.
    pub async fn redrive(&self, max: u32) -> RedriveReport {
        let mut report = RedriveReport::default();
        let config = self.routing_or_default().await;
        // What fails again is dead-lettered anew and may come back in this very run: once each.
        let mut seen: HashSet<String> = HashSet::new();
        while report.read < max {
            let letters = match self.ports.dead_letters.receive((max - report.read).min(10)).await {
                Ok(letters) if !letters.is_empty() => letters,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "dead-letter queue unreadable");
                    report.errors += 1;
                    break;
                }
            };
            for letter in letters {
                report.read += 1;
                if !seen.insert(letter.body.clone()) {
                    report.skipped += 1;
                    continue;
                }
                match self.redrive_one(&config, &letter).await {
                    Ok(true) => match self.ports.dead_letters.delete(&letter.handle).await {
                        Ok(()) => report.redriven += 1,
                        Err(_) => report.errors += 1,
                    },
                    Ok(false) => report.skipped += 1,
                    Err(err) => {
                        tracing::warn!(error = %err, "dead letter not redriven");
                        report.errors += 1;
                    }
                }
            }
        }
        tracing::info!(?report, "redrive done");
        report
    }

    async fn redrive_one(&self, config: &RoutingConfig, letter: &DeadLetter) -> Result<bool, Failure> {
        let body: Value = serde_json::from_str(&letter.body).unwrap_or(Value::Null);
        match letter.attribute("kind") {
            Some("robot") => {
                let robot = body.get("robot").and_then(Value::as_str).unwrap_or_default().to_owned();
                let Ok(message) = serde_json::from_value::<AlertMessage>(body["message"].clone()) else {
                    return Ok(false);
                };
                self.deliver(config, &robot, message, 0, None).await?;
                Ok(true)
            }
            Some("finding") => {
                let detail_type = body.get("detail-type").and_then(Value::as_str).unwrap_or_default().to_owned();
                self.on_bus_event(&detail_type, &body["detail"]).await?;
                Ok(true)
            }
            Some("notice") => self.redrive_notice(&body).await,
            _ => {
                // Lambda's on-failure record of an async invocation: the finding is its payload.
                if let Some(payload) = body.get("requestPayload")
                    && let Some(detail_type) = payload.get("detail-type").and_then(Value::as_str)
                {
                    self.on_bus_event(detail_type, &payload["detail"]).await?;
                    return Ok(true);
                }
                // A notice the queue's redrive policy moved here after too many receives.
                self.redrive_notice(&body).await
            }
        }
    }

    async fn redrive_notice(&self, body: &Value) -> Result<bool, Failure> {
        let Ok(notice) = serde_json::from_value::<Notice>(body.clone()) else { return Ok(false) };
        if let Some(mut record) = self.ports.store.get(RecordKind::Notice, &notice.notice_id).await? {
            let mut state: NoticeRecord = decode(&record)?;
            if state.state == NoticeState::Failed {
                state.state = NoticeState::Pending;
                record.data = encode(&state);
                record.due = None;
                self.ports.store.put(&record).await?;
            }
        }
        self.on_notice(&notice).await?;
        Ok(true)
    }
}

/// Why the routing table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoutingProblem {
    /// The parameter store failed: ask again soon.
    Unavailable(String),
    /// Missing or malformed: a person must fix it.
    Invalid(String),
}

/// No routes, the default policy: what a flush uses for its own decisions (quiet hours, rate
/// budget) when the routing table cannot be read.
fn empty_routing() -> RoutingConfig {
    RoutingConfig {
        routes: Vec::new(),
        severities: BTreeMap::new(),
        escalation: BTreeMap::new(),
        fold_minutes: 10,
        fold_show: 5,
        quiet_hours: Some(alerting::QuietHours::default()),
        escalate_after_minutes: 120,
        robot_per_minute: alerting::ROBOT_PER_MINUTE,
    }
}

#[cfg(test)]
mod tests;
