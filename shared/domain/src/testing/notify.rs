//! In-memory doubles of notify's ports: the state store, robots that record what they got (and
//! check the 20-a-minute limit as the real ones do), an SMS provider that records masked numbers,
//! contacts, and a dead-letter queue that can be read back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::model::alert::{AlertMessage, MobileNumber, RobotOutcome, SmsNotice, SmsOutcome};
use crate::ports::clock::Clock;
use crate::ports::notify::{
    Contacts, DeadLetter, DeadLetters, FoldOpen, FoldState, NotifyStore, Record, RecordKind, Robot, RobotLookupError,
    Robots, SmsNotReady, SmsProvider, Tally,
};
use crate::ports::{OutboundMessage, Queue, QueueError, StoreError};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Fold {
    open: FoldOpen,
    count: u64,
    lines: Vec<String>,
    closed: bool,
}

/// notify's store in memory, with the adapter's semantics (versioned puts, due index, folds).
#[derive(Default)]
pub struct MemoryNotifyStore {
    records: Mutex<HashMap<(RecordKind, String), Record>>,
    folds: Mutex<BTreeMap<String, Fold>>,
    counts: Mutex<BTreeMap<(NaiveDate, String), i64>>,
    fail: Mutex<u32>,
    calls: Mutex<u64>,
}

impl MemoryNotifyStore {
    /// Makes the next `n` calls fail as unavailable.
    pub fn fail_next(&self, n: u32) {
        *lock(&self.fail) = n;
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        *lock(&self.calls)
    }

    /// Every record of a kind (tests look inside).
    pub fn records(&self, kind: RecordKind) -> Vec<Record> {
        lock(&self.records).values().filter(|r| r.kind == kind).cloned().collect()
    }

