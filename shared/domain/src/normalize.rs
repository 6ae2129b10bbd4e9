//! status-normalize's domain: one inbound message in; orders, history, due markers and daily
//! counters written with one conditional write per event; domain events out.
//!
//! Per event: read the order (strongly consistent), [`apply`] the change, write the new order
//! conditional on the version read, with its history entry (refused if it exists: a
//! redelivery), due-marker changes and counters in the same transaction. A lost race reloads and
//! retries. A redelivered event finds its history entry and re-derives the same domain events
//! from it, so publishing is at-least-once even when the first attempt's publish failed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Asia::Shanghai;

use crate::events::DomainEvent;
use crate::ids::{OrderKey, Sku, Source};
use crate::inbound::{
    AddressEvent, AppEvent, AppSignalKind, InboundEvent, InboundMessage, LogisticsEvent, OrderFacts, StatusEvent,
};
use crate::inventory::{ReleaseOutcome, Reservation};
use crate::lifecycle::{Lifecycle, RefundState};
use crate::order::{DeliveryAddress, Order, Provenance, SignInfo, StatusChange, Verdict, apply};
use crate::ports::{Inbox, InventoryStore, OrderStore, SignalStore, Stats, StoreError};
use crate::signals::{SignalRecord, customer_key};
use crate::sources;
use crate::stats::{CounterAdd, names};
use crate::status::{RawStatus, StatusMapping, Target};
use crate::store::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::time::{Clock, business_day};

/// How long an order may stay in a state before an `SlaBreached`, per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaRules {
    /// Limits for every channel.
    pub default: BTreeMap<Lifecycle, Duration>,
    /// Per-channel overrides.
    pub per_channel: BTreeMap<Source, BTreeMap<Lifecycle, Duration>>,
}

impl Default for SlaRules {
    /// Paid → warehouse in 30 minutes; any other stall before shipment 2 hours. Transit states
    /// have no default limit: carriers take days and the trust check watches signs.
    fn default() -> Self {
        let two_hours = Duration::hours(2);
        Self {
            default: BTreeMap::from([
                (Lifecycle::Paid, Duration::minutes(30)),
                (Lifecycle::RiskHold, two_hours),
                (Lifecycle::WarehouseAccepted, two_hours),
                (Lifecycle::Packing, two_hours),
            ]),
            per_channel: BTreeMap::new(),
        }
    }
}

impl SlaRules {
    /// The limit for `state` on `channel`, if any.
    pub fn limit(&self, channel: Source, state: Lifecycle) -> Option<Duration> {
        self.per_channel.get(&channel).and_then(|l| l.get(&state)).or_else(|| self.default.get(&state)).copied()
    }

    /// Parses `{"default": {"Paid": 30, …}, "douyin": {"Packing": 240}}` (minutes) over the
    /// defaults. A limit of 0 removes it.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, BTreeMap<String, i64>> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON object of minutes: {e}"))?;
        let mut rules = SlaRules::default();
        for (scope, limits) in raw {
            let mut parsed = BTreeMap::new();
            for (state, minutes) in limits {
                let state = Lifecycle::ALL
                    .into_iter()
                    .find(|s| s.as_str() == state)
                    .ok_or_else(|| format!("unknown state `{state}`"))?;
                parsed.insert(state, Duration::minutes(minutes));
            }
            let target = if scope == "default" {
                &mut rules.default
            } else {
                let channel: Source = scope.parse().map_err(|e| format!("{e}"))?;
                rules.per_channel.entry(channel).or_default()
            };
            target.extend(parsed);
        }
        for limits in std::iter::once(&mut rules.default).chain(rules.per_channel.values_mut()) {
            limits.retain(|_, d| *d > Duration::zero());
        }
        Ok(rules)
    }
}

/// The rules status-normalize applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// SLA limits.
    pub sla: SlaRules,
    /// A refund asked for or approved this long ago with no outcome gets a platform check.
    pub refund_check_after: Duration,
    /// Stock must be released within this of a refund's success to count as on time.
    pub release_within: Duration,
    /// Shards of counters and due markers.
    pub shards: u16,
    /// Attempts per event when concurrent writers collide.
    pub max_attempts: u32,
    /// A sign downgraded to SignPendingConfirmation is looked at again after this.
    pub trust_recheck_after: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            sla: SlaRules::default(),
            refund_check_after: Duration::hours(2),
            release_within: Duration::minutes(30),
            shards: 8,
            max_attempts: 8,
            trust_recheck_after: Duration::hours(2),
        }
    }
}

/// Why a message was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Try again later (store unavailable, too many concurrent writers).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed as is (malformed payload): dead-letter it with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        if err.is_retryable() { Failure::Retry(err.to_string()) } else { Failure::Permanent(err.to_string()) }
    }
}

/// One event applied (now, or by an earlier delivery).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The history entry.
    pub entry: HistoryEntry,
    /// The order after it.
    pub order: Order,
    /// Whether this call wrote it (false: a redelivery found it already written).
    pub fresh: bool,
}

