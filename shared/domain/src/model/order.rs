//! The order record and the one function that changes it: [`apply`].
//!
//! Rules, per dimension (fulfilment and refund are independent):
//! - Events are ordered by their [`EventStamp`]: the source's own event time, then the target
//!   state, then the message id (a total order, so ties resolve the same way everywhere).
//! - An event whose stamp equals the applied one is a duplicate; an older one is stale. Neither
//!   changes the state.
//! - A newer event moves the state when the move is allowed ([`Lifecycle::move_to`],
//!   [`RefundState::move_to`]); a newer event for the state the order is already in refreshes
//!   the stamp; a newer event whose move is not allowed is refused and changes nothing.
//! - Because the allowed moves are transitive, the final state of any permutation or duplication
//!   of a valid sequence equals in-order delivery (see the property tests below).
//! - Facts that can be folded in any order are folded from every event, stale ones included:
//!   the first time each state was entered, the newest raw code per field, the refund kind.
//! - An unknown code never moves anything: the order keeps it and is flagged until a newer
//!   event is applied.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::geo::{GeoPoint, Located};
use crate::model::ids::{LineId, MessageId, OrderKey, RefundId};
use crate::model::lifecycle::{Lifecycle, MoveKind, RefundKind, RefundState};
use crate::model::parcel::Waybill;
use crate::model::status::{RawStatus, StatusMapping, Target};

/// Who told us about a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provenance {
    /// A verified callback from the source.
    Callback,
    /// Our own query of one order at the platform's API (refund dual-check).
    Poll,
    /// A scheduled incremental pull of the platform's changed orders and refunds (order-sync):
    /// the same road as a callback (inbox, inbound queue, status-normalize), told apart in
    /// history and counters.
    Pull,
    /// An ops engineer's manual invocation.
    Ops,
    /// orderhub's own rules (trust check downgrade, waybill hold).
    Rule,
}

/// The position of one event in the total order of events of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventStamp {
    /// The source's own event time.
    pub at: DateTime<Utc>,
    /// Tie-break for equal times: the target state's position.
    pub rank: u8,
    /// Last tie-break: the sender's message id.
    pub message_id: MessageId,
}

/// A platform-neutral status change, parsed and mapped, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The order it is about.
    pub key: OrderKey,
    /// The sender's message id (or a hash of the body where it has none).
    pub message_id: MessageId,
    /// The source's own time of the event.
    pub event_time: DateTime<Utc>,
    /// When orderhub received it.
    pub received_at: DateTime<Utc>,
    /// The code as sent.
    pub raw: RawStatus,
    /// What the code means.
    pub mapping: StatusMapping,
    /// Callback, poll, ops or rule.
    pub provenance: Provenance,
    /// Which refund case a refund code is about, and the lines it covers.
    pub refund_scope: RefundScope,
}

/// Which refund case a change is about, and the order lines that case covers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RefundScope {
    /// The platform's refund / after-sale id; `None`: the order's one refund case.
    #[serde(default)]
    pub id: Option<RefundId>,
    /// The order lines it covers; empty: the whole order.
    #[serde(default)]
    pub lines: Vec<LineId>,
}

impl RefundScope {
    /// The case's key in [`Order::refunds`].
    pub fn case(&self) -> RefundId {
        self.id.clone().unwrap_or_else(RefundId::whole_order)
    }
}

/// One refund case — a platform's after-sale — with its own state beside the order's other
/// cases: a refund of one line neither closes nor blocks a later refund of another.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RefundCase {
    /// Its state.
    pub state: RefundState,
    /// Stamp of the event that set `state`.
    pub stamp: Option<EventStamp>,
    /// Refund only or return and refund, from the newest event that said.
    pub kind: Option<RefundKind>,
    /// Stamp of the event that set `kind`.
    pub kind_stamp: Option<EventStamp>,
    /// First source event time of each state.
    #[serde(default)]
    pub entered: BTreeMap<RefundState, DateTime<Utc>>,
    /// The order lines it covers; empty: the whole order.
    #[serde(default)]
    pub lines: BTreeSet<LineId>,
}

/// The newest raw code seen for one field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RawSeen {
    /// Source event time of the event that carried it.
    pub at: DateTime<Utc>,
    /// The code.
    pub code: String,
}

