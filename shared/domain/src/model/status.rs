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

impl RawStatus {
    /// The longest code any table holds is 47 characters (Youzan
    /// `trade_refund_RefundSellerRefuseBuyerReturnGoods`); a longer one is no platform's code.
    /// It is kept cut to this many characters (a `…` marks the cut) and is always Unmapped.
    pub const MAX_CODE_CHARS: usize = 64;

    /// A raw status from its field and code. A code longer than [`Self::MAX_CODE_CHARS`] is
    /// cut (and marked), so stored history, flags and alert keys stay bounded.
    pub fn new(field: impl Into<String>, code: impl Into<String>) -> Self {
        let (field, code) = (field.into(), code.into());
        Self { field: bounded(field), code: bounded(code) }
    }

    /// Whether the code was cut: such a code is in no table.
    pub fn is_cut(&self) -> bool {
        self.code.ends_with(CUT_MARK) && self.code.chars().count() == Self::MAX_CODE_CHARS + 1
    }
}

const CUT_MARK: char = '…';

fn bounded(text: String) -> String {
    if text.chars().count() <= RawStatus::MAX_CODE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(RawStatus::MAX_CODE_CHARS).collect();
    cut.push(CUT_MARK);
    cut
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

    /// The kind of an after-sale only (its type field: 仅退款, 退货退款, 价保…).
    pub const fn kind(kind: RefundKind) -> Self {
        Self { lifecycle: None, refund: None, refund_kind: Some(kind) }
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

impl StatusMapping {
    /// The mapping with the refund kind an after-sale's own type field names (its 价保 among
    /// them): it wins over the kind a refund code implies. Codes that move no refund keep theirs.
    pub fn with_refund_kind(self, kind: Option<RefundKind>) -> Self {
        match (self, kind) {
            (StatusMapping::Mapped(target), Some(kind)) if target.refund.is_some() => {
                StatusMapping::Mapped(Target { refund_kind: Some(kind), ..target })
            }
            (mapping, _) => mapping,
        }
    }
}

/// One row of a source's mapping table: field, code, meaning.
pub type MappingRow = (&'static str, &'static str, StatusMapping);

/// Looks a code up in a source's table. A code longer than [`RawStatus::MAX_CODE_CHARS`] is in
/// no table.
pub fn lookup(table: &[MappingRow], field: &str, code: &str) -> StatusMapping {
    if code.chars().count() > RawStatus::MAX_CODE_CHARS {
        return StatusMapping::Unmapped;
    }
    table.iter().find(|(f, c, _)| *f == field && *c == code).map_or(StatusMapping::Unmapped, |(_, _, mapping)| *mapping)
}

/// The kind an after-sale's type field names, looked up as a `field` row of a source's table:
/// `None` for an exchange, a re-send or a repair (no refund), and for unknown values.
pub fn kind_of(table: &[MappingRow], field: &str, code: &str) -> Option<RefundKind> {
    match lookup(table, field, code) {
        StatusMapping::Mapped(Target { refund_kind, .. }) => refund_kind,
        StatusMapping::Informational(_) | StatusMapping::Unmapped => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_code_is_kept_cut_and_is_in_no_table() {
        let long = "X".repeat(5_000);
        let raw = RawStatus::new("tag", long.clone());
        assert_eq!(raw.code.chars().count(), RawStatus::MAX_CODE_CHARS + 1);
        assert!(raw.is_cut());
        let table: &[MappingRow] = &[("tag", "X", StatusMapping::Informational("x"))];
        assert_eq!(lookup(table, "tag", &long), StatusMapping::Unmapped);
        assert_eq!(lookup(table, "tag", &raw.code), StatusMapping::Unmapped);
        let short = RawStatus::new("tag", "甲".repeat(64));
        assert!(!short.is_cut(), "64 characters (not bytes) are kept whole");
    }
}
