//! Fault decorators over the ports, for soak tests: [`Faulty`] wraps any implementation of
//! [`OrderStore`], [`InventoryStore`], [`SignalStore`], [`Inbox`], [`Stats`], [`EventPublisher`],
//! [`Queue`], or order-sync's [`CheckpointStore`], [`TokenLedger`], [`SubscriptionStore`] and
//! [`SummaryMarks`] and, as a seeded [`FaultPlan`] says, makes a call fail the way a call to a real
//! store or queue fails:
//!
//! - [`Fault::Before`]: the request never arrived (a retryable error; nothing applied);
//! - [`Fault::After`]: the call was applied and its answer lost (the inner call runs, then the
//!   caller gets a retryable error);
//! - [`Fault::Conflict`]: a transaction conflict ([`StoreError::Conflict`]; only on the calls
//!   the DynamoDB adapters make as transactions);
//! - [`Fault::Throttle`]: throttled (a retryable error; nothing applied);
//! - [`Fault::Delay`]: applied, answered late ([`FaultPlan::delay`]);
//! - [`Fault::Hang`] / [`Fault::HangAfter`]: the answer never comes — before or after the call
//!   was applied — so only the caller's deadline ends it (`tokio::time::timeout` around a
//!   handler is the function killed at its timeout: the future is dropped);
//! - [`Fault::Partial`]: [`Queue::send`] and [`EventPublisher::publish`] only: some entries
//!   (at least one) fail; only the others are passed on, so exactly the entries reported
//!   successful went out.
//!
//! Every call also takes a latency drawn from [`FaultPlan::latency`] (zero by default), so that
//! concurrent callers interleave on a paused tokio clock as they would against real services.
//! Every injected fault is counted per operation and kind ([`Faults::counts`]); injection can be
//! switched off and on ([`Faults::set_enabled`]).
//!
//! Decisions are deterministic for a seed: the `n`-th decision for an operation
//! (`orders.commit`, `inbound.send`, …) is a pure function of (seed, operation, n). With
//! concurrent callers the sequence of decisions per operation is the same; which call gets which
//! follows the scheduling. No AWS type is used here.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::model::callback::{Accepted, Claim, QuarantineOutcome, Quarantined};
use crate::model::counters::{CounterAdd, DayCounters, StoredReport};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{LineId, MessageId, OrderKey, ShopId, Source};
use crate::model::order::Order;
use crate::model::record::{DueKind, DueMarker, HistoryEntry, OrderWrite, Unpublished};
use crate::model::signal::{AddressSign, SignalRecord};
use crate::model::stock::{ReleaseOutcome, Reservation};
use crate::model::sync::{Checkpoint, Claim as SubscriptionClaim, Feed, Lease, TokenRecord};
use crate::ports::sync::{CheckpointStore, Roster, SubscriptionStore, SummaryMarks, TokenLedger};
use crate::ports::{
    EventPublisher, Inbox, InventoryStore, OrderStore, OutboundMessage, Page, PublishError, Queue, QueueError,
    SignalStore, Stats, StoreError,
};

/// What a decorator does to one call instead of (or besides) passing it on.
///
/// The order of the variants is the order in which rates are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Not passed on; the caller gets a retryable error.
    Before,
    /// Passed on and applied; the caller gets a retryable error (the answer was lost).
    After,
    /// Not passed on; the caller gets [`StoreError::Conflict`]. Transactional calls only.
    Conflict,
    /// Not passed on; the caller gets a retryable "throttled" error.
    Throttle,
    /// Passed on and applied; the answer arrives after [`FaultPlan::delay`].
    Delay,
    /// Not passed on; the answer never comes.
    Hang,
    /// Passed on and applied; the answer never comes.
    HangAfter,
    /// Batch calls only: some entries fail, only the others are passed on.
    Partial,
}

impl Fault {
    /// Every kind, in drawing order.
    pub const ALL: [Fault; 8] = [
        Fault::Before,
        Fault::After,
        Fault::Conflict,
        Fault::Throttle,
        Fault::Delay,
        Fault::Hang,
        Fault::HangAfter,
        Fault::Partial,
    ];