/// One order as orderhub knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Channel, shop and order id.
    pub key: OrderKey,
    /// Incremented by every stored change; writes are conditional on it.
    pub version: u64,
    /// Fulfilment state; `None` while only refund or unknown events arrived.
    pub lifecycle: Option<Lifecycle>,
    /// Stamp of the event that set `lifecycle`.
    pub lifecycle_stamp: Option<EventStamp>,
    /// Refund state: the state of the most recently changed refund case (see `refunds`).
    #[serde(default)]
    pub refund: RefundState,
    /// Stamp of the event that set `refund`.
    pub refund_stamp: Option<EventStamp>,
    /// Refund only or return and refund, from the newest event that said.
    pub refund_kind: Option<RefundKind>,
    /// Stamp of the event that set `refund_kind`.
    pub refund_kind_stamp: Option<EventStamp>,
    /// First source event time of each fulfilment state.
    #[serde(default)]
    pub entered: BTreeMap<Lifecycle, DateTime<Utc>>,
    /// First source event time of each refund state, over all cases.
    #[serde(default)]
    pub refund_entered: BTreeMap<RefundState, DateTime<Utc>>,
    /// Every refund case of the order by its platform id (`order` for a platform without ids).
    #[serde(default)]
    pub refunds: BTreeMap<RefundId, RefundCase>,
    /// Newest raw code per field.
    #[serde(default)]
    pub raw: BTreeMap<String, RawSeen>,
    /// An unknown code newer than anything applied: the mapping row that is missing.
    pub unmapped: Option<RawStatus>,
    /// Source event time of `unmapped`.
    pub unmapped_at: Option<DateTime<Utc>>,
    /// The waybill, once known.
    #[serde(default)]
    pub waybill: Option<Waybill>,
    /// Whether the carrier (or the platform's own shipped code) confirmed the parcel left.
    #[serde(default)]
    pub scanned_out: bool,
    /// The platform's promised ship time.
    #[serde(default)]
    pub promised_ship_at: Option<DateTime<Utc>>,
    /// Conditions ops should see: `shipped_without_waybill`, `awaiting_scan_out`,
    /// `no_source_time`, `dedicated_courier_suggested`, `lines_pending` (lines not fetched yet),
    /// `tracking_stopped` (Kuaidi100 aborted the waybill's tracking), `returned_to_sender`, …
    #[serde(default)]
    pub flags: BTreeSet<String>,
    /// Line ids a paid message named without their SKUs, while the lines are being fetched
    /// (flag `lines_pending`): nothing is reserved for them yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_lines: Vec<LineId>,
    /// The carrier's newest sign record.
    #[serde(default)]
    pub sign: Option<SignInfo>,
    /// The delivery address, as the seller's systems geocoded it (no street text).
    #[serde(default)]
    pub address: Option<DeliveryAddress>,
    /// The customer (the seller's own opaque id), when the app told us.
    #[serde(default)]
    pub customer: Option<String>,
    /// The latest sign-in trust assessment.
    #[serde(default)]
    pub trust: Option<TrustSummary>,
    /// When orderhub first stored the order.
    pub created_at: DateTime<Utc>,
    /// When orderhub last changed it.
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// An order nothing is known about yet.
    pub fn new(key: OrderKey, now: DateTime<Utc>) -> Self {
        Self {
            key,
            version: 0,
            lifecycle: None,
            lifecycle_stamp: None,
            refund: RefundState::None,
            refund_stamp: None,
            refund_kind: None,
            refund_kind_stamp: None,
            entered: BTreeMap::new(),
            refund_entered: BTreeMap::new(),
            refunds: BTreeMap::new(),
            raw: BTreeMap::new(),
            unmapped: None,
            unmapped_at: None,
            waybill: None,
            scanned_out: false,
            promised_ship_at: None,
            flags: BTreeSet::new(),
            pending_lines: Vec::new(),
            sign: None,
            address: None,
            customer: None,
            trust: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The lines of its succeeded refund cases that give stock back: `None` when no such refund
    /// succeeded, an empty set when a whole-order refund did (every line), else the lines those
    /// cases cover. A price-protection refund (money back, goods kept) gives no stock back.
    pub fn refunded_lines(&self) -> Option<BTreeSet<LineId>> {
        let mut lines = BTreeSet::new();
        let mut any = false;
        let gives_stock_back = |kind: Option<RefundKind>| kind.is_none_or(RefundKind::releases_stock);
        for case in self.refunds.values().filter(|c| c.state == RefundState::Succeeded && gives_stock_back(c.kind)) {
            if case.lines.is_empty() {
                return Some(BTreeSet::new());
            }
            any = true;
            lines.extend(case.lines.iter().cloned());
        }
        // An order stored before refund cases existed: its summary is its one case.
        (any || (self.refunds.is_empty()
            && self.refund == RefundState::Succeeded
            && gives_stock_back(self.refund_kind)))
        .then_some(lines)
    }

    /// When the parcel left, by the sources' own times: the first time the order entered a
    /// state at or past Shipped (`None`: nobody said it left).
    pub fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.entered.iter().filter(|(state, _)| state.level().is_some_and(|l| l >= 4)).map(|(_, at)| *at).min()
    }

    /// Whether a refund that succeeded at `at` came before the parcel left, by the sources'
    /// times — so the answer is the same whichever of the two events arrived first.
    pub fn before_shipment(&self, at: DateTime<Utc>) -> bool {
        self.shipped_at().is_none_or(|shipped| at < shipped)
    }

    /// The lines whose stock refunds released: those of the cases that succeeded before the
    /// parcel left. `None` when no such case, an empty set when a whole-order refund did (every
    /// line).
    pub fn lines_to_release(&self) -> Option<BTreeSet<LineId>> {
        let mut lines = BTreeSet::new();
        let mut any = false;
        for case in self.refunds.values().filter(|c| c.state == RefundState::Succeeded) {
            let succeeded = case.entered.get(&RefundState::Succeeded).copied().or(Some(self.updated_at));
            if !succeeded.is_some_and(|at| self.before_shipment(at)) {
                continue;
            }
            if case.lines.is_empty() {
                return Some(BTreeSet::new());
            }
            any = true;
            lines.extend(case.lines.iter().cloned());
        }
        if self.refunds.is_empty() && self.refund == RefundState::Succeeded {
            // An order stored before refund cases existed: its summary is its one case.
            let succeeded = self.refund_entered.get(&RefundState::Succeeded).copied().unwrap_or(self.updated_at);
            return self.before_shipment(succeeded).then(BTreeSet::new);
        }
        any.then_some(lines)
    }

    fn newest_applied_at(&self) -> Option<DateTime<Utc>> {
        [&self.lifecycle_stamp, &self.refund_stamp].into_iter().flatten().map(|stamp| stamp.at).max()
    }
}

