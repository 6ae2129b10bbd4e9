//! The oracle: what must be true after a run, checked against the stores through the ports.
//!
//! - **0 lost**: every callback that got a 2xx has its changes applied (a history entry of its
//!   message on its order, or its app signal stored) or, for what is only acknowledged (a
//!   heartbeat), its archived record; a callback that never got a 2xx is lost too (the sender's
//!   retry schedule is over at the end of a run).
//! - **0 applied twice**: one history entry per order and message; the counters equal what the
//!   records say happened once; at most one release per line, and only of lines a refund covered
//!   before shipment; one customer notice per downgrade and none without one.
//! - **final state = in-order fold**: every order's state equals the one a fault-free world
//!   reaches when it is given the same events one at a time in source-time order (the
//!   sign-in trust rule's own moves are compared by stage, as its timing is its own).
//! - **every change published**: each history entry's events, each reservation, release,
//!   assessment and breach went out at least once; the outbox is empty.
//! - **DLQ empty after one redrive** (from the [`RunRecord`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};

use domain::app::apply::{ApplyChange, events_of};
use domain::app::apply_message::ApplyMessage;
use domain::app::sign_check::Notice;
use domain::model::callback::{InboundMessage, RawCallback};
use domain::model::counters::names;
use domain::model::domain_event::DomainEvent;
use domain::model::ids::{MessageId, OrderKey, ShopId, Source};
use domain::model::lifecycle::{Lifecycle, RefundState};
use domain::model::order::{Order, Provenance, RefundScope, StatusChange};
use domain::model::record::HistoryEntry;
use domain::model::signal::customer_key;
use domain::model::source_event::{OrderFacts, SourceEvent};
use domain::model::stock::Reservation;
use domain::ports::{Inbox, InventoryStore, OrderStore, SignalStore, Stats};
use domain::rules::timing::Rules;
use domain::sources::{self, Opened};
use domain::testing::clock::FixedClock;
use domain::testing::fixtures;
use domain::testing::memory::{MemoryInbox, MemoryStore};

use super::day::{Day, shop_secret};
use super::run::RunRecord;

/// The stores of the world under test, read without faults.
pub struct Stores<'a> {
    /// Orders, history, outbox.
    pub orders: &'a dyn OrderStore,
    /// Reservations.
    pub inventory: &'a dyn InventoryStore,
    /// Counters.
    pub stats: &'a dyn Stats,
    /// App signals.
    pub signals: &'a dyn SignalStore,
    /// Archived callbacks.
    pub inbox: &'a dyn Inbox,
}

/// One finding of the oracle, for the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Which promise.
    pub check: &'static str,
    /// What exactly.
    pub detail: String,
}

/// The oracle's verdict.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Callbacks whose changes are not there (acked or not).
    pub lost: usize,
    /// Of those, callbacks no delivery of which got a 2xx.
    pub never_acked: usize,
    /// Things applied or counted more than once.
    pub double_applied: usize,
    /// Orders whose state differs from the in-order fold.
    pub fold_mismatch: usize,
    /// Changes without a published event.
    pub events_missing: usize,
    /// Stock released that no refund before shipment covered, or left reserved that one did.
    pub stock_wrong: usize,
    /// Dead letters left after the redrive.
    pub dlq_left: usize,
    /// Every finding, capped per check.
    pub findings: Vec<Finding>,
    /// Orders checked, history entries, distinct events published, published events in all.
    pub sizes: (usize, usize, usize, usize),
}

impl Verdict {
    fn find(&mut self, check: &'static str, detail: String) {
        if self.findings.iter().filter(|f| f.check == check).count() < 12 {
            self.findings.push(Finding { check, detail });
        }
    }

    /// Whether every promise held.
    pub fn holds(&self) -> bool {
        self.lost == 0
            && self.double_applied == 0
            && self.fold_mismatch == 0
            && self.events_missing == 0
            && self.stock_wrong == 0
            && self.dlq_left == 0
    }

    /// The findings, one per line.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            let _ = writeln!(out, "  [{}] {}", finding.check, finding.detail);
        }
        out
    }
}

