//! The unified order lifecycle, its five-stage roll-up, the refund dimension, and which moves
//! between states are allowed.
//!
//! The rules are chosen so that the outcome of a set of events does not depend on the order
//! they arrive in: the "allowed" relation is transitive (anything reachable through a chain
//! of allowed moves is reachable directly). With that, the newest event of a valid sequence
//! can always be applied to whatever older subset arrived before it, and older events that
//! arrive later are stale. See `transition` for the rule that uses this.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in fulfilment, independent of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Created, not paid yet.
    PendingPayment,
    /// Paid.
    Paid,
    /// Paid, held by a risk or manual review before fulfilment.
    RiskHold,
    /// The warehouse accepted the order.
    WarehouseAccepted,
    /// Being picked and packed (also: shipped reported without a waybill, held here).
    Packing,
    /// Handed to the carrier: waybill known and scanned out.
    Shipped,
    /// Moving between carrier sites.
    InTransit,
    /// With the courier for the last mile.
    OutForDelivery,
    /// The carrier says signed, and we trust it.
    Signed,
    /// The carrier says signed but the evidence is weak; waiting for the customer.
    SignPendingConfirmation,
    /// Not with the customer after delivery was tried: the carrier returned it to the sender or
    /// the recipient refused it (Kuaidi100 4 退签, 6 退回, 14 拒签, 203 拒收), or the customer says
    /// it never arrived after a "signed". Its dashboard stage is 签收异常, never 已签收.
    SignException,
    /// The platform closed the trade as completed.
    Completed,
    /// Cancelled before shipment.
    Cancelled,
}

/// The five stages dashboards show, plus two off-path ends: a cancelled order, and a parcel that
/// is not with the customer after delivery was tried (returned, refused, or "not received").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// 待支付
    AwaitingPayment,
    /// 已支付
    Paid,
    /// 已发货
    Shipped,
    /// 已签收
    Signed,
    /// 已完成
    Completed,
    /// 已取消 (not one of the five: a cancelled order leaves the path)
    Cancelled,
    /// 签收异常 (not one of the five: returned to the sender, refused, or the customer says it
    /// never arrived — never counted as 已签收)
    Exception,
}

impl Stage {
    /// The label sellers see.
    pub fn label(self) -> &'static str {
        match self {
            Stage::AwaitingPayment => "待支付",
            Stage::Paid => "已支付",
            Stage::Shipped => "已发货",
            Stage::Signed => "已签收",
            Stage::Completed => "已完成",
            Stage::Cancelled => "已取消",
            Stage::Exception => "签收异常",
        }
    }
}

impl Lifecycle {
    /// Every state, in declaration order.
    pub const ALL: [Lifecycle; 13] = [
        Lifecycle::PendingPayment,
        Lifecycle::Paid,
        Lifecycle::RiskHold,
        Lifecycle::WarehouseAccepted,
        Lifecycle::Packing,
        Lifecycle::Shipped,
        Lifecycle::InTransit,
        Lifecycle::OutForDelivery,
        Lifecycle::Signed,
        Lifecycle::SignPendingConfirmation,
        Lifecycle::SignException,
        Lifecycle::Completed,
        Lifecycle::Cancelled,
    ];

    /// The dashboard stage this state rolls up to.
    pub fn stage(self) -> Stage {
        match self {
            Lifecycle::PendingPayment => Stage::AwaitingPayment,
            Lifecycle::Paid | Lifecycle::RiskHold | Lifecycle::WarehouseAccepted | Lifecycle::Packing => Stage::Paid,
            Lifecycle::Shipped | Lifecycle::InTransit | Lifecycle::OutForDelivery => Stage::Shipped,
            Lifecycle::Signed | Lifecycle::SignPendingConfirmation => Stage::Signed,
            // Returned (Kuaidi100 4/6), refused (14/203) or "not received": the parcel is not with
            // the customer, whatever a carrier said before.
            Lifecycle::SignException => Stage::Exception,
            Lifecycle::Completed => Stage::Completed,
            Lifecycle::Cancelled => Stage::Cancelled,
        }
    }

    /// Progress along the fulfilment path. States of equal level form a group inside which
    /// every move is an explicit exceptional rule. `None` for `Cancelled`, which is off the path.
    pub fn level(self) -> Option<u8> {
        Some(match self {
            Lifecycle::PendingPayment => 0,
            Lifecycle::Paid | Lifecycle::RiskHold => 1,
            Lifecycle::WarehouseAccepted => 2,
            Lifecycle::Packing => 3,
            Lifecycle::Shipped => 4,
            Lifecycle::InTransit => 5,
            Lifecycle::OutForDelivery => 6,
            Lifecycle::Signed | Lifecycle::SignPendingConfirmation | Lifecycle::SignException => 7,
            Lifecycle::Completed => 8,
            Lifecycle::Cancelled => return None,
        })
    }