    /// A short snake-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Before => "before",
            Fault::After => "after",
            Fault::Conflict => "conflict",
            Fault::Throttle => "throttle",
            Fault::Delay => "delay",
            Fault::Hang => "hang",
            Fault::HangAfter => "hang_after",
            Fault::Partial => "partial",
        }
    }

    /// The kind named `name` ([`Fault::name`]).
    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What kind of call an operation is: which faults can happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A read: nothing to apply.
    Read,
    /// A single write.
    Write,
    /// A write the DynamoDB adapters make as a transaction (it can conflict).
    Transaction,
    /// A batch of entries, each of which can fail on its own.
    Batch,
}

impl Call {
    fn allows(self, fault: Fault) -> bool {
        match fault {
            Fault::Conflict => self == Call::Transaction,
            Fault::Partial => self == Call::Batch,
            Fault::After | Fault::HangAfter => self != Call::Read,
            _ => true,
        }
    }
}

/// Which faults to inject, where and how often; deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    seed: u64,
    rates: BTreeMap<String, BTreeMap<Fault, f64>>,
    delay: Duration,
    latency: (Duration, Duration),
}

impl FaultPlan {
    /// A plan that injects nothing yet, with this seed, a [`Fault::Delay`] of 2 s and no latency.
    pub fn new(seed: u64) -> Self {
        Self { seed, rates: BTreeMap::new(), delay: Duration::from_secs(2), latency: (Duration::ZERO, Duration::ZERO) }
    }

    /// Injects `fault` into a fraction `rate` (clamped to 0..=1; NaN is 0) of the calls of
    /// `operation`: `port.method` (`orders.commit`), `port.*` or `*`. The most specific entry
    /// wins per kind. Kinds that cannot happen to an operation are skipped for it. One uniform
    /// draw per call is compared with the running sum of the rates in [`Fault::ALL`] order.
    pub fn rate(mut self, operation: &str, fault: Fault, rate: f64) -> Self {
        let rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self.rates.entry(operation.to_owned()).or_default().insert(fault, rate);
        self
    }

    /// How long a [`Fault::Delay`] holds the answer.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Every call takes between `min` and `max` (uniform), faults or not.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.latency = (min, max.max(min));
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn rate_of(&self, operation: &str, fault: Fault) -> f64 {
        let port = operation.split_once('.').map(|(port, _)| format!("{port}.*"));
        [Some(operation.to_owned()), port, Some("*".to_owned())]
            .into_iter()
            .flatten()
            .find_map(|key| self.rates.get(&key).and_then(|rates| rates.get(&fault)).copied())
            .unwrap_or(0.0)
    }
}

/// splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA
/// 2014): a small seeded generator, enough for test decisions.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finish(self.0)
    }

    /// A uniform draw in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniform integer in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A uniform integer in `[lo, hi]`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from(hi - lo).unwrap_or(u64::MAX).saturating_add(1);
        lo.saturating_add(i64::try_from(self.below(span)).unwrap_or(0))
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