/// The carrier's sign record, as the trust check reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInfo {
    /// When the carrier says it was signed.
    pub at: DateTime<Utc>,
    /// Kuaidi100 top state.
    pub state: String,
    /// Kuaidi100 sub-state.
    pub sub_state: Option<String>,
    /// The carrier's own code.
    pub carrier_code: Option<String>,
    /// The trace line (may name a station; stored, never logged).
    pub text: String,
    /// Where it was signed, at its precision (today the last mile's area centre).
    pub location: Option<Located>,
}

/// Where the order goes, without the street text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAddress {
    /// The seller's stable key for the address.
    pub addr_key: String,
    /// District (for logs and reports).
    pub district: String,
    /// Geocoded location.
    pub location: Option<GeoPoint>,
}

/// The newest trust assessment of the sign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustSummary {
    /// Score 0–100.
    pub score: u8,
    /// When assessed.
    pub assessed_at: DateTime<Utc>,
    /// Why, one line per rule.
    pub reasons: Vec<String>,
    /// Distance between the sign location and the address, metres.
    pub distance_m: Option<f64>,
    /// The carrier's sign it judged (its time): one assessment per sign.
    #[serde(default)]
    pub sign_at: Option<DateTime<Utc>>,
    /// Whether it reached the threshold.
    #[serde(default)]
    pub trusted: bool,
    /// Who signed (recipient, proxy_person, parcel_station, locker, unknown).
    #[serde(default)]
    pub sign_kind: Option<String>,
}

/// What happened in one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision<S> {
    /// The state moved.
    Moved {
        /// The previous state (`None`: the dimension had none).
        from: Option<S>,
        /// The new state.
        to: S,
        /// Forward or one of the explicit exceptional rules.
        kind: MoveKind,
    },
    /// A newer event for the state the order is in: the stamp moved, the state did not.
    Refreshed,
    /// The very event already applied.
    Duplicate,
    /// Older than what is applied.
    Stale,
    /// Newer, but the move is not allowed (e.g. Shipped → Paid).
    Refused {
        /// The current state.
        from: S,
        /// The state the event asked for.
        to: S,
    },
    /// The event says nothing about this dimension.
    Untouched,
}

impl<S> Decision<S> {
    /// Whether the state moved.
    pub fn moved(&self) -> bool {
        matches!(self, Decision::Moved { .. })
    }
}

/// The overall verdict on one event, for history and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// At least one dimension moved.
    Applied,
    /// Only stamps moved (same state, newer event).
    Refreshed,
    /// Already applied.
    Duplicate,
    /// Older than the applied state.
    Stale,
    /// The move is not allowed.
    Refused,
    /// A known code that moves nothing.
    Noted,
    /// An unknown code: kept and flagged.
    Unmapped,
}

