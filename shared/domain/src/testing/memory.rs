//! In-process implementations of every port, with the same contract as the AWS adapters
//! (`contract` runs against both). The domain's tests run on these.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::model::callback::{AcceptOutcome, Accepted, QuarantineOutcome, Quarantined};
use crate::model::counters::{CounterAdd, DayCounters, StoredReport, valid_counter_name};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Source};
use crate::model::order::Order;
use crate::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::model::signal::{AddressSign, SignalRecord};
use crate::model::stock::{ReleaseOutcome, Reservation};
use crate::model::sync::{Checkpoint, Claim, Feed, Lease, Subscription, TokenRecord};
use crate::ports::Page;
use crate::ports::sync::{CheckpointStore, Roster, SubscriptionStore, SummaryMarks, TokenLedger};
use crate::ports::{
    EventPublisher, Inbox, InventoryStore, OrderStore, OutboundMessage, PublishError, Queue, QueueError, Secrets,
    SecretsError, SignalStore, Stats, StoreError,
};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock only happens in a failing test; keep going with the data.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sort key of a history entry: oldest first, then by message id.
pub fn history_sort_key(event_time: DateTime<Utc>, message_id: &MessageId) -> String {
    format!("H#{}#{}", event_time.format("%Y-%m-%dT%H:%M:%S%.3fZ"), message_id)
}

/// The sort key of a due marker in its index: earliest first.
pub fn due_sort_key(due_at: DateTime<Utc>) -> String {
    due_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[derive(Default)]
struct StoreState {
    orders: HashMap<OrderKey, Order>,
    history: BTreeMap<(OrderKey, String), HistoryEntry>,
    due: BTreeMap<(OrderKey, DueKind), DueMarker>,
    reservations: BTreeMap<(OrderKey, LineId), Reservation>,
    counters: BTreeMap<(Source, NaiveDate, u16), BTreeMap<String, i64>>,
    reports: BTreeMap<(String, String), StoredReport>,
    signals: BTreeMap<(String, DateTime<Utc>, MessageId), SignalRecord>,
    address_signs: BTreeMap<(String, DateTime<Utc>, OrderKey), AddressSign>,
    proxy: BTreeMap<(String, String), u32>,
}

/// Orders, reservations and stats in memory (one struct, as one account holds the tables).
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
    writes: AtomicUsize,
}

impl MemoryStore {
    /// How many write calls succeeded or failed (commits, adds, releases).
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
}

fn check_counters(adds: &[CounterAdd]) -> Result<(), StoreError> {
    match adds.iter().find(|add| !valid_counter_name(&add.name)) {
        Some(add) => Err(StoreError::Rejected(format!("invalid counter name `{}`", add.name))),
        None => Ok(()),
    }
}

fn apply_counters(state: &mut StoreState, adds: &[CounterAdd]) {
    for add in adds {
        *state.counters.entry((add.channel, add.day, add.shard)).or_default().entry(add.name.clone()).or_default() +=
            add.by;
    }
}

fn page<T: Clone>(items: Vec<(String, T)>, cursor: Option<&str>, limit: u32) -> Page<T> {
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let mut rest = items.into_iter().filter(|(k, _)| cursor.is_none_or(|c| k.as_str() > c));
    let chunk: Vec<(String, T)> = rest.by_ref().take(limit).collect();
    let next = if rest.next().is_some() { chunk.last().map(|(k, _)| k.clone()) } else { None };
    Page { items: chunk.into_iter().map(|(_, v)| v).collect(), next }
}

#[async_trait]
impl OrderStore for MemoryStore {
    async fn get(&self, key: &OrderKey) -> Result<Option<Order>, StoreError> {
        Ok(lock(&self.state).orders.get(key).cloned())
    }

    async fn commit(&self, write: &OrderWrite) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(&write.counters)?;
        let mut state = lock(&self.state);
        let history_key = (write.key.clone(), history_sort_key(write.history.event_time, &write.history.message_id));
        if state.history.contains_key(&history_key) {
            return Err(StoreError::Duplicate);
        }
        if let Some(order) = &write.order {
            let stored = state.orders.get(&write.key).map_or(0, |o| o.version);
            if stored != write.expected_version || order.version != write.expected_version + 1 {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(order) = &write.order {
            state.orders.insert(write.key.clone(), order.clone());
        }
        state.history.insert(history_key, write.history.clone());
        for change in &write.due {
            match change {
                DueChange::Set(marker) => {
                    state.due.insert((write.key.clone(), marker.kind), marker.clone());
                }
                DueChange::Clear(kind) => {
                    state.due.remove(&(write.key.clone(), *kind));
                }
            }
        }
        apply_counters(&mut state, &write.counters);
        Ok(())
    }

    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        Ok(lock(&self.state).history.get(&(key.clone(), history_sort_key(event_time, message_id))).cloned())
    }

