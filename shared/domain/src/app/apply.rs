//! The one write path: every change — a callback, a poll of the platform, an ops call, a rule
//! of orderhub's own — is applied here, through the state machine, with one conditional write.
//!
//! Per change: read the order (strongly consistent), [`apply`] the change, write the new order
//! conditional on the version read, with its history entry (refused if it exists: a
//! redelivery), due-marker changes and counters in the same transaction. A lost race reloads and
//! retries. A redelivered change finds its history entry and re-derives the same domain events
//! from it, so publishing is at-least-once even when the first attempt's publish failed.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Asia::Shanghai;

pub use crate::app::failure::Failure;
use crate::app::failure::{add_counters_once, backoff};
use crate::app::release_stock::release_order;
use crate::app::sla_sweep::{breach_count, breach_token};
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::RefundId;
use crate::model::lifecycle::{Lifecycle, RefundKind, RefundState};
use crate::model::order::{Order, Provenance, StatusChange, Verdict, apply};
use crate::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::model::source_event::OrderFacts;
use crate::model::status::{StatusMapping, Target};
use crate::model::stock::{OrderLine, Reservation};
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::{DAILY_CLAIM_LEASE, DailyMarker, Inbox, InventoryStore, OrderStore, SignalStore, Stats, StoreError};
use crate::rules::timing::Rules;

/// The ports the write path and its callers need, bundled so a use case is built in one line.
#[derive(Clone, Copy)]
pub struct WritePorts<'a> {
    /// Orders, history, due markers.
    pub orders: &'a dyn OrderStore,
    /// Reservations.
    pub inventory: &'a dyn InventoryStore,
    /// Counters written outside an order transaction.
    pub stats: &'a dyn Stats,
    /// App signals and address sign history.
    pub signals: &'a dyn SignalStore,
    /// Archived payloads too large for the queue.
    pub inbox: &'a dyn Inbox,
    /// Now.
    pub clock: &'a dyn Clock,
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

/// Applies changes through the state machine: the one write path.
#[derive(Clone, Copy)]
pub struct ApplyChange<'a> {
    /// The ports.
    pub ports: WritePorts<'a>,
    /// Timing policy.
    pub rules: &'a Rules,
}

impl<'a> ApplyChange<'a> {
    /// The write path over `ports` with `rules`.
    pub fn new(ports: WritePorts<'a>, rules: &'a Rules) -> Self {
        Self { ports, rules }
    }

    /// Applies one change through the state machine with a conditional, versioned write;
    /// `patch` sets other order fields in the same write, `extra` counters go with it too.
    /// Retries lost races; returns what is now recorded.
    #[tracing::instrument(name = "apply_change", skip_all, fields(source = %change.key.source, shop = %change.key.shop, order_id = %change.key.order_id, message_id = %change.message_id, provenance = ?change.provenance))]
    pub async fn apply_change(
        &self,
        change: &StatusChange,
        facts: &OrderFacts,
        patch: &(dyn Fn(&mut Order) + Sync),
        extra: &[CounterAdd],
    ) -> Result<Applied, Failure> {
        for attempt in 0..self.rules.max_attempts.max(1) {
            if attempt > 0 {
                // A concurrent writer won the race: reload after a jittered pause.
                backoff(attempt - 1).await;
            }
            let stored = self.ports.orders.get(&change.key).await?;
            let now = self.ports.clock.now();
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
                refund_id: refund.and(change.refund_scope.id.clone()),
            };
            let write = OrderWrite {
                key: change.key.clone(),
                order: changed.then(|| order.clone()),
                expected_version,
                history: entry.clone(),
                due: self.due_changes(stored.as_ref(), &order, &entry, now),
                counters: self
                    .counters(&change, &entry, stored.as_ref(), &order, now)
                    .into_iter()
                    .chain(extra.iter().cloned())
                    .collect(),
                outbox: events_of(&entry),
                shard: change.key.shard(self.rules.shards),
            };
            match self.ports.orders.commit(&write).await {
                Ok(()) => return Ok(Applied { entry, order, fresh: true }),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Duplicate) => {
                    let recorded =
                        self.ports.orders.history_entry(&change.key, change.event_time, &change.message_id).await?;
                    let entry = recorded.unwrap_or(entry);
                    // The order as it is now: the one read above may predate the write that
                    // recorded this event (a delivery running at the same time as this one), and
                    // the side effects derived again from it would miss this event's own.
                    let order = self.ports.orders.get(&change.key).await?.or(stored).unwrap_or(order);
                    return Ok(Applied { entry, order, fresh: false });
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Failure::Retry("too many concurrent writers for one order".into()))
    }

