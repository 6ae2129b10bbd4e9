//! Daily counters per channel (Asia/Shanghai days), sharded so concurrent writers rarely meet,
//! and stored reports.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::Source;

/// Add `by` to counter `name` of `channel` on Beijing day `day`, in shard `shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterAdd {
    /// The channel (or source, for sources that are not channels).
    pub channel: Source,
    /// The Beijing calendar day.
    pub day: NaiveDate,
    /// The shard (from the order key; spreads writes over items).
    pub shard: u16,
    /// Counter name: `[a-z0-9_]{1,48}`.
    pub name: String,
    /// Amount (may be negative).
    pub by: i64,
}

/// The counters of one channel on one day, summed over shards.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayCounters {
    /// The Beijing calendar day.
    pub day: Option<NaiveDate>,
    /// Counter name → total.
    pub counters: BTreeMap<String, i64>,
}

impl DayCounters {
    /// A counter's total (0 when never bumped).
    pub fn get(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Whether a counter name is safe to store (it becomes an attribute name).
pub fn valid_counter_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A stored report: kind (`daily`, `monthly`, …), period (`2026-11-11`, `2026-11`), body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReport {
    /// Report kind.
    pub kind: String,
    /// Period it covers.
    pub period: String,
    /// The report as JSON.
    pub json: String,
    /// The page people read (Markdown with SVG charts).
    pub rendered: String,
}