impl Verdict {
    /// The name used in storage, counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Refreshed => "refreshed",
            Verdict::Duplicate => "duplicate",
            Verdict::Stale => "stale",
            Verdict::Refused => "refused",
            Verdict::Noted => "noted",
            Verdict::Unmapped => "unmapped",
        }
    }
}

/// The result of applying one change.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The order after the change (`version` not yet incremented: the store does that).
    pub order: Order,
    /// Whether `order` differs from what was stored (a write is needed).
    pub changed: bool,
    /// Fulfilment decision.
    pub lifecycle: Decision<Lifecycle>,
    /// Refund decision.
    pub refund: Decision<RefundState>,
    /// Overall verdict.
    pub verdict: Verdict,
}

fn rank_of<S: PartialEq + Copy>(all: &[S], state: S) -> u8 {
    all.iter().position(|s| *s == state).and_then(|p| u8::try_from(p).ok()).unwrap_or(u8::MAX)
}

fn decide<S: Copy + PartialEq>(
    current: Option<S>,
    applied: Option<&EventStamp>,
    to: S,
    stamp: &EventStamp,
    move_to: impl Fn(S, S) -> Option<MoveKind>,
) -> Decision<S> {
    match applied {
        Some(applied) if stamp == applied => return Decision::Duplicate,
        Some(applied) if stamp < applied => return Decision::Stale,
        _ => {}
    }
    match current {
        None => Decision::Moved { from: None, to, kind: MoveKind::Forward },
        Some(current) if current == to => Decision::Refreshed,
        Some(current) => match move_to(current, to) {
            Some(kind) => Decision::Moved { from: Some(current), to, kind },
            None => Decision::Refused { from: current, to },
        },
    }
}

fn keep_first<K: Ord>(map: &mut BTreeMap<K, DateTime<Utc>>, key: K, at: DateTime<Utc>) -> bool {
    match map.get(&key) {
        Some(existing) if *existing <= at => false,
        _ => {
            map.insert(key, at);
            true
        }
    }
}

/// Applies one change to the stored order (or to nothing, for a first event).
///
/// Pure: the caller stores `outcome.order` with a conditional write when `outcome.changed`.
pub fn apply(stored: Option<&Order>, change: &StatusChange, now: DateTime<Utc>) -> Outcome {
    let before = stored.cloned();
    let mut order = stored.cloned().unwrap_or_else(|| Order::new(change.key.clone(), now));

    let target = match change.mapping {
        StatusMapping::Mapped(target) => Some(target),
        StatusMapping::Informational(_) | StatusMapping::Unmapped => None,
    };
    let Target { lifecycle: lifecycle_to, refund: refund_to, refund_kind } = target.unwrap_or_default();

    let lifecycle = match lifecycle_to {
        Some(to) => {
            let stamp = stamp(change, rank_of(&Lifecycle::ALL, to));
            let decision = decide(order.lifecycle, order.lifecycle_stamp.as_ref(), to, &stamp, Lifecycle::move_to);
            fold_lifecycle(&mut order, decision, to, stamp, change.event_time);
            decision
        }
        None => Decision::Untouched,
    };
    let refund = match refund_to {
        Some(to) => {
            seed_whole_order_case(&mut order);
            let stamp = stamp(change, rank_of(&RefundState::ALL, to));
            let case = order.refunds.entry(change.refund_scope.case()).or_default();
            let current = (case.stamp.is_some() || case.state != RefundState::None).then_some(case.state);
            let decision = decide(current, case.stamp.as_ref(), to, &stamp, RefundState::move_to);
            fold_refund(case, decision, to, refund_kind, stamp, change.event_time, &change.refund_scope.lines);
            summarize_refunds(&mut order);
            decision
        }
        None => Decision::Untouched,
    };

    // The newest raw code of each field, whatever became of the event.
    let seen = RawSeen { at: change.event_time, code: change.raw.code.clone() };
    if order.raw.get(&change.raw.field).is_none_or(|existing| seen > *existing) {
        order.raw.insert(change.raw.field.clone(), seen);
    }

    let verdict = if lifecycle.moved() || refund.moved() {
        Verdict::Applied
    } else if matches!(change.mapping, StatusMapping::Unmapped) {
        Verdict::Unmapped
    } else if matches!(change.mapping, StatusMapping::Informational(_)) {
        Verdict::Noted
    } else if matches!(lifecycle, Decision::Refreshed) || matches!(refund, Decision::Refreshed) {
        Verdict::Refreshed
    } else if matches!(lifecycle, Decision::Refused { .. }) || matches!(refund, Decision::Refused { .. }) {
        Verdict::Refused
    } else if matches!(lifecycle, Decision::Stale) || matches!(refund, Decision::Stale) {
        Verdict::Stale
    } else {
        Verdict::Duplicate
    };

    // The unknown-code flag: set by an unknown code newer than anything applied, cleared by
    // anything applied after it.
    if verdict == Verdict::Unmapped {
        if order.newest_applied_at().is_none_or(|applied| change.event_time > applied)
            && order.unmapped_at.is_none_or(|at| change.event_time >= at)
        {
            order.unmapped = Some(change.raw.clone());
            order.unmapped_at = Some(change.event_time);
        }
    } else if let (Some(unmapped_at), Some(applied)) = (order.unmapped_at, order.newest_applied_at())
        && applied >= unmapped_at
    {
        order.unmapped = None;
        order.unmapped_at = None;
    }

    let changed = before.as_ref() != Some(&order);
    if changed {
        order.updated_at = now;
    }
    Outcome { order, changed, lifecycle, refund, verdict }
}

