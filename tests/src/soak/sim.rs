//! The parts of AWS and of the platforms the in-process soak simulates: a clock that follows
//! tokio's (paused) clock, SQS as a Lambda event source sees it ([`SimQueue`]: visibility
//! timeouts, receive counts, reordering, duplicate delivery, `maxReceiveCount` into a
//! dead-letter queue, redrive), the event bus with the template's rule into the trust queue
//! ([`RuleBus`]), and Douyin's query API with an outage ([`FakeDouyin`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use domain::model::domain_event::DomainEvent;
use domain::model::ids::{LineId, Sku};
use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::secret::Secret;
use domain::model::status::RawStatus;
use domain::model::stock::OrderLine;
use domain::ports::clock::Clock;
use domain::ports::platform::{Credentials, OrderLines, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::pull::TokenRefresh;
use domain::ports::{EventPublisher, OutboundMessage, PublishError, Queue, QueueError};
use domain::testing::faults::SeededRng;

use super::day::Truth;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// "Now" for the soak: `base` plus the time tokio's clock moved since the start. Under a paused
/// tokio clock this is virtual time that jumps whenever every task waits; on a running clock it
/// is real time.
#[derive(Debug)]
pub struct SoakClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl SoakClock {
    /// A clock that reads `base` now.
    pub fn new(base: DateTime<Utc>) -> Self {
        Self { base, start: tokio::time::Instant::now() }
    }

    /// How long until `at` (zero if past).
    pub fn until(&self, at: DateTime<Utc>) -> Duration {
        (at - self.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// Waits until `at`.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        let wait = self.until(at);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Clock for SoakClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        self.base + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

/// A queue as a Lambda SQS event source mapping sees it: receive a batch, delete what was done.
#[async_trait(?Send)]
pub trait EventSource {
    /// Up to `max` messages, waiting up to `wait` for one (long polling). Each carries
    /// `ApproximateReceiveCount`.
    async fn receive(&self, max: usize, wait: Duration) -> Vec<SqsMessage>;
    /// Deletes a received message (a stale receipt handle may not delete it).
    async fn delete(&self, receipt: &str);
    /// Messages visible or in flight.
    async fn depth(&self) -> usize;
    /// Messages in the dead-letter queue.
    async fn dead_letters(&self) -> usize;
    /// Moves every dead letter back to the queue; returns how many.
    async fn redrive(&self) -> usize;
}

/// What a [`SimQueue`] did, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages sent to it.
    pub sent: u64,
    /// Deliveries (receives) of messages.
    pub received: u64,
    /// Deliveries of a message that another poller also had in flight.
    pub duplicates: u64,
    /// Messages moved to the dead-letter queue by `maxReceiveCount`.
    pub to_dlq: u64,
    /// Messages the consumer put into the dead-letter queue itself.
    pub dead_lettered: u64,
    /// Messages moved back by a redrive.
    pub redriven: u64,
    /// Messages deleted.
    pub deleted: u64,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    receives: u32,
    visible_at: tokio::time::Instant,
    in_flight_until: tokio::time::Instant,
    receipts: Vec<String>,
}

#[derive(Debug)]
struct QueueState {
    messages: BTreeMap<String, Message>,
    dead: Vec<(Message, Vec<(String, String)>)>,
    sent: Vec<OutboundMessage>,
    rng: SeededRng,
    next: u64,
    stats: QueueStats,
}

/// SQS in process: a standard queue with its redrive policy and dead-letter queue.
#[derive(Debug)]
pub struct SimQueue {
    name: &'static str,
    visibility: Duration,
    max_receives: u32,
    duplicate_rate: f64,
    state: Mutex<QueueState>,
    arrived: tokio::sync::Notify,
}

impl SimQueue {
    /// A queue with a visibility timeout, a `maxReceiveCount`, and a rate at which a received
    /// message stays visible to other pollers (SQS's at-least-once duplicate delivery).
    pub fn new(name: &'static str, visibility: Duration, max_receives: u32, duplicate_rate: f64, seed: u64) -> Self {
        Self {
            name,
            visibility,
            max_receives,
            duplicate_rate,
            state: Mutex::new(QueueState {
                messages: BTreeMap::new(),
                dead: Vec::new(),
                sent: Vec::new(),
                rng: SeededRng::new(seed),
                next: 0,
                stats: QueueStats::default(),
            }),
            arrived: tokio::sync::Notify::new(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> QueueStats {
        lock(&self.state).stats
    }

    /// Every message ever sent to it (bodies and attributes), in order.
    pub fn sent(&self) -> Vec<OutboundMessage> {
        lock(&self.state).sent.clone()
    }

    /// The dead letters now: body and the attributes the consumer gave (its reason).
    pub fn dead(&self) -> Vec<(String, Vec<(String, String)>)> {
        lock(&self.state).dead.iter().map(|(m, a)| (m.body.clone(), a.clone())).collect()
    }

    /// The dead-letter queue as a [`Queue`] the consumer sends to (status-normalize's
    /// `INBOUND_DLQ_URL`, with the reason attached).
    pub fn dead_letter_port(&self) -> DeadLetterPort<'_> {
        DeadLetterPort(self)
    }

    fn enqueue(&self, body: String) {
        let mut state = lock(&self.state);
        state.next += 1;
        let id = format!("{}-{:08}", self.name, state.next);
        let now = tokio::time::Instant::now();
        let message =
            Message { id: id.clone(), body, receives: 0, visible_at: now, in_flight_until: now, receipts: Vec::new() };
        state.messages.insert(id, message);
        state.stats.sent += 1;
        drop(state);
        self.arrived.notify_waiters();
    }

    fn take(&self, max: usize) -> Vec<SqsMessage> {
        let now = tokio::time::Instant::now();
        let mut state = lock(&self.state);
        let mut visible: Vec<String> =
            state.messages.values().filter(|m| m.visible_at <= now).map(|m| m.id.clone()).collect();
        // A standard queue: no order.
        state.rng.shuffle(&mut visible);
        let mut out = Vec::new();
        for id in visible {
            if out.len() >= max {
                break;
            }
            let Some(mut message) = state.messages.remove(&id) else { continue };
            message.receives += 1;
            if message.receives > self.max_receives {
                state.stats.to_dlq += 1;
                let reason = vec![("reason".to_owned(), format!("maxReceiveCount {} exceeded", self.max_receives))];
                state.dead.push((message, reason));
                continue;
            }
            state.next += 1;
            let receipt = format!("{}-r{}", message.id, state.next);
            message.receipts.push(receipt.clone());
            if message.in_flight_until > now {
                // Another poller has it in flight: a duplicate delivery.
                state.stats.duplicates += 1;
            }
            message.in_flight_until = now + self.visibility;
            // Now and then SQS hands a message out again while it is in flight.
            let duplicate = state.rng.chance(self.duplicate_rate);
            message.visible_at = if duplicate { now } else { message.in_flight_until };
            state.stats.received += 1;
            let mut record = SqsMessage::default();
            record.message_id = Some(message.id.clone());
            record.receipt_handle = Some(receipt);
            record.body = Some(message.body.clone());
            record.attributes.insert("ApproximateReceiveCount".into(), message.receives.to_string());
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(format!("arn:aws:sqs:cn-north-1:000000000000:{}", self.name));
            out.push(record);
            state.messages.insert(id, message);
        }
        out
    }
}

#[async_trait(?Send)]
impl EventSource for SimQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Vec<SqsMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let batch = self.take(max);
            if !batch.is_empty() {
                return batch;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            let next_visible = lock(&self.state).messages.values().map(|m| m.visible_at).filter(|at| *at > now).min();
            let until = next_visible.map_or(deadline, |at| at.min(deadline));
            let _ = tokio::time::timeout_at(until, self.arrived.notified()).await;
        }
    }

    async fn delete(&self, receipt: &str) {
        let mut state = lock(&self.state);
        // Only the newest receipt deletes (SQS: an older handle "might not" delete it).
        let id = state
            .messages
            .values()
            .find(|m| m.receipts.last().map(String::as_str) == Some(receipt))
            .map(|m| m.id.clone());
        if let Some(id) = id {
            state.messages.remove(&id);
            state.stats.deleted += 1;
        }
    }

    async fn depth(&self) -> usize {
        lock(&self.state).messages.len()
    }

    async fn dead_letters(&self) -> usize {
        lock(&self.state).dead.len()
    }

    async fn redrive(&self) -> usize {
        let dead = std::mem::take(&mut lock(&self.state).dead);
        let n = dead.len();
        for (message, _) in dead {
            self.enqueue(message.body);
        }
        let mut state = lock(&self.state);
        state.stats.redriven += n as u64;
        // Redriven messages were counted as sent again; they are not new.
        state.stats.sent -= n as u64;
        n
    }
}

#[async_trait]
impl Queue for SimQueue {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        if let Some(big) = messages.iter().find(|m| m.body.len() + attributes_len(m) > domain::ports::MAX_MESSAGE_BYTES)
        {
            return Err(QueueError::TooLarge(big.body.len()));
        }
        lock(&self.state).sent.extend_from_slice(messages);
        for message in messages {
            self.enqueue(message.body.clone());
        }
        Ok(Vec::new())
    }
}

fn attributes_len(message: &OutboundMessage) -> usize {
    message.attributes.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The dead-letter queue of a [`SimQueue`], as the consumer sends to it.
#[derive(Debug)]
pub struct DeadLetterPort<'a>(&'a SimQueue);

#[async_trait]
impl Queue for DeadLetterPort<'_> {
    async fn send(&self, messages: &[OutboundMessage]) -> Result<Vec<String>, QueueError> {
        let mut state = lock(&self.0.state);
        for message in messages {
            state.next += 1;
            let id = format!("{}-dlq-{:08}", self.0.name, state.next);
            let now = tokio::time::Instant::now();
            let dead = Message {
                id,
                body: message.body.clone(),
                receives: 0,
                visible_at: now,
                in_flight_until: now,
                receipts: Vec::new(),
            };
            state.dead.push((dead, message.attributes.clone()));
            state.stats.dead_lettered += 1;
        }
        Ok(Vec::new())
    }
}

/// The event bus: keeps every event that went out (for the oracle) and applies the template's
/// rule `SignedToTrustRule` — `source: orderhub`, `detail-type: OrderStatusChanged`,
/// `detail.to: Signed` — by sending the event's envelope to the trust queue. `inner`, when set,
/// is the real bus; only the events it took are kept and routed.
pub struct RuleBus<'a> {
    inner: Option<&'a dyn EventPublisher>,
    trust: &'a dyn Queue,
    published: Mutex<Vec<DomainEvent>>,
    next: AtomicU64,
}

