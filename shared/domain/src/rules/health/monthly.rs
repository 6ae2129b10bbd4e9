//! The monthly extras: sync delay per platform, causes of manual intervention, ops calls and
//! the bottleneck table of slow state-to-state transitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::indicator::{HealthThresholds, count, median_sync_delay_s, sync_delay_sample};
use crate::model::counters::{DayCounters, names};
use crate::model::health::Scope;
use crate::model::lifecycle::Lifecycle;

/// Why a person had to step in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionCause {
    /// Callbacks quarantined for a failed signature (replayed after a key fix).
    Quarantined,
    /// Raw status codes without a mapping row.
    UnmappedCode,
    /// Stock lines released by an ops invocation.
    OpsRelease,
    /// SLA breaches raised.
    SlaBreach,
    /// Lost callbacks (refund found by poll with no callback).
    CallbackMissing,
    /// Events whose move is not allowed.
    RefusedMove,
    /// Signs downgraded to SignPendingConfirmation (customer service follows up).
    SignDowngraded,
}

impl InterventionCause {
    /// Every cause; ties in the ranking keep this order.
    pub const ALL: [InterventionCause; 7] = [
        InterventionCause::Quarantined,
        InterventionCause::UnmappedCode,
        InterventionCause::OpsRelease,
        InterventionCause::SlaBreach,
        InterventionCause::CallbackMissing,
        InterventionCause::RefusedMove,
        InterventionCause::SignDowngraded,
    ];

    /// The counter it is read from.
    pub fn counter(self) -> &'static str {
        match self {
            InterventionCause::Quarantined => names::QUARANTINED,
            InterventionCause::UnmappedCode => names::UNMAPPED,
            InterventionCause::OpsRelease => names::OPS_RELEASES,
            InterventionCause::SlaBreach => names::SLA_BREACHED,
            InterventionCause::CallbackMissing => names::CALLBACK_MISSING,
            InterventionCause::RefusedMove => names::REFUSED,
            InterventionCause::SignDowngraded => names::SIGN_DOWNGRADED,
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            InterventionCause::Quarantined => "验签失败被隔离的回调",
            InterventionCause::UnmappedCode => "未映射的平台状态码",
            InterventionCause::OpsRelease => "人工释放库存",
            InterventionCause::SlaBreach => "SLA 超时",
            InterventionCause::CallbackMissing => "回调丢失(轮询补查发现)",
            InterventionCause::RefusedMove => "不允许的状态流转",
            InterventionCause::SignDowngraded => "签收降级待客户确认",
        }
    }
}

/// How often one cause occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseCount {
    /// The cause.
    pub cause: InterventionCause,
    /// Occurrences in the period, all channels.
    pub count: u64,
}

/// The sync delay of one platform over the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSyncDelay {
    /// The platform, or overall.
    pub scope: Scope,
    /// Median minutes from the histogram; `None` below the minimum sample.
    pub median_minutes: Option<f64>,
    /// Mean minutes (`sync_delay_sum_s / sync_delay_count`); `None` below the minimum sample.
    pub mean_minutes: Option<f64>,
    /// Delays measured.
    pub sample: u64,
}

/// One state-to-state transition and the mean time orders spent before taking it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// The state left.
    pub from: Lifecycle,
    /// The state entered.
    pub to: Lifecycle,
    /// How many times it happened.
    pub count: u64,
    /// Mean minutes spent in `from` before moving to `to`.
    pub mean_minutes: f64,
}

/// What a monthly report adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyExtras {
    /// Sync delay per platform, overall first.
    pub sync_delay: Vec<ChannelSyncDelay>,
    /// Up to five causes of manual intervention, most frequent first (causes that never
    /// occurred are left out).
    pub top_causes: Vec<CauseCount>,
    /// Manual ops invocations of any function.
    pub ops_calls: u64,
    /// Up to ten slowest transitions by mean minutes.
    pub bottlenecks: Vec<Bottleneck>,
}

/// How many causes and bottlenecks the tables keep.
pub const TOP_CAUSES: usize = 5;
/// See [`TOP_CAUSES`].
pub const TOP_BOTTLENECKS: usize = 10;

