//! 京东 (JD): order states and after-sale service codes. JD's push scheme is unknown
//! (see `../shared/reference/platforms.md`), so only the query-side codes are here.

use crate::model::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::model::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};

/// JD's status tables.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("order_state", "WAIT_SELLER_STOCK_OUT", Mapped(Target::lifecycle(Paid))),
    ("order_state", "WAIT_GOODS_RECEIVE_CONFIRM", Mapped(Target::lifecycle(Shipped))),
    ("order_state", "FINISHED_L", Mapped(Target::lifecycle(Completed))),
    ("order_state", "TRADE_CANCELED", Mapped(Target::lifecycle(Cancelled))),
    ("order_state", "LOCKED", Mapped(Target::lifecycle(RiskHold))),
    ("order_state", "PAUSE", Mapped(Target::lifecycle(RiskHold))),
    ("service_status", "10000", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10001", Mapped(Target::refund(RefundState::Requested))),
    ("service_status", "10004", Mapped(Target::refund(RefundState::Rejected))),
    ("service_status", "10005", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("service_status", "10010", Mapped(Target::refund(RefundState::Succeeded))),
    ("service_status", "10011", Mapped(Target::refund(RefundState::Closed))),
];

/// Maps a JD code (`order_state`, `service_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`customerExpect`): `None` for an exchange, which is no refund.
pub fn refund_kind(customer_expect: &str) -> Option<crate::model::lifecycle::RefundKind> {
    match customer_expect {
        "1" | "11" => Some(RefundOnly),
        "10" => Some(ReturnAndRefund),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn order_state_row() {
        assert_rows(
            map_status,
            "order_state",
            &[
                ("WAIT_SELLER_STOCK_OUT", Some(Paid), None),
                ("WAIT_GOODS_RECEIVE_CONFIRM", Some(Shipped), None),
                ("FINISHED_L", Some(Completed), None),
                ("TRADE_CANCELED", Some(Cancelled), None),
                ("LOCKED", Some(RiskHold), None),
                ("PAUSE", Some(RiskHold), None),
            ],
        );
    }

    #[test]
    fn service_status_row() {
        assert_rows(
            map_status,
            "service_status",
            &[
                ("10000", None, Some(RefundState::Requested)),
                ("10001", None, Some(RefundState::Requested)),
                ("10004", None, Some(RefundState::Rejected)),
                ("10005", None, Some(RefundState::Approved)),
                ("10010", None, Some(RefundState::Succeeded)),
                ("10011", None, Some(RefundState::Closed)),
            ],
        );
    }

    #[test]
    fn customer_expect_row() {
        assert_eq!(refund_kind("1"), Some(RefundOnly));
        assert_eq!(refund_kind("10"), Some(ReturnAndRefund));
        assert_eq!(refund_kind("11"), Some(RefundOnly));
        assert_eq!(refund_kind("20"), None, "an exchange is not a refund");
    }

    #[test]
    fn distribution_centre_states_are_unmapped_until_someone_adds_them() {
        assert_eq!(map_status("order_state", "WAIT_SEND_CODE"), Unmapped);
    }
}