impl<'a> RuleBus<'a> {
    /// A bus routing Signed changes to `trust`, over `inner` (or none: in process).
    pub fn new(inner: Option<&'a dyn EventPublisher>, trust: &'a dyn Queue) -> Self {
        Self { inner, trust, published: Mutex::new(Vec::new()), next: AtomicU64::new(0) }
    }

    /// Every event that went out, in order (repeats included).
    pub fn published(&self) -> Vec<DomainEvent> {
        lock(&self.published).clone()
    }

    fn matches_rule(event: &DomainEvent) -> bool {
        event.detail_type() == "OrderStatusChanged"
            && event.detail().get("to").and_then(Value::as_str) == Some("Signed")
    }
}

#[async_trait]
impl EventPublisher for RuleBus<'_> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        let failed = match self.inner {
            Some(inner) => inner.publish(events).await?,
            None => Vec::new(),
        };
        let went: Vec<&DomainEvent> =
            events.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, e)| e).collect();
        lock(&self.published).extend(went.iter().map(|e| (*e).clone()));
        for event in went.into_iter().filter(|e| Self::matches_rule(e)) {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let envelope = json!({
                "version": "0",
                "id": format!("soak-event-{n}"),
                "detail-type": event.detail_type(),
                "source": "orderhub",
                "account": "000000000000",
                "time": Utc::now().to_rfc3339(),
                "region": "cn-north-1",
                "resources": [],
                "detail": event.detail(),
            });
            // EventBridge retries a target for up to 24 h: the rule's delivery is not a fault
            // the soak injects.
            let message = OutboundMessage { id: "0".into(), body: envelope.to_string(), attributes: Vec::new() };
            for _ in 0..20 {
                match self.trust.send(std::slice::from_ref(&message)).await {
                    Ok(failed) if failed.is_empty() => break,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
        Ok(failed)
    }
}

/// Douyin's query API for the refund dual-check, answering from what the platform knows
/// ([`Truth::douyin_refunds`]) as of now, with a rate-limit outage (HTTP 429,
/// `QueryError::RateLimited`) for a window and the shop's first access token revoked mid-day
/// (`QueryError::TokenExpired`, then a refresh).
pub struct FakeDouyin<'a> {
    /// What the platform knows.
    pub truth: &'a Truth,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Every query in `[from, to)` is rate-limited.
    pub outage: (DateTime<Utc>, DateTime<Utc>),
    /// From this time the first token (`tok-1`) is refused as expired.
    pub revoke_first_token_at: DateTime<Utc>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl<'a> FakeDouyin<'a> {
    /// The fake over `truth`.
    pub fn new(
        truth: &'a Truth,
        clock: &'a dyn Clock,
        outage: (DateTime<Utc>, DateTime<Utc>),
        revoke_first_token_at: DateTime<Utc>,
    ) -> Self {
        Self { truth, clock, outage, revoke_first_token_at, calls: Mutex::new(BTreeMap::new()) }
    }

    /// Answers given, by kind (`answered`, `not_found`, `rate_limited`, `token_expired`, `refreshed`).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.calls).clone()
    }

    fn count(&self, what: &'static str) {
        *lock(&self.calls).entry(what).or_default() += 1;
    }
}