/// The extras from the month's summed counters, overall and per channel.
pub(crate) fn monthly_extras(
    overall: &DayCounters,
    per_channel: &[(Scope, DayCounters)],
    thresholds: &HealthThresholds,
) -> MonthlyExtras {
    let min_sample = thresholds.sync_delay_median_minutes.min_sample.max(1);
    let sync_delay = std::iter::once((Scope::Overall, overall))
        .chain(per_channel.iter().map(|(scope, counters)| (*scope, counters)))
        .map(|(scope, counters)| {
            let sample = sync_delay_sample(counters);
            let enough = sample >= min_sample;
            let measured = count(counters, names::SYNC_DELAY_COUNT);
            let mean = (enough && measured > 0)
                .then(|| count(counters, names::SYNC_DELAY_SUM_S) as f64 / measured as f64 / 60.0);
            ChannelSyncDelay {
                scope,
                median_minutes: median_sync_delay_s(counters).filter(|_| enough).map(|s| s / 60.0),
                mean_minutes: mean,
                sample,
            }
        })
        .collect();

    let mut top_causes: Vec<CauseCount> = InterventionCause::ALL
        .iter()
        .map(|cause| CauseCount { cause: *cause, count: count(overall, cause.counter()) })
        .filter(|cause| cause.count > 0)
        .collect();
    // Stable: equal counts keep the declared order.
    top_causes.sort_by_key(|cause| std::cmp::Reverse(cause.count));
    top_causes.truncate(TOP_CAUSES);

    MonthlyExtras {
        sync_delay,
        top_causes,
        ops_calls: count(overall, names::OPS_CALLS),
        bottlenecks: bottlenecks(overall, thresholds.bottleneck_min_transitions),
    }
}

/// The slowest transitions by mean minutes (`tr_{from}_{to}_s / tr_{from}_{to}_n`), ties by
/// count then by state order; transitions seen fewer than `min_count` times are left out.
pub fn bottlenecks(counters: &DayCounters, min_count: u64) -> Vec<Bottleneck> {
    let mut sums: BTreeMap<(Lifecycle, Lifecycle), (u64, u64)> = BTreeMap::new();
    for name in counters.counters.keys() {
        let Some((from, to, seconds)) = names::parse_transition(name) else { continue };
        let entry = sums.entry((from, to)).or_default();
        if seconds {
            entry.1 = count(counters, name);
        } else {
            entry.0 = count(counters, name);
        }
    }
    let mut table: Vec<Bottleneck> = sums
        .into_iter()
        .filter(|(_, (n, _))| *n >= min_count.max(1))
        .map(|((from, to), (n, s))| Bottleneck { from, to, count: n, mean_minutes: s as f64 / n as f64 / 60.0 })
        .collect();
    table.sort_by(|a, b| {
        b.mean_minutes.total_cmp(&a.mean_minutes).then(b.count.cmp(&a.count)).then((a.from, a.to).cmp(&(b.from, b.to)))
    });
    table.truncate(TOP_BOTTLENECKS);
    table
}

#[cfg(test)]
mod tests {
    use super::super::indicator::tests::counters;
    use super::super::report::{HealthReport, Period, ReportKind, build_report};
    use super::*;
    use crate::model::ids::Source;
    use chrono::NaiveDate;

    fn month_report(channels: &BTreeMap<Source, Vec<DayCounters>>) -> HealthReport {
        let day = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        build_report(ReportKind::Monthly, Period::month_of(day), channels, &HealthThresholds::default())
    }

    fn on(d: u32, pairs: &[(&str, i64)]) -> DayCounters {
        DayCounters { day: NaiveDate::from_ymd_opt(2026, 2, d), ..counters(pairs) }
    }

    #[test]
    fn top_five_causes_ranked_by_count_across_channels_and_days() {
        let channels = BTreeMap::from([
            (
                Source::Douyin,
                vec![
                    on(8, &[("quarantined", 327), ("ops_releases", 327), ("ops_calls", 2), ("unmapped", 4)]),
                    on(9, &[("sla_breached", 40), ("callback_missing", 327)]),
                ],
            ),
            (
                Source::Pdd,
                vec![on(
                    3,
                    &[("unmapped", 1), ("refused", 3), ("sign_downgraded", 12), ("ops_calls", 1), ("stale", 900)],
                )],
            ),
        ]);
        let extras = month_report(&channels).monthly.unwrap();
        let ranked: Vec<(InterventionCause, u64)> = extras.top_causes.iter().map(|c| (c.cause, c.count)).collect();
        assert_eq!(
            ranked,
            vec![
                // Ties keep the declared order.
                (InterventionCause::Quarantined, 327),
                (InterventionCause::OpsRelease, 327),
                (InterventionCause::CallbackMissing, 327),
                (InterventionCause::SlaBreach, 40),
                (InterventionCause::SignDowngraded, 12),
            ]
        );
        assert_eq!(extras.ops_calls, 3);
    }

