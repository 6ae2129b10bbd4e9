//! Daily counters per channel (Asia/Shanghai days), sharded so concurrent writers rarely meet,
//! and stored reports.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::ids::Source;

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

/// Shards of the day counters and due-marker indexes unless `COUNTER_SHARDS` says otherwise.
/// Each shard of a channel's counters is its own DynamoDB partition (about 1 000 write units/s;
/// one counter update costs up to ~12 inside a transaction, so ~80 applied events/s per shard):
/// 16 shards carry ~1 300 applied events/s per channel, 13 times what one partition per
/// channel-month did; a report reads channels x months x shards.
pub const DEFAULT_SHARDS: u16 = 16;

/// The counters the functions bump and the health report reads. One place, so writers and
/// the reader agree on every name.
pub mod names {
    use crate::model::lifecycle::Lifecycle;

    /// Events that reached status-normalize (callbacks and polls), by receipt day.
    pub const RECEIVED: &str = "received";
    /// Events that moved an order.
    pub const APPLIED: &str = "applied";
    /// Events older than the applied state.
    pub const STALE: &str = "stale";
    /// Redeliveries of an event already recorded.
    pub const DUPLICATE: &str = "duplicate";
    /// Events whose move is not allowed.
    pub const REFUSED: &str = "refused";
    /// Events with a code that has no mapping row.
    pub const UNMAPPED: &str = "unmapped";
    /// Known codes that move nothing.
    pub const NOTED: &str = "noted";

    /// Applied events with a sync delay measured (source event time → applied).
    pub const SYNC_DELAY_COUNT: &str = "sync_delay_count";
    /// Sum of those delays, seconds.
    pub const SYNC_DELAY_SUM_S: &str = "sync_delay_sum_s";
    /// Upper bounds (seconds) of the sync-delay histogram bins; a last bin holds the rest.
    pub const SYNC_DELAY_BOUNDS_S: [i64; 8] = [60, 300, 900, 1800, 3600, 7200, 21600, 86400];

    /// The histogram bin counter of a delay: `sync_delay_le_{bound}` or `sync_delay_gt_86400`.
    pub fn sync_delay_bin(delay_s: i64) -> String {
        match SYNC_DELAY_BOUNDS_S.iter().find(|bound| delay_s <= **bound) {
            Some(bound) => format!("sync_delay_le_{bound}"),
            None => format!("sync_delay_gt_{}", SYNC_DELAY_BOUNDS_S[SYNC_DELAY_BOUNDS_S.len() - 1]),
        }
    }

    /// Orders shipped before their promised ship time.
    pub const SHIPPED_ON_TIME: &str = "shipped_on_time";
    /// Orders shipped after it.
    pub const SHIPPED_LATE: &str = "shipped_late";
    /// Orders shipped without a promised ship time (not counted in the rate).
    pub const SHIPPED_NO_PROMISE: &str = "shipped_no_promise";

    /// Refunds that succeeded (money back).
    pub const REFUND_SUCCEEDED: &str = "refund_succeeded";
    /// Refunds found by polling the platform, not by a callback.
    pub const REFUND_FOUND_BY_POLL: &str = "refund_found_by_poll";
    /// Reserved stock lines that had to be released because their refund succeeded, counted
    /// once per line on the Beijing day the refund succeeded (whether or not they were released
    /// yet). The denominator of the refund stock release indicator: a line never released still
    /// counts against it.
    pub const STOCK_RELEASE_DUE: &str = "stock_release_due";
    /// Reserved stock lines released after a refund.
    pub const STOCK_RELEASED: &str = "stock_released";
    /// Of those, released within the limit after the refund succeeded.
    pub const STOCK_RELEASED_ON_TIME: &str = "stock_released_on_time";
    /// Sum of refund-success → release delays, seconds.
    pub const STOCK_RELEASE_DELAY_SUM_S: &str = "stock_release_delay_sum_s";

    /// Signs scored by the trust check.
    pub const TRUST_ASSESSED: &str = "trust_assessed";
    /// Sum of their scores (0–100 each).
    pub const TRUST_SCORE_SUM: &str = "trust_score_sum";
    /// Signs downgraded to SignPendingConfirmation.
    pub const SIGN_DOWNGRADED: &str = "sign_downgraded";

    /// Customer opened the logistics view in the mini-program.
    pub const APP_LOGISTICS_VIEWS: &str = "app_logistics_views";
    /// Customer asked customer service about the parcel.
    pub const APP_CONSULTATIONS: &str = "app_consultations";