    async fn clear_due(&self, key: &OrderKey, kind: DueKind, due_at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let slot = (key.clone(), kind);
        if state.due.get(&slot).is_some_and(|m| m.due_at == due_at) {
            state.due.remove(&slot);
            return Ok(true);
        }
        Ok(false)
    }

    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        lock(&self.state).due.insert((marker.key.clone(), marker.kind), marker.clone());
        Ok(())
    }

    async fn history(
        &self,
        key: &OrderKey,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let items = lock(&self.state)
            .history
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|((_, sk), entry)| (sk.clone(), entry.clone()))
            .collect();
        Ok(page(items, cursor, limit))
    }

    async fn due(
        &self,
        kind: DueKind,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DueMarker>, StoreError> {
        let mut items: Vec<(String, DueMarker)> = lock(&self.state)
            .due
            .values()
            .filter(|m| m.kind == kind && m.shard == shard && m.due_at <= until)
            .map(|m| (format!("{}#{}", due_sort_key(m.due_at), m.key), m.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page(items, cursor, limit))
    }
}

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn reserve(&self, reservations: &[Reservation]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        for r in reservations {
            state.reservations.entry((r.key.clone(), r.line.clone())).or_insert_with(|| r.clone());
        }
        Ok(())
    }

    async fn release(
        &self,
        key: &OrderKey,
        line: &LineId,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<ReleaseOutcome, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        Ok(match state.reservations.get_mut(&(key.clone(), line.clone())) {
            None => ReleaseOutcome::NotReserved,
            Some(r) if r.released_at.is_some() => ReleaseOutcome::AlreadyReleased,
            Some(r) => {
                r.released_at = Some(at);
                r.released_by = Some(reason.to_owned());
                ReleaseOutcome::Released
            }
        })
    }

    async fn reservations(&self, key: &OrderKey) -> Result<Vec<Reservation>, StoreError> {
        Ok(lock(&self.state).reservations.iter().filter(|((k, _), _)| k == key).map(|(_, r)| r.clone()).collect())
    }
}

#[async_trait]
impl Stats for MemoryStore {
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(adds)?;
        apply_counters(&mut lock(&self.state), adds);
        Ok(())
    }

    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError> {
        let state = lock(&self.state);
        let mut days: BTreeMap<NaiveDate, DayCounters> = BTreeMap::new();
        for ((source, day, _), counters) in &state.counters {
            if *source != channel || day.year() != month_of.year() || day.month() != month_of.month() {
                continue;
            }
            let entry = days.entry(*day).or_insert_with(|| DayCounters { day: Some(*day), ..Default::default() });
            for (name, value) in counters {
                *entry.counters.entry(name.clone()).or_default() += value;
            }
        }
        Ok(days.into_values().collect())
    }

    async fn put_report(&self, report: &StoredReport) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        lock(&self.state).reports.insert((report.kind.clone(), report.period.clone()), report.clone());
        Ok(())
    }

    async fn report(&self, kind: &str, period: &str) -> Result<Option<StoredReport>, StoreError> {
        Ok(lock(&self.state).reports.get(&(kind.to_owned(), period.to_owned())).cloned())
    }
}

