//! Small readers for the loosely typed JSON that platforms send: numbers as strings, times as
//! epoch seconds, epoch milliseconds, RFC 3339 or Beijing local `yyyy-mm-dd hh:mm:ss`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;

/// A field as text: strings as they are, numbers and booleans printed.
pub fn text(value: &Value, field: &str) -> Option<String> {
    match value.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A field as a boolean (`true`, `"true"`, `1`).
pub fn flag(value: &Value, field: &str) -> bool {
    match value.get(field) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// Parses a time in any of the shapes platforms use. Epoch values above 10^11 are
/// milliseconds; local times without an offset are Beijing time.
pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => epoch(n.as_i64()?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return epoch(n);
            }
            if let Ok(at) = DateTime::parse_from_rfc3339(s) {
                return Some(at.with_timezone(&Utc));
            }
            let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
            Shanghai.from_local_datetime(&local).earliest().map(|at| at.with_timezone(&Utc))
        }
        _ => None,
    }
}

fn epoch(n: i64) -> Option<DateTime<Utc>> {
    // Nothing before 2000 or after 2100 is a real event time here.
    let at =
        if n > 100_000_000_000 { Utc.timestamp_millis_opt(n).single()? } else { Utc.timestamp_opt(n, 0).single()? };
    (at.timestamp() > 946_684_800 && at.timestamp() < 4_102_444_800).then_some(at)
}

/// The first of `fields` that holds a valid time.
pub fn first_time(value: &Value, fields: &[&str]) -> Option<DateTime<Utc>> {
    fields.iter().find_map(|f| value.get(*f).and_then(parse_time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_every_shape_platforms_send() {
        let want = Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single();
        assert_eq!(parse_time(&json!(1_794_362_400)), want);
        assert_eq!(parse_time(&json!(1_794_362_400_000_i64)), want);
        assert_eq!(parse_time(&json!("1794362400")), want);
        assert_eq!(parse_time(&json!("2026-11-11T10:00:00+08:00")), want);
        assert_eq!(parse_time(&json!("2026-11-11 10:00:00")), want, "local times are Beijing time");
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(0)), None);
        assert_eq!(parse_time(&json!(-5)), None);
        assert_eq!(parse_time(&json!(i64::MAX)), None);
    }

    #[test]
    fn text_reads_numbers_and_strings_alike() {
        let v = json!({"a": 105, "b": "105", "c": "", "d": null});
        assert_eq!(text(&v, "a").as_deref(), Some("105"));
        assert_eq!(text(&v, "b").as_deref(), Some("105"));
        assert_eq!(text(&v, "c"), None);
        assert_eq!(text(&v, "d"), None);
    }
}
