//! The Asia/Shanghai calendar.
//!
//! Times are stored in UTC; every business day, month, SLA and report boundary is computed in
//! Asia/Shanghai (UTC+8, no daylight saving). A callback at 00:30 Beijing time belongs to that
//! Beijing day although it is still the previous day in UTC.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;

/// The Beijing calendar day of an instant.
pub fn business_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Shanghai).date_naive()
}

/// The Beijing month of an instant, as `yyyy-mm`.
pub fn business_month(at: DateTime<Utc>) -> String {
    let day = business_day(at);
    format!("{:04}-{:02}", day.year(), day.month())
}

/// The UTC instant at which a Beijing calendar day starts.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Asia/Shanghai has had no DST since 1991, so local midnight is never ambiguous or missing.
    Shanghai
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&midnight), |local| local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap_or_default()
    }

    #[test]
    fn half_past_midnight_in_beijing_is_that_beijing_day_not_the_utc_one() {
        // 2026-11-11 00:30 Beijing = 2026-11-10 16:30 UTC
        let at = utc(2026, 11, 10, 16, 30);
        assert_eq!(business_day(at), NaiveDate::from_ymd_opt(2026, 11, 11).unwrap_or_default());
        assert_eq!(at.date_naive(), NaiveDate::from_ymd_opt(2026, 11, 10).unwrap_or_default());
    }

    #[test]
    fn months_turn_at_beijing_midnight() {
        assert_eq!(business_month(utc(2026, 11, 30, 15, 59)), "2026-11");
        assert_eq!(business_month(utc(2026, 11, 30, 16, 0)), "2026-12");
    }

    #[test]
    fn a_beijing_day_starts_at_16_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 11).unwrap_or_default();
        assert_eq!(day_start(day), utc(2026, 11, 10, 16, 0));
    }
}