/// What the door makes of one callback (`None`: it refuses it).
pub fn opened(day: &Day, n: usize) -> Option<Door> {
    let callback = &day.callbacks[n];
    let incoming = callback.request(callback.send_at);
    let shop = ShopId::parse(&callback.shop).ok()?;
    let json = fixtures::secret_json(callback.source, &shop_secret(callback.source, &callback.shop), None);
    let secret = sources::module(callback.source).load_secret(&json).ok()?;
    let raw = RawCallback {
        source: callback.source,
        shop,
        received_at: incoming.received_at,
        query: incoming.query,
        headers: incoming.headers,
        body: incoming.body,
    };
    match sources::open(&raw, &secret) {
        Ok(Opened::Message { message_id, payload, .. }) => Some(Door::Message(message_id, payload)),
        Ok(Opened::Probe { .. }) => Some(Door::Probe),
        Err(_) => None,
    }
}

/// What the door makes of a callback.
#[derive(Debug, Clone)]
pub enum Door {
    /// A message: its id and opened payload.
    Message(MessageId, Vec<u8>),
    /// A verified test push or heartbeat: acknowledged, nothing to apply.
    Probe,
}

async fn history(orders: &dyn OrderStore, key: &OrderKey) -> Vec<HistoryEntry> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let Ok(page) = orders.history(key, cursor.as_deref(), 200).await else { break };
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out
}

/// The parts of an order the fold must reproduce. The trust rule's own moves (SignPending…,
/// SignException, its stamps and raw codes) depend on when it ran; they are compared by stage.
/// `entered[Packing]` and `entered[Shipped]` are left out: a platform's "shipped" that comes
/// before the carrier's scan is held as Packing by design, so whether an order passed through
/// Packing, and which of the two times entered Shipped, depends on which of the two arrived
/// first (the report lists this as a finding; the final state does not depend on it).
fn projection(order: &Order) -> String {
    // The rule's re-check moves a sign the customer said never arrived to SignException; the
    // fold runs no rule, so that move compares as the sign it judged.
    let by_rule = order
        .lifecycle_stamp
        .as_ref()
        .is_some_and(|s| s.message_id.as_str().starts_with("recheck-") || s.message_id.as_str().starts_with("trust-"));
    let lifecycle = order.lifecycle.map(|l| match l.stage() {
        domain::Stage::Signed => "stage:Signed".to_owned(),
        _ if l == Lifecycle::SignException && by_rule => "stage:Signed".to_owned(),
        _ => l.to_string(),
    });
    let entered: BTreeMap<_, _> = order
        .entered
        .iter()
        .filter(|(l, _)| {
            !matches!(
                l,
                Lifecycle::SignPendingConfirmation | Lifecycle::SignException | Lifecycle::Packing | Lifecycle::Shipped
            )
        })
        .collect();
    // `lines` is the held-lines retry's own record (the reference fetched them on the first try).
    let raw: BTreeMap<_, _> = order.raw.iter().filter(|(f, _)| !f.starts_with("trust") && *f != "lines").collect();
    let mut flags = order.flags.clone();
    flags.remove("dedicated_courier_suggested");
    format!(
        "lifecycle={lifecycle:?} refund={:?} refunds={:?} refund_entered={:?} entered={entered:?} raw={raw:?} unmapped={:?} waybill={:?} scanned_out={} promised={:?} flags={flags:?} sign={:?} address={:?} customer={:?}",
        order.refund,
        order.refunds,
        order.refund_entered,
        order.unmapped,
        order.waybill,
        order.scanned_out,
        order.promised_ship_at,
        order.sign,
        order.address,
        order.customer,
    )
}

/// The lines an order holds stock for (a line reserved and released is as good as one never
/// reserved: which of the two happens depends on whether the refund came before the lines).
fn reservations_view(reservations: &[Reservation]) -> BTreeMap<String, (String, u32)> {
    reservations
        .iter()
        .filter(|r| r.released_at.is_none())
        .map(|r| (r.line.to_string(), (r.sku.to_string(), r.qty)))
        .collect()
}

/// A callback as the oracle opened it: its message id, its body, what it says.
type OpenedCallback = (MessageId, Vec<u8>, Vec<SourceEvent>);