#[async_trait]
impl PlatformQuery for FakeDouyin<'_> {
    fn source(&self) -> Source {
        Source::Douyin
    }

    async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
        let now = self.clock.now();
        if now >= self.outage.0 && now < self.outage.1 {
            self.count("rate_limited");
            return Err(QueryError::RateLimited { retry_after_s: Some(1) });
        }
        if credentials.access_token.expose() == "tok-1" && now >= self.revoke_first_token_at {
            self.count("token_expired");
            return Err(QueryError::TokenExpired);
        }
        let Some(refund) = self.truth.douyin_refunds.get(key) else {
            self.count("not_found");
            return Err(QueryError::NotFound);
        };
        let Some((at, code)) = refund.timeline.iter().rev().find(|(at, _)| *at <= now) else {
            self.count("not_found");
            return Err(QueryError::NotFound);
        };
        self.count("answered");
        Ok(RefundAnswer {
            statuses: vec![(RawStatus::new("after_sale_status", *code), Some(*at))],
            refund_kind: None,
            refund_id: Some(format!("AS{}", key.order_id)),
            ..RefundAnswer::default()
        })
    }

    /// `/order/orderDetail`'s `sku_order_list`: the order's sub-orders with their SKU, one each;
    /// rate-limited and token-checked like every call.
    async fn order_lines(&self, key: &OrderKey, credentials: &Credentials) -> Result<Vec<OrderLine>, QueryError> {
        let now = self.clock.now();
        if now >= self.outage.0 && now < self.outage.1 {
            self.count("rate_limited");
            return Err(QueryError::RateLimited { retry_after_s: Some(1) });
        }
        if credentials.access_token.expose() == "tok-1" && now >= self.revoke_first_token_at {
            self.count("token_expired");
            return Err(QueryError::TokenExpired);
        }
        self.count("lines");
        truth_lines(self.truth, key).ok_or(QueryError::NotFound)
    }

    async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        TokenRefresh::refresh_token(self, shop, credentials).await
    }
}