fn stamp(change: &StatusChange, rank: u8) -> EventStamp {
    EventStamp { at: change.event_time, rank, message_id: change.message_id.clone() }
}

fn fold_lifecycle(
    order: &mut Order,
    decision: Decision<Lifecycle>,
    to: Lifecycle,
    stamp: EventStamp,
    at: DateTime<Utc>,
) {
    match decision {
        Decision::Moved { .. } | Decision::Refreshed => {
            order.lifecycle = Some(to);
            order.lifecycle_stamp = Some(stamp);
            keep_first(&mut order.entered, to, at);
        }
        Decision::Stale | Decision::Duplicate => {
            keep_first(&mut order.entered, to, at);
        }
        Decision::Refused { .. } | Decision::Untouched => {}
    }
}

fn fold_refund(
    case: &mut RefundCase,
    decision: Decision<RefundState>,
    to: RefundState,
    kind: Option<RefundKind>,
    stamp: EventStamp,
    at: DateTime<Utc>,
    lines: &[LineId],
) {
    if matches!(decision, Decision::Refused { .. } | Decision::Untouched) {
        return;
    }
    keep_first(&mut case.entered, to, at);
    // The lines a case covers only grow, whatever order its events arrive in.
    case.lines.extend(lines.iter().cloned());
    if let Some(kind) = kind
        && case.kind_stamp.as_ref().is_none_or(|applied| stamp > *applied)
    {
        case.kind = Some(kind);
        case.kind_stamp = Some(stamp.clone());
    }
    if matches!(decision, Decision::Moved { .. } | Decision::Refreshed) {
        case.state = to;
        case.stamp = Some(stamp);
    }
}

/// An order stored before refund cases existed keeps its refund as the whole-order case.
fn seed_whole_order_case(order: &mut Order) {
    if order.refunds.is_empty() && (order.refund_stamp.is_some() || order.refund != RefundState::None) {
        order.refunds.insert(
            RefundId::whole_order(),
            RefundCase {
                state: order.refund,
                stamp: order.refund_stamp.clone(),
                kind: order.refund_kind,
                kind_stamp: order.refund_kind_stamp.clone(),
                entered: order.refund_entered.clone(),
                lines: BTreeSet::new(),
            },
        );
    }
}