    #[test]
    fn causes_that_never_happened_are_left_out() {
        let channels = BTreeMap::from([(Source::Jd, vec![on(1, &[("unmapped", 2), ("quarantined", -5)])])]);
        let extras = month_report(&channels).monthly.unwrap();
        assert_eq!(extras.top_causes, vec![CauseCount { cause: InterventionCause::UnmappedCode, count: 2 }]);
        assert_eq!(extras.ops_calls, 0);
    }

    #[test]
    fn bottleneck_table_is_slowest_mean_first() {
        // RiskHold → Paid: 40 moves, 113 min each, across two channels.
        let channels = BTreeMap::from([
            (
                Source::Taobao,
                vec![on(
                    5,
                    &[
                        ("tr_risk_paid_n", 30),
                        ("tr_risk_paid_s", 30 * 113 * 60),
                        ("tr_paid_wh_n", 500),
                        ("tr_paid_wh_s", 500 * 20 * 60),
                        ("tr_pack_ship_n", 400),
                        ("tr_pack_ship_s", 400 * 240 * 60),
                        // Seen only twice: below the minimum count of 5.
                        ("tr_spc_sexc_n", 2),
                        ("tr_spc_sexc_s", 2 * 5000 * 60),
                    ],
                )],
            ),
            (Source::Kuaishou, vec![on(6, &[("tr_risk_paid_n", 10), ("tr_risk_paid_s", 10 * 113 * 60)])]),
            (
                Source::Youzan,
                // Same mean as paid → wh but more moves: ranked before it.
                vec![on(7, &[("tr_wh_pack_n", 900), ("tr_wh_pack_s", 900 * 20 * 60), ("tr_bogus_n", 9)])],
            ),
        ]);
        let extras = month_report(&channels).monthly.unwrap();
        let table: Vec<(Lifecycle, Lifecycle, u64, f64)> =
            extras.bottlenecks.iter().map(|b| (b.from, b.to, b.count, b.mean_minutes)).collect();
        assert_eq!(
            table,
            vec![
                (Lifecycle::Packing, Lifecycle::Shipped, 400, 240.0),
                (Lifecycle::RiskHold, Lifecycle::Paid, 40, 113.0),
                (Lifecycle::WarehouseAccepted, Lifecycle::Packing, 900, 20.0),
                (Lifecycle::Paid, Lifecycle::WarehouseAccepted, 500, 20.0),
            ]
        );
    }

    #[test]
    fn bottleneck_table_keeps_ten() {
        let mut pairs: Vec<(String, i64)> = Vec::new();
        let mut minutes = 1;
        for from in Lifecycle::ALL {
            for to in Lifecycle::ALL {
                if from.move_to(to).is_some() {
                    pairs.push((names::transition_count(from, to), 10));
                    pairs.push((names::transition_seconds(from, to), 10 * 60 * minutes));
                    minutes += 1;
                }
            }
        }
        let counters = DayCounters { day: None, counters: pairs.into_iter().collect() };
        let table = bottlenecks(&counters, 1);
        assert_eq!(table.len(), TOP_BOTTLENECKS);
        assert!(table.windows(2).all(|pair| pair[0].mean_minutes > pair[1].mean_minutes));
        assert_eq!(table[0].mean_minutes, (minutes - 1) as f64);
    }

    #[test]
    fn sync_delay_per_platform_overall_first() {
        let channels = BTreeMap::from([(
            Source::Douyin,
            vec![on(1, &[("sync_delay_le_300", 20), ("sync_delay_count", 20), ("sync_delay_sum_s", 20 * 150)])],
        )]);
        let extras = month_report(&channels).monthly.unwrap();
        assert_eq!(extras.sync_delay[0].scope, Scope::Overall);
        let douyin = extras.sync_delay.iter().find(|row| row.scope == Scope::Channel(Source::Douyin)).unwrap();
        assert_eq!((douyin.median_minutes, douyin.mean_minutes, douyin.sample), (Some(3.0), Some(2.5), 20));
        let pdd = extras.sync_delay.iter().find(|row| row.scope == Scope::Channel(Source::Pdd)).unwrap();
        assert_eq!((pdd.median_minutes, pdd.mean_minutes, pdd.sample), (None, None, 0));
    }
}