/// status-normalize's ports and rules.
pub struct Normalizer<'a> {
    /// Orders, history, due markers.
    pub orders: &'a dyn OrderStore,
    /// Reservations.
    pub inventory: &'a dyn InventoryStore,
    /// Counters written outside an order transaction.
    pub stats: &'a dyn Stats,
    /// Archived payloads too large for the queue.
    pub inbox: &'a dyn Inbox,
    /// App signals.
    pub signals: &'a dyn SignalStore,
    /// Now.
    pub clock: &'a dyn Clock,
    /// Rules.
    pub rules: &'a Rules,
}

impl Normalizer<'_> {
    /// Parses and applies one message; returns the domain events to publish.
    pub async fn handle(&self, message: &InboundMessage) -> Result<Vec<DomainEvent>, Failure> {
        let payload = match &message.payload {
            Some(payload) => payload.clone().into_bytes(),
            None => self
                .inbox
                .archived(message.source, &message.message_id)
                .await?
                .map(|accepted| accepted.payload().to_vec())
                .ok_or_else(|| Failure::Permanent("payload neither inline nor archived".into()))?,
        };
        let events = sources::parse(message.source, &message.shop, &payload, &message.query, message.received_at)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let mut out = Vec::new();
        for event in events {
            match event {
                InboundEvent::Status(status) => out.extend(self.status(message, status).await?),
                InboundEvent::Logistics(logistics) => out.extend(self.logistics(message, logistics).await?),
                InboundEvent::App(app) => self.app_signal(app).await?,
                InboundEvent::Address(address) => out.extend(self.address(message, address).await?),
                InboundEvent::Ignored(why) => {
                    tracing::info!(source = %message.source, message_id = %message.message_id, why, "nothing to apply");
                }
            }
        }
        Ok(out)
    }

    async fn status(&self, message: &InboundMessage, event: StatusEvent) -> Result<Vec<DomainEvent>, Failure> {
        let mapping = sources::map_status(message.source, &event.raw.field, &event.raw.code);
        let change = StatusChange {
            key: event.key.clone(),
            message_id: event.message_id.clone(),
            event_time: event.event_time.unwrap_or(message.received_at),
            received_at: message.received_at,
            raw: event.raw.clone(),
            mapping,
            provenance: Provenance::Callback,
        };
        let mut facts = event.facts.clone();
        // A platform's own shipped code is its scan-out; the seller's app must say so itself.
        if message.source != Source::App && is_shipping(&change.mapping) {
            facts.scanned_out = true;
        }
        let no_time = event.event_time.is_none();
        let applied =
            self.apply_change(&change, &facts, &|order: &mut Order| flag_no_time(order, no_time), &[]).await?;
        self.effects(&applied, &facts).await
    }

    /// Stores an app signal with its counters; a customer's confirmation or "not received"
    /// asks for the order's trust re-check now.
    async fn app_signal(&self, event: AppEvent) -> Result<(), Failure> {
        let record = SignalRecord {
            message_id: event.message_id.clone(),
            kind: event.kind,
            at: event.at,
            order: event.key.clone(),
            location: event.location,
            accuracy_m: event.accuracy_m,
        };
        let counter = match event.kind {
            AppSignalKind::LogisticsViewed => Some(names::APP_LOGISTICS_VIEWS),
            AppSignalKind::Consultation => Some(names::APP_CONSULTATIONS),
            _ => None,
        };
        let channel = event.key.as_ref().map_or(Source::App, |k| k.source);
        let shard = event.key.as_ref().map_or(0, |k| k.shard(self.rules.shards));
        let counters: Vec<CounterAdd> = counter
            .map(|name| CounterAdd { channel, day: business_day(event.at), shard, name: name.into(), by: 1 })
            .into_iter()
            .collect();
        self.signals.record_signal(&customer_key(&event.customer), &record, &counters).await?;
        if matches!(event.kind, AppSignalKind::SignConfirmed | AppSignalKind::NotReceived)
            && let Some(key) = &event.key
        {
            let marker = DueMarker {
                key: key.clone(),
                kind: DueKind::TrustRecheck,
                due_at: self.clock.now(),
                shard,
                note: Some("customer".into()),
            };
            self.orders.set_due(&marker).await?;
        }
        Ok(())
    }

    /// Files the geocoded delivery address (and the customer) on the order.
    async fn address(&self, message: &InboundMessage, event: AddressEvent) -> Result<Vec<DomainEvent>, Failure> {
        let change = StatusChange {
            key: event.key.clone(),
            message_id: event.message_id.clone(),
            event_time: message.received_at,
            received_at: message.received_at,
            raw: RawStatus::new("address", event.addr_key.clone()),
            mapping: StatusMapping::Informational("delivery address"),
            provenance: Provenance::Callback,
        };
        let address = DeliveryAddress {
            addr_key: event.addr_key.clone(),
            district: event.district.clone(),
            location: event.location,
        };
        let customer = event.customer.as_deref().map(customer_key);
        let patch = move |order: &mut Order| {
            order.address = Some(address.clone());
            if customer.is_some() {
                order.customer.clone_from(&customer);
            }
        };
        self.apply_change(&change, &OrderFacts::default(), &patch, &[]).await?;
        Ok(Vec::new())
    }

    async fn logistics(&self, message: &InboundMessage, event: LogisticsEvent) -> Result<Vec<DomainEvent>, Failure> {
        let mapping = sources::map_status(message.source, "state", &event.state);
        let at = event.event_time.unwrap_or(message.received_at);
        let change = StatusChange {
            key: event.key.clone(),
            message_id: event.message_id.clone(),
            event_time: at,
            received_at: message.received_at,
            raw: RawStatus::new("state", event.state.clone()),
            mapping,
            provenance: Provenance::Callback,
        };
        // Any carrier scan is the carrier holding the parcel: a scan-out with a waybill.
        let facts = OrderFacts { waybill: Some(event.waybill.clone()), scanned_out: true, ..OrderFacts::default() };
        let sign = matches!(
            mapping,
            StatusMapping::Mapped(Target { lifecycle: Some(Lifecycle::Signed | Lifecycle::SignException), .. })
        )
        .then(|| SignInfo {
            at,
            state: event.state.clone(),
            sub_state: event.sub_state.clone(),
            carrier_code: event.carrier_code.clone(),
            text: event.text.chars().take(300).collect(),
            location: event.location,
        });
        let no_time = event.event_time.is_none();
        let patch = |order: &mut Order| {
            flag_no_time(order, no_time);
            if let Some(sign) = &sign
                && order.sign.as_ref().is_none_or(|s| s.at <= sign.at)
            {
                order.sign = Some(sign.clone());
            }
        };
        let applied = self.apply_change(&change, &facts, &patch, &[]).await?;
        self.effects(&applied, &facts).await
    }

    /// Applies one change through the state machine with a conditional, versioned write;
    /// `patch` sets other order fields in the same write, `extra` counters go with it too.
    /// Retries lost races; returns what is now recorded.
    pub async fn apply_change(
        &self,
        change: &StatusChange,
        facts: &OrderFacts,
        patch: &(dyn Fn(&mut Order) + Sync),
        extra: &[CounterAdd],
    ) -> Result<Applied, Failure> {
        for _ in 0..self.rules.max_attempts.max(1) {
            let stored = self.orders.get(&change.key).await?;
            let now = self.clock.now();
            let (change, hold) = hold_unshipped(stored.as_ref(), change, facts);
            let outcome = apply(stored.as_ref(), &change, now);
            let mut order = outcome.order.clone();
            fold_facts(&mut order, facts, hold);
            patch(&mut order);
            let changed = stored.as_ref() != Some(&order);
            let expected_version = stored.as_ref().map_or(0, |o| o.version);
            if changed {
                order.version = expected_version + 1;
                order.updated_at = now;
            }
            let (lifecycle, refund) = HistoryEntry::moves(&outcome.lifecycle, &outcome.refund);
            let entry = HistoryEntry {
                key: change.key.clone(),
                event_time: change.event_time,
                message_id: change.message_id.clone(),
                received_at: change.received_at,
                applied_at: now,
                raw: change.raw.clone(),
                provenance: change.provenance,
                verdict: outcome.verdict,
                lifecycle,
                refund,
            };
            let write = OrderWrite {
                key: change.key.clone(),
                order: changed.then(|| order.clone()),
                expected_version,
                history: entry.clone(),
                due: self.due_changes(&order, &entry, now),
                counters: self
                    .counters(&change, &entry, stored.as_ref(), &order, now)
                    .into_iter()
                    .chain(extra.iter().cloned())
                    .collect(),
            };
            match self.orders.commit(&write).await {
                Ok(()) => return Ok(Applied { entry, order, fresh: true }),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Duplicate) => {
                    let recorded =
                        self.orders.history_entry(&change.key, change.event_time, &change.message_id).await?;
                    let entry = recorded.unwrap_or(entry);
                    let order = stored.unwrap_or(order);
                    return Ok(Applied { entry, order, fresh: false });
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Failure::Retry("too many concurrent writers for one order".into()))
    }

    fn due_changes(&self, order: &Order, entry: &HistoryEntry, now: DateTime<Utc>) -> Vec<DueChange> {
        let shard = order.key.shard(self.rules.shards);
        let marker = |kind, due_at, note: &str| {
            DueChange::Set(DueMarker { key: order.key.clone(), kind, due_at, shard, note: Some(note.to_owned()) })
        };
        let mut due = Vec::new();
        if let Some((_, to)) = entry.refund {
            match to {
                RefundState::Requested | RefundState::Approved => {
                    let since = order.refund_entered.get(&to).copied().unwrap_or(entry.event_time);
                    due.push(marker(DueKind::RefundCheck, since + self.rules.refund_check_after, to.as_str()));
                }
                // Stock may still be reserved: the dual-check confirms the release soon.
                RefundState::Succeeded
                    if order.lifecycle.is_none_or(|l| l.is_before_shipment() || l == Lifecycle::Cancelled) =>
                {
                    due.push(marker(DueKind::RefundCheck, now + Duration::minutes(10), "release"));
                }
                _ => due.push(DueChange::Clear(DueKind::RefundCheck)),
            }
        }
        if let Some((from, to)) = entry.lifecycle {
            if to == Lifecycle::SignPendingConfirmation {
                due.push(marker(
                    DueKind::TrustRecheck,
                    now + self.rules.trust_recheck_after,
                    "SignPendingConfirmation",
                ));
            } else if from == Some(Lifecycle::SignPendingConfirmation) {
                due.push(DueChange::Clear(DueKind::TrustRecheck));
            }
            match self.rules.sla.limit(order.key.source, to) {
                Some(limit) => {
                    let since = order.entered.get(&to).copied().unwrap_or(entry.event_time);
                    due.push(marker(DueKind::Sla, since + limit, to.as_str()));
                }
                None => due.push(DueChange::Clear(DueKind::Sla)),
            }
        }
        due
    }

    fn counters(
        &self,
        change: &StatusChange,
        entry: &HistoryEntry,
        before: Option<&Order>,
        after: &Order,
        now: DateTime<Utc>,
    ) -> Vec<CounterAdd> {
        let channel = change.key.source;
        let day = business_day(change.received_at);
        let shard = change.key.shard(self.rules.shards);
        let mut adds = Vec::new();
        let mut add = |name: String, by: i64| adds.push(CounterAdd { channel, day, shard, name, by });
        let local = change.received_at.with_timezone(&Shanghai);
        add(names::RECEIVED.into(), 1);
        add(names::received_in_hour(local.hour()), 1);
        add(names::received_in_slot(local.hour(), local.minute()), 1);
        add(entry.verdict.as_str().into(), 1);
        if entry.verdict == Verdict::Applied {
            let delay = (now - change.event_time).num_seconds().max(0);
            add(names::SYNC_DELAY_COUNT.into(), 1);
            add(names::SYNC_DELAY_SUM_S.into(), delay);
            add(names::sync_delay_bin(delay), 1);
        }
        if let Some((from, to)) = entry.lifecycle {
            if let Some(from) = from
                && let Some(since) = before.and_then(|o| o.entered.get(&from))
            {
                add(names::transition_count(from, to), 1);
                add(names::transition_seconds(from, to), (change.event_time - *since).num_seconds().max(0));
            }
            if to == Lifecycle::Shipped {
                match after.promised_ship_at {
                    Some(promised) if change.event_time <= promised => add(names::SHIPPED_ON_TIME.into(), 1),
                    Some(_) => add(names::SHIPPED_LATE.into(), 1),
                    None => add(names::SHIPPED_NO_PROMISE.into(), 1),
                }
            }
        }
        if let Some((_, RefundState::Succeeded)) = entry.refund {
            add(names::REFUND_SUCCEEDED.into(), 1);
            if change.provenance == Provenance::Poll {
                add(names::REFUND_FOUND_BY_POLL.into(), 1);
            }
        }
        adds
    }

    /// Applies a change (from any provenance) and runs its side effects: what a callback, a
    /// poll and an ops call all go through.
    pub async fn apply_status(
        &self,
        change: &StatusChange,
        facts: &OrderFacts,
    ) -> Result<(Applied, Vec<DomainEvent>), Failure> {
        let applied = self.apply_change(change, facts, &|_: &mut Order| {}, &[]).await?;
        let events = self.effects(&applied, facts).await?;
        Ok((applied, events))
    }

    /// Side effects and events of an applied event (repeated identically on redelivery).
    async fn effects(&self, applied: &Applied, facts: &OrderFacts) -> Result<Vec<DomainEvent>, Failure> {
        let mut events = events_of(&applied.entry);
        let key = &applied.order.key;
        if let Some((_, Lifecycle::Paid)) = applied.entry.lifecycle
            && !facts.lines.is_empty()
        {
            let lines: Vec<Reservation> = facts
                .lines
                .iter()
                .map(|(sku, qty)| Reservation {
                    key: key.clone(),
                    sku: sku.clone(),
                    qty: *qty,
                    reserved_at: applied.entry.event_time,
                    released_at: None,
                })
                .collect();
            self.inventory.reserve(&lines).await?;
            events.push(DomainEvent::StockReserved { key: key.clone(), lines: facts.lines.clone() });
        }
        let before_shipment =
            applied.order.lifecycle.is_none_or(|l| l.is_before_shipment() || l == Lifecycle::Cancelled);
        if let Some((_, RefundState::Succeeded)) = applied.entry.refund
            && before_shipment
        {
            let refunded_at =
                applied.order.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(applied.entry.event_time);
            events.extend(
                release_order(self.inventory, self.stats, key, refunded_at, self.clock.now(), "refund", self.rules)
                    .await?,
            );
        }
        Ok(events)
    }
}