    /// Callbacks refused at the door (any reason).
    pub const WEBHOOK_REJECTED: &str = "webhook_rejected";
    /// Callbacks quarantined for a failed signature.
    pub const QUARANTINED: &str = "quarantined";
    /// Ops invocations of any function.
    pub const OPS_CALLS: &str = "ops_calls";
    /// Stock lines released by an ops invocation.
    pub const OPS_RELEASES: &str = "ops_releases";
    /// SLA breaches raised.
    pub const SLA_BREACHED: &str = "sla_breached";
    /// Lost callbacks detected (refund found by poll with no callback).
    pub const CALLBACK_MISSING: &str = "callback_missing";

    /// Events that arrived by a scheduled pull (order-sync), counted beside `received`.
    pub const PULLED: &str = "pulled";
    /// Of those, events that moved an order: on a channel that pushes, a change its callbacks
    /// had not delivered when the pull came.
    pub const APPLIED_BY_PULL: &str = "applied_by_pull";
    /// Refunds whose success a pull brought first.
    pub const REFUND_FOUND_BY_PULL: &str = "refund_found_by_pull";
    /// Orders the daily count reconciliation found missing and pulled in.
    pub const ORDERS_MISSING: &str = "orders_missing";
    /// Waybills subscribed to Kuaidi100.
    pub const KUAIDI100_SUBSCRIBED: &str = "kuaidi100_subscribed";
    /// Kuaidi100 subscriptions refused for good (wrong carrier code, bad number).
    pub const KUAIDI100_SUBSCRIBE_FAILED: &str = "kuaidi100_subscribe_failed";

    /// Callbacks received in an hour of the Beijing day: `rx_h{hh}`.
    pub fn received_in_hour(hour: u32) -> String {
        format!("rx_h{hour:02}")
    }

    /// Callbacks received in a 10-minute slot of the Beijing day: `rx_t{hh}{m}` (m = minute / 10).
    pub fn received_in_slot(hour: u32, minute: u32) -> String {
        format!("rx_t{hour:02}{}", minute / 10)
    }

    /// Count of one state-to-state transition: `tr_{from}_{to}_n` (short state codes).
    pub fn transition_count(from: Lifecycle, to: Lifecycle) -> String {
        format!("tr_{}_{}_n", from.code(), to.code())
    }

    /// Sum of the time spent in `from` before moving to `to`, seconds: `tr_{from}_{to}_s`.
    pub fn transition_seconds(from: Lifecycle, to: Lifecycle) -> String {
        format!("tr_{}_{}_s", from.code(), to.code())
    }

    /// The transition a `tr_…` counter name is about, and whether it is the seconds sum.
    pub fn parse_transition(name: &str) -> Option<(Lifecycle, Lifecycle, bool)> {
        let rest = name.strip_prefix("tr_")?;
        let (rest, seconds) = match (rest.strip_suffix("_s"), rest.strip_suffix("_n")) {
            (Some(r), _) => (r, true),
            (_, Some(r)) => (r, false),
            _ => return None,
        };
        let (from, to) = rest.split_once('_')?;
        Some((Lifecycle::from_code(from)?, Lifecycle::from_code(to)?, seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lifecycle::Lifecycle;

    #[test]
    fn every_counter_name_is_storable() {
        let fixed = [
            names::RECEIVED,
            names::SYNC_DELAY_SUM_S,
            names::STOCK_RELEASE_DELAY_SUM_S,
            names::STOCK_RELEASE_DUE,
            names::APP_LOGISTICS_VIEWS,
            names::CALLBACK_MISSING,
            names::PULLED,
            names::APPLIED_BY_PULL,
            names::REFUND_FOUND_BY_PULL,
            names::ORDERS_MISSING,
            names::KUAIDI100_SUBSCRIBED,
            names::KUAIDI100_SUBSCRIBE_FAILED,
        ];
        for name in fixed {
            assert!(valid_counter_name(name), "{name}");
        }
        for delay in [0, 60, 61, 86_400, 86_401] {
            assert!(valid_counter_name(&names::sync_delay_bin(delay)), "{delay}");
        }
        assert_eq!(names::sync_delay_bin(60), "sync_delay_le_60");
        assert_eq!(names::sync_delay_bin(61), "sync_delay_le_300");
        assert_eq!(names::sync_delay_bin(100_000), "sync_delay_gt_86400");
        for from in Lifecycle::ALL {
            for to in Lifecycle::ALL {
                let name = names::transition_seconds(from, to);
                assert!(valid_counter_name(&name), "{from}->{to}");
                assert_eq!(names::parse_transition(&name), Some((from, to, true)));
                assert_eq!(names::parse_transition(&names::transition_count(from, to)), Some((from, to, false)));
            }
        }
        assert_eq!(names::received_in_slot(9, 37), "rx_t093");
        assert!(valid_counter_name(&names::received_in_hour(23)));
    }
}
