//! What the order store keeps beside the order: history, due markers, and the one write that
//! carries them all.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::counters::CounterAdd;
use crate::model::domain_event::DomainEvent;
use crate::model::ids::{MessageId, OrderKey, RefundId};
use crate::model::lifecycle::{Lifecycle, RefundState};
use crate::model::order::{Decision, Order, Provenance, Verdict};
use crate::model::status::RawStatus;

/// A fulfilment move as history keeps it: (from, to).
pub type LifecycleMove = (Option<Lifecycle>, Lifecycle);

/// A refund move as history keeps it: (from, to).
pub type RefundMove = (Option<RefundState>, RefundState);

/// One event as the order's history keeps it: accepted, stale, duplicate, refused or unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The order.
    pub key: OrderKey,
    /// The source's event time.
    pub event_time: DateTime<Utc>,
    /// The sender's message id.
    pub message_id: MessageId,
    /// When orderhub received the event.
    pub received_at: DateTime<Utc>,
    /// When orderhub decided on it.
    pub applied_at: DateTime<Utc>,
    /// The code as sent.
    pub raw: RawStatus,
    /// Callback, poll, ops or rule.
    pub provenance: Provenance,
    /// What became of it.
    pub verdict: Verdict,
    /// The fulfilment move, if any.
    pub lifecycle: Option<LifecycleMove>,
    /// The refund move, if any.
    pub refund: Option<RefundMove>,
    /// The refund case the move is of (`None`: the order's one case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RefundId>,
}

impl HistoryEntry {
    /// The moves of a decision pair, as history records them.
    pub fn moves(
        lifecycle: &Decision<Lifecycle>,
        refund: &Decision<RefundState>,
    ) -> (Option<LifecycleMove>, Option<RefundMove>) {
        let l = match lifecycle {
            Decision::Moved { from, to, .. } => Some((*from, *to)),
            _ => None,
        };
        let r = match refund {
            Decision::Moved { from, to, .. } => Some((*from, *to)),
            _ => None,
        };
        (l, r)
    }
}

/// Work that falls due for an order at a time: found by pollers without a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DueKind {
    /// Ask the platform about a refund whose outcome never arrived.
    RefundCheck,
    /// Look again at a sign the customer has not confirmed.
    TrustRecheck,
    /// An order staying in one state past its limit.
    Sla,
    /// Subscribe the order's waybill to the carrier tracking service (Kuaidi100); the note
    /// carries `carrier number` and, after an `abort` push, the time tracking stopped.
    Subscribe,
    /// Fetch again the lines of a paid order whose line fetch failed (nothing reserved yet).
    Lines,
}

impl DueKind {
    /// Every kind.
    pub const ALL: [DueKind; 5] =
        [DueKind::RefundCheck, DueKind::TrustRecheck, DueKind::Sla, DueKind::Subscribe, DueKind::Lines];

    /// The name used in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::RefundCheck => "refund",
            DueKind::TrustRecheck => "trust",
            DueKind::Sla => "sla",
            DueKind::Subscribe => "subscribe",
            DueKind::Lines => "lines",
        }
    }
}

/// "Look at this order again at `due_at`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueMarker {
    /// The order.
    pub key: OrderKey,
    /// What to do.
    pub kind: DueKind,
    /// When.
    pub due_at: DateTime<Utc>,
    /// Which poller shard finds it (from the order key).
    pub shard: u16,
    /// Free-form context for the poller (e.g. the state an SLA watches).
    pub note: Option<String>,
}

/// A change to an order's due markers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DueChange {
    /// Create or move the marker of its kind.
    Set(DueMarker),
    /// Remove the marker of this kind (resolved).
    Clear(DueKind),
}

/// Everything one applied event writes, in one request.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderWrite {
    /// The order key.
    pub key: OrderKey,
    /// The new order (its `version` must be `expected_version + 1`); `None` when only history
    /// and counters are written (stale, duplicate, refused, noted).
    pub order: Option<Order>,
    /// The version the stored order must have (`0`: must not exist).
    pub expected_version: u64,
    /// The history entry; a second write of the same entry is refused as a duplicate.
    pub history: HistoryEntry,
    /// Due marker changes.
    pub due: Vec<DueChange>,
    /// Daily counters to add to, atomically with the rest.
    pub counters: Vec<CounterAdd>,
    /// The events of this change, kept with it in the same write until they are published (an
    /// outbox): a publish or a function that fails after the commit loses none of them.
    pub outbox: Vec<DomainEvent>,
    /// The order's shard (from its key), indexing its outbox entries.
    pub shard: u16,
}

/// An event written with its change and not yet published.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpublished {
    /// The order it was written with.
    pub key: OrderKey,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// The event.
    pub event: DomainEvent,
}