/// `/token/refresh`: the token keepers of refund-dual-check and status-normalize refresh here.
#[async_trait]
impl TokenRefresh for FakeDouyin<'_> {
    fn source(&self) -> Source {
        Source::Douyin
    }

    async fn refresh_token(&self, _shop: &ShopId, _credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        self.count("refreshed");
        Ok(RefreshedToken {
            access_token: Secret::new("tok-2"),
            expires_at: self.clock.now() + chrono::Duration::days(7),
            refresh_token: Some(Secret::new("refresh-2")),
            refresh_expires_at: None,
        })
    }
}

/// An order's lines as the platform knows them (one unit each), for the order detail API.
fn truth_lines(truth: &Truth, key: &OrderKey) -> Option<Vec<OrderLine>> {
    let lines = truth.lines.get(key)?;
    Some(
        lines
            .iter()
            .filter_map(|(line, sku)| {
                Some(OrderLine { line: LineId::parse(line).ok()?, sku: Sku::parse(sku).ok()?, qty: 1 })
            })
            .collect(),
    )
}

/// The order detail API without outages: the reference world's view of the lines.
pub struct TruthLines<'a>(pub &'a Truth);

#[async_trait]
impl OrderLines for TruthLines<'_> {
    async fn order_lines(&self, key: &OrderKey) -> Result<Vec<OrderLine>, QueryError> {
        truth_lines(self.0, key).ok_or(QueryError::NotFound)
    }
}
