//! Per-order stock reservations. The seller's ERP/WMS owns stock; orderhub keeps what each order
//! reserved and releases it exactly once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::ids::{LineId, OrderKey, Sku};

/// One line of an order: the platform's line id, the SKU an ERP acts on, and the quantity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderLine {
    /// The platform's line (sub-order) id.
    pub line: LineId,
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub qty: u32,
}

/// One order line's reserved stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order.
    pub key: OrderKey,
    /// The order line.
    pub line: LineId,
    /// The SKU.
    pub sku: Sku,
    /// Units reserved.
    pub qty: u32,
    /// When reserved.
    pub reserved_at: DateTime<Utc>,
    /// When released (`None`: still held).
    pub released_at: Option<DateTime<Utc>>,
    /// Why it was released (`refund`, `ops`), set with `released_at`.
    #[serde(default)]
    pub released_by: Option<String>,
}

impl Reservation {
    /// The order line it holds.
    pub fn order_line(&self) -> OrderLine {
        OrderLine { line: self.line.clone(), sku: self.sku.clone(), qty: self.qty }
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseOutcome {
    /// Released now.
    Released,
    /// Someone released (one of) it before (a late callback, a retry, a concurrent run).
    AlreadyReleased,
    /// Nothing was reserved for (one of) this order's lines.
    NotReserved,
}