// splitmix64's finaliser: a bijective mix.
fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix(z: u64) -> u64 {
    finish(z.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

// FNV-1a, 64 bit: stable across runs and platforms (std's hasher is not).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug, Default)]
struct State {
    draws: BTreeMap<String, u64>,
    injected: BTreeMap<(String, Fault), u64>,
    calls: BTreeMap<String, u64>,
}

/// A plan in use: the decisions taken so far and the faults injected, shared by every
/// decorator built over it.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    enabled: AtomicBool,
    state: Mutex<State>,
}

/// One call's decision.
struct Decision {
    fault: Option<Fault>,
    draw: u64,
    latency: Duration,
    delay: Duration,
}

impl Faults {
    /// Faults per `plan`, switched on.
    pub fn new(plan: FaultPlan) -> Self {
        Self { plan, enabled: AtomicBool::new(true), state: Mutex::new(State::default()) }
    }

    /// No faults and no latency: the decorators pass every call on.
    pub fn none() -> Self {
        Self::new(FaultPlan::new(0))
    }

    /// Switches injection on or off (latency stays).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Faults injected so far: (operation, kind) → count.
    pub fn counts(&self) -> BTreeMap<(String, Fault), u64> {
        self.lock().injected.clone()
    }

    /// Faults injected so far, per kind over every operation.
    pub fn by_kind(&self) -> BTreeMap<Fault, u64> {
        let mut out = BTreeMap::new();
        for ((_, fault), n) in &self.lock().injected {
            *out.entry(*fault).or_default() += n;
        }
        out
    }

    /// Every injected fault.
    pub fn total(&self) -> u64 {
        self.lock().injected.values().sum()
    }

    /// Calls made per operation (faulted or not).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Decides for the next call of `operation`.
    fn decide(&self, operation: &str, call: Call) -> Decision {
        let mut state = self.lock();
        *state.calls.entry(operation.to_owned()).or_default() += 1;
        let n = {
            let next = state.draws.entry(operation.to_owned()).or_default();
            *next += 1;
            *next - 1
        };
        let draw = mix(self.plan.seed ^ mix(fnv1a(operation) ^ mix(n)));
        let (min, max) = self.plan.latency;
        let spread = u64::try_from((max - min).as_micros()).unwrap_or(0);
        let latency = min + Duration::from_micros(if spread == 0 { 0 } else { mix(draw) % (spread + 1) });
        let fault = if self.is_enabled() {
            let u = unit(draw);
            let mut sum = 0.0;
            Fault::ALL.into_iter().filter(|f| call.allows(*f)).find(|f| {
                sum += self.plan.rate_of(operation, *f);
                u < sum
            })
        } else {
            None
        };
        if let Some(fault) = fault {
            *state.injected.entry((operation.to_owned(), fault)).or_default() += 1;
        }
        Decision { fault, draw, latency, delay: self.plan.delay }
    }
}

/// The errors a decorator produces, per port.
trait Injected: Sized {
    fn unavailable(what: &str) -> Self;
    fn conflict() -> Self {
        Self::unavailable("conflict")
    }
}

impl Injected for StoreError {
    fn unavailable(what: &str) -> Self {
        StoreError::Unavailable(format!("injected: {what}"))
    }
    fn conflict() -> Self {
        StoreError::Conflict
    }
}

impl Injected for QueueError {
    fn unavailable(what: &str) -> Self {
        QueueError::Unavailable(format!("injected: {what}"))
    }
}

impl Injected for PublishError {
    fn unavailable(what: &str) -> Self {
        PublishError::Unavailable(format!("injected: {what}"))
    }
}

/// A port implementation with faults injected per a shared [`Faults`].
pub struct Faulty<'a, P: ?Sized> {
    inner: &'a P,
    faults: &'a Faults,
    label: Option<&'static str>,
}

impl<'a, P: ?Sized> Faulty<'a, P> {
    /// Wraps `inner`; operations are named after the port (`orders.commit`, `inbox.claim`, …).
    pub fn new(inner: &'a P, faults: &'a Faults) -> Self {
        Self { inner, faults, label: None }
    }

    /// Wraps `inner`, naming its operations `label.method` (to tell queues apart:
    /// `inbound.send`, `notify.send`).
    pub fn named(inner: &'a P, faults: &'a Faults, label: &'static str) -> Self {
        Self { inner, faults, label: Some(label) }
    }

    fn operation(&self, port: &str, method: &str) -> String {
        format!("{}.{method}", self.label.unwrap_or(port))
    }

    /// Runs one call of `port.method` with whatever fault the plan decides.
    async fn call<T, E, F, Fut>(&self, port: &str, method: &str, kind: Call, inner: F) -> Result<T, E>
    where
        E: Injected,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let decision = self.faults.decide(&self.operation(port, method), kind);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        self.call_decided(decision, inner).await
    }
}

/// Which of `n` entries fail: each with probability 1/2, at least one.
fn failing(draw: u64, n: usize) -> BTreeSet<usize> {
    let mut out: BTreeSet<usize> = (0..n).filter(|i| mix(draw ^ mix(*i as u64 + 1)) & 1 == 1).collect();
    if out.is_empty() && n > 0 {
        out.insert(usize::try_from(draw % n as u64).unwrap_or(0));
    }
    out
}