    fn enter(&self) -> Result<(), StoreError> {
        *lock(&self.calls) += 1;
        let mut fail = lock(&self.fail);
        if *fail > 0 {
            *fail -= 1;
            return Err(StoreError::Unavailable("injected".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl NotifyStore for MemoryNotifyStore {
    async fn get(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        self.enter()?;
        Ok(lock(&self.records).get(&(kind, id.to_owned())).cloned())
    }

    async fn put(&self, record: &Record) -> Result<bool, StoreError> {
        self.enter()?;
        let mut records = lock(&self.records);
        let key = (record.kind, record.id.clone());
        let stored = records.get(&key).map_or(0, |r| r.version);
        if stored != record.version {
            return Ok(false);
        }
        records.insert(key, Record { version: record.version + 1, ..record.clone() });
        Ok(true)
    }

    async fn due(&self, kind: RecordKind, until: DateTime<Utc>, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.enter()?;
        let mut due: Vec<Record> = lock(&self.records)
            .values()
            .filter(|r| r.kind == kind && r.due.is_some_and(|d| d <= until))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn tally(&self, fold: &FoldOpen, line: &str, keep: usize) -> Result<Tally, StoreError> {
        self.enter()?;
        let mut folds = lock(&self.folds);
        let entry = folds.entry(fold.id.clone()).or_insert_with(|| Fold {
            open: fold.clone(),
            count: 0,
            lines: Vec::new(),
            closed: false,
        });
        if entry.closed {
            return Ok(Tally::Closed);
        }
        entry.count += 1;
        let opener_sent = entry.count == 1 && !entry.open.held;
        if !opener_sent && entry.lines.len() < keep {
            entry.lines.push(line.to_owned());
        }
        Ok(Tally::Counted(entry.count))
    }

    async fn due_folds(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<String>, StoreError> {
        self.enter()?;
        let folds = lock(&self.folds);
        let mut due: Vec<(DateTime<Utc>, String)> = folds
            .values()
            .filter(|f| !f.closed && f.open.end <= until)
            .map(|f| (f.open.end, f.open.id.clone()))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn close_fold(&self, id: &str, _at: DateTime<Utc>) -> Result<Option<FoldState>, StoreError> {
        self.enter()?;
        let mut folds = lock(&self.folds);
        let Some(fold) = folds.get_mut(id) else { return Ok(None) };
        if fold.closed {
            return Ok(None);
        }
        fold.closed = true;
        Ok(Some(FoldState { open: fold.open.clone(), count: fold.count, lines: fold.lines.clone() }))
    }

    async fn add_count(&self, name: &str, day: NaiveDate, by: i64) -> Result<(), StoreError> {
        self.enter()?;
        *lock(&self.counts).entry((day, name.to_owned())).or_default() += by;
        Ok(())
    }

    async fn counts(&self, day: NaiveDate) -> Result<BTreeMap<String, i64>, StoreError> {
        self.enter()?;
        Ok(lock(&self.counts).iter().filter(|((d, _), _)| *d == day).map(|((_, n), v)| (n.clone(), *v)).collect())
    }
}

/// A robot that records what it got and when, answers what it is told (sent by default), and
/// refuses — as DingTalk does with 410100 — a 21st message within 60 seconds of its clock.
pub struct MemoryRobot {
    clock: Arc<dyn Clock>,
    got: Mutex<Vec<(DateTime<Utc>, AlertMessage)>>,
    script: Mutex<VecDeque<RobotOutcome>>,
    over_limit: Mutex<u32>,
    calls: Mutex<u32>,
}

impl MemoryRobot {
    /// Sends attempted, whatever their outcome.
    pub fn calls(&self) -> u32 {
        *lock(&self.calls)
    }

    /// The messages it accepted, in order.
    pub fn messages(&self) -> Vec<AlertMessage> {
        lock(&self.got).iter().map(|(_, m)| m.clone()).collect()
    }

    /// Messages that arrived over the 20-a-minute limit (each refused).
    pub fn over_limit(&self) -> u32 {
        *lock(&self.over_limit)
    }

    /// The next sends answer these outcomes, in order.
    pub fn answer(&self, outcomes: impl IntoIterator<Item = RobotOutcome>) {
        lock(&self.script).extend(outcomes);
    }
}

#[async_trait]
impl Robot for MemoryRobot {
    async fn send(&self, message: &AlertMessage) -> RobotOutcome {
        let now = self.clock.now();
        *lock(&self.calls) += 1;
        if let Some(outcome) = lock(&self.script).pop_front() {
            return outcome;
        }
        let mut got = lock(&self.got);
        if got.iter().filter(|(t, _)| *t > now - Duration::seconds(60)).count() >= 20 {
            *lock(&self.over_limit) += 1;
            return RobotOutcome::RateLimited { retry_after: Duration::minutes(10) };
        }
        got.push((now, message.clone()));
        RobotOutcome::Sent
    }
}

/// Robots by name; a name can also be marked malformed.
pub struct MemoryRobots {
    clock: Arc<dyn Clock>,
    robots: Mutex<HashMap<String, Arc<MemoryRobot>>>,
    broken: Mutex<HashMap<String, RobotLookupError>>,
}

impl MemoryRobots {
    /// No robots yet; their clocks are `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, robots: Mutex::default(), broken: Mutex::default() }
    }

    /// Adds (or returns) the robot `name`.
    pub fn add(&self, name: &str) -> Arc<MemoryRobot> {
        lock(&self.robots)
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(MemoryRobot {
                    clock: self.clock.clone(),
                    got: Mutex::default(),
                    script: Mutex::default(),
                    over_limit: Mutex::default(),
                    calls: Mutex::default(),
                })
            })
            .clone()
    }

    /// Makes looking up `name` fail with `error`.
    pub fn break_robot(&self, name: &str, error: RobotLookupError) {
        lock(&self.broken).insert(name.to_owned(), error);
    }

    /// The messages robot `name` accepted.
    pub fn messages(&self, name: &str) -> Vec<AlertMessage> {
        lock(&self.robots).get(name).map(|r| r.messages()).unwrap_or_default()
    }
}

#[async_trait]
impl Robots for MemoryRobots {
    async fn robot(&self, name: &str) -> Result<Arc<dyn Robot>, RobotLookupError> {
        if let Some(error) = lock(&self.broken).get(name) {
            return Err(error.clone());
        }
        lock(&self.robots).get(name).map(|r| r.clone() as Arc<dyn Robot>).ok_or(RobotLookupError::NotConfigured)
    }
}

/// An SMS provider in memory: configured or not, templates by name, scripted outcomes; records
/// each send with the number masked.
#[derive(Default)]
pub struct MemorySms {
    configured: Mutex<bool>,
    templates: Mutex<Vec<String>>,
    script: Mutex<VecDeque<SmsOutcome>>,
    sent: Mutex<Vec<(String, String, SmsNotice)>>,
}

impl MemorySms {
    /// Configures the provider with these template names.
    pub fn configure(&self, templates: &[&str]) {
        *lock(&self.configured) = true;
        *lock(&self.templates) = templates.iter().map(|t| (*t).to_owned()).collect();
    }

    /// The next sends answer these outcomes, in order (then `Sent`).
    pub fn answer(&self, outcomes: impl IntoIterator<Item = SmsOutcome>) {
        lock(&self.script).extend(outcomes);
    }

    /// Every call to the provider: (masked number, notice id, notice), in order.
    pub fn calls(&self) -> Vec<(String, String, SmsNotice)> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl SmsProvider for MemorySms {
    async fn ready(&self, template: &str) -> Result<(), SmsNotReady> {
        if !*lock(&self.configured) {
            return Err(SmsNotReady::NoProvider);
        }
        if !lock(&self.templates).iter().any(|t| t == template) {
            return Err(SmsNotReady::NoTemplate(template.to_owned()));
        }
        Ok(())
    }

    async fn send(&self, to: &MobileNumber, notice: &SmsNotice) -> SmsOutcome {
        lock(&self.sent).push((to.masked(), notice.notice_id.clone(), notice.clone()));
        lock(&self.script)
            .pop_front()
            .unwrap_or(SmsOutcome::Sent { receipt: Some(format!("biz-{}", notice.notice_id)) })
    }
}

/// Customers' contacts in memory.
#[derive(Default)]
pub struct MemoryContacts {
    mobiles: Mutex<HashMap<String, MobileNumber>>,
}

impl MemoryContacts {
    /// Sets a customer's number.
    pub fn set(&self, customer: &str, mobile: &str) {
        lock(&self.mobiles).insert(customer.to_owned(), MobileNumber::new(mobile));
    }
}

#[async_trait]
impl Contacts for MemoryContacts {
    async fn mobile(&self, customer: &str) -> Result<Option<MobileNumber>, StoreError> {
        Ok(lock(&self.mobiles).get(customer).cloned())
    }
}

/// A dead-letter queue in memory: written through [`Queue`], read back through [`DeadLetters`].
#[derive(Default)]
pub struct MemoryDeadLetters {
    messages: Mutex<Vec<(u64, OutboundMessage, bool)>>,
    next: Mutex<u64>,
}

impl MemoryDeadLetters {
    /// What is in the queue now (handled or not), oldest first.
    pub fn messages(&self) -> Vec<OutboundMessage> {
        lock(&self.messages).iter().map(|(_, m, _)| m.clone()).collect()
    }
}

#[async_trait]
impl Queue for MemoryDeadLetters {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        let mut stored = lock(&self.messages);
        let mut next = lock(&self.next);
        for message in messages {
            *next += 1;
            stored.push((*next, message.clone(), false));
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn receive(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError> {
        let mut stored = lock(&self.messages);
        let mut out = Vec::new();
        for (handle, message, hidden) in stored.iter_mut().filter(|(_, _, hidden)| !*hidden).take(max as usize) {
            *hidden = true;
            out.push(DeadLetter {
                body: message.body.clone(),
                attributes: message.attributes.clone(),
                handle: handle.to_string(),
            });
        }
        Ok(out)
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        lock(&self.messages).retain(|(h, _, _)| h.to_string() != handle);
        Ok(())
    }

    async fn release(&self, handle: &str) -> Result<(), QueueError> {
        for (h, _, hidden) in lock(&self.messages).iter_mut() {
            if h.to_string() == handle {
                *hidden = false;
            }
        }
        Ok(())
    }
}
