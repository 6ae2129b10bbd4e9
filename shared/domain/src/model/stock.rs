//! Per-order stock reservations. The seller's ERP/WMS owns stock; orderhub keeps what each order
//! reserved and releases it exactly once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::ids::{OrderKey, Sku};

/// One SKU line an order reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order.
    pub key: OrderKey,
    /// The SKU.
    pub sku: Sku,
    /// Units reserved.
    pub qty: u32,
    /// When reserved.
    pub reserved_at: DateTime<Utc>,
    /// When released (`None`: still held).
    pub released_at: Option<DateTime<Utc>>,
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseOutcome {
    /// Released now.
    Released,
    /// Someone released it before (a late callback, a retry, a concurrent run).
    AlreadyReleased,
    /// Nothing was reserved for this order and SKU.
    NotReserved,
}