#[async_trait]
impl SignalStore for MemoryStore {
    async fn record_signal(
        &self,
        customer: &str,
        signal: &SignalRecord,
        counters: &[CounterAdd],
    ) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(counters)?;
        let mut state = lock(&self.state);
        let key = (customer.to_owned(), signal.at, signal.message_id.clone());
        if state.signals.contains_key(&key) {
            return Ok(());
        }
        state.signals.insert(key, signal.clone());
        apply_counters(&mut state, counters);
        Ok(())
    }

    async fn signals(
        &self,
        customer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SignalRecord>, StoreError> {
        Ok(lock(&self.state)
            .signals
            .iter()
            .filter(|((c, at, _), _)| c == customer && *at >= from && *at <= to)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn record_sign(
        &self,
        addr_key: &str,
        month: &str,
        sign: &AddressSign,
        proxy: bool,
    ) -> Result<u32, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let key = (addr_key.to_owned(), sign.at, sign.order.clone());
        let fresh = !state.address_signs.contains_key(&key);
        state.address_signs.insert(key, sign.clone());
        let count = state.proxy.entry((addr_key.to_owned(), month.to_owned())).or_default();
        if fresh && proxy {
            *count += 1;
        }
        Ok(*count)
    }

    async fn proxy_receipts(&self, addr_key: &str, month: &str) -> Result<u32, StoreError> {
        Ok(lock(&self.state).proxy.get(&(addr_key.to_owned(), month.to_owned())).copied().unwrap_or(0))
    }

    async fn address_signs(&self, addr_key: &str, n: u32) -> Result<Vec<AddressSign>, StoreError> {
        Ok(lock(&self.state)
            .address_signs
            .iter()
            .rev()
            .filter(|((a, _, _), _)| a == addr_key)
            .take(usize::try_from(n).unwrap_or(usize::MAX))
            .map(|(_, s)| s.clone())
            .collect())
    }
}

#[derive(Default)]
struct InboxState {
    accepted: HashMap<(Source, MessageId), Accepted>,
    quarantine: BTreeMap<String, Quarantined>,
    quota: HashMap<(Source, ShopId, String), u32>,
}

/// Callback inbox in memory.
#[derive(Default)]
pub struct MemoryInbox {
    state: Mutex<InboxState>,
}

fn quarantine_sort_key(q: &Quarantined) -> String {
    format!(
        "{}#{}#{}#{}",
        q.callback.source,
        q.callback.shop,
        q.callback.received_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        q.id
    )
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn accept(&self, accepted: &Accepted) -> Result<AcceptOutcome, StoreError> {
        let mut state = lock(&self.state);
        let key = (accepted.callback.source, accepted.message_id.clone());
        if state.accepted.contains_key(&key) {
            return Ok(AcceptOutcome::Duplicate);
        }
        state.accepted.insert(key, accepted.clone());
        Ok(AcceptOutcome::New)
    }

    async fn archived(&self, source: Source, message_id: &MessageId) -> Result<Option<Accepted>, StoreError> {
        Ok(lock(&self.state).accepted.get(&(source, message_id.clone())).cloned())
    }

    async fn forget(&self, source: Source, message_id: &MessageId) -> Result<(), StoreError> {
        lock(&self.state).accepted.remove(&(source, message_id.clone()));
        Ok(())
    }

    async fn quarantine(
        &self,
        quarantined: &Quarantined,
        quota_per_hour: u32,
    ) -> Result<QuarantineOutcome, StoreError> {
        let mut state = lock(&self.state);
        let cb = &quarantined.callback;
        let hour = cb.received_at.format("%Y-%m-%dT%H").to_string();
        let used = state.quota.entry((cb.source, cb.shop.clone(), hour)).or_default();
        if *used >= quota_per_hour {
            return Ok(QuarantineOutcome::OverQuota);
        }
        *used += 1;
        state.quarantine.insert(quarantine_sort_key(quarantined), quarantined.clone());
        Ok(QuarantineOutcome::Stored)
    }

    async fn quarantined(
        &self,
        source: Source,
        shop: &ShopId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Quarantined>, StoreError> {
        let items = lock(&self.state)
            .quarantine
            .iter()
            .filter(|(_, q)| {
                q.callback.source == source
                    && &q.callback.shop == shop
                    && q.callback.received_at >= from
                    && q.callback.received_at < to
            })
            .map(|(k, q)| (k.clone(), q.clone()))
            .collect();
        Ok(page(items, cursor, limit))
    }

    async fn release_quarantined(&self, quarantined: &Quarantined) -> Result<(), StoreError> {
        lock(&self.state).quarantine.remove(&quarantine_sort_key(quarantined));
        Ok(())
    }
}

/// Event bus in memory: keeps what was published; can be told to fail.
#[derive(Default)]
pub struct MemoryPublisher {
    published: Mutex<Vec<DomainEvent>>,
    calls: AtomicUsize,
    fail_next: Mutex<Option<String>>,
}

impl MemoryPublisher {
    /// Everything published so far.
    pub fn published(&self) -> Vec<DomainEvent> {
        lock(&self.published).clone()
    }

    /// Number of publish calls made to the bus (each carries at most 10 events).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Makes the next call fail as a whole.
    pub fn fail_next(&self, reason: &str) {
        *lock(&self.fail_next) = Some(reason.to_owned());
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        if let Some(reason) = lock(&self.fail_next).take() {
            return Err(PublishError::Unavailable(reason));
        }
        // Same batching as the bus adapter: at most 10 entries per request.
        self.calls.fetch_add(events.len().div_ceil(10), Ordering::Relaxed);
        lock(&self.published).extend_from_slice(events);
        Ok(Vec::new())
    }
}

/// A queue in memory.
#[derive(Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<OutboundMessage>>,
    fail_next: Mutex<Option<String>>,
    fail_calls: Mutex<u32>,
}

impl MemoryQueue {
    /// Takes every message sent so far.
    pub fn drain(&self) -> Vec<OutboundMessage> {
        std::mem::take(&mut *lock(&self.messages))
    }

    /// Makes the next call fail as a whole.
    pub fn fail_next(&self, reason: &str) {
        *lock(&self.fail_next) = Some(reason.to_owned());
    }

    /// Makes the next `n` calls fail as a whole.
    pub fn fail_next_calls(&self, n: u32) {
        *lock(&self.fail_calls) = n;
    }
}

/// SQS's limit on one message (the emulator enforces the classic 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        if let Some(reason) = lock(&self.fail_next).take() {
            return Err(QueueError::Unavailable(reason));
        }
        {
            let mut calls = lock(&self.fail_calls);
            if *calls > 0 {
                *calls -= 1;
                return Err(QueueError::Unavailable("throttled".into()));
            }
        }
        if let Some(big) = messages.iter().find(|m| m.body.len() > MAX_MESSAGE_BYTES) {
            return Err(QueueError::TooLarge(big.body.len()));
        }
        lock(&self.messages).extend_from_slice(messages);
        Ok(Vec::new())
    }
}