#[async_trait]
impl<P: OrderStore + ?Sized> OrderStore for Faulty<'_, P> {
    async fn get(&self, key: &OrderKey) -> Result<Option<Order>, StoreError> {
        self.call("orders", "get", Call::Read, || self.inner.get(key)).await
    }

    async fn commit(&self, write: &OrderWrite) -> Result<(), StoreError> {
        self.call("orders", "commit", Call::Transaction, || self.inner.commit(write)).await
    }

    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        self.call("orders", "history_entry", Call::Read, || self.inner.history_entry(key, event_time, message_id)).await
    }

    async fn clear_due(
        &self,
        key: &OrderKey,
        kind: DueKind,
        due_at: DateTime<Utc>,
        counters: &[CounterAdd],
    ) -> Result<bool, StoreError> {
        self.call("orders", "clear_due", Call::Write, || self.inner.clear_due(key, kind, due_at, counters)).await
    }

    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError> {
        self.call("orders", "set_due", Call::Write, || self.inner.set_due(marker)).await
    }

    async fn history(
        &self,
        key: &OrderKey,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        self.call("orders", "history", Call::Read, || self.inner.history(key, cursor, limit)).await
    }

    async fn keep(
        &self,
        key: &OrderKey,
        shard: u16,
        events: &[DomainEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call("orders", "keep", Call::Write, || self.inner.keep(key, shard, events, at)).await
    }

    async fn published(&self, entries: &[(OrderKey, String)]) -> Result<(), StoreError> {
        self.call("orders", "published", Call::Write, || self.inner.published(entries)).await
    }

    async fn unpublished(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Unpublished>, StoreError> {
        self.call("orders", "unpublished", Call::Read, || self.inner.unpublished(shard, until, cursor, limit)).await
    }

    async fn due(
        &self,
        kind: DueKind,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DueMarker>, StoreError> {
        self.call("orders", "due", Call::Read, || self.inner.due(kind, shard, until, cursor, limit)).await
    }
}

#[async_trait]
impl<P: InventoryStore + ?Sized> InventoryStore for Faulty<'_, P> {
    async fn reserve(&self, reservations: &[Reservation]) -> Result<(), StoreError> {
        self.call("inventory", "reserve", Call::Write, || self.inner.reserve(reservations)).await
    }

    async fn release(
        &self,
        key: &OrderKey,
        lines: &[LineId],
        at: DateTime<Utc>,
        reason: &str,
        counters: &[CounterAdd],
    ) -> Result<ReleaseOutcome, StoreError> {
        self.call("inventory", "release", Call::Write, || self.inner.release(key, lines, at, reason, counters)).await
    }

    async fn reservations(&self, key: &OrderKey) -> Result<Vec<Reservation>, StoreError> {
        self.call("inventory", "reservations", Call::Read, || self.inner.reservations(key)).await
    }
}

#[async_trait]
impl<P: SignalStore + ?Sized> SignalStore for Faulty<'_, P> {
    async fn record_signal(
        &self,
        customer: &str,
        signal: &SignalRecord,
        counters: &[CounterAdd],
    ) -> Result<(), StoreError> {
        self.call("signals", "record_signal", Call::Transaction, || {
            self.inner.record_signal(customer, signal, counters)
        })
        .await
    }

    async fn signals(
        &self,
        customer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SignalRecord>, StoreError> {
        self.call("signals", "signals", Call::Read, || self.inner.signals(customer, from, to)).await
    }

    async fn record_sign(
        &self,
        addr_key: &str,
        month: &str,
        sign: &AddressSign,
        proxy: bool,
    ) -> Result<u32, StoreError> {
        self.call("signals", "record_sign", Call::Transaction, || self.inner.record_sign(addr_key, month, sign, proxy))
            .await
    }

    async fn proxy_receipts(&self, addr_key: &str, month: &str) -> Result<u32, StoreError> {
        self.call("signals", "proxy_receipts", Call::Read, || self.inner.proxy_receipts(addr_key, month)).await
    }

    async fn address_signs(&self, addr_key: &str, n: u32) -> Result<Vec<AddressSign>, StoreError> {
        self.call("signals", "address_signs", Call::Read, || self.inner.address_signs(addr_key, n)).await
    }
}

#[async_trait]
impl<P: Inbox + ?Sized> Inbox for Faulty<'_, P> {
    async fn claim(
        &self,
        accepted: &Accepted,
        attempt: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.call("inbox", "claim", Call::Write, || self.inner.claim(accepted, attempt, lease_until, now)).await
    }

    async fn complete(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        self.call("inbox", "complete", Call::Write, || self.inner.complete(accepted, attempt)).await
    }

    async fn complete_many(&self, accepted: &[&Accepted], attempt: &str) -> Result<(), StoreError> {
        self.call("inbox", "complete_many", Call::Transaction, || self.inner.complete_many(accepted, attempt)).await
    }

    async fn abandon(&self, accepted: &Accepted, attempt: &str) -> Result<(), StoreError> {
        self.call("inbox", "abandon", Call::Write, || self.inner.abandon(accepted, attempt)).await
    }

    async fn archived(
        &self,
        source: Source,
        shop: &ShopId,
        message_id: &MessageId,
    ) -> Result<Option<Accepted>, StoreError> {
        self.call("inbox", "archived", Call::Read, || self.inner.archived(source, shop, message_id)).await
    }

    async fn quarantine(
        &self,
        quarantined: &Quarantined,
        quota_per_hour: u32,
    ) -> Result<QuarantineOutcome, StoreError> {
        self.call("inbox", "quarantine", Call::Write, || self.inner.quarantine(quarantined, quota_per_hour)).await
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
        self.call("inbox", "quarantined", Call::Read, || self.inner.quarantined(source, shop, from, to, cursor, limit))
            .await
    }

    async fn release_quarantined(&self, quarantined: &Quarantined) -> Result<(), StoreError> {
        self.call("inbox", "release_quarantined", Call::Write, || self.inner.release_quarantined(quarantined)).await
    }
}

