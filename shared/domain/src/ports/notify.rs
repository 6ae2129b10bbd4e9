//! notify's ports: the group robots and the SMS provider it sends through, the customers'
//! contacts, its dead-letter queue (to read back for redrive), and a small state store for its
//! dedupe, fold, outbox, escalation and notice records.
//!
//! The store is deliberately dumb: versioned records (put-if-version, the domain holds every state
//! machine), a due index to find what a scheduled run must look at without scanning, one atomic
//! tally for folding bursts (a read-modify-write per finding would fight itself under a burst of
//! concurrent invocations), and day counters.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::alert::{AlertMessage, MobileNumber, RobotOutcome, Severity, SmsNotice, SmsOutcome};
use crate::ports::StoreError;

/// The parameter holding the routing table (JSON, SecureString): `/orderhub/<stage>/notify/routing`.
pub fn routing_parameter(stage: &str) -> String {
    format!("/orderhub/{stage}/notify/routing")
}

/// Where robot secrets live: `/orderhub/<stage>/notify/robots/<name>` holds one robot's webhook
/// URL, signing secret and whom it `@`s (JSON, SecureString).
pub fn robot_parameter_prefix(stage: &str) -> String {
    format!("/orderhub/{stage}/notify/robots/")
}

/// The parameter holding the SMS provider's credentials and templates:
/// `/orderhub/<stage>/notify/sms`. Absent: no provider configured.
pub fn sms_parameter(stage: &str) -> String {
    format!("/orderhub/{stage}/notify/sms")
}

/// One group robot (a DingTalk custom robot or a WeCom group robot).
#[async_trait]
pub trait Robot: Send + Sync {
    /// Posts one message; a critical one `@`s the people configured for the robot.
    async fn send(&self, message: &AlertMessage) -> RobotOutcome;
}

/// Why a robot could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RobotLookupError {
    /// No parameter for this robot.
    #[error("robot is not configured")]
    NotConfigured,
    /// The parameter is there but its URL, key or secret is not the provider's (what is wrong,
    /// never the value).
    #[error("robot configuration is malformed: {0}")]
    Malformed(String),
    /// The parameter store could not be read.
    #[error("robot configuration unavailable: {0}")]
    Unavailable(String),
}

/// The robots, by the names the routing table uses.
#[async_trait]
pub trait Robots: Send + Sync {
    /// The robot called `name`.
    async fn robot(&self, name: &str) -> Result<Arc<dyn Robot>, RobotLookupError>;
}

/// Why a notice cannot be sent now (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsNotReady {
    /// No SMS provider is configured.
    #[error("no SMS provider configured")]
    NoProvider,
    /// The provider has no template for this notice's template name.
    #[error("no SMS template configured for `{0}`")]
    NoTemplate(String),
    /// The provider's configuration is malformed (what is wrong, never the value).
    #[error("SMS provider configuration is malformed: {0}")]
    Malformed(String),
    /// The configuration could not be read.
    #[error("SMS configuration unavailable: {0}")]
    Unavailable(String),
}

/// The SMS provider (Aliyun or Tencent Cloud, whichever is configured).
#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// Whether a notice of `template` could be sent now (a provider and its template are
    /// configured). Sends nothing.
    async fn ready(&self, template: &str) -> Result<(), SmsNotReady>;

    /// Sends one notice to `to`. The notice id travels as the provider's own correlation id.
    async fn send(&self, to: &MobileNumber, notice: &SmsNotice) -> SmsOutcome;
}

/// The customers' contacts (the seller's own customer directory).
#[async_trait]
pub trait Contacts: Send + Sync {
    /// The customer's mobile number, if known.
    async fn mobile(&self, customer: &str) -> Result<Option<MobileNumber>, StoreError>;
}

/// The dead-letter queue read back (shared with the other functions' ops).
pub use crate::ports::dead_letters::{DeadLetter, DeadLetters};