    /// Whether the parcel has not left yet (cancellation is still a cancel, not a refund).
    pub fn is_before_shipment(self) -> bool {
        self.level().is_some_and(|level| level < 4)
    }

    /// The kind of move from `self` to `to`, or `None` when it is not allowed.
    pub fn move_to(self, to: Lifecycle) -> Option<MoveKind> {
        if self == to {
            return None;
        }
        match (self.level(), to.level()) {
            (Some(from), Some(to_level)) if to_level > from => Some(MoveKind::Forward),
            // Same level: Paid <-> RiskHold, and the sign group (trust downgrade, customer
            // confirmation, exception and its resolution).
            (Some(from), Some(to_level)) if to_level == from => Some(MoveKind::Exceptional),
            // Cancel before ship.
            (Some(_), None) if self.is_before_shipment() => Some(MoveKind::Exceptional),
            _ => None,
        }
    }

    /// The states from which a move to `self` is allowed (used to build conditional writes).
    pub fn allowed_from(self) -> Vec<Lifecycle> {
        Lifecycle::ALL.into_iter().filter(|from| from.move_to(self).is_some()).collect()
    }

    /// A short code for counter names (`[a-z]{2,6}`).
    pub fn code(self) -> &'static str {
        match self {
            Lifecycle::PendingPayment => "pend",
            Lifecycle::Paid => "paid",
            Lifecycle::RiskHold => "risk",
            Lifecycle::WarehouseAccepted => "wh",
            Lifecycle::Packing => "pack",
            Lifecycle::Shipped => "ship",
            Lifecycle::InTransit => "trans",
            Lifecycle::OutForDelivery => "ofd",
            Lifecycle::Signed => "signed",
            Lifecycle::SignPendingConfirmation => "spc",
            Lifecycle::SignException => "sexc",
            Lifecycle::Completed => "done",
            Lifecycle::Cancelled => "cancel",
        }
    }

    /// The state of a short code.
    pub fn from_code(code: &str) -> Option<Lifecycle> {
        Lifecycle::ALL.into_iter().find(|state| state.code() == code)
    }

    /// The name used in storage, events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::PendingPayment => "PendingPayment",
            Lifecycle::Paid => "Paid",
            Lifecycle::RiskHold => "RiskHold",
            Lifecycle::WarehouseAccepted => "WarehouseAccepted",
            Lifecycle::Packing => "Packing",
            Lifecycle::Shipped => "Shipped",
            Lifecycle::InTransit => "InTransit",
            Lifecycle::OutForDelivery => "OutForDelivery",
            Lifecycle::Signed => "Signed",
            Lifecycle::SignPendingConfirmation => "SignPendingConfirmation",
            Lifecycle::SignException => "SignException",
            Lifecycle::Completed => "Completed",
            Lifecycle::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a move was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveKind {
    /// Further along the path (skipping states is fine: events arrive out of order).
    Forward,
    /// One of the explicit exceptional rules: RiskHold ↔ Paid, moves inside the sign group
    /// (Signed ↔ SignPendingConfirmation ↔ SignException), cancel before ship; and in the refund
    /// dimension, reopening or renegotiating a refund that is not yet paid out.
    Exceptional,
}

/// The refund dimension, beside fulfilment: finance must not count a refunded order as revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum RefundState {
    /// No refund ever asked for.
    #[default]
    None,
    /// The buyer asked.
    Requested,
    /// The seller or platform agreed (for a return: waiting for the goods).
    Approved,
    /// The seller refused.
    Rejected,
    /// Withdrawn by the buyer or closed without a refund.
    Closed,
    /// The money went back to the buyer. Final.
    Succeeded,
}

impl RefundState {
    /// Every state, in declaration order.
    pub const ALL: [RefundState; 6] = [
        RefundState::None,
        RefundState::Requested,
        RefundState::Approved,
        RefundState::Rejected,
        RefundState::Closed,
        RefundState::Succeeded,
    ];

    fn level(self) -> u8 {
        match self {
            RefundState::None => 0,
            // Negotiation: any of these can follow any other (re-request after a refusal, a
            // closed case reopened, an approval withdrawn).
            RefundState::Requested | RefundState::Approved | RefundState::Rejected | RefundState::Closed => 1,
            RefundState::Succeeded => 2,
        }
    }

    /// The kind of move from `self` to `to`, or `None` when it is not allowed.
    pub fn move_to(self, to: RefundState) -> Option<MoveKind> {
        if self == to || to == RefundState::None {
            return None;
        }
        match self.level().cmp(&to.level()) {
            std::cmp::Ordering::Less => Some(MoveKind::Forward),
            std::cmp::Ordering::Equal => {
                // Within negotiation, the natural order is forward; the rest is explicit.
                if refund_rank(to) > refund_rank(self) { Some(MoveKind::Forward) } else { Some(MoveKind::Exceptional) }
            }
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The states from which a move to `self` is allowed.
    pub fn allowed_from(self) -> Vec<RefundState> {
        RefundState::ALL.into_iter().filter(|from| from.move_to(self).is_some()).collect()
    }

    /// Whether a refund is open (asked for and not yet decided for good).
    pub fn is_open(self) -> bool {
        matches!(self, RefundState::Requested | RefundState::Approved)
    }

    /// The name used in storage, events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::None => "None",
            RefundState::Requested => "Requested",
            RefundState::Approved => "Approved",
            RefundState::Rejected => "Rejected",
            RefundState::Closed => "Closed",
            RefundState::Succeeded => "Succeeded",
        }
    }
}