/// The order's refund summary from its cases: the state and kind of the newest, the first time
/// each state was entered by any. Derived, so it does not depend on arrival order.
fn summarize_refunds(order: &mut Order) {
    if let Some(newest) = order.refunds.values().filter(|c| c.stamp.is_some()).max_by(|a, b| a.stamp.cmp(&b.stamp)) {
        order.refund = newest.state;
        order.refund_stamp = newest.stamp.clone();
    }
    if let Some(kinded) =
        order.refunds.values().filter(|c| c.kind_stamp.is_some()).max_by(|a, b| a.kind_stamp.cmp(&b.kind_stamp))
    {
        order.refund_kind = kinded.kind;
        order.refund_kind_stamp = kinded.kind_stamp.clone();
    }
    let mut entered: BTreeMap<RefundState, DateTime<Utc>> = BTreeMap::new();
    for case in order.refunds.values() {
        for (state, at) in &case.entered {
            keep_first(&mut entered, *state, *at);
        }
    }
    order.refund_entered = entered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::Source;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn key() -> OrderKey {
        OrderKey::parse(Source::Douyin, "shop-1", "6921").unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).single().unwrap_or_default()
            + chrono::Duration::minutes(i64::from(minute))
    }

    fn change(id: &str, minute: u32, target: Target) -> StatusChange {
        StatusChange {
            key: key(),
            message_id: MessageId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            event_time: at(minute),
            received_at: at(minute),
            raw: RawStatus::new("test", id),
            mapping: StatusMapping::Mapped(target),
            provenance: Provenance::Callback,
            refund_scope: RefundScope::default(),
        }
    }

    impl StatusChange {
        fn mapping_refund(&self) -> Option<RefundState> {
            match self.mapping {
                StatusMapping::Mapped(target) => target.refund,
                _ => None,
            }
        }
    }

    fn run(changes: &[StatusChange]) -> Option<Order> {
        let mut order: Option<Order> = None;
        for change in changes {
            let outcome = apply(order.as_ref(), change, at(10_000));
            if outcome.changed {
                let mut next = outcome.order;
                next.version += 1;
                order = Some(next);
            }
        }
        order
    }

    #[test]
    fn forward_moves_apply_and_report_from_and_to() {
        let paid = change("m1", 1, Target::lifecycle(Lifecycle::Paid));
        let first = apply(None, &paid, at(2));
        assert_eq!(first.verdict, Verdict::Applied);
        assert_eq!(first.lifecycle, Decision::Moved { from: None, to: Lifecycle::Paid, kind: MoveKind::Forward });
        let shipped = change("m2", 5, Target::lifecycle(Lifecycle::Shipped));
        let second = apply(Some(&first.order), &shipped, at(6));
        assert_eq!(
            second.lifecycle,
            Decision::Moved { from: Some(Lifecycle::Paid), to: Lifecycle::Shipped, kind: MoveKind::Forward }
        );
        assert_eq!(second.order.entered.get(&Lifecycle::Paid), Some(&at(1)));
        assert_eq!(second.order.entered.get(&Lifecycle::Shipped), Some(&at(5)));
    }

    #[test]
    fn an_older_event_never_overrides_a_newer_state() {
        let order = run(&[change("m2", 5, Target::lifecycle(Lifecycle::Shipped))]);
        let late_paid = change("m1", 1, Target::lifecycle(Lifecycle::Paid));
        let outcome = apply(order.as_ref(), &late_paid, at(6));
        assert_eq!(outcome.verdict, Verdict::Stale);
        assert_eq!(outcome.order.lifecycle, Some(Lifecycle::Shipped));
        // ...but its time is kept: the order did enter Paid at minute 1.
        assert_eq!(outcome.order.entered.get(&Lifecycle::Paid), Some(&at(1)));
    }

    #[test]
    fn a_duplicate_changes_nothing() {
        let paid = change("m1", 1, Target::lifecycle(Lifecycle::Paid));
        let order = run(std::slice::from_ref(&paid));
        let outcome = apply(order.as_ref(), &paid, at(9));
        assert_eq!(outcome.verdict, Verdict::Duplicate);
        assert!(!outcome.changed);
    }

    #[test]
    fn a_newer_backward_event_is_refused() {
        let order = run(&[change("m1", 1, Target::lifecycle(Lifecycle::Shipped))]);
        let outcome = apply(order.as_ref(), &change("m2", 2, Target::lifecycle(Lifecycle::Paid)), at(3));
        assert_eq!(outcome.verdict, Verdict::Refused);
        assert_eq!(outcome.order.lifecycle, Some(Lifecycle::Shipped));
        assert_eq!(outcome.order.lifecycle_stamp, order.and_then(|o| o.lifecycle_stamp));
    }

    #[test]
    fn closed_after_shipment_is_a_refund_not_a_cancel() {
        let order = run(&[change("m1", 1, Target::lifecycle(Lifecycle::Shipped))]);
        let closed = change("m2", 2, Target::both(Lifecycle::Cancelled, RefundState::Succeeded));
        let outcome = apply(order.as_ref(), &closed, at(3));
        assert_eq!(outcome.verdict, Verdict::Applied);
        assert_eq!(outcome.order.lifecycle, Some(Lifecycle::Shipped));
        assert_eq!(outcome.order.refund, RefundState::Succeeded);
        assert!(matches!(outcome.lifecycle, Decision::Refused { .. }));
    }

    #[test]
    fn an_unknown_code_is_kept_and_flagged_until_something_newer_applies() {
        let order = run(&[change("m1", 1, Target::lifecycle(Lifecycle::Paid))]);
        let mut unknown = change("m2", 2, Target::default());
        unknown.mapping = StatusMapping::Unmapped;
        unknown.raw = RawStatus::new("order_status", "999");
        let flagged = apply(order.as_ref(), &unknown, at(3));
        assert_eq!(flagged.verdict, Verdict::Unmapped);
        assert!(flagged.changed);
        assert_eq!(flagged.order.unmapped, Some(RawStatus::new("order_status", "999")));
        assert_eq!(flagged.order.raw.get("order_status").map(|r| r.code.as_str()), Some("999"));
        assert_eq!(flagged.order.lifecycle, Some(Lifecycle::Paid));
        let cleared = apply(Some(&flagged.order), &change("m3", 4, Target::lifecycle(Lifecycle::Shipped)), at(5));
        assert_eq!(cleared.order.unmapped, None);
    }

    #[test]
    fn an_unknown_code_older_than_the_state_is_not_flagged() {
        let order = run(&[change("m1", 5, Target::lifecycle(Lifecycle::Paid))]);
        let mut unknown = change("m0", 1, Target::default());
        unknown.mapping = StatusMapping::Unmapped;
        let outcome = apply(order.as_ref(), &unknown, at(6));
        assert_eq!(outcome.verdict, Verdict::Unmapped);
        assert_eq!(outcome.order.unmapped, None);
    }

    /// The part of an order that must not depend on arrival order.
    fn semantic(order: &Option<Order>) -> Option<Order> {
        order.clone().map(|mut o| {
            o.version = 0;
            o.created_at = at(0);
            o.updated_at = at(0);
            o
        })
    }

    /// A valid sequence: each step an allowed move (or a same-state repeat) from the previous
    /// state, in strictly increasing time.
    fn valid_sequence() -> impl Strategy<Value = Vec<StatusChange>> {
        let steps = proptest::collection::vec((0usize..64, 0usize..64, any::<bool>(), 1u32..30), 1..14);
        steps.prop_map(|steps| {
            let mut lifecycle: Option<Lifecycle> = None;
            let mut refund = RefundState::None;
            let mut minute = 0;
            let mut out = Vec::new();
            for (n, (pick, pick_refund, refund_step, gap)) in steps.into_iter().enumerate() {
                minute += gap;
                let id = format!("m{n}");
                if refund_step {
                    let options: Vec<RefundState> = RefundState::ALL
                        .into_iter()
                        .filter(|to| *to != RefundState::None && (refund == *to || refund.move_to(*to).is_some()))
                        .collect();
                    if let Some(to) = options.get(pick_refund % options.len().max(1)) {
                        refund = *to;
                        let kind = match pick % 3 {
                            0 => Some(RefundKind::RefundOnly),
                            1 => Some(RefundKind::ReturnAndRefund),
                            _ => None,
                        };
                        out.push(change(&id, minute, Target { lifecycle: None, refund: Some(*to), refund_kind: kind }));
                    }
                } else {
                    let options: Vec<Lifecycle> = Lifecycle::ALL
                        .into_iter()
                        .filter(|to| lifecycle.is_none_or(|from| from == *to || from.move_to(*to).is_some()))
                        .collect();
                    if let Some(to) = options.get(pick % options.len().max(1)) {
                        lifecycle = Some(*to);
                        out.push(change(&id, minute, Target::lifecycle(*to)));
                    }
                }
            }
            out
        })
    }

    fn any_sequence() -> impl Strategy<Value = Vec<StatusChange>> {
        proptest::collection::vec((0usize..13, 0usize..6, any::<bool>(), 0u32..50), 1..20).prop_map(|steps| {
            steps
                .into_iter()
                .enumerate()
                .map(|(n, (l, r, is_refund, minute))| {
                    let target = if is_refund {
                        Target::refund(RefundState::ALL[r])
                    } else {
                        Target::lifecycle(Lifecycle::ALL[l])
                    };
                    change(&format!("x{n}"), minute, target)
                })
                .collect()
        })
    }

    /// A valid sequence over several refund cases: each case's steps are allowed moves of that
    /// case, in strictly increasing time; lifecycle steps interleave.
    fn multi_case_sequence() -> impl Strategy<Value = Vec<StatusChange>> {
        let steps = proptest::collection::vec((0usize..64, 0usize..3, 1u32..30), 1..18);
        steps.prop_map(|steps| {
            let mut cases = [RefundState::None; 2];
            let mut lifecycle: Option<Lifecycle> = None;
            let mut minute = 0;
            let mut out = Vec::new();
            for (n, (pick, which, gap)) in steps.into_iter().enumerate() {
                minute += gap;
                let id = format!("c{n}");
                if which < 2 {
                    let from = cases[which];
                    let options: Vec<RefundState> = RefundState::ALL
                        .into_iter()
                        .filter(|to| *to != RefundState::None && (from == *to || from.move_to(*to).is_some()))
                        .collect();
                    if let Some(to) = options.get(pick % options.len().max(1)) {
                        cases[which] = *to;
                        let mut c = change(&id, minute, Target::refund(*to));
                        c.refund_scope = RefundScope {
                            id: Some(RefundId::parse(["R1", "R2"][which]).unwrap_or_else(|e| panic!("{e}"))),
                            lines: vec![LineId::parse(["L1", "L2"][which]).unwrap_or_else(|e| panic!("{e}"))],
                        };
                        out.push(c);
                    }
                } else {
                    let options: Vec<Lifecycle> = Lifecycle::ALL
                        .into_iter()
                        .filter(|to| lifecycle.is_none_or(|from| from == *to || from.move_to(*to).is_some()))
                        .collect();
                    if let Some(to) = options.get(pick % options.len().max(1)) {
                        lifecycle = Some(*to);
                        out.push(change(&id, minute, Target::lifecycle(*to)));
                    }
                }
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn refund_cases_are_independent_and_arrival_order_free(
            sequence in multi_case_sequence(),
            shuffle_seed in any::<u64>(),
        ) {
            let expected = semantic(&run(&sequence));
            let mut delivered: Vec<StatusChange> = sequence.iter().chain(sequence.iter().step_by(2)).cloned().collect();
            let mut state = shuffle_seed | 1;
            for i in (1..delivered.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
                delivered.swap(i, j);
            }
            prop_assert_eq!(semantic(&run(&delivered)), expected.clone());
            // No case blocks another: each ends where its own sequence ends.
            if let Some(order) = expected {
                for (case, id) in [("R1", "L1"), ("R2", "L2")] {
                    let last = sequence.iter().rev().find(|c| c.refund_scope.id.as_ref().is_some_and(|r| r.as_str() == case));
                    if let Some(last) = last {
                        let stored = order.refunds.get(&RefundId::parse(case).unwrap_or_else(|e| panic!("{e}")));
                        prop_assert_eq!(stored.map(|c| c.state), last.mapping_refund());
                        prop_assert!(stored.is_some_and(|c| c.lines.iter().any(|l| l.as_str() == id)));
                    }
                }
            }
        }

        #[test]
        fn any_duplication_and_permutation_ends_as_in_order_delivery(
            sequence in valid_sequence(),
            shuffle_seed in any::<u64>(),
            duplicates in proptest::collection::vec(0usize..64, 0..10),
        ) {
            let expected = semantic(&run(&sequence));
            let mut delivered = sequence.clone();
            for d in duplicates {
                if let Some(event) = sequence.get(d % sequence.len().max(1)) {
                    delivered.push(event.clone());
                }
            }
            // Fisher–Yates with a small deterministic generator from the seed.
            let mut state = shuffle_seed | 1;
            for i in (1..delivered.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
                delivered.swap(i, j);
            }
            prop_assert_eq!(semantic(&run(&delivered)), expected);
        }

        #[test]
        fn nothing_moves_backwards_except_through_an_explicit_rule(sequence in any_sequence()) {
            let mut order: Option<Order> = None;
            for change in &sequence {
                let outcome = apply(order.as_ref(), change, at(10_000));
                if let Decision::Moved { from: Some(from), to, kind } = outcome.lifecycle {
                    let forward = matches!((from.level(), to.level()), (Some(a), Some(b)) if b > a);
                    prop_assert!(forward || kind == MoveKind::Exceptional, "{from} -> {to} as {kind:?}");
                    prop_assert_eq!(from.move_to(to), Some(kind));
                }
                if let Decision::Moved { from: Some(from), to, kind } = outcome.refund {
                    prop_assert_eq!(from.move_to(to), Some(kind));
                    prop_assert!(from != RefundState::Succeeded, "a paid-out refund never moves");
                }
                if outcome.changed {
                    order = Some(outcome.order);
                }
            }
        }

        #[test]
        fn applying_the_same_event_twice_is_a_no_op(sequence in any_sequence()) {
            let mut order: Option<Order> = None;
            for change in &sequence {
                let outcome = apply(order.as_ref(), change, at(10_000));
                if outcome.changed {
                    order = Some(outcome.order);
                }
                let again = apply(order.as_ref(), change, at(10_001));
                prop_assert!(!again.changed, "second delivery of {:?} changed the order", change.message_id);
            }
        }
    }
}
