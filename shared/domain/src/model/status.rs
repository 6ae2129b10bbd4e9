//! Raw platform status codes and what they map to in the unified lifecycle.
//!
//! Every source module has a `map_status(field, code)` function built from the tables in
//! `../shared/reference/platforms.md`. A code that is not in the table is [`StatusMapping::Unmapped`]:
//! it is kept, flagged and alerted on, never dropped or guessed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::lifecycle::{Lifecycle, RefundKind, RefundState};

/// A status code exactly as the platform sent it, with the field it came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RawStatus {
    /// The platform's field or code family, e.g. `order_status`, `tag`, `after_sale_status`.
    pub field: String,
    /// The code, e.g. `105`, `WAIT_SELLER_SEND_GOODS`.
    pub code: String,
}

/// Characters of a field or code kept: real codes are short (`WAIT_SELLER_SEND_GOODS`, `105`);
/// a longer one is cut (and marked with `…`), so no sender can grow an order item, a history
/// entry, an `UnmappedStatus` event or a counter name without bound.
pub const MAX_CODE_CHARS: usize = 64;

fn bounded(text: String) -> String {
    match text.char_indices().nth(MAX_CODE_CHARS) {
        None => text,
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

impl RawStatus {
    /// A raw status from its field and code, each cut to [`MAX_CODE_CHARS`].
    pub fn new(field: impl Into<String>, code: impl Into<String>) -> Self {
        Self { field: bounded(field.into()), code: bounded(code.into()) }
    }
}

impl fmt::Display for RawStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field, self.code)
    }
}

/// Where a mapped code moves the order, in each dimension it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Target {
    /// The fulfilment state, if the code says one.
    pub lifecycle: Option<Lifecycle>,
    /// The refund state, if the code says one.
    pub refund: Option<RefundState>,
    /// Refund only or return and refund, where the code says which.
    pub refund_kind: Option<RefundKind>,
}

impl Target {
    /// A fulfilment state only.
    pub const fn lifecycle(state: Lifecycle) -> Self {
        Self { lifecycle: Some(state), refund: None, refund_kind: None }
    }

    /// A refund state only.
    pub const fn refund(state: RefundState) -> Self {
        Self { lifecycle: None, refund: Some(state), refund_kind: None }
    }

    /// A refund state of a known kind.
    pub const fn refund_of(state: RefundState, kind: RefundKind) -> Self {
        Self { lifecycle: None, refund: Some(state), refund_kind: Some(kind) }
    }

    /// Both dimensions (e.g. "closed after a refund before shipment").
    pub const fn both(state: Lifecycle, refund: RefundState) -> Self {
        Self { lifecycle: Some(state), refund: Some(refund), refund_kind: None }
    }
}

/// What a raw code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatusMapping {
    /// The code moves the order.
    Mapped(Target),
    /// A known code that moves no state (address changed, amount changed, an exchange…);
    /// it is kept in history. The text says what it is.
    Informational(&'static str),
    /// Not in our table: keep the raw code, flag the order, alert with the missing row.
    Unmapped,
}

/// One row of a source's mapping table: field, code, meaning.
pub type MappingRow = (&'static str, &'static str, StatusMapping);

/// Looks a code up in a source's table.
pub fn lookup(table: &[MappingRow], field: &str, code: &str) -> StatusMapping {
    table.iter().find(|(f, c, _)| *f == field && *c == code).map_or(StatusMapping::Unmapped, |(_, _, mapping)| *mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_code_is_cut_and_marked_never_kept_whole() {
        let raw = RawStatus::new("order_status", "9".repeat(1 << 20));
        assert_eq!(raw.code.chars().count(), MAX_CODE_CHARS + 1);
        assert!(raw.code.ends_with('…'));
        let chinese = RawStatus::new("状态", "已签收".repeat(100));
        assert_eq!(chinese.code.chars().count(), MAX_CODE_CHARS + 1, "cut on a character boundary");
        assert_eq!(RawStatus::new("tag", "105").code, "105", "real codes untouched");
    }
}
