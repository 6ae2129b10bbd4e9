//! Order health: the five indicators per channel and overall, computed from the daily counters
//! of [`crate::model::counters`], judged against configurable thresholds, rendered for people as Markdown
//! with inline SVG charts, and the channel-silence watch.
//!
//! Everything here is pure: counters in, report out. No I/O, no clock (callers pass `now`).
//!
//! | indicator | healthy | from |
//! |---|---|---|
//! | 状态同步延迟中位数 | ≤ 15 min | `sync_delay_le_*` histogram, linear inside the bin ([`median_sync_delay_s`]) |
//! | 发货准时率 | ≥ 98.5 % | `shipped_on_time / (shipped_on_time + shipped_late)` |
//! | 物流信息可信度分 | ≥ 92 | `trust_score_sum / trust_assessed` |
//! | 退款库存释放及时率 | 100 % | `stock_released_on_time / max(stock_release_due, stock_released)` (stock lines) |
//! | 客户自助查询解决率 | ≥ 85 % | `max(app_logistics_views − app_consultations, 0) / app_logistics_views` |

pub mod fit;
mod indicator;
mod monthly;
mod render;
mod report;
pub mod silence;

pub use indicator::{
    Direction, HealthThresholds, HealthVerdict, Indicator, IndicatorValue, Measurement, Threshold, median_sync_delay_s,
};
pub use monthly::{
    Bottleneck, CauseCount, ChannelSyncDelay, InterventionCause, MonthlyExtras, TOP_BOTTLENECKS, TOP_CAUSES,
    bottlenecks,
};
pub use render::{render_html, render_markdown};
pub use report::{
    Breach, HealthReport, IndicatorSeries, Period, ReportKind, Scope, ScopeHealth, SeriesPoint, build_report,
};
pub use silence::{MAX_LOOKBACK_DAYS, SLOT_MINUTES, SilenceRules, SilentChannel, silent_channels};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{Days, NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::model::counters::{DayCounters, names};
    use crate::model::ids::Source;
    use crate::model::lifecycle::Lifecycle;

    const NAMES: [&str; 33] = [
        "received",
        "sync_delay_le_60",
        "sync_delay_le_300",
        "sync_delay_le_900",
        "sync_delay_le_3600",
        "sync_delay_le_86400",
        "sync_delay_gt_86400",
        "sync_delay_count",
        "sync_delay_sum_s",
        "shipped_on_time",
        "shipped_late",
        "trust_assessed",
        "trust_score_sum",
        "refund_succeeded",
        "stock_release_due",
        "stock_released",
        "stock_released_on_time",
        "app_logistics_views",
        "app_consultations",
        "quarantined",
        "unmapped",
        "ops_calls",
        "ops_releases",
        "sla_breached",
        "callback_missing",
        "tr_risk_paid_n",
        "tr_risk_paid_s",
        "tr_paid_wh_n",
        "tr_paid_wh_s",
        "rx_t100",
        "rx_t101",
        "rx_t095",
        "tr_bogus_s",
    ];

    fn first() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    fn value() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), -5i64..200, Just(i64::MAX), Just(i64::MIN), Just(0)]
    }

    fn day_counters() -> impl Strategy<Value = DayCounters> {
        (
            proptest::option::weighted(0.95, 0u64..45),
            proptest::collection::btree_map(proptest::sample::select(NAMES.to_vec()), value(), 0..20),
        )
            .prop_map(|(offset, counters)| DayCounters {
                day: offset.and_then(|offset| first().checked_add_days(Days::new(offset))),
                counters: counters.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
            })
    }

    fn channels() -> impl Strategy<Value = BTreeMap<Source, Vec<DayCounters>>> {
        proptest::collection::btree_map(
            proptest::sample::select(Source::ALL.to_vec()),
            proptest::collection::vec(day_counters(), 0..6),
            0..5,
        )
    }

    fn kind() -> impl Strategy<Value = ReportKind> {
        prop_oneof![Just(ReportKind::Daily), Just(ReportKind::Monthly), Just(ReportKind::Range)]
    }

    fn in_range(indicator: Indicator, value: f64) -> bool {
        value.is_finite()
            && match indicator {
                Indicator::SyncDelayMedian => (0.0..=1440.0).contains(&value),
                Indicator::TrustScore => (0.0..=100.0).contains(&value),
                _ => (0.0..=1.0).contains(&value),
            }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_counters_give_values_in_range_and_never_panic(
            channels in channels(),
            kind in kind(),
            from in 0u64..40,
            len in 0u64..40,
        ) {
            let period = Period::new(
                first().checked_add_days(Days::new(from)).unwrap(),
                first().checked_add_days(Days::new(from + len)).unwrap(),
            );
            let report = build_report(kind, period, &channels, &HealthThresholds::default());
            for row in std::iter::once(&report.overall).chain(&report.channels) {
                for value in &row.indicators {
                    if let Some(found) = value.value {
                        prop_assert!(in_range(value.indicator, found), "{:?} {}", value.indicator, found);
                    }
                }
                for series in &row.series {
                    for point in &series.points {
                        prop_assert!(period.contains(point.day));
                        if let Some(found) = point.value {
                            prop_assert!(in_range(series.indicator, found), "{:?} {}", series.indicator, found);
                        }
                    }
                }
            }
            for breach in report.breaches() {
                prop_assert!(in_range(breach.indicator, breach.value));
            }
            if let Some(extras) = &report.monthly {
                prop_assert!(extras.top_causes.len() <= TOP_CAUSES);
                prop_assert!(extras.bottlenecks.iter().all(|b| b.mean_minutes.is_finite() && b.mean_minutes >= 0.0));
            }
            let page = render_markdown(&report);
            prop_assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
            let json = serde_json::to_string(&report).unwrap();
            let back: HealthReport = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.breaches().len(), report.breaches().len());
        }

        #[test]
        fn silence_watch_never_panics(
            history in channels(),
            today in proptest::collection::btree_map(proptest::sample::select(Source::ALL.to_vec()), day_counters(), 0..4),
            minutes in 0i64..(60 * 24 * 50),
            silence in 0u32..3000,
            lookback in 0u32..400,
        ) {
            let now = Utc.with_ymd_and_hms(2026, 10, 31, 16, 0, 0).unwrap() + chrono::Duration::minutes(minutes);
            let rules = SilenceRules { silence_minutes: silence, lookback_days: lookback, ..SilenceRules::default() };
            for silent in silent_channels(now, &today, &history, &rules) {
                prop_assert!(silent.silent_since_slot <= now);
                prop_assert!(silent.expected_per_slot >= rules.min_expected_per_slot);
            }
        }
    }

    /// A month of 7 channels standing for about a million orders (4 762 a channel a day), with
    /// every counter the writers bump.
    fn million_orders_month() -> BTreeMap<Source, Vec<DayCounters>> {
        let orders: i64 = 1_000_000 / (30 * 7);
        let mut channels = BTreeMap::new();
        for (c, source) in Source::CHANNELS.into_iter().enumerate() {
            let days = (0..30u64)
                .map(|d| {
                    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
                    let mut set = |name: String, value: i64| {
                        counters.insert(name, value);
                    };
                    set(names::RECEIVED.into(), orders * 6);
                    set(names::APPLIED.into(), orders * 5);
                    for (i, bound) in names::SYNC_DELAY_BOUNDS_S.into_iter().enumerate() {
                        set(names::sync_delay_bin(bound), orders * 5 / (i as i64 + 2));
                    }
                    set(names::sync_delay_bin(100_000), 3);
                    set(names::SYNC_DELAY_COUNT.into(), orders * 5);
                    set(names::SYNC_DELAY_SUM_S.into(), orders * 5 * 400);
                    set(names::SHIPPED_ON_TIME.into(), orders - 60 - c as i64);
                    set(names::SHIPPED_LATE.into(), 60 + c as i64);
                    set(names::TRUST_ASSESSED.into(), orders);
                    set(names::TRUST_SCORE_SUM.into(), orders * 93);
                    set(names::REFUND_SUCCEEDED.into(), orders / 20);
                    set(names::STOCK_RELEASE_DUE.into(), orders / 40);
                    set(names::STOCK_RELEASED.into(), orders / 40);
                    set(names::STOCK_RELEASED_ON_TIME.into(), orders / 40 - i64::from(d == 7));
                    set(names::APP_LOGISTICS_VIEWS.into(), orders * 2);
                    set(names::APP_CONSULTATIONS.into(), orders / 5);
                    set(names::QUARANTINED.into(), 3);
                    set(names::OPS_CALLS.into(), 1);
                    for h in 0..24 {
                        set(names::received_in_hour(h), orders / 4);
                        for m in (0..60).step_by(10) {
                            set(names::received_in_slot(h, m), orders / 24);
                        }
                    }
                    for from in Lifecycle::ALL {
                        for to in Lifecycle::ALL {
                            if from.move_to(to).is_some() {
                                set(names::transition_count(from, to), orders);
                                set(names::transition_seconds(from, to), orders * 60 * (from.code().len() as i64 * 7));
                            }
                        }
                    }
                    DayCounters { day: first().checked_add_days(Days::new(d)), counters }
                })
                .collect();
            channels.insert(source, days);
        }
        channels
    }

    #[test]
    fn a_month_of_seven_channels_for_a_million_orders_builds_and_renders() {
        let channels = million_orders_month();
        let report =
            build_report(ReportKind::Monthly, Period::month_of(first()), &channels, &HealthThresholds::default());
        assert_eq!(report.channels.len(), 7);
        assert_eq!(report.overall.days_with_data, 30);
        assert_eq!(report.overall.received, (1_000_000 / 210) * 6 * 210);
        let breached: Vec<Indicator> = report.breaches().iter().map(|b| b.indicator).collect();
        assert!(breached.contains(&Indicator::RefundStockRelease));
        let extras = report.monthly.as_ref().unwrap();
        assert_eq!(extras.bottlenecks.len(), TOP_BOTTLENECKS);
        assert_eq!(extras.ops_calls, 210);
        let page = render_markdown(&report);
        assert_eq!(page.matches("<svg").count(), Indicator::ALL.len());
        let today = channels.iter().map(|(source, days)| (*source, days[29].clone())).collect();
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 4, 0, 0).unwrap();
        assert!(silent_channels(now, &today, &channels, &SilenceRules::default()).is_empty());
    }
}