#[async_trait]
impl<P: Stats + ?Sized> Stats for Faulty<'_, P> {
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError> {
        self.call("stats", "add", Call::Transaction, || self.inner.add(adds)).await
    }

    async fn add_once(&self, token: &str, adds: &[CounterAdd]) -> Result<(), StoreError> {
        self.call("stats", "add_once", Call::Transaction, || self.inner.add_once(token, adds)).await
    }

    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError> {
        self.call("stats", "month", Call::Read, || self.inner.month(channel, month_of)).await
    }

    async fn put_report(&self, report: &StoredReport) -> Result<(), StoreError> {
        self.call("stats", "put_report", Call::Write, || self.inner.put_report(report)).await
    }

    async fn report(&self, kind: &str, period: &str) -> Result<Option<StoredReport>, StoreError> {
        self.call("stats", "report", Call::Read, || self.inner.report(kind, period)).await
    }
}

#[async_trait]
impl<P: EventPublisher + ?Sized> EventPublisher for Faulty<'_, P> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        let decision = self.faults.decide(&self.operation("bus", "publish"), Call::Batch);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if decision.fault != Some(Fault::Partial) {
            return self.call_decided(decision, || self.inner.publish(events)).await;
        }
        let fail = failing(decision.draw, events.len());
        let (kept, positions): (Vec<DomainEvent>, Vec<usize>) =
            events.iter().cloned().enumerate().filter(|(i, _)| !fail.contains(i)).map(|(i, e)| (e, i)).unzip();
        let mut failed: BTreeSet<usize> = fail;
        if !kept.is_empty() {
            for inner_failed in self.inner.publish(&kept).await? {
                failed.extend(positions.get(inner_failed).copied());
            }
        }
        Ok(failed.into_iter().collect())
    }
}

#[async_trait]
impl<P: Queue + ?Sized> Queue for Faulty<'_, P> {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        let decision = self.faults.decide(&self.operation("queue", "send"), Call::Batch);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if decision.fault != Some(Fault::Partial) {
            return self.call_decided(decision, || self.inner.send(messages)).await;
        }
        let fail = failing(decision.draw, messages.len());
        let kept: Vec<OutboundMessage> =
            messages.iter().enumerate().filter(|(i, _)| !fail.contains(i)).map(|(_, m)| m.clone()).collect();
        let mut failed: BTreeSet<String> =
            messages.iter().enumerate().filter(|(i, _)| fail.contains(i)).map(|(_, m)| m.id.clone()).collect();
        if !kept.is_empty() {
            failed.extend(self.inner.send(&kept).await?);
        }
        Ok(failed.into_iter().collect())
    }
}

#[async_trait]
impl<P: CheckpointStore + ?Sized> CheckpointStore for Faulty<'_, P> {
    async fn roster(&self, source: Source) -> Result<Roster, StoreError> {
        self.call("sync", "roster", Call::Read, || self.inner.roster(source)).await
    }

    async fn checkpoint(&self, source: Source, shop: &ShopId, feed: Feed) -> Result<Checkpoint, StoreError> {
        self.call("sync", "checkpoint", Call::Read, || self.inner.checkpoint(source, shop, feed)).await
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint, expected_version: u64) -> Result<(), StoreError> {
        self.call("sync", "save_checkpoint", Call::Write, || self.inner.save_checkpoint(checkpoint, expected_version))
            .await
    }
}