/// Parameter store in memory.
#[derive(Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, String>>,
    reads: AtomicUsize,
}

impl MemorySecrets {
    /// Number of reads that reached the store.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.values).get(name).cloned())
    }

    async fn put(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        lock(&self.values).insert(name.to_owned(), value.to_owned());
        Ok(())
    }
}

impl MemoryStore {
    /// The write path's ports over this store (orders, inventory, counters, signals), `inbox`
    /// and `clock`: how a test builds a use case in one line.
    pub fn write_ports<'a>(
        &'a self,
        inbox: &'a MemoryInbox,
        clock: &'a dyn crate::ports::clock::Clock,
    ) -> crate::app::apply::WritePorts<'a> {
        crate::app::apply::WritePorts { orders: self, inventory: self, stats: self, signals: self, inbox, clock }
    }
}

#[derive(Default)]
struct SyncState {
    checkpoints: BTreeMap<(Source, ShopId, Feed), Checkpoint>,
    tokens: BTreeMap<(Source, ShopId), TokenRecord>,
    subscriptions: BTreeMap<(String, String), (Subscription, Option<Lease>)>,
    marks: BTreeMap<(Source, NaiveDate), ((i64, i64), u64)>,
}

/// order-sync's records in memory: checkpoints, the token ledger, subscriptions, summary marks.
#[derive(Default)]
pub struct MemorySync {
    state: Mutex<SyncState>,
    writes: AtomicUsize,
    reads: AtomicUsize,
}

impl MemorySync {
    /// Write calls so far (conditional ones included, whether they passed or not).
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }

    /// Read calls so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    /// A subscription record, for assertions.
    pub fn subscription(&self, carrier: &str, number: &str) -> Option<Subscription> {
        lock(&self.state).subscriptions.get(&(carrier.to_owned(), number.to_owned())).map(|(s, _)| s.clone())
    }
}

#[async_trait]
impl CheckpointStore for MemorySync {
    async fn roster(&self, source: Source) -> Result<Roster, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let state = lock(&self.state);
        Ok(Roster {
            tokens: state.tokens.values().filter(|t| t.source == source).cloned().collect(),
            checkpoints: state.checkpoints.values().filter(|c| c.source == source).cloned().collect(),
        })
    }

    async fn checkpoint(&self, source: Source, shop: &ShopId, feed: Feed) -> Result<Checkpoint, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.state)
            .checkpoints
            .get(&(source, shop.clone(), feed))
            .cloned()
            .unwrap_or_else(|| Checkpoint::new(source, shop.clone(), feed)))
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint, expected_version: u64) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let slot = (checkpoint.source, checkpoint.shop.clone(), checkpoint.feed);
        let stored = state.checkpoints.get(&slot).map_or(0, |c| c.version);
        if stored != expected_version || checkpoint.version != expected_version + 1 {
            return Err(StoreError::Conflict);
        }
        state.checkpoints.insert(slot, checkpoint.clone());
        Ok(())
    }
}