/// The months a run's counters may be in.
fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<chrono::NaiveDate> {
    let mut out = Vec::new();
    let mut day = domain::model::time::business_day(from);
    let last = domain::model::time::business_day(to);
    while day <= last {
        if out.last().is_none_or(|m: &chrono::NaiveDate| m.month() != day.month() || m.year() != day.year()) {
            out.push(day);
        }
        day += chrono::Duration::days(1);
    }
    out
}

/// Everything the oracle needs to know about the run.
pub struct Evidence<'a> {
    /// The day.
    pub day: &'a Day,
    /// What the senders saw.
    pub record: &'a RunRecord,
    /// The stores.
    pub stores: Stores<'a>,
    /// Every event that went out.
    pub published: &'a [DomainEvent],
    /// Every customer notice queued.
    pub notices: &'a [Notice],
    /// The rules the functions ran with.
    pub rules: &'a Rules,
    /// The trust threshold.
    pub trust_threshold: u8,
    /// The run's span, for the counters' months.
    pub span: (DateTime<Utc>, DateTime<Utc>),
}

/// Checks every promise.
#[allow(clippy::too_many_lines)]
pub async fn check(evidence: &Evidence<'_>) -> Verdict {
    let Evidence { day, record, stores, published, notices, rules, trust_threshold, span } = evidence;
    let mut verdict = Verdict::default();
    let published_ids: BTreeSet<String> = published.iter().map(DomainEvent::id).collect();

    // Every order's history, once.
    let mut keys: BTreeSet<OrderKey> = day.truth.orders.iter().cloned().collect();
    let mut opened_all: Vec<Option<OpenedCallback>> = Vec::with_capacity(day.callbacks.len());
    let mut probes = BTreeSet::new();
    for n in 0..day.callbacks.len() {
        let callback = &day.callbacks[n];
        let entry = match opened(day, n) {
            Some(Door::Message(id, payload)) => {
                let shop = ShopId::parse(&callback.shop).unwrap_or_else(|e| panic!("{e}"));
                let events = sources::parse(callback.source, &shop, &payload, &callback.query).unwrap_or_default();
                Some((id, payload, events))
            }
            Some(Door::Probe) => {
                probes.insert(n);
                None
            }
            None => None,
        };
        if let Some((_, _, events)) = &entry {
            for event in events {
                match event {
                    SourceEvent::Status(e) => keys.insert(e.key.clone()),
                    SourceEvent::Logistics(e) => keys.insert(e.key.clone()),
                    SourceEvent::Address(e) => keys.insert(e.key.clone()),
                    _ => false,
                };
            }
        }
        opened_all.push(entry);
    }
    let mut histories: BTreeMap<OrderKey, Vec<HistoryEntry>> = BTreeMap::new();
    for key in &keys {
        histories.insert(key.clone(), history(stores.orders, key).await);
    }
    let entries: Vec<&HistoryEntry> = histories.values().flatten().collect();

    // 0 lost.
    for (n, callback) in day.callbacks.iter().enumerate() {
        let outcome = record.outcomes.get(n).cloned().unwrap_or_default();
        if probes.contains(&n) {
            // A heartbeat: its 2xx is all there is to it.
            if !outcome.acked {
                verdict.lost += 1;
                verdict.never_acked += 1;
                verdict.find("lost", format!("callback {n} ({}) never acknowledged", callback.what));
            }
            continue;
        }
        let Some((message_id, _, events)) = &opened_all[n] else {
            verdict.lost += 1;
            verdict.find("lost", format!("callback {n} ({}) does not open", callback.what));
            continue;
        };
        let mut missing = Vec::new();
        for event in events {
            let found = match event {
                SourceEvent::Status(e) => {
                    histories.get(&e.key).is_some_and(|h| h.iter().any(|x| x.message_id == e.message_id))
                }
                SourceEvent::Logistics(e) => {
                    histories.get(&e.key).is_some_and(|h| h.iter().any(|x| x.message_id == e.message_id))
                }
                SourceEvent::Address(e) => {
                    histories.get(&e.key).is_some_and(|h| h.iter().any(|x| x.message_id == e.message_id))
                }
                SourceEvent::App(e) => stores
                    .signals
                    .signals(&customer_key(&e.customer), e.at, e.at)
                    .await
                    .is_ok_and(|s| s.iter().any(|r| r.message_id == e.message_id)),
                SourceEvent::Ignored(_) => {
                    let shop = ShopId::parse(&callback.shop).unwrap_or_else(|e| panic!("{e}"));
                    stores.inbox.archived(callback.source, &shop, message_id).await.is_ok_and(|a| a.is_some())
                }
            };
            if !found {
                missing.push(format!("{event:?}").chars().take(160).collect::<String>());
            }
        }
        if !missing.is_empty() || !outcome.acked {
            verdict.lost += 1;
            if !outcome.acked {
                verdict.never_acked += 1;
            }
            verdict.find(
                "lost",
                format!(
                    "callback {n} ({}, {} {}, acked {}, {} attempts): missing {}",
                    callback.what,
                    callback.source,
                    message_id,
                    outcome.acked,
                    outcome.attempts,
                    missing.join("; ")
                ),
            );
        }
    }

    // 0 applied twice: one history entry per order and message.
    for (key, history) in &histories {
        let mut per_message: BTreeMap<&MessageId, usize> = BTreeMap::new();
        for entry in history {
            *per_message.entry(&entry.message_id).or_default() += 1;
        }
        for (message_id, count) in per_message.into_iter().filter(|(_, c)| *c > 1) {
            verdict.double_applied += count - 1;
            verdict.find("applied twice", format!("{key}: message {message_id} has {count} history entries"));
        }
    }

    // Stock: reserved per line, released once and only for what a refund before shipment covered.
    let mut reservations: BTreeMap<OrderKey, Vec<Reservation>> = BTreeMap::new();
    for key in &keys {
        reservations.insert(key.clone(), stores.inventory.reservations(key).await.unwrap_or_default());
    }
    let mut released_lines = 0i64;
    for (key, lines) in &reservations {
        let refunded = day.truth.refunded_before_shipment.get(key);
        for r in lines {
            let covered = refunded.is_some_and(|l| l.iter().any(|x| x == "*" || x == r.line.as_str()));
            if r.released_at.is_some() {
                released_lines += 1;
                if !covered {
                    verdict.stock_wrong += 1;
                    verdict.find(
                        "stock",
                        format!(
                            "{key}: line {} released ({:?}) but no refund before shipment covers it",
                            r.line, r.released_by
                        ),
                    );
                }
            } else if covered {
                verdict.stock_wrong += 1;
                verdict.find(
                    "stock",
                    format!("{key}: line {} still reserved after its refund succeeded before shipment", r.line),
                );
            }
        }
    }

    // Counters equal what happened once.
    let mut counters: BTreeMap<(Source, String), i64> = BTreeMap::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for channel in Source::ALL {
        for month in months(span.0, span.1) {
            for day_counters in stores.stats.month(channel, month).await.unwrap_or_default() {
                for (name, value) in &day_counters.counters {
                    *counters.entry((channel, name.clone())).or_default() += value;
                    *totals.entry(name.clone()).or_default() += value;
                }
            }
        }
    }
    let mut expect: BTreeMap<(Source, String), i64> = BTreeMap::new();
    for entry in &entries {
        *expect.entry((entry.key.source, names::RECEIVED.to_owned())).or_default() += 1;
        *expect.entry((entry.key.source, entry.verdict.as_str().to_owned())).or_default() += 1;
    }
    for ((channel, name), want) in &expect {
        let got = counters.get(&(*channel, name.clone())).copied().unwrap_or(0);
        if got != *want {
            verdict.double_applied += usize::try_from((got - want).unsigned_abs()).unwrap_or(usize::MAX);
            verdict.find("counters", format!("{channel} {name}: counted {got}, history says {want}"));
        }
    }
    let count = |pred: &dyn Fn(&HistoryEntry) -> bool| {
        i64::try_from(entries.iter().filter(|e| pred(e)).count()).unwrap_or(i64::MAX)
    };
    let breaches: BTreeSet<String> =
        published.iter().filter(|e| e.detail_type() == "SlaBreached").map(DomainEvent::id).collect();
    let downgrades: Vec<&&HistoryEntry> = entries
        .iter()
        .filter(|e| {
            e.raw.field == "trust" && e.lifecycle.is_some_and(|(_, to)| to == Lifecycle::SignPendingConfirmation)
        })
        .collect();
    let threshold = *trust_threshold;
    let totals_expected: [(&str, i64); 6] = [
        (names::STOCK_RELEASED, released_lines),
        (names::SLA_BREACHED, i64::try_from(breaches.len()).unwrap_or(0)),
        (names::TRUST_ASSESSED, count(&|e| e.raw.field == "trust")),
        (
            names::SIGN_DOWNGRADED,
            count(&|e| e.raw.field == "trust" && e.raw.code.parse::<u8>().is_ok_and(|s| s < threshold)),
        ),
        (names::REFUND_SUCCEEDED, count(&|e| e.refund.is_some_and(|(_, to)| to == RefundState::Succeeded))),
        (
            names::CALLBACK_MISSING,
            count(&|e| {
                e.provenance == Provenance::Poll && e.refund.is_some_and(|(_, to)| to == RefundState::Succeeded)
            }),
        ),
    ];
    for (name, want) in totals_expected {
        let got = totals.get(name).copied().unwrap_or(0);
        if got != want {
            verdict.double_applied += usize::try_from((got - want).unsigned_abs()).unwrap_or(usize::MAX);
            verdict.find("counters", format!("{name}: counted {got}, the records say {want}"));
        }
    }
    if let Some(rejected) = totals.get(names::WEBHOOK_REJECTED).filter(|n| **n > 0) {
        verdict.find("note", format!("{rejected} callbacks were rejected at the door"));
    }

    // One notice per downgrade, none without one.
    let notice_ids: BTreeSet<&str> = notices.iter().map(|n| n.notice_id.as_str()).collect();
    let expected_notices: BTreeSet<String> = downgrades.iter().map(|e| format!("{}-{}", e.key, e.message_id)).collect();
    for id in &expected_notices {
        if !notice_ids.contains(id.as_str()) {
            verdict.events_missing += 1;
            verdict.find("notice", format!("downgrade {id} has no customer notice"));
        }
    }
    for id in &notice_ids {
        if !expected_notices.contains(*id) {
            verdict.double_applied += 1;
            verdict.find("notice", format!("notice {id} without a downgrade"));
        }
    }

    // Every change published.
    for entry in &entries {
        for event in events_of(entry) {
            if !published_ids.contains(&event.id()) {
                verdict.events_missing += 1;
                verdict.find(
                    "events",
                    format!("{} of {} ({}) never published", event.detail_type(), entry.key, entry.message_id),
                );
            }
        }
        if entry.raw.field == "trust"
            && !published.iter().any(|e| e.detail_type() == "SignInTrustAssessed" && e.order() == Some(&entry.key))
        {
            verdict.events_missing += 1;
            verdict.find("events", format!("SignInTrustAssessed of {} never published", entry.key));
        }
    }
    for (key, lines) in &reservations {
        if !lines.is_empty() && !published.iter().any(|e| e.detail_type() == "StockReserved" && e.order() == Some(key))
        {
            verdict.events_missing += 1;
            verdict.find("events", format!("StockReserved of {key} never published"));
        }
        for r in lines.iter().filter(|r| r.released_at.is_some()) {
            let announced = published.iter().any(|e| match e {
                DomainEvent::InventoryReleased { key: k, lines, .. } => {
                    k == key && lines.iter().any(|l| l.line == r.line)
                }
                _ => false,
            });
            if !announced {
                verdict.events_missing += 1;
                verdict.find("events", format!("InventoryReleased of {key} line {} never published", r.line));
            }
        }
    }
    let mut outbox_left = 0;
    for shard in 0..rules.shards.max(1) {
        let mut cursor: Option<String> = None;
        loop {
            let Ok(page) =
                stores.orders.unpublished(shard, span.1 + chrono::Duration::days(1), cursor.as_deref(), 200).await
            else {
                break;
            };
            for left in &page.items {
                outbox_left += 1;
                if !published_ids.contains(&left.event.id()) {
                    verdict.events_missing += 1;
                    verdict.find(
                        "events",
                        format!("{} of {} left in the outbox, never published", left.event.detail_type(), left.key),
                    );
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if outbox_left > 0 {
        verdict.find("note", format!("{outbox_left} outbox entries left (published, not cleared)"));
    }

    // The in-order fold: a fault-free world fed the same distinct events one at a time, in
    // source-time order.
    let reference = MemoryStore::default();
    let reference_inbox = MemoryInbox::default();
    let reference_clock = FixedClock::new(span.0);
    let write = ApplyChange::new(reference.write_ports(&reference_inbox, &reference_clock), rules);
    let lines = super::sim::TruthLines(&day.truth);
    let apply = ApplyMessage::new(write).with_lines(&lines);
    enum Step {
        Message(InboundMessage),
        Poll(StatusChange),
    }
    let mut steps: Vec<(DateTime<Utc>, String, Step)> = Vec::new();
    let mut seen: BTreeSet<(Source, String, MessageId)> = BTreeSet::new();
    for (n, callback) in day.callbacks.iter().enumerate() {
        let Some((message_id, payload, events)) = &opened_all[n] else { continue };
        if !seen.insert((callback.source, callback.shop.clone(), message_id.clone())) {
            continue;
        }
        let Ok(shop) = ShopId::parse(&callback.shop) else { continue };
        let Ok(Some(accepted)) = stores.inbox.archived(callback.source, &shop, message_id).await else { continue };
        let received_at = accepted.callback.received_at;
        let at = events
            .iter()
            .filter_map(|e| match e {
                SourceEvent::Status(e) => e.event_time,
                SourceEvent::Logistics(e) => e.event_time,
                SourceEvent::App(e) => Some(e.at),
                SourceEvent::Address(e) => e.at,
                _ => None,
            })
            .min()
            .unwrap_or(received_at);
        let message = InboundMessage {
            source: callback.source,
            shop,
            message_id: message_id.clone(),
            received_at,
            query: callback.query.clone(),
            payload: String::from_utf8(payload.clone()).ok(),
            origin: "callback".into(),
        };
        steps.push((at, message_id.to_string(), Step::Message(message)));
    }
    for entry in entries.iter().filter(|e| e.provenance == Provenance::Poll) {
        let change = StatusChange {
            key: entry.key.clone(),
            message_id: entry.message_id.clone(),
            event_time: entry.event_time,
            received_at: entry.received_at,
            raw: entry.raw.clone(),
            mapping: sources::map_status(entry.key.source, &entry.raw.field, &entry.raw.code),
            provenance: Provenance::Poll,
            // The case the poll named (the platform's after-sale id), as the dual-check did.
            refund_scope: RefundScope { id: entry.refund_id.clone(), ..RefundScope::default() },
        };
        steps.push((entry.event_time, entry.message_id.to_string(), Step::Poll(change)));
    }
    steps.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (at, _, step) in steps {
        reference_clock.set(at.max(reference_clock_now(&reference_clock)));
        let result = match step {
            Step::Message(message) => apply.handle(&message).await.map(|_| ()),
            Step::Poll(change) => write.apply_status(&change, &OrderFacts::default()).await.map(|_| ()),
        };
        if let Err(err) = result {
            verdict.find("note", format!("the reference world failed a step: {err}"));
        }
    }
    for key in &keys {
        let got = stores.orders.get(key).await.ok().flatten();
        let want = reference.get(key).await.ok().flatten();
        let (got_view, want_view) = (got.as_ref().map(projection), want.as_ref().map(projection));
        if got_view != want_view {
            verdict.fold_mismatch += 1;
            verdict.find("fold", format!("{key}:\n      got  {got_view:?}\n      fold {want_view:?}"));
        }
        let got_stock = reservations_view(reservations.get(key).map_or(&[][..], Vec::as_slice));
        let want_stock = reservations_view(&reference.reservations(key).await.unwrap_or_default());
        if got_stock != want_stock {
            verdict.fold_mismatch += 1;
            verdict.find("fold", format!("{key} stock:\n      got  {got_stock:?}\n      fold {want_stock:?}"));
        }
    }

    verdict.dlq_left = record.dlq_left.0 + record.dlq_left.1;
    if verdict.dlq_left > 0 {
        verdict.find(
            "dlq",
            format!(
                "{} inbound and {} trust dead letters left after one redrive",
                record.dlq_left.0, record.dlq_left.1
            ),
        );
    }
    verdict.sizes = (keys.len(), entries.len(), published_ids.len(), published.len());
    verdict
}

fn reference_clock_now(clock: &FixedClock) -> DateTime<Utc> {
    use domain::ports::clock::Clock;
    clock.now()
}