/// What releasing an order's reserved stock did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Released {
    /// Lines released by this call (lines released before are not repeated).
    pub lines: Vec<(Sku, u32)>,
    /// The counters to add (not yet written: a batch writes them once).
    pub counters: Vec<CounterAdd>,
}

impl Released {
    /// The `InventoryReleased` event, when anything was released.
    pub fn event(&self, key: &OrderKey, reason: &str) -> Option<DomainEvent> {
        (!self.lines.is_empty()).then(|| DomainEvent::InventoryReleased {
            key: key.clone(),
            lines: self.lines.clone(),
            reason: reason.to_owned(),
        })
    }
}

/// Releases every still-reserved line of `reserved` (exactly once each: a conditional write per
/// line, the lines of an order at the same time) and computes the counters.
pub async fn release_lines(
    inventory: &dyn InventoryStore,
    key: &OrderKey,
    reserved: Vec<Reservation>,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Released, Failure> {
    let open: Vec<Reservation> = reserved.into_iter().filter(|line| line.released_at.is_none()).collect();
    let outcomes = futures::future::join_all(open.iter().map(|line| inventory.release(key, &line.sku, now))).await;
    let mut released = Released::default();
    for (line, outcome) in open.iter().zip(outcomes) {
        if outcome? == ReleaseOutcome::Released {
            released.lines.push((line.sku.clone(), line.qty));
        }
    }
    if released.lines.is_empty() {
        return Ok(released);
    }
    let day = business_day(now);
    let shard = key.shard(rules.shards);
    let delay = (now - refunded_at).num_seconds().max(0);
    let lines = i64::try_from(released.lines.len()).unwrap_or(i64::MAX);
    let mut add = |name: &str, by: i64| {
        released.counters.push(CounterAdd { channel: key.source, day, shard, name: name.into(), by });
    };
    add(names::STOCK_RELEASE_DUE, lines);
    add(names::STOCK_RELEASED, lines);
    add(names::STOCK_RELEASE_DELAY_SUM_S, delay * lines);
    if now - refunded_at <= rules.release_within {
        add(names::STOCK_RELEASED_ON_TIME, lines);
    }
    if reason == "ops" {
        add(names::OPS_RELEASES, lines);
    }
    tracing::info!(source = %key.source, shop = %key.shop, order_id = %key.order_id, lines = released.lines.len(), reason, "stock released");
    Ok(released)
}

/// Releases one order's reserved stock, counts it, and returns the `InventoryReleased` event
/// (none when nothing was left to release).
pub async fn release_order(
    inventory: &dyn InventoryStore,
    stats: &dyn Stats,
    key: &OrderKey,
    refunded_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &Rules,
) -> Result<Vec<DomainEvent>, Failure> {
    let reserved = inventory.reservations(key).await?;
    let released = release_lines(inventory, key, reserved, refunded_at, now, reason, rules).await?;
    if !released.counters.is_empty()
        && let Err(err) = stats.add(&released.counters).await
    {
        // The release itself happened exactly once; a lost counter only dims the report.
        tracing::warn!(order_id = %key.order_id, error = %err, "could not count the release");
    }
    Ok(released.event(key, reason).into_iter().collect())
}

/// The domain events a history entry stands for.
pub fn events_of(entry: &HistoryEntry) -> Vec<DomainEvent> {
    let mut events = Vec::new();
    if let Some((from, to)) = entry.lifecycle {
        events.push(DomainEvent::OrderStatusChanged {
            key: entry.key.clone(),
            from,
            to,
            stage: to.stage(),
            event_time: entry.event_time,
            applied_at: entry.applied_at,
            provenance: entry.provenance,
        });
    }
    if let Some((from, to)) = entry.refund {
        events.push(DomainEvent::RefundStatusChanged {
            key: entry.key.clone(),
            from,
            to,
            event_time: entry.event_time,
            provenance: entry.provenance,
        });
        if to == RefundState::Succeeded {
            events.push(DomainEvent::RefundConfirmed {
                key: entry.key.clone(),
                provenance: entry.provenance,
                event_time: entry.event_time,
            });
        }
    }
    if entry.verdict == Verdict::Unmapped {
        events.push(DomainEvent::UnmappedStatus { key: entry.key.clone(), raw: entry.raw.clone() });
    }
    events
}

fn is_shipping(mapping: &StatusMapping) -> bool {
    matches!(mapping, StatusMapping::Mapped(Target { lifecycle: Some(Lifecycle::Shipped), .. }))
}

/// "Shipped" needs a waybill and a scan-out: without them the event is held as Packing and
/// the order flagged, so nobody tells a customer "shipped" about a parcel that has not left.
fn hold_unshipped(
    stored: Option<&Order>,
    change: &StatusChange,
    facts: &OrderFacts,
) -> (StatusChange, Option<&'static str>) {
    if !is_shipping(&change.mapping) {
        return (change.clone(), None);
    }
    let has_waybill = facts.waybill.is_some() || stored.is_some_and(|o| o.waybill.is_some());
    let scanned = facts.scanned_out || stored.is_some_and(|o| o.scanned_out);
    let flag = match (has_waybill, scanned) {
        (true, true) => return (change.clone(), None),
        (false, _) => "shipped_without_waybill",
        (true, false) => "awaiting_scan_out",
    };
    let mut held = change.clone();
    if let StatusMapping::Mapped(target) = change.mapping {
        held.mapping = StatusMapping::Mapped(Target { lifecycle: Some(Lifecycle::Packing), ..target });
    }
    (held, Some(flag))
}

fn flag_no_time(order: &mut Order, no_source_time: bool) {
    if no_source_time {
        order.flags.insert("no_source_time".to_owned());
    }
}

fn fold_facts(order: &mut Order, facts: &OrderFacts, hold: Option<&str>) {
    if let Some(waybill) = &facts.waybill {
        order.waybill = Some(waybill.clone());
    }
    if facts.scanned_out {
        order.scanned_out = true;
    }
    if let Some(promised) = facts.promised_ship_at {
        order.promised_ship_at = Some(promised);
    }
    if let Some(flag) = hold {
        order.flags.insert(flag.to_owned());
    }
    if order.lifecycle.is_some_and(|l| !l.is_before_shipment()) {
        order.flags.remove("shipped_without_waybill");
        order.flags.remove("awaiting_scan_out");
    }
}

/// What an SLA sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SweepReport {
    /// Due markers looked at.
    pub due: u32,
    /// Breaches raised (one per order and state).
    pub breached: u32,
    /// Markers of orders that had moved on (removed).
    pub resolved: u32,
    /// Markers left for the next run (a read or write failed).
    pub errors: u32,
}