fn refund_rank(state: RefundState) -> u8 {
    match state {
        RefundState::None => 0,
        RefundState::Requested => 1,
        RefundState::Approved => 2,
        RefundState::Rejected => 3,
        RefundState::Closed => 4,
        RefundState::Succeeded => 5,
    }
}

impl fmt::Display for RefundState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the buyer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundKind {
    /// Money back, no goods returned (仅退款).
    RefundOnly,
    /// Goods returned, then money back (退货退款).
    ReturnAndRefund,
    /// Part of the price back, no goods move and the order still ships (价保: Douyin
    /// `after_sale_type` 6, Kuaishou `specialRefundType` 1): never releases stock.
    PriceProtection,
}

impl RefundKind {
    /// Whether a refund of this kind gives stock back when it succeeds before shipment.
    pub const fn releases_stock(self) -> bool {
        !matches!(self, RefundKind::PriceProtection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_rolls_up_to_its_stage() {
        use Lifecycle::*;
        let expected = [
            (PendingPayment, "待支付"),
            (Paid, "已支付"),
            (RiskHold, "已支付"),
            (WarehouseAccepted, "已支付"),
            (Packing, "已支付"),
            (Shipped, "已发货"),
            (InTransit, "已发货"),
            (OutForDelivery, "已发货"),
            (Signed, "已签收"),
            (SignPendingConfirmation, "已签收"),
            (SignException, "签收异常"),
            (Completed, "已完成"),
            (Cancelled, "已取消"),
        ];
        assert_eq!(expected.len(), Lifecycle::ALL.len());
        for (state, label) in expected {
            assert_eq!(state.stage().label(), label, "{state}");
        }
    }

    #[test]
    fn the_explicit_exceptional_moves_are_allowed() {
        use Lifecycle::*;
        for (from, to) in [
            (RiskHold, Paid),
            (RiskHold, Cancelled),
            (Paid, RiskHold),
            (SignPendingConfirmation, Signed),
            (SignPendingConfirmation, SignException),
            (Signed, SignPendingConfirmation),
            (Packing, Cancelled),
            (PendingPayment, Cancelled),
        ] {
            assert_eq!(from.move_to(to), Some(MoveKind::Exceptional), "{from} -> {to}");
        }
    }

    #[test]
    fn backward_moves_and_cancel_after_ship_are_refused() {
        use Lifecycle::*;
        for (from, to) in [
            (Shipped, Paid),
            (Signed, InTransit),
            (Completed, Signed),
            (Shipped, Cancelled),
            (Completed, Cancelled),
            (Cancelled, Paid),
            (Cancelled, Completed),
            (Paid, Paid),
        ] {
            assert_eq!(from.move_to(to), None, "{from} -> {to}");
        }
    }

    #[test]
    fn allowed_moves_are_transitive_so_arrival_order_cannot_matter() {
        for a in Lifecycle::ALL {
            for b in Lifecycle::ALL {
                for c in Lifecycle::ALL {
                    if a.move_to(b).is_some() && b.move_to(c).is_some() && a != c {
                        assert!(a.move_to(c).is_some(), "{a} -> {b} -> {c} but not {a} -> {c}");
                    }
                }
            }
        }
        for a in RefundState::ALL {
            for b in RefundState::ALL {
                for c in RefundState::ALL {
                    if a.move_to(b).is_some() && b.move_to(c).is_some() && a != c {
                        assert!(a.move_to(c).is_some(), "{a} -> {b} -> {c} but not {a} -> {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_paid_out_refund_is_final() {
        for to in RefundState::ALL {
            assert_eq!(RefundState::Succeeded.move_to(to), None, "Succeeded -> {to}");
        }
        assert_eq!(RefundState::Rejected.move_to(RefundState::Requested), Some(MoveKind::Exceptional));
        assert_eq!(RefundState::Requested.move_to(RefundState::Succeeded), Some(MoveKind::Forward));
    }

    #[test]
    fn allowed_from_lists_exactly_the_sources_of_allowed_moves() {
        assert_eq!(
            Lifecycle::Cancelled.allowed_from(),
            vec![
                Lifecycle::PendingPayment,
                Lifecycle::Paid,
                Lifecycle::RiskHold,
                Lifecycle::WarehouseAccepted,
                Lifecycle::Packing
            ]
        );
        assert!(Lifecycle::PendingPayment.allowed_from().is_empty());
    }
}
