//! Small readers for the loosely typed JSON that platforms send: numbers as strings, times as
//! epoch seconds, epoch milliseconds, RFC 3339 or Beijing local `yyyy-mm-dd hh:mm:ss`.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
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
        Value::String(s) => parse_time_text(s),
        _ => None,
    }
}

/// [`parse_time`] of a time given as text (digits are epoch seconds or milliseconds).
/// Whatever the shape, a time outside 2000–2100 is not a real event time here and reads as
/// none: chrono accepts years up to ±262142, and arithmetic on those overflows.
pub fn parse_time_text(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return epoch(n);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return plausible(at.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    Shanghai.from_local_datetime(&local).earliest().and_then(|at| plausible(at.with_timezone(&Utc)))
}

/// `at` when it lies between 2000 and 2100.
fn plausible(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (at.timestamp() > 946_684_800 && at.timestamp() < 4_102_444_800).then_some(at)
}

/// A field read as [`text`] reads it, while deserialising into a struct: strings (borrowed from
/// the input when they hold no escapes), numbers and booleans printed; empty strings, null,
/// objects and arrays are `None` (skipped, never an error). For parsers that read a few fields
/// of a large payload without building all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LooseText<'a>(pub Option<Cow<'a, str>>);

impl LooseText<'_> {
    /// The text, owned.
    pub fn owned(&self) -> Option<String> {
        self.0.as_deref().map(str::to_owned)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LooseText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Loose;
        impl<'de> Visitor<'de> for Loose {
            type Value = LooseText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LooseText((!v.is_empty()).then_some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LooseText((!v.is_empty()).then(|| Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LooseText((!v.is_empty()).then_some(Cow::Owned(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(Value::from(v).to_string()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LooseText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LooseText(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(LooseText(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(LooseText(None))
            }
        }
        deserializer.deserialize_any(Loose)
    }
}

fn epoch(n: i64) -> Option<DateTime<Utc>> {
    // Nothing before 2000 or after 2100 is a real event time here.
    let at =
        if n > 100_000_000_000 { Utc.timestamp_millis_opt(n).single()? } else { Utc.timestamp_opt(n, 0).single()? };
    plausible(at)
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
    fn far_future_and_ancient_times_in_any_shape_read_as_none() {
        for text in [
            "+262142-12-31T23:59:59Z",
            "-262143-01-01T00:00:00Z",
            "9999-12-31T23:59:59+08:00",
            "1970-01-01T00:00:00Z",
            "9999-12-31 23:59:59",
            "99999999999999",
        ] {
            assert_eq!(parse_time_text(text), None, "{text}");
            assert_eq!(parse_time(&json!(text)), None, "{text}");
        }
        assert!(parse_time_text("2026-11-11T00:00:01+08:00").is_some());
        assert!(parse_time_text("2026-11-11 00:00:01").is_some());
    }

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