#[async_trait]
impl<P: TokenLedger + ?Sized> TokenLedger for Faulty<'_, P> {
    async fn all(&self, source: Source) -> Result<Vec<TokenRecord>, StoreError> {
        self.call("tokens", "all", Call::Read, || self.inner.all(source)).await
    }

    async fn token(&self, source: Source, shop: &ShopId) -> Result<Option<TokenRecord>, StoreError> {
        self.call("tokens", "token", Call::Read, || self.inner.token(source, shop)).await
    }

    async fn register(&self, record: &TokenRecord) -> Result<bool, StoreError> {
        self.call("tokens", "register", Call::Write, || self.inner.register(record)).await
    }

    async fn lease(
        &self,
        source: Source,
        shop: &ShopId,
        expected_version: u64,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call("tokens", "lease", Call::Write, || self.inner.lease(source, shop, expected_version, lease, now)).await
    }

    async fn commit(&self, record: &TokenRecord, owner: &str) -> Result<(), StoreError> {
        self.call("tokens", "commit", Call::Write, || self.inner.commit(record, owner)).await
    }

    async fn release(&self, source: Source, shop: &ShopId, owner: &str, error: &str) -> Result<(), StoreError> {
        self.call("tokens", "release", Call::Write, || self.inner.release(source, shop, owner, error)).await
    }

    async fn warned(&self, source: Source, shop: &ShopId, day: NaiveDate) -> Result<bool, StoreError> {
        self.call("tokens", "warned", Call::Write, || self.inner.warned(source, shop, day)).await
    }
}

#[async_trait]
impl<P: SubscriptionStore + ?Sized> SubscriptionStore for Faulty<'_, P> {
    async fn claim(
        &self,
        carrier: &str,
        number: &str,
        stopped_at: Option<DateTime<Utc>>,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<SubscriptionClaim, StoreError> {
        self.call("subscriptions", "claim", Call::Write, || self.inner.claim(carrier, number, stopped_at, lease, now))
            .await
    }

    async fn subscribed(&self, carrier: &str, number: &str, owner: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.call("subscriptions", "subscribed", Call::Write, || self.inner.subscribed(carrier, number, owner, at))
            .await
    }

    async fn failed(&self, carrier: &str, number: &str, owner: &str, error: &str) -> Result<(), StoreError> {
        self.call("subscriptions", "failed", Call::Write, || self.inner.failed(carrier, number, owner, error)).await
    }
}

#[async_trait]
impl<P: SummaryMarks + ?Sized> SummaryMarks for Faulty<'_, P> {
    async fn mark(&self, channel: Source, day: NaiveDate) -> Result<((i64, i64), u64), StoreError> {
        self.call("marks", "mark", Call::Read, || self.inner.mark(channel, day)).await
    }

    async fn set_mark(
        &self,
        channel: Source,
        day: NaiveDate,
        reported: (i64, i64),
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.call("marks", "set_mark", Call::Write, || self.inner.set_mark(channel, day, reported, expected_version))
            .await
    }
}