/// The kinds of records notify keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A finding seen (dedupe by event id), or kept for later when it could not be routed.
    Event,
    /// A robot message waiting for its next attempt (rate limit, failure, quiet hours).
    Outbox,
    /// A critical waiting for its acknowledgement.
    Escalation,
    /// A customer notice and where its one send stands.
    Notice,
    /// A robot's recent send times (its rate budget).
    Rate,
    /// A once-per-window guard (one failure event per cause and window).
    Once,
}

impl RecordKind {
    /// The short name used in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Event => "ev",
            RecordKind::Outbox => "out",
            RecordKind::Escalation => "esc",
            RecordKind::Notice => "sms",
            RecordKind::Rate => "rate",
            RecordKind::Once => "once",
        }
    }
}

/// One versioned record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id within the kind.
    pub id: String,
    /// The version as read (`0`: not stored yet). [`NotifyStore::put`] stores `version + 1`.
    pub version: u64,
    /// While set, [`NotifyStore::due`] lists it once this time has come.
    pub due: Option<DateTime<Utc>>,
    /// When the store may forget it.
    pub expires_at: DateTime<Utc>,
    /// What it holds.
    pub data: serde_json::Value,
}

impl Record {
    /// A new record (version 0).
    pub fn new(kind: RecordKind, id: impl Into<String>, data: serde_json::Value, expires_at: DateTime<Utc>) -> Self {
        Self { kind, id: id.into(), version: 0, due: None, expires_at, data }
    }
}

/// A fold as its first finding opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldOpen {
    /// The fold's id (robot, kind, severity and window hashed).
    pub id: String,
    /// The robot.
    pub robot: String,
    /// The finding kind.
    pub kind: String,
    /// Its severity.
    pub severity: Severity,
    /// Window start.
    pub start: DateTime<Utc>,
    /// Window end: due then.
    pub end: DateTime<Utc>,
    /// A quiet spell (nothing of it was sent on arrival).
    pub held: bool,
    /// When the store may forget it.
    pub expires_at: DateTime<Utc>,
}

/// What a tally did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// Counted: the fold's count after this finding (1 = this finding opened it).
    Counted(u64),
    /// The fold was closed (its message went out) before this finding arrived.
    Closed,
}

/// A fold, closed, with what it collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldState {
    /// How it was opened.
    pub open: FoldOpen,
    /// Findings counted.
    pub count: u64,
    /// The first findings' lines (at most the `keep` of the tallies).
    pub lines: Vec<String>,
}

/// notify's state: versioned records with a due index, folds, day counters.
#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// A record, if stored.
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError>;

    /// Stores `record` as version `record.version + 1`, only if the stored version is
    /// `record.version` (`0`: only if absent). `Ok(false)` when that condition failed.
    async fn put(&self, record: &Record) -> Result<bool, StoreError>;

    /// Records of `kind` whose due time is at or before `until`, earliest first.
    async fn due(&self, kind: RecordKind, until: DateTime<Utc>, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// Counts one finding into a fold (opening it if new), atomically; keeps the finding's `line`
    /// while the fold holds fewer than `keep` lines — except the line of the finding that opens a
    /// fold that is not held (that one went out on its own). A closed fold counts nothing.
    async fn tally(&self, fold: &FoldOpen, line: &str, keep: usize) -> Result<Tally, StoreError>;

    /// Ids of open folds whose window ended at or before `until`, earliest first.
    async fn due_folds(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Closes a fold (exactly once: `None` when it was closed already or never opened).
    async fn close_fold(&self, id: &str, at: DateTime<Utc>) -> Result<Option<FoldState>, StoreError>;

    /// Adds to a day counter (`[a-z0-9_]` names).
    async fn add_count(&self, name: &str, day: NaiveDate, by: i64) -> Result<(), StoreError>;

    /// The counters of a day.
    async fn counts(&self, day: NaiveDate) -> Result<BTreeMap<String, i64>, StoreError>;
}