/// Finds orders stuck past their SLA limit (a query of the due index per shard: reads scale
/// with what is due, not with the table) and raises `SlaBreached` once per order and state.
pub async fn sla_sweep(
    orders: &dyn OrderStore,
    stats: &dyn Stats,
    clock: &dyn Clock,
    rules: &Rules,
) -> (Vec<DomainEvent>, SweepReport) {
    let now = clock.now();
    let mut events = Vec::new();
    let mut report = SweepReport::default();
    for shard in 0..rules.shards.max(1) {
        let mut cursor: Option<String> = None;
        loop {
            let page = match orders.due(DueKind::Sla, shard, now, cursor.as_deref(), 100).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(shard, error = %err, "SLA sweep could not read the due index");
                    report.errors += 1;
                    break;
                }
            };
            for marker in page.items {
                report.due += 1;
                let order = match orders.get(&marker.key).await {
                    Ok(order) => order,
                    Err(_) => {
                        report.errors += 1;
                        continue;
                    }
                };
                let stuck = order.as_ref().and_then(|o| {
                    let state = o.lifecycle?;
                    (marker.note.as_deref() == Some(state.as_str())).then_some((state, o.entered.get(&state).copied()))
                });
                // Clearing first makes the breach once-only even if two sweeps overlap.
                match orders.clear_due(&marker.key, DueKind::Sla, marker.due_at).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => {
                        report.errors += 1;
                        continue;
                    }
                }
                let Some((state, since)) = stuck else {
                    report.resolved += 1;
                    continue;
                };
                let since = since.unwrap_or(marker.due_at);
                let limit = rules.sla.limit(marker.key.source, state).unwrap_or_else(|| marker.due_at - since);
                report.breached += 1;
                tracing::warn!(source = %marker.key.source, shop = %marker.key.shop, order_id = %marker.key.order_id, state = %state, "SLA breached");
                let add = CounterAdd {
                    channel: marker.key.source,
                    day: business_day(now),
                    shard: marker.shard,
                    name: names::SLA_BREACHED.into(),
                    by: 1,
                };
                if let Err(err) = stats.add(&[add]).await {
                    tracing::warn!(error = %err, "could not count the SLA breach");
                }
                events.push(DomainEvent::SlaBreached {
                    key: marker.key,
                    state,
                    since,
                    limit_minutes: limit.num_minutes(),
                });
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    (events, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::inbound::InboundMessage;
    use crate::memory::{MemoryInbox, MemoryStore};
    use crate::ports::OrderStore;
    use crate::time::FixedClock;
    use chrono::TimeZone;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default()
    }

    struct World {
        store: MemoryStore,
        inbox: MemoryInbox,
        clock: FixedClock,
        rules: Rules,
    }

    impl World {
        fn new() -> Self {
            World {
                store: MemoryStore::default(),
                inbox: MemoryInbox::default(),
                clock: FixedClock::new(at()),
                rules: Rules::default(),
            }
        }

        fn normalizer(&self) -> Normalizer<'_> {
            Normalizer {
                orders: &self.store,
                inventory: &self.store,
                stats: &self.store,
                inbox: &self.inbox,
                signals: &self.store,
                clock: &self.clock,
                rules: &self.rules,
            }
        }

        async fn order(&self, source: Source, id: &str) -> Option<Order> {
            let key = OrderKey::parse(source, "shop-1001", id).unwrap_or_else(|e| panic!("{e}"));
            self.store.get(&key).await.unwrap_or_else(|e| panic!("{e}"))
        }
    }

    fn message(source: Source, payload: Vec<u8>, query: Vec<(String, String)>, id: &str) -> InboundMessage {
        fixtures::DayCallback { source, shop: "shop-1001".into(), payload, query, message_id: id.into(), sent_at: at() }
            .inbound()
    }

    fn douyin(tag: &str, id: &str, data: serde_json::Value) -> InboundMessage {
        message(Source::Douyin, fixtures::douyin_push(tag, id, data), vec![], id)
    }

    #[tokio::test]
    async fn a_paid_order_is_stored_with_history_counters_an_event_and_reserved_stock() {
        let world = World::new();
        let events = world
            .normalizer()
            .handle(&douyin(
                "101",
                "m1",
                json!({"p_id": "6921", "pay_time": at().timestamp() - 60, "s_ids": ["69211", "69212"]}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let order = world.order(Source::Douyin, "6921").await.unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.lifecycle, Some(Lifecycle::Paid));
        assert_eq!(order.version, 1);
        let kinds: Vec<&str> = events.iter().map(DomainEvent::detail_type).collect();
        assert_eq!(kinds, ["OrderStatusChanged", "StockReserved"]);
        assert_eq!(world.store.reservations(&order.key).await.map(|r| r.len()).unwrap_or(0), 2);
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        let day = month.first().cloned().unwrap_or_default();
        assert_eq!((day.get("received"), day.get("applied"), day.get("sync_delay_count")), (1, 1, 1));
        assert_eq!(day.get("sync_delay_sum_s"), 60, "event at -60 s, applied now");
        assert_eq!(day.get("rx_h10"), 1, "02:00 UTC is 10:00 in Beijing");
        let history = world.store.history(&order.key, None, 10).await.map(|p| p.items).unwrap_or_default();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].verdict, Verdict::Applied);
    }

    #[tokio::test]
    async fn a_redelivered_message_republishes_the_same_events_and_counts_nothing_twice() {
        let world = World::new();
        let paid = douyin("101", "m1", json!({"p_id": "6921", "pay_time": at().timestamp()}));
        let first = world.normalizer().handle(&paid).await.unwrap_or_default();
        let writes = world.store.writes();
        let again = world.normalizer().handle(&paid).await.unwrap_or_default();
        assert_eq!(first, again, "the same events, so a failed publish is made good");
        assert_eq!(world.store.writes(), writes + 1, "one refused conditional write");
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        assert_eq!(month[0].get("received"), 1, "counters went with the first write only");
        assert_eq!(world.order(Source::Douyin, "6921").await.map(|o| o.version), Some(1));
    }

    #[tokio::test]
    async fn shipped_without_a_waybill_is_held_as_packing_until_the_carrier_scans_it() {
        let world = World::new();
        let n = world.normalizer();
        n.handle(&douyin("101", "m1", json!({"p_id": "6921", "pay_time": at().timestamp() - 600})))
            .await
            .unwrap_or_default();
        // The seller's app says Shipped but gives no waybill.
        let app = message(
            Source::App,
            fixtures::app_event(
                "order.status",
                at(),
                json!({"order_id": "mp-1", "status": "Paid", "at": (at() - chrono::Duration::minutes(9)).to_rfc3339()}),
            ),
            vec![],
            "a1",
        );
        n.handle(&app).await.unwrap_or_default();
        let shipped = message(
            Source::App,
            fixtures::app_event(
                "order.status",
                at(),
                json!({"order_id": "mp-1", "status": "Shipped", "at": (at() - chrono::Duration::minutes(5)).to_rfc3339()}),
            ),
            vec![],
            "a2",
        );
        n.handle(&shipped).await.unwrap_or_default();
        let held = world.order(Source::App, "mp-1").await.unwrap_or_else(|| panic!("stored"));
        assert_eq!(held.lifecycle, Some(Lifecycle::Packing));
        assert!(held.flags.contains("shipped_without_waybill"));
        // The carrier's pick-up scan carries the waybill: now it is shipped.
        let scan = message(
            Source::Kuaidi100,
            fixtures::kuaidi100_param("shunfeng", "SF1", "1", "101", "已收取快件", "2026-11-11 09:58:00", ""),
            vec![("order".into(), "app/shop-1001/mp-1".into())],
            "k1",
        );
        let events = n.handle(&scan).await.unwrap_or_else(|e| panic!("{e}"));
        let shipped = world.order(Source::App, "mp-1").await.unwrap_or_else(|| panic!("stored"));
        assert_eq!(shipped.lifecycle, Some(Lifecycle::Shipped));
        assert!(shipped.flags.is_empty(), "{:?}", shipped.flags);
        assert_eq!(shipped.waybill.as_ref().map(|w| w.number.as_str()), Some("SF1"));
        assert!(matches!(events.first(), Some(DomainEvent::OrderStatusChanged { to: Lifecycle::Shipped, .. })));
    }

    #[tokio::test]
    async fn an_unknown_code_is_kept_flagged_and_alerted_not_failed() {
        let world = World::new();
        let events = world
            .normalizer()
            .handle(&douyin("999", "m9", json!({"p_id": "6921", "update_time": at().timestamp()})))
            .await;
        let events = events.unwrap_or_else(|e| panic!("not failed: {e}"));
        assert!(
            matches!(&events[..], [DomainEvent::UnmappedStatus { raw, .. }] if raw.code == "999" && raw.field == "tag")
        );
        let order = world.order(Source::Douyin, "6921").await.unwrap_or_else(|| panic!("kept"));
        assert_eq!(order.unmapped.map(|r| r.code), Some("999".to_owned()));
    }

    #[tokio::test]
    async fn a_refund_before_shipment_releases_the_stock_exactly_once() {
        let world = World::new();
        let n = world.normalizer();
        n.handle(&douyin("101", "m1", json!({"p_id": "6921", "pay_time": at().timestamp() - 600, "s_ids": ["69211"]})))
            .await
            .unwrap_or_default();
        let refund =
            douyin("206", "m2", json!({"p_id": "6921", "aftersale_type": 2, "success_time": at().timestamp()}));
        let events = n.handle(&refund).await.unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<&str> = events.iter().map(DomainEvent::detail_type).collect();
        assert_eq!(kinds, ["RefundStatusChanged", "RefundConfirmed", "InventoryReleased"]);
        let again = n.handle(&refund).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!again.iter().any(|e| e.detail_type() == "InventoryReleased"), "nothing left to release");
        let month = world.store.month(Source::Douyin, at().date_naive()).await.unwrap_or_default();
        assert_eq!(month[0].get("stock_released"), 1);
        assert_eq!(month[0].get("stock_released_on_time"), 1);
        let order = world.order(Source::Douyin, "6921").await.unwrap_or_else(|| panic!("stored"));
        assert_eq!(order.refund, RefundState::Succeeded);
    }

    #[tokio::test]
    async fn malformed_payloads_are_permanent_failures() {
        let world = World::new();
        let bad = message(Source::Douyin, b"{\"not\":\"an array\"}".to_vec(), vec![], "x");
        assert!(matches!(world.normalizer().handle(&bad).await, Err(Failure::Permanent(_))));
        let no_order = message(
            Source::Kuaidi100,
            fixtures::kuaidi100_param("sf", "1", "0", "", "", "2026-11-11 10:00:00", ""),
            vec![],
            "k",
        );
        assert!(
            matches!(world.normalizer().handle(&no_order).await, Err(Failure::Permanent(reason)) if reason.contains("order"))
        );
    }

    #[tokio::test]
    async fn an_order_stuck_past_its_sla_is_reported_once() {
        let world = World::new();
        world
            .normalizer()
            .handle(&douyin("101", "m1", json!({"p_id": "6921", "pay_time": at().timestamp()})))
            .await
            .unwrap_or_default();
        world.clock.advance(chrono::Duration::minutes(29));
        let (events, _) = sla_sweep(&world.store, &world.store, &world.clock, &world.rules).await;
        assert!(events.is_empty(), "within 30 minutes");
        world.clock.advance(chrono::Duration::minutes(2));
        let (events, report) = sla_sweep(&world.store, &world.store, &world.clock, &world.rules).await;
        assert!(
            matches!(&events[..], [DomainEvent::SlaBreached { state: Lifecycle::Paid, limit_minutes: 30, .. }]),
            "{events:?}"
        );
        assert_eq!(report.breached, 1);
        let (events, _) = sla_sweep(&world.store, &world.store, &world.clock, &world.rules).await;
        assert!(events.is_empty(), "once per order and state");
    }

    #[tokio::test]
    async fn a_moved_on_order_raises_no_sla_breach() {
        let world = World::new();
        let n = world.normalizer();
        n.handle(&douyin("101", "m1", json!({"p_id": "6921", "pay_time": at().timestamp()}))).await.unwrap_or_default();
        n.handle(&douyin("106", "m2", json!({"p_id": "6921", "cancel_time": at().timestamp() + 60})))
            .await
            .unwrap_or_default();
        world.clock.advance(chrono::Duration::hours(3));
        let (events, _) = sla_sweep(&world.store, &world.store, &world.clock, &world.rules).await;
        assert!(events.is_empty(), "{events:?}");
    }

    async fn history_ids(store: &MemoryStore, key: &OrderKey) -> Vec<crate::ids::MessageId> {
        store
            .history(key, None, 1000)
            .await
            .map(|p| p.items.into_iter().map(|h| h.message_id).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_day_delivered_three_times_shuffled_to_concurrent_consumers_ends_as_in_order() {
        let day = fixtures::day(12, at());
        let in_order = World::new();
        for callback in &day {
            in_order.normalizer().handle(&callback.inbound()).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let shuffled = World::new();
        let mut deliveries: Vec<InboundMessage> =
            day.iter().chain(&day).chain(&day).map(fixtures::DayCallback::inbound).collect();
        // Deterministic shuffle.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for i in (1..deliveries.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            deliveries.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap_or(0));
        }
        // Four consumers at a time, like concurrent Lambda invocations.
        for chunk in deliveries.chunks(4) {
            let results =
                futures::future::join_all(chunk.iter().map(|m| async { shuffled.normalizer().handle(m).await })).await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
        for callback in &day {
            for event in sources::parse(
                callback.source,
                &crate::ids::ShopId::parse("shop-1001").unwrap_or_else(|e| panic!("{e}")),
                &callback.payload,
                &callback.query,
                at(),
            )
            .unwrap_or_default()
            {
                let key = match event {
                    InboundEvent::Status(s) => s.key,
                    InboundEvent::Logistics(l) => l.key,
                    _ => continue,
                };
                let want = in_order
                    .store
                    .get(&key)
                    .await
                    .unwrap_or_default()
                    .map(|o| (o.lifecycle, o.refund, o.entered, o.raw, o.waybill, o.unmapped));
                let got = shuffled
                    .store
                    .get(&key)
                    .await
                    .unwrap_or_default()
                    .map(|o| (o.lifecycle, o.refund, o.entered, o.raw, o.waybill, o.unmapped));
                assert!(want.is_some(), "{key} was stored");
                assert_eq!(got, want, "{key}");
                assert_eq!(
                    history_ids(&shuffled.store, &key).await,
                    history_ids(&in_order.store, &key).await,
                    "{key}: nothing missing from history"
                );
            }
        }
    }
}
