//! In-process implementations of every port, with the same contract as the AWS adapters
//! (`contract` runs against both). The domain's tests run on these.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined};
use crate::model::counters::{CounterAdd, DayCounters, StoredReport, valid_counter_name};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Source};
use crate::model::order::Order;
use crate::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite, Unpublished};
use crate::model::signal::{AddressSign, SignalRecord};
use crate::model::stock::{ReleaseOutcome, Reservation};
use crate::model::sync::{Checkpoint, Claim as SyncClaim, Feed, Lease, Subscription, TokenRecord};
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
    outbox: BTreeMap<(OrderKey, String), (u16, Unpublished)>,
    due: BTreeMap<(OrderKey, DueKind), DueMarker>,
    reservations: BTreeMap<(OrderKey, LineId), Reservation>,
    counters: BTreeMap<(Source, NaiveDate, u16), BTreeMap<String, i64>>,
    reports: BTreeMap<(String, String), StoredReport>,
    /// Daily markers: (claimant, claimed at, published).
    daily: BTreeMap<crate::ports::DailyMarker, (String, DateTime<Utc>, bool)>,
    signals: BTreeMap<(String, DateTime<Utc>, MessageId), SignalRecord>,
    address_signs: BTreeMap<(String, DateTime<Utc>, OrderKey), AddressSign>,
    proxy: BTreeMap<(String, String), u32>,
    counted_once: std::collections::BTreeSet<String>,
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

    /// The tokens counters were added once for ([`Stats::add_once`]).
    pub fn counted_once(&self) -> Vec<String> {
        lock(&self.state).counted_once.iter().cloned().collect()
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
        for event in &write.outbox {
            let entry =
                Unpublished { key: write.key.clone(), written_at: write.history.applied_at, event: event.clone() };
            state.outbox.insert((write.key.clone(), event.id()), (write.shard, entry));
        }
        Ok(())
    }

    async fn keep(
        &self,
        key: &OrderKey,
        shard: u16,
        events: &[DomainEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        for event in events {
            let entry = Unpublished { key: key.clone(), written_at: at, event: event.clone() };
            state.outbox.entry((key.clone(), event.id())).or_insert((shard, entry));
        }
        Ok(())
    }

    async fn published(&self, entries: &[(OrderKey, String)]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        for entry in entries {
            state.outbox.remove(entry);
        }
        Ok(())
    }

    async fn unpublished(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Unpublished>, StoreError> {
        let state = lock(&self.state);
        let mut items: Vec<(String, Unpublished)> = state
            .outbox
            .iter()
            .filter(|(_, (s, e))| *s == shard && e.written_at <= until)
            .map(|((key, id), (_, e))| {
                (format!("{}#{key}#{id}", e.written_at.format("%Y-%m-%dT%H:%M:%S%.3fZ")), e.clone())
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page(items, cursor, limit))
    }

    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        Ok(lock(&self.state).history.get(&(key.clone(), history_sort_key(event_time, message_id))).cloned())
    }

    async fn clear_due(
        &self,
        key: &OrderKey,
        kind: DueKind,
        due_at: DateTime<Utc>,
        counters: &[CounterAdd],
    ) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(counters)?;
        let mut state = lock(&self.state);
        let slot = (key.clone(), kind);
        if state.due.get(&slot).is_some_and(|m| m.due_at == due_at) {
            state.due.remove(&slot);
            apply_counters(&mut state, counters);
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
        lines: &[LineId],
        at: DateTime<Utc>,
        reason: &str,
        counters: &[CounterAdd],
    ) -> Result<ReleaseOutcome, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(counters)?;
        let mut state = lock(&self.state);
        for line in lines {
            match state.reservations.get(&(key.clone(), line.clone())) {
                None => return Ok(ReleaseOutcome::NotReserved),
                Some(r) if r.released_at.is_some() => return Ok(ReleaseOutcome::AlreadyReleased),
                Some(_) => {}
            }
        }
        for line in lines {
            if let Some(r) = state.reservations.get_mut(&(key.clone(), line.clone())) {
                r.released_at = Some(at);
                r.released_by = Some(reason.to_owned());
            }
        }
        apply_counters(&mut state, counters);
        Ok(ReleaseOutcome::Released)
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

    async fn add_once(&self, token: &str, adds: &[CounterAdd]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        check_counters(adds)?;
        let mut state = lock(&self.state);
        if state.counted_once.insert(token.to_owned()) {
            apply_counters(&mut state, adds);
        }
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

    async fn claim_daily(
        &self,
        marker: &crate::ports::DailyMarker,
        claimant: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.state);
        let free = match state.daily.get(marker) {
            None => true,
            Some((holder, at, published)) => !published && (holder == claimant || *at < now - lease),
        };
        if free {
            state.daily.insert(marker.clone(), (claimant.to_owned(), now, false));
        }
        Ok(free)
    }

    async fn confirm_daily(&self, marker: &crate::ports::DailyMarker, claimant: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        if let Some((holder, _, published)) = lock(&self.state).daily.get_mut(marker)
            && holder == claimant
        {
            *published = true;
        }
        Ok(())
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

/// A dedupe record: the archived callback, and who holds it until when (`None`: done).
struct Record {
    accepted: Accepted,
    attempt: String,
    lease_until: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct InboxState {
    accepted: HashMap<(Source, ShopId, MessageId), Record>,
    quarantine: BTreeMap<String, Quarantined>,
    quota: HashMap<(Source, String, String), u32>,
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

fn record_key(accepted: &Accepted) -> (Source, ShopId, MessageId) {
    (accepted.callback.source, accepted.callback.shop.clone(), accepted.message_id.clone())
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn claim(
        &self,
        accepted: &Accepted,
        attempt: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let mut state = lock(&self.state);
        let key = record_key(accepted);
        match state.accepted.get(&key) {
            None => {}
            Some(Record { lease_until: None, .. }) => return Ok(Claim::Done),
            Some(Record { attempt: holder, .. }) if holder == attempt => return Ok(Claim::Claimed),
            Some(Record { lease_until: Some(until), .. }) if *until >= now => {
                return Ok(Claim::InFlight { until: *until });
            }
            Some(_) => {}
        }
        state.accepted.insert(
            key,
            Record { accepted: accepted.clone(), attempt: attempt.to_owned(), lease_until: Some(lease_until) },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        if let Some(record) = lock(&self.state).accepted.get_mut(&record_key(accepted))
            && record.attempt == attempt
        {
            record.lease_until = None;
        }
        Ok(())
    }

    async fn abandon(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = record_key(accepted);
        if state.accepted.get(&key).is_some_and(|r| r.attempt == attempt && r.lease_until.is_some()) {
            state.accepted.remove(&key);
        }
        Ok(())
    }

    async fn archived(
        &self,
        source: Source,
        shop: &ShopId,
        message_id: &MessageId,
    ) -> Result<Option<Accepted>, StoreError> {
        Ok(lock(&self.state).accepted.get(&(source, shop.clone(), message_id.clone())).map(|r| r.accepted.clone()))
    }

    async fn quarantine(
        &self,
        quarantined: &Quarantined,
        quota_per_hour: u32,
    ) -> Result<QuarantineOutcome, StoreError> {
        let mut state = lock(&self.state);
        let cb = &quarantined.callback;
        let hour = cb.received_at.format("%Y-%m-%dT%H").to_string();
        let used = state.quota.entry((cb.source, quarantined.bucket.clone(), hour)).or_default();
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

/// Report pages in memory: keeps each page by key; links are `memory://<key>`, valid 7 days
/// from the clock given; can be told to fail.
pub struct MemoryPages {
    pages: Mutex<BTreeMap<String, String>>,
    now: chrono::DateTime<chrono::Utc>,
    fail_next: Mutex<Option<String>>,
}

impl MemoryPages {
    /// Pages whose links are signed at `now`.
    pub fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self { pages: Mutex::new(BTreeMap::new()), now, fail_next: Mutex::new(None) }
    }

    /// The page stored under `key`.
    pub fn page(&self, key: &str) -> Option<String> {
        lock(&self.pages).get(key).cloned()
    }

    /// The keys stored.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.pages).keys().cloned().collect()
    }

    /// Makes the next put fail.
    pub fn fail_next(&self, reason: &str) {
        *lock(&self.fail_next) = Some(reason.to_owned());
    }
}

#[async_trait]
impl crate::ports::ReportPages for MemoryPages {
    async fn put_page(&self, key: &str, html: &str) -> Result<crate::ports::PageLink, StoreError> {
        if let Some(reason) = lock(&self.fail_next).take() {
            return Err(StoreError::Unavailable(reason));
        }
        lock(&self.pages).insert(key.to_owned(), html.to_owned());
        Ok(crate::ports::PageLink {
            key: key.to_owned(),
            url: format!("memory://{key}"),
            expires_at: self.now + chrono::Duration::days(7),
        })
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
    /// The daily markers claimed so far (tests).
    pub fn daily_markers(&self) -> Vec<crate::ports::DailyMarker> {
        lock(&self.state).daily.keys().cloned().collect()
    }

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

/// The platforms' order lines in memory ([`crate::ports::platform::OrderLines`]): the lines set
/// per order, `NotFound` for the rest; `fail` makes every call fail (a platform outage).
#[derive(Default)]
pub struct MemoryLines {
    lines: Mutex<HashMap<OrderKey, Vec<crate::model::stock::OrderLine>>>,
    failing: std::sync::atomic::AtomicBool,
    calls: AtomicUsize,
}

impl MemoryLines {
    /// The platform's lines of `key`.
    pub fn set(&self, key: &OrderKey, lines: Vec<crate::model::stock::OrderLine>) {
        lock(&self.lines).insert(key.clone(), lines);
    }

    /// One line per `(line id, sku, qty)` of `key`.
    pub fn set_simple(&self, key: &OrderKey, lines: &[(&str, &str, u32)]) {
        let lines = lines
            .iter()
            .filter_map(|(line, sku, qty)| {
                Some(crate::model::stock::OrderLine {
                    line: LineId::parse(line).ok()?,
                    sku: crate::model::ids::Sku::parse(sku).ok()?,
                    qty: *qty,
                })
            })
            .collect();
        self.set(key, lines);
    }

    /// Every call fails (or succeeds again).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl crate::ports::platform::OrderLines for MemoryLines {
    async fn order_lines(
        &self,
        key: &OrderKey,
    ) -> Result<Vec<crate::model::stock::OrderLine>, crate::ports::platform::QueryError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) {
            return Err(crate::ports::platform::QueryError::Timeout);
        }
        lock(&self.lines).get(key).cloned().ok_or(crate::ports::platform::QueryError::NotFound)
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
        if record.version != expected_version
            || record.lease.as_ref().is_some_and(|l| l.until > now && l.owner != lease.owner)
        {
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
    ) -> Result<SyncClaim, StoreError> {
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
            return Ok(SyncClaim::Done);
        }
        if entry.1.as_ref().is_some_and(|l| l.until > now && l.owner != lease.owner) {
            return Ok(SyncClaim::Busy);
        }
        entry.0.attempts += 1;
        entry.1 = Some(lease.clone());
        Ok(SyncClaim::Claimed(entry.0.clone()))
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