    fn due_changes(
        &self,
        before: Option<&Order>,
        order: &Order,
        entry: &HistoryEntry,
        now: DateTime<Utc>,
    ) -> Vec<DueChange> {
        let shard = order.key.shard(self.rules.shards);
        let marker = |kind, due_at, note: &str| {
            DueChange::Set(DueMarker { key: order.key.clone(), kind, due_at, shard, note: Some(note.to_owned()) })
        };
        let mut due = Vec::new();
        // A waybill the order did not have: subscribe it to carrier tracking (order-sync finds
        // the marker through the due index; no extra request here, it rides this write).
        if let Some(waybill) = order.waybill.as_ref().filter(|w| before.and_then(|b| b.waybill.as_ref()) != Some(*w)) {
            due.push(marker(DueKind::Subscribe, now, &subscribe_note(waybill)));
        }
        if let Some((_, to)) = entry.refund {
            match to {
                RefundState::Requested | RefundState::Approved => {
                    let since = order.refund_entered.get(&to).copied().unwrap_or(entry.event_time);
                    due.push(marker(DueKind::RefundCheck, since + self.rules.refund_check_after, to.as_str()));
                }
                // Stock may still be reserved: the dual-check confirms the release soon.
                RefundState::Succeeded
                    if order.before_shipment(
                        order.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(entry.event_time),
                    ) =>
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
                // The poll found what no callback told: counted with the change, exactly once.
                add(names::REFUND_FOUND_BY_POLL.into(), 1);
                add(names::CALLBACK_MISSING.into(), 1);
            }
            if change.provenance == Provenance::Pull {
                add(names::REFUND_FOUND_BY_PULL.into(), 1);
            }
        }
        // History and counters tell pulls apart: what arrived by pull, and what a pull moved.
        if change.provenance == Provenance::Pull {
            add(names::PULLED.into(), 1);
            if entry.verdict == Verdict::Applied {
                add(names::APPLIED_BY_PULL.into(), 1);
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
    pub(crate) async fn effects(&self, applied: &Applied, facts: &OrderFacts) -> Result<Vec<DomainEvent>, Failure> {
        let mut events = events_of(&applied.entry);
        self.unmapped_once_a_day(&mut events, &applied.entry).await;
        let key = &applied.order.key;
        // A Paid that arrives after a refund already succeeded reserves nothing the refund covers
        // (nothing at all after a whole-order refund): that stock would never be released.
        let refunded = applied.order.refunded_lines();
        let to_reserve: Vec<&OrderLine> = facts
            .lines
            .iter()
            .filter(|l| refunded.as_ref().is_none_or(|r| !r.is_empty() && !r.contains(&l.line)))
            .collect();
        // Reserved by whichever event carries the lines once the order is paid — not only the
        // one that moved it to Paid: a line-less payment notice often comes first, and a Paid
        // delivered late is stale. Reserving is idempotent per line, so this is the same stock
        // whatever order the events arrive in.
        if applied.order.entered.contains_key(&Lifecycle::Paid) && !facts.lines.is_empty() {
            if !to_reserve.is_empty() {
                let lines: Vec<Reservation> = to_reserve
                    .iter()
                    .map(|l| Reservation {
                        key: key.clone(),
                        line: l.line.clone(),
                        sku: l.sku.clone(),
                        qty: l.qty,
                        reserved_at: applied.entry.event_time,
                        released_at: None,
                        released_by: None,
                    })
                    .collect();
                self.ports.inventory.reserve(&lines).await?;
            }
            // A redelivery announces what this event's lines reserved, as recorded (released
            // since or not), so a `StockReserved` whose publish failed is derived again — the
            // same event — even when a refund released the lines in between.
            let announced: Vec<OrderLine> = if applied.fresh {
                to_reserve.into_iter().cloned().collect()
            } else {
                let recorded = self.ports.inventory.reservations(key).await?;
                facts
                    .lines
                    .iter()
                    .filter_map(|l| recorded.iter().find(|r| r.line == l.line).map(Reservation::order_line))
                    .collect()
            };
            if !announced.is_empty() {
                events.push(DomainEvent::StockReserved { key: key.clone(), lines: announced });
            }
        }
        if let Some((state, due_at, event)) = breach_ended_by(&applied.order, &applied.entry, self.rules) {
            // The move that ends a breach reports it, as the SLA sweep would have: kept before
            // counted, counted once (the same token as the sweep's), derived again on redelivery.
            let shard = key.shard(self.rules.shards);
            self.ports.orders.keep(key, shard, std::slice::from_ref(&event), self.ports.clock.now()).await?;
            let since = due_at - self.rules.sla.limit(key.source, state).unwrap_or_default();
            let add = breach_count(key, shard, due_at);
            if !add_counters_once(self.ports.stats, &breach_token(key, state, since), &[add], "SLA breach").await {
                return Err(Failure::Retry("could not count the SLA breach".into()));
            }
            events.push(event);
        }
        // Only the lines this refund case covers (every line for a whole-order refund), and only
        // when it succeeded before the parcel left, by the sources' times (not by what arrived
        // first).
        let case = applied.entry.refund_id.clone().unwrap_or_else(RefundId::whole_order);
        let refunded_at = applied
            .order
            .refunds
            .get(&case)
            .and_then(|c| c.entered.get(&RefundState::Succeeded))
            .or_else(|| applied.order.refund_entered.get(&RefundState::Succeeded))
            .copied()
            .unwrap_or(applied.entry.event_time);
        // A price-protection refund (money back, the goods stay and ship) gives no stock back.
        let gives_stock_back =
            applied.order.refunds.get(&case).and_then(|c| c.kind).is_none_or(RefundKind::releases_stock);
        if let Some((_, RefundState::Succeeded)) = applied.entry.refund
            && applied.order.before_shipment(refunded_at)
            && gives_stock_back
        {
            let covered = applied.order.refunds.get(&case).map(|c| c.lines.clone()).unwrap_or_default();
            events.extend(
                release_order(
                    self.ports.inventory,
                    self.ports.orders,
                    key,
                    &covered,
                    refunded_at,
                    self.ports.clock.now(),
                    "refund",
                    self.rules,
                )
                .await?,
            );
        }
        Ok(events)
    }
}

/// The SLA breach a move ended, if the order left a state with a limit only at or after its
/// due time (by the sources' times): the state, its due time and `SlaBreached`, the same event
/// the SLA sweep raises. At the due time itself too, as the sweep sees it (its due index holds
/// markers due at or before now): a sweep that kept the breach in the outbox and could not count
/// it before such a move replaced the marker leaves the count to this move (the same token).
fn breach_ended_by(
    order: &Order,
    entry: &HistoryEntry,
    rules: &Rules,
) -> Option<(Lifecycle, DateTime<Utc>, DomainEvent)> {
    let (Some(from), _) = entry.lifecycle? else { return None };
    let limit = rules.sla.limit(order.key.source, from)?;
    let since = *order.entered.get(&from)?;
    let due_at = since + limit;
    (entry.event_time >= due_at).then(|| {
        let event =
            DomainEvent::SlaBreached { key: order.key.clone(), state: from, since, limit_minutes: limit.num_minutes() };
        (from, due_at, event)
    })
}

/// The report that a shop's refund callback never came (its refund was found by polling).
pub fn callback_missing(key: &crate::model::ids::OrderKey) -> DomainEvent {
    DomainEvent::CallbackMissing {
        key: key.clone(),
        hint: format!(
            "no refund callback from {} shop {}: check webhook-verify's quarantine for that shop (signature or key problem) and replay it after the fix",
            key.source, key.shop
        ),
    }
}

impl ApplyChange<'_> {
    /// Keeps one `UnmappedStatus` per (source, field, code) per Beijing day of receipt: the
    /// first occurrence claims the day's marker (a conditional write in the stats table, so it
    /// holds across Lambda instances) and publishes; later ones that day drop theirs. A
    /// redelivery of the claimant re-claims and publishes again; a claim whose publish was never
    /// confirmed (the function confirms after the bus took it) lapses after
    /// [`DAILY_CLAIM_LEASE`] and the next occurrence publishes instead. A failed claim publishes:
    /// an alert twice is better than none.
    async fn unmapped_once_a_day(&self, events: &mut Vec<DomainEvent>, entry: &HistoryEntry) {
        let now = self.ports.clock.now();
        let mut keep = Vec::with_capacity(events.len());
        for event in events.drain(..) {
            if let Some((marker, claimant)) = unmapped_marker(&event) {
                match self.ports.stats.claim_daily(&marker, &claimant, now, DAILY_CLAIM_LEASE).await {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(err) => {
                        tracing::warn!(order_id = %entry.key.order_id, error = %err, "unmapped alert not deduplicated");
                    }
                }
            }
            keep.push(event);
        }
        *events = keep;
    }
}

/// The daily marker and claimant of an `UnmappedStatus` event (none for other events).
pub fn unmapped_marker(event: &DomainEvent) -> Option<(DailyMarker, String)> {
    match event {
        DomainEvent::UnmappedStatus { key, raw, day: Some(day) } => {
            Some((DailyMarker::unmapped(*day, key.source, raw), key.to_string()))
        }
        _ => None,
    }
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
            refund_id: entry.refund_id.clone(),
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
            if entry.provenance == Provenance::Poll {
                // Written with the change (its outbox) and derived again from its entry: the
                // report of the missing callback goes out however the check that found it ends.
                events.push(callback_missing(&entry.key));
            }
        }
    }
    if entry.verdict == Verdict::Unmapped {
        events.push(DomainEvent::UnmappedStatus {
            key: entry.key.clone(),
            raw: entry.raw.clone(),
            day: Some(business_day(entry.received_at)),
        });
    }
    events
}

/// The note of a [`DueKind::Subscribe`] marker: `carrier number` (neither has spaces).
pub fn subscribe_note(waybill: &crate::model::source_event::Waybill) -> String {
    format!("{} {}", waybill.carrier, waybill.number)
}

pub(crate) fn is_shipping(mapping: &StatusMapping) -> bool {
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

pub(crate) fn flag_no_time(order: &mut Order, no_source_time: bool) {
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