#[async_trait]
impl TokenLedger for MemorySync {
    async fn all(&self, source: Source) -> Result<Vec<TokenRecord>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.state).tokens.values().filter(|t| t.source == source).cloned().collect())
    }

    async fn token(&self, source: Source, shop: &ShopId) -> Result<Option<TokenRecord>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.state).tokens.get(&(source, shop.clone())).cloned())
    }

    async fn register(&self, record: &TokenRecord) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let slot = (record.source, record.shop.clone());
        if state.tokens.contains_key(&slot) {
            return Ok(false);
        }
        state.tokens.insert(slot, record.clone());
        Ok(true)
    }

    async fn lease(
        &self,
        source: Source,
        shop: &ShopId,
        expected_version: u64,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let Some(record) = state.tokens.get_mut(&(source, shop.clone())) else { return Ok(false) };
        if record.version != expected_version || record.lease.as_ref().is_some_and(|l| l.until > now) {
            return Ok(false);
        }
        record.lease = Some(lease.clone());
        Ok(true)
    }

    async fn commit(&self, record: &TokenRecord, owner: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let slot = (record.source, record.shop.clone());
        let held = state.tokens.get(&slot).and_then(|r| r.lease.as_ref()).is_some_and(|l| l.owner == owner);
        if !held {
            return Err(StoreError::Conflict);
        }
        state.tokens.insert(slot, TokenRecord { lease: None, ..record.clone() });
        Ok(())
    }

    async fn release(&self, source: Source, shop: &ShopId, owner: &str, error: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        if let Some(record) = state.tokens.get_mut(&(source, shop.clone()))
            && record.lease.as_ref().is_some_and(|l| l.owner == owner)
        {
            record.lease = None;
            record.last_error = Some(error.to_owned());
        }
        Ok(())
    }

    async fn warned(&self, source: Source, shop: &ShopId, day: NaiveDate) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let Some(record) = state.tokens.get_mut(&(source, shop.clone())) else { return Ok(false) };
        if record.warned_on == Some(day) {
            return Ok(false);
        }
        record.warned_on = Some(day);
        Ok(true)
    }
}

#[async_trait]
impl SubscriptionStore for MemorySync {
    async fn claim(
        &self,
        carrier: &str,
        number: &str,
        stopped_at: Option<DateTime<Utc>>,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let slot = (carrier.to_owned(), number.to_owned());
        let entry = state.subscriptions.entry(slot).or_insert_with(|| {
            (
                Subscription {
                    carrier: carrier.to_owned(),
                    number: number.to_owned(),
                    subscribed_at: None,
                    attempts: 0,
                },
                None,
            )
        });
        if let Some(at) = entry.0.subscribed_at
            && stopped_at.is_none_or(|stopped| at >= stopped)
        {
            return Ok(Claim::Done);
        }
        if entry.1.as_ref().is_some_and(|l| l.until > now && l.owner != lease.owner) {
            return Ok(Claim::Busy);
        }
        entry.0.attempts += 1;
        entry.1 = Some(lease.clone());
        Ok(Claim::Claimed(entry.0.clone()))
    }

    async fn subscribed(&self, carrier: &str, number: &str, owner: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        match state.subscriptions.get_mut(&(carrier.to_owned(), number.to_owned())) {
            Some(entry) if entry.1.as_ref().is_some_and(|l| l.owner == owner) => {
                entry.0.subscribed_at = Some(at);
                entry.1 = None;
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn failed(&self, carrier: &str, number: &str, owner: &str, _error: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        if let Some(entry) = state.subscriptions.get_mut(&(carrier.to_owned(), number.to_owned()))
            && entry.1.as_ref().is_some_and(|l| l.owner == owner)
        {
            entry.1 = None;
        }
        Ok(())
    }
}

#[async_trait]
impl SummaryMarks for MemorySync {
    async fn mark(&self, channel: Source, day: NaiveDate) -> Result<((i64, i64), u64), StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.state).marks.get(&(channel, day)).copied().unwrap_or(((0, 0), 0)))
    }

    async fn set_mark(
        &self,
        channel: Source,
        day: NaiveDate,
        reported: (i64, i64),
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let version = state.marks.get(&(channel, day)).map_or(0, |m| m.1);
        if version != expected_version {
            return Err(StoreError::Conflict);
        }
        state.marks.insert((channel, day), (reported, version + 1));
        Ok(())
    }
}
