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

use crate::app::release_stock::release_order;
use crate::model::counters::{CounterAdd, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::RefundId;
use crate::model::lifecycle::{Lifecycle, RefundState};
use crate::model::order::{Order, Provenance, StatusChange, Verdict, apply};
use crate::model::record::{DueChange, DueKind, DueMarker, HistoryEntry, OrderWrite};
use crate::model::source_event::OrderFacts;
use crate::model::status::{StatusMapping, Target};
use crate::model::stock::{OrderLine, Reservation};
use crate::model::time::business_day;
use crate::ports::clock::Clock;
use crate::ports::{Inbox, InventoryStore, OrderStore, SignalStore, Stats, StoreError};
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
    pub async fn apply_change(
        &self,
        change: &StatusChange,
        facts: &OrderFacts,
        patch: &(dyn Fn(&mut Order) + Sync),
        extra: &[CounterAdd],
    ) -> Result<Applied, Failure> {
        for _ in 0..self.rules.max_attempts.max(1) {
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
            };
            match self.ports.orders.commit(&write).await {
                Ok(()) => return Ok(Applied { entry, order, fresh: true }),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Duplicate) => {
                    let recorded =
                        self.ports.orders.history_entry(&change.key, change.event_time, &change.message_id).await?;
                    let entry = recorded.unwrap_or(entry);
                    let order = stored.unwrap_or(order);
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
        let key = &applied.order.key;
        // A Paid that arrives after a refund already succeeded reserves nothing the refund covers
        // (nothing at all after a whole-order refund): that stock would never be released.
        let refunded = applied.order.refunded_lines();
        let to_reserve: Vec<&OrderLine> = facts
            .lines
            .iter()
            .filter(|l| refunded.as_ref().is_none_or(|r| !r.is_empty() && !r.contains(&l.line)))
            .collect();
        if let Some((_, Lifecycle::Paid)) = applied.entry.lifecycle
            && !to_reserve.is_empty()
        {
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
            events.push(DomainEvent::StockReserved {
                key: key.clone(),
                lines: to_reserve.into_iter().cloned().collect(),
            });
        }
        let before_shipment =
            applied.order.lifecycle.is_none_or(|l| l.is_before_shipment() || l == Lifecycle::Cancelled);
        if let Some((_, RefundState::Succeeded)) = applied.entry.refund
            && before_shipment
        {
            // Only the lines this refund case covers (every line for a whole-order refund).
            let case = applied.entry.refund_id.clone().unwrap_or_else(RefundId::whole_order);
            let covered = applied.order.refunds.get(&case).map(|c| c.lines.clone()).unwrap_or_default();
            let refunded_at =
                applied.order.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(applied.entry.event_time);
            events.extend(
                release_order(
                    self.ports.inventory,
                    self.ports.stats,
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
        }
    }
    if entry.verdict == Verdict::Unmapped {
        events.push(DomainEvent::UnmappedStatus { key: entry.key.clone(), raw: entry.raw.clone() });
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
