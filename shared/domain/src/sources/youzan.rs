//! 有赞 (Youzan): trade status codes. Its refund codes are not in the reference, so every refund
//! code is unmapped (kept and alerted on) until a row is added.

use crate::lifecycle::Lifecycle::*;
use crate::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};

/// Youzan's status table.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "WAIT_BUYER_PAY", Mapped(Target::lifecycle(PendingPayment))),
    // 待确认: paid, waiting for the group to form or the shop to accept.
    ("status", "WAIT_CONFIRM", Mapped(Target::lifecycle(Paid))),
    ("status", "WAIT_SELLER_SEND_GOODS", Mapped(Target::lifecycle(Paid))),
    ("status", "WAIT_BUYER_CONFIRM_GOODS", Mapped(Target::lifecycle(Shipped))),
    ("status", "TRADE_SUCCESS", Mapped(Target::lifecycle(Completed))),
    ("status", "TRADE_CLOSED", Mapped(Target::lifecycle(Cancelled))),
];

/// Maps a Youzan code (`status`).
pub fn map_status(field: &str, code: &str) -> StatusMapping {
    lookup(STATUS_TABLE, field, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::assert_rows;

    #[test]
    fn status_row() {
        assert_rows(
            map_status,
            "status",
            &[
                ("WAIT_BUYER_PAY", Some(PendingPayment), None),
                ("WAIT_CONFIRM", Some(Paid), None),
                ("WAIT_SELLER_SEND_GOODS", Some(Paid), None),
                ("WAIT_BUYER_CONFIRM_GOODS", Some(Shipped), None),
                ("TRADE_SUCCESS", Some(Completed), None),
                ("TRADE_CLOSED", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("refund_status", "WAIT_SELLER_AGREE"), Unmapped);
    }
}
