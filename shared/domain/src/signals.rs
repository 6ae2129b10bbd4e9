//! What the trust check remembers beyond the order: the customer's app signals (7 days) and
//! each delivery address's sign history and monthly proxy-receipt count.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, OrderKey};
use crate::trust::{AppSignal, AppSignalKind, GeoPoint, SignKind};

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
    if plain { customer.to_owned() } else { crate::sources::body_hash_id(customer.as_bytes()).to_string() }
}
