//! 抖店 (Douyin shop): push messages, order and after-sale codes.

use crate::lifecycle::{Lifecycle::*, RefundKind::*, RefundState};
use crate::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};

/// Douyin's status tables (`../shared/reference/platforms.md`, zsmhub/doudian-sdk).
pub const STATUS_TABLE: &[MappingRow] = &[
    // order_status
    ("order_status", "1", Mapped(Target::lifecycle(PendingPayment))),
    ("order_status", "105", Mapped(Target::lifecycle(Paid))),
    ("order_status", "2", Mapped(Target::lifecycle(WarehouseAccepted))),
    ("order_status", "101", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "3", Mapped(Target::lifecycle(Shipped))),
    ("order_status", "4", Mapped(Target::lifecycle(Cancelled))),
    ("order_status", "5", Mapped(Target::lifecycle(Completed))),
    // main_status adds these
    ("main_status", "103", Mapped(Target::lifecycle(PendingPayment))),
    ("main_status", "21", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("main_status", "22", Mapped(Target::refund(RefundState::Succeeded))),
    ("main_status", "39", Mapped(Target::refund(RefundState::Succeeded))),
    // push message tags: trade
    ("tag", "100", Mapped(Target::lifecycle(PendingPayment))),
    ("tag", "101", Mapped(Target::lifecycle(Paid))),
    ("tag", "102", Mapped(Target::lifecycle(Shipped))),
    ("tag", "103", Mapped(Target::lifecycle(Completed))),
    ("tag", "104", Informational("logistics changed: carrier or waybill updated")),
    ("tag", "105", Informational("delivery address changed")),
    ("tag", "106", Mapped(Target::lifecycle(Cancelled))),
    ("tag", "108", Mapped(Target::lifecycle(Shipped))),
    ("tag", "109", Informational("order amount changed")),
    ("tag", "110", Mapped(Target::lifecycle(PendingPayment))),
    // push message tags: after-sale
    ("tag", "200", Mapped(Target::refund(RefundState::Requested))),
    ("tag", "201", Mapped(Target::refund(RefundState::Approved))),
    ("tag", "202", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("tag", "203", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("tag", "204", Mapped(Target::refund(RefundState::Rejected))),
    ("tag", "205", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("tag", "206", Mapped(Target::refund(RefundState::Succeeded))),
    ("tag", "207", Mapped(Target::refund(RefundState::Closed))),
    ("tag", "208", Mapped(Target::refund(RefundState::Requested))),
    // refund_status
    ("refund_status", "1", Mapped(Target::refund(RefundState::Requested))),
    ("refund_status", "2", Mapped(Target::refund(RefundState::Approved))),
    ("refund_status", "3", Mapped(Target::refund(RefundState::Succeeded))),
    ("refund_status", "4", Mapped(Target::refund(RefundState::Closed))),
    ("refund_status", "5", Informational("refund clawed back from the buyer (追缴成功)")),
    // after_sale_status: wins over refund_status (a buyer who cancels leaves refund_status at 1)
    ("after_sale_status", "6", Mapped(Target::refund(RefundState::Requested))),
    ("after_sale_status", "7", Mapped(Target::refund_of(RefundState::Approved, ReturnAndRefund))),
    ("after_sale_status", "12", Mapped(Target::refund(RefundState::Succeeded))),
    ("after_sale_status", "27", Mapped(Target::refund(RefundState::Rejected))),
    ("after_sale_status", "28", Mapped(Target::refund(RefundState::Closed))),
    ("after_sale_status", "29", Mapped(Target::refund_of(RefundState::Rejected, ReturnAndRefund))),
    ("after_sale_status", "51", Mapped(Target::both(Cancelled, RefundState::Succeeded))),
    ("after_sale_status", "53", Mapped(Target::refund(RefundState::Succeeded))),
];

/// Maps a Douyin code (`order_status`, `main_status`, `tag`, `refund_status`, `after_sale_status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

/// The kind of an after-sale (`after_sale_type`): `None` for an exchange, which is no refund.
pub fn refund_kind(after_sale_type: &str) -> Option<crate::lifecycle::RefundKind> {
    match after_sale_type {
        "0" => Some(ReturnAndRefund),
        "1" | "2" => Some(RefundOnly),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn order_status_row() {
        assert_rows(
            map_status,
            "order_status",
            &[
                ("1", Some(PendingPayment), None),
                ("105", Some(Paid), None),
                ("2", Some(WarehouseAccepted), None),
                ("101", Some(Shipped), None),
                ("3", Some(Shipped), None),
                ("4", Some(Cancelled), None),
                ("5", Some(Completed), None),
            ],
        );
    }

    #[test]
    fn main_status_row() {
        assert_rows(
            map_status,
            "main_status",
            &[
                ("103", Some(PendingPayment), None),
                ("21", Some(Cancelled), Some(RefundState::Succeeded)),
                ("22", None, Some(RefundState::Succeeded)),
                ("39", None, Some(RefundState::Succeeded)),
            ],
        );
    }

    #[test]
    fn push_tags_row() {
        assert_rows(
            map_status,
            "tag",
            &[
                ("100", Some(PendingPayment), None),
                ("101", Some(Paid), None),
                ("102", Some(Shipped), None),
                ("103", Some(Completed), None),
                ("106", Some(Cancelled), None),
                ("108", Some(Shipped), None),
                ("110", Some(PendingPayment), None),
                ("200", None, Some(RefundState::Requested)),
                ("201", None, Some(RefundState::Approved)),
                ("202", None, Some(RefundState::Approved)),
                ("203", None, Some(RefundState::Approved)),
                ("204", None, Some(RefundState::Rejected)),
                ("205", None, Some(RefundState::Rejected)),
                ("206", None, Some(RefundState::Succeeded)),
                ("207", None, Some(RefundState::Closed)),
                ("208", None, Some(RefundState::Requested)),
            ],
        );
        for informational in ["104", "105", "109"] {
            assert!(matches!(map_status("tag", informational), Informational(_)), "{informational}");
        }
    }

    #[test]
    fn refund_status_row() {
        assert_rows(
            map_status,
            "refund_status",
            &[
                ("1", None, Some(RefundState::Requested)),
                ("2", None, Some(RefundState::Approved)),
                ("3", None, Some(RefundState::Succeeded)),
                ("4", None, Some(RefundState::Closed)),
            ],
        );
        assert!(matches!(map_status("refund_status", "5"), Informational(_)));
    }

    #[test]
    fn after_sale_status_row() {
        assert_rows(
            map_status,
            "after_sale_status",
            &[
                ("6", None, Some(RefundState::Requested)),
                ("7", None, Some(RefundState::Approved)),
                ("12", None, Some(RefundState::Succeeded)),
                ("27", None, Some(RefundState::Rejected)),
                ("28", None, Some(RefundState::Closed)),
                ("29", None, Some(RefundState::Rejected)),
                ("51", Some(Cancelled), Some(RefundState::Succeeded)),
                ("53", None, Some(RefundState::Succeeded)),
            ],
        );
    }

    #[test]
    fn after_sale_type_row() {
        assert_eq!(refund_kind("0"), Some(ReturnAndRefund));
        assert_eq!(refund_kind("1"), Some(RefundOnly));
        assert_eq!(refund_kind("2"), Some(RefundOnly));
        assert_eq!(refund_kind("3"), None, "an exchange is not a refund");
    }

    #[test]
    fn unknown_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("order_status", "999"), Unmapped);
        assert_eq!(map_status("tag", "0"), Unmapped);
        assert_eq!(map_status("no_such_field", "1"), Unmapped);
    }
}