impl<P: ?Sized> Faulty<'_, P> {
    /// Carries out a decision already taken (latency already spent).
    async fn call_decided<T, E, F, Fut>(&self, decision: Decision, inner: F) -> Result<T, E>
    where
        E: Injected,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match decision.fault {
            None | Some(Fault::Partial) => inner().await,
            Some(Fault::Before) => Err(E::unavailable("connection failed before the request was sent")),
            Some(Fault::Throttle) => Err(E::unavailable("throttled")),
            Some(Fault::Conflict) => Err(E::conflict()),
            Some(Fault::After) => {
                let _applied = inner().await;
                Err(E::unavailable("response lost after the request was applied"))
            }
            Some(Fault::Delay) => {
                let out = inner().await;
                tokio::time::sleep(decision.delay).await;
                out
            }
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::HangAfter) => {
                let _applied = inner().await;
                std::future::pending().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{MemoryPublisher, MemoryQueue, MemoryStore};

    fn key() -> OrderKey {
        OrderKey::parse(Source::Douyin, "shop-1", "6921").unwrap_or_else(|e| panic!("{e}"))
    }

    fn reservation(line: &str) -> Reservation {
        let sku = crate::model::ids::Sku::parse(line).unwrap_or_else(|e| panic!("{e}"));
        Reservation {
            key: key(),
            line: LineId::of_sku(&sku),
            sku,
            qty: 1,
            reserved_at: DateTime::<Utc>::default(),
            released_at: None,
            released_by: None,
        }
    }

    #[tokio::test]
    async fn before_is_not_applied_after_is_applied_and_both_are_counted() {
        let store = MemoryStore::default();
        let faults = Faults::new(FaultPlan::new(7).rate("inventory.reserve", Fault::Before, 1.0));
        let faulty = Faulty::new(&store, &faults);
        assert!(matches!(faulty.reserve(&[reservation("A")]).await, Err(StoreError::Unavailable(_))));
        assert!(store.reservations(&key()).await.unwrap_or_default().is_empty(), "not applied");

        let faults = Faults::new(FaultPlan::new(7).rate("inventory.*", Fault::After, 1.0));
        let faulty = Faulty::new(&store, &faults);
        assert!(matches!(faulty.reserve(&[reservation("A")]).await, Err(StoreError::Unavailable(_))));
        assert_eq!(store.reservations(&key()).await.unwrap_or_default().len(), 1, "applied, answer lost");
        assert_eq!(faults.counts().get(&("inventory.reserve".to_owned(), Fault::After)), Some(&1));
        // A read cannot be "applied": after-faults are not drawn for it.
        assert!(faulty.reservations(&key()).await.is_ok());
    }

    #[tokio::test]
    async fn conflicts_only_hit_transactions_and_partial_failures_pass_only_the_rest() {
        let store = MemoryStore::default();
        let faults = Faults::new(FaultPlan::new(1).rate("*", Fault::Conflict, 1.0).rate("*", Fault::Partial, 1.0));
        let faulty = Faulty::new(&store, &faults);
        assert!(faulty.reserve(&[reservation("A")]).await.is_ok(), "a single write does not conflict");
        assert_eq!(faulty.add(&[]).await, Err(StoreError::Conflict));

        let bus = MemoryPublisher::default();
        let events: Vec<DomainEvent> =
            (0..6).map(|n| DomainEvent::CallbackMissing { key: key(), hint: format!("hint {n}") }).collect();
        let faulty_bus = Faulty::new(&bus, &faults);
        let failed = faulty_bus.publish(&events).await.unwrap_or_default();
        assert!(!failed.is_empty());
        let went: Vec<String> = bus.published().iter().map(DomainEvent::id).collect();
        let want: Vec<String> =
            events.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, e)| e.id()).collect();
        assert_eq!(went, want, "exactly the entries reported successful went out");

        let queue = MemoryQueue::default();
        let messages: Vec<OutboundMessage> =
            (0..4).map(|n| OutboundMessage { id: n.to_string(), body: format!("m{n}"), attributes: vec![] }).collect();
        let failed = Faulty::named(&queue, &faults, "inbound").send(&messages).await.unwrap_or_default();
        let sent: Vec<String> = queue.drain().into_iter().map(|m| m.id).collect();
        assert!(!failed.is_empty() && sent.iter().all(|id| !failed.contains(id)) && sent.len() + failed.len() == 4);
        assert!(faults.counts().contains_key(&("inbound.send".to_owned(), Fault::Partial)));
    }

    #[tokio::test]
    async fn a_hang_only_ends_at_the_callers_deadline() {
        let store = MemoryStore::default();
        let faults = Faults::new(FaultPlan::new(3).rate("orders.get", Fault::Hang, 1.0));
        let faulty = Faulty::new(&store, &faults);
        let out = tokio::time::timeout(Duration::from_millis(20), faulty.get(&key())).await;
        assert!(out.is_err(), "killed at the deadline");
        faults.set_enabled(false);
        assert!(faulty.get(&key()).await.is_ok(), "switched off: passed on");
        assert_eq!(faults.total(), 1);
    }

    #[test]
    fn decisions_are_a_function_of_the_seed() {
        let draw = |seed: u64| {
            let faults = Faults::new(FaultPlan::new(seed).rate("*", Fault::Before, 0.5));
            (0..64).map(|_| faults.decide("orders.get", Call::Read).fault.is_some()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let mut rng = SeededRng::new(5);
        let mut items: Vec<u32> = (0..20).collect();
        rng.shuffle(&mut items);
        let mut again = SeededRng::new(5);
        let mut same: Vec<u32> = (0..20).collect();
        again.shuffle(&mut same);
        assert_eq!(items, same);
        assert!((0..1000).map(|_| rng.between(3, 5)).all(|v| (3..=5).contains(&v)));
    }
}
