//! One module per source, each of the same shape. Adding a platform is adding one module and
//! one row in [`map_status`].

pub mod douyin;
pub mod jd;
pub mod kuaishou;
pub mod pdd;
pub mod taobao;
pub mod youzan;

use crate::ids::Source;
use crate::status::StatusMapping;

/// Maps a raw code of any source. Sources without status codes of their own (carrier, payment,
/// app) and unknown codes are [`StatusMapping::Unmapped`].
pub fn map_status(source: Source, field: &str, code: &str) -> StatusMapping {
    match source {
        Source::Douyin => douyin::map_status(field, code),
        Source::Pdd => pdd::map_status(field, code),
        Source::Taobao => taobao::map_status(field, code),
        Source::Jd => jd::map_status(field, code),
        Source::Kuaishou => kuaishou::map_status(field, code),
        Source::Youzan => youzan::map_status(field, code),
        Source::App | Source::Kuaidi100 | Source::Wechatpay => StatusMapping::Unmapped,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::lifecycle::{Lifecycle, RefundState};
    use crate::status::StatusMapping;

    /// Asserts each `(code, lifecycle, refund)` of one table row.
    pub fn assert_rows(
        map: fn(&str, &str) -> StatusMapping,
        field: &str,
        rows: &[(&str, Option<Lifecycle>, Option<RefundState>)],
    ) {
        for (code, lifecycle, refund) in rows {
            match map(field, code) {
                StatusMapping::Mapped(target) => {
                    assert_eq!(target.lifecycle, *lifecycle, "{field}={code} lifecycle");
                    assert_eq!(target.refund, *refund, "{field}={code} refund");
                }
                other => panic!("{field}={code} should be mapped, got {other:?}"),
            }
        }
    }
}
