//! The customer's mini-program signals, and what the trust check remembers beyond the order:
//! the signals (7 days) and each delivery address's sign history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::geo::GeoPoint;
use crate::model::ids::{MessageId, OrderKey};
use crate::model::sign::SignKind;

/// What the customer's mini-program reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppSignalKind {
    /// The mini-program was opened.
    AppOpened,
    /// A location fix.
    GpsPing,
    /// The order's logistics page was viewed.
    LogisticsViewed,
    /// The customer contacted support. Neutral: it may be a complaint as easily as a thank-you.
    Consultation,
    /// The customer confirmed receipt (一键核实 / 确认收货).
    SignConfirmed,
    /// The customer said the parcel was not received.
    NotReceived,
}

/// One mini-program signal of the order's customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AppSignal {
    /// What happened.
    pub kind: AppSignalKind,
    /// When.
    pub at: DateTime<Utc>,
    /// Where the phone was, if the customer allowed location.
    pub location: Option<GeoPoint>,
    /// The fix's accuracy radius in metres, as the phone reported it.
    pub accuracy_m: Option<f64>,
}

impl AppSignal {
    /// A usable location: a valid point with a finite, non-negative accuracy (or none given).
    pub fn usable_location(&self) -> Option<GeoPoint> {
        let point = self.location.filter(|p| p.is_valid())?;
        match self.accuracy_m {
            Some(acc) if !(acc.is_finite() && acc >= 0.0) => None,
            _ => Some(point),
        }
    }
}

/// One app signal as stored under its customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The signal's own id (recording it twice is a no-op).
    pub message_id: MessageId,
    /// What happened.
    pub kind: AppSignalKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The order it concerned, if the app said.
    pub order: Option<OrderKey>,
    /// Where, for GPS pings.
    pub location: Option<GeoPoint>,
    /// GPS accuracy, metres.
    pub accuracy_m: Option<f64>,
}

impl SignalRecord {
    /// As the trust assessment reads it.
    pub fn signal(&self) -> AppSignal {
        AppSignal { kind: self.kind, at: self.at, location: self.location, accuracy_m: self.accuracy_m }
    }
}

/// One sign at an address (the "last 3 signs" of the evidence page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSign {
    /// When the carrier says it was signed.
    pub at: DateTime<Utc>,
    /// The order.
    pub order: OrderKey,
    /// Who signed.
    pub kind: SignKind,
    /// The station or locker, when named.
    pub station: Option<String>,
    /// Trust score given.
    pub score: u8,
}

/// A customer id as a key: the seller's opaque id when it is plain, else a hash of it.
pub fn customer_key(customer: &str) -> String {
    let plain = !customer.is_empty()
        && customer.len() <= 64
        && customer.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if plain { customer.to_owned() } else { crate::model::ids::body_hash_id(customer.as_bytes()).to_string() }
}
