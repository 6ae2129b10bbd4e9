//! A parcel's identity with its carrier.

use serde::{Deserialize, Serialize};

/// A waybill: the carrier and its tracking number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waybill {
    /// Carrier code (kuaidi100 `com`, or the platform's express company id).
    pub carrier: String,
    /// Tracking number.
    pub number: String,
}
