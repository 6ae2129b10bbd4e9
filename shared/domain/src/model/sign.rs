//! Who signed for a parcel, as a carrier record says it.

use serde::{Deserialize, Serialize};

/// Who or what signed for the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignKind {
    /// The recipient in person (本人签收).
    Recipient,
    /// Someone else on the recipient's behalf: doorman, property office, front desk, family…
    ProxyPerson,
    /// A parcel station or pickup point (驿站, 代收点, 快递超市); the customer still has to fetch it.
    ParcelStation,
    /// A parcel locker (快递柜, 丰巢, 智能柜); the customer still has to fetch it.
    Locker,
    /// Signed, but the record does not say by whom.
    Unknown,
}

impl SignKind {
    /// Whether someone or something other than the recipient took the parcel.
    pub const fn is_proxy(self) -> bool {
        matches!(self, Self::ProxyPerson | Self::ParcelStation | Self::Locker)
    }
}
