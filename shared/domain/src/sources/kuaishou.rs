//! 快手小店 (Kuaishou): order status codes. Its refund codes are not in the reference, so every
//! refund code is unmapped (kept and alerted on) until a row is added.

use crate::lifecycle::Lifecycle::*;
use crate::status::{MappingRow, StatusMapping, StatusMapping::*, Target, lookup};

/// Kuaishou's status table.
pub const STATUS_TABLE: &[MappingRow] = &[
    ("status", "10", Mapped(Target::lifecycle(PendingPayment))),
    ("status", "30", Mapped(Target::lifecycle(Paid))),
    ("status", "40", Mapped(Target::lifecycle(Shipped))),
    ("status", "50", Mapped(Target::lifecycle(Signed))),
    ("status", "70", Mapped(Target::lifecycle(Completed))),
    ("status", "80", Mapped(Target::lifecycle(Cancelled))),
];

/// Maps a Kuaishou code (`status`).
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
                ("10", Some(PendingPayment), None),
                ("30", Some(Paid), None),
                ("40", Some(Shipped), None),
                ("50", Some(Signed), None),
                ("70", Some(Completed), None),
                ("80", Some(Cancelled), None),
            ],
        );
    }

    #[test]
    fn refund_codes_are_unmapped_not_guessed() {
        assert_eq!(map_status("refund_status", "10"), Unmapped);
        assert_eq!(map_status("status", "20"), Unmapped);
    }
}
