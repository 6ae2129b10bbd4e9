//! The five indicators: what each one is computed from, its threshold and its verdict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::counters::{DayCounters, names};
pub use crate::model::health::{Direction, Indicator};

impl Indicator {
    /// The value and its sample size from (summed) counters; `None` when the denominator is zero.
    /// Negative totals (corrections) read as zero, and the value is clamped to its range.
    pub fn measure(self, counters: &DayCounters) -> Measurement {
        match self {
            Indicator::SyncDelayMedian => {
                let sample = sync_delay_sample(counters);
                Measurement { value: median_sync_delay_s(counters).map(|s| s / 60.0), sample }
            }
            Indicator::OnTimeShipping => {
                let on_time = count(counters, names::SHIPPED_ON_TIME);
                let late = count(counters, names::SHIPPED_LATE);
                let sample = on_time.saturating_add(late);
                let value = (sample > 0).then(|| on_time as f64 / (on_time as f64 + late as f64));
                Measurement { value, sample }
            }
            Indicator::TrustScore => {
                let assessed = count(counters, names::TRUST_ASSESSED);
                let sum = count(counters, names::TRUST_SCORE_SUM);
                let value = (assessed > 0).then(|| (sum as f64 / assessed as f64).clamp(0.0, 100.0));
                Measurement { value, sample: assessed }
            }
            Indicator::RefundStockRelease => {
                // Every released line was due, so `stock_released` is a floor for the lines due:
                // a writer that forgot `stock_release_due` can never make the rate look better.
                let due = count(counters, names::STOCK_RELEASE_DUE).max(count(counters, names::STOCK_RELEASED));
                let on_time = count(counters, names::STOCK_RELEASED_ON_TIME);
                let value = (due > 0).then(|| (on_time as f64 / due as f64).min(1.0));
                Measurement { value, sample: due }
            }
            Indicator::SelfService => {
                let views = count(counters, names::APP_LOGISTICS_VIEWS);
                let consultations = count(counters, names::APP_CONSULTATIONS);
                // (views − consultations) / views rather than 1 − c / v: one correctly rounded
                // division, so a value exactly on the threshold compares as such.
                let value = (views > 0).then(|| views.saturating_sub(consultations) as f64 / views as f64);
                Measurement { value, sample: views }
            }
        }
    }
}

/// A raw indicator value before any threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The value (minutes, fraction or score); `None` when there is nothing to divide by.
    pub value: Option<f64>,
    /// How many events the value stands for (its denominator).
    pub sample: u64,
}

/// One indicator's threshold and the smallest sample it is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The limit, in the indicator's unit (minutes, fraction 0..=1, score 0..=100). The value on
    /// the limit is healthy.
    pub limit: f64,
    /// Below this many events the indicator says "insufficient data" instead of a number.
    pub min_sample: u64,
}

/// Thresholds and minimum samples of the five indicators (configurable; the defaults are the
/// seller's targets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthThresholds {
    /// Sync delay median, minutes, at most (default 15, min 20 events).
    pub sync_delay_median_minutes: Threshold,
    /// On-time shipping rate, at least (default 0.985, min 20 shipments with a promise).
    pub on_time_shipping: Threshold,
    /// Mean trust score, at least (default 92, min 10 signs assessed).
    pub trust_score: Threshold,
    /// Refund stock release on time, at least (default 1.0, min 1 line due: one stuck line is
    /// already a breach).
    pub refund_stock_release: Threshold,
    /// Customer self-service resolution, at least (default 0.85, min 30 logistics views).
    pub self_service: Threshold,
    /// Transitions seen fewer times than this stay out of the monthly bottleneck table
    /// (default 5).
    pub bottleneck_min_transitions: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            sync_delay_median_minutes: Threshold { limit: 15.0, min_sample: 20 },
            on_time_shipping: Threshold { limit: 0.985, min_sample: 20 },
            trust_score: Threshold { limit: 92.0, min_sample: 10 },
            refund_stock_release: Threshold { limit: 1.0, min_sample: 1 },
            self_service: Threshold { limit: 0.85, min_sample: 30 },
            bottleneck_min_transitions: 5,
        }
    }
}

impl HealthThresholds {
    /// The threshold of one indicator.
    pub fn get(&self, indicator: Indicator) -> Threshold {
        match indicator {
            Indicator::SyncDelayMedian => self.sync_delay_median_minutes,
            Indicator::OnTimeShipping => self.on_time_shipping,
            Indicator::TrustScore => self.trust_score,
            Indicator::RefundStockRelease => self.refund_stock_release,
            Indicator::SelfService => self.self_service,
        }
    }

    /// The same thresholds with any non-finite limit replaced by its default (a NaN limit would
    /// breach everything and could not be stored as JSON).
    pub fn sanitized(&self) -> Self {
        let defaults = Self::default();
        let fix = |t: Threshold, d: Threshold| if t.limit.is_finite() { t } else { Threshold { limit: d.limit, ..t } };
        Self {
            sync_delay_median_minutes: fix(self.sync_delay_median_minutes, defaults.sync_delay_median_minutes),
            on_time_shipping: fix(self.on_time_shipping, defaults.on_time_shipping),
            trust_score: fix(self.trust_score, defaults.trust_score),
            refund_stock_release: fix(self.refund_stock_release, defaults.refund_stock_release),
            self_service: fix(self.self_service, defaults.self_service),
            bottleneck_min_transitions: self.bottleneck_min_transitions,
        }
    }
}

/// How an indicator compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthVerdict {
    /// On the healthy side of the threshold (the threshold itself included).
    Healthy,
    /// On the wrong side.
    Breached,
    /// Fewer events than the minimum sample: no number is given.
    InsufficientData,
    /// The channel has no counters at all in the period.
    NoData,
}

/// One indicator of one channel (or overall) over a period, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorValue {
    /// Which indicator.
    pub indicator: Indicator,
    /// The value in the indicator's unit; `None` unless the verdict is healthy or breached.
    pub value: Option<f64>,
    /// How many events it stands for.
    pub sample: u64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// The minimum sample that was required.
    pub min_sample: u64,
    /// The verdict.
    pub verdict: HealthVerdict,
}

impl IndicatorValue {
    /// Measures and judges one indicator on (summed) counters.
    pub fn assess(indicator: Indicator, counters: &DayCounters, thresholds: &HealthThresholds) -> Self {
        let threshold = thresholds.get(indicator);
        let Measurement { value, sample } = indicator.measure(counters);
        let (value, verdict) = match value {
            Some(value) if sample >= threshold.min_sample.max(1) => {
                let healthy = match indicator.direction() {
                    Direction::AtMost => value <= threshold.limit + tolerance(threshold.limit),
                    Direction::AtLeast => value >= threshold.limit - tolerance(threshold.limit),
                };
                (Some(value), if healthy { HealthVerdict::Healthy } else { HealthVerdict::Breached })
            }
            _ => (None, HealthVerdict::InsufficientData),
        };
        Self { indicator, value, sample, threshold: threshold.limit, min_sample: threshold.min_sample, verdict }
    }

    /// The entry of a channel without any counter.
    pub fn no_data(indicator: Indicator, thresholds: &HealthThresholds) -> Self {
        let threshold = thresholds.get(indicator);
        Self {
            indicator,
            value: None,
            sample: 0,
            threshold: threshold.limit,
            min_sample: threshold.min_sample,
            verdict: HealthVerdict::NoData,
        }
    }
}

// Values are ratios of integers; a last-bit rounding difference must not turn "exactly on the
// threshold" into a breach.
fn tolerance(limit: f64) -> f64 {
    1e-9 * limit.abs().max(1.0)
}

/// A counter's total read as a count: negative totals (corrections gone too far) read as zero.
pub(crate) fn count(counters: &DayCounters, name: &str) -> u64 {
    u64::try_from(counters.get(name)).unwrap_or(0)
}

/// The histogram bins of the sync delay: (lower bound s, upper bound s or `None` for the open
/// last bin, counter name).
fn sync_delay_bins() -> Vec<(f64, Option<f64>, String)> {
    let mut lower = 0.0;
    let mut bins = Vec::with_capacity(names::SYNC_DELAY_BOUNDS_S.len() + 1);
    for bound in names::SYNC_DELAY_BOUNDS_S {
        bins.push((lower, Some(bound as f64), names::sync_delay_bin(bound)));
        lower = bound as f64;
    }
    bins.push((lower, None, names::sync_delay_bin(i64::MAX)));
    bins
}

/// How many delays the sync-delay histogram holds.
pub(crate) fn sync_delay_sample(counters: &DayCounters) -> u64 {
    sync_delay_bins().iter().fold(0u64, |total, (_, _, name)| total.saturating_add(count(counters, name)))
}

/// The median sync delay in seconds, from the non-cumulative `sync_delay_le_{bound}` bins and
/// `sync_delay_gt_86400`, to bin resolution: the bin holding the middle event (rank = total / 2)
/// is found, and the delay is interpolated linearly inside it, as if its events were spread
/// evenly between its bounds (the first bin starts at 0 s). When the middle falls in the open
/// last bin (more than a day), the answer is its lower bound, 86 400 s. `None` for an empty
/// histogram. Same method as Prometheus' `histogram_quantile(0.5, …)`.
pub fn median_sync_delay_s(counters: &DayCounters) -> Option<f64> {
    let bins: Vec<(f64, Option<f64>, f64)> = sync_delay_bins()
        .into_iter()
        .map(|(lower, upper, name)| (lower, upper, count(counters, &name) as f64))
        .collect();
    let total: f64 = bins.iter().map(|(_, _, n)| n).sum();
    if total <= 0.0 {
        return None;
    }
    let rank = total / 2.0;
    let mut below = 0.0;
    for (lower, upper, n) in &bins {
        if *n <= 0.0 {
            continue;
        }
        if below + n >= rank {
            return Some(match upper {
                Some(upper) => lower + (upper - lower) * ((rank - below) / n).clamp(0.0, 1.0),
                None => *lower,
            });
        }
        below += n;
    }
    bins.last().map(|(lower, _, _)| *lower)
}

/// Adds `from` into `into`, saturating (a counter cannot overflow the report).
pub(crate) fn add_counters(into: &mut BTreeMap<String, i64>, from: &BTreeMap<String, i64>) {
    for (name, value) in from {
        match into.get_mut(name) {
            Some(total) => *total = total.saturating_add(*value),
            None => {
                into.insert(name.clone(), *value);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Counters from `(name, value)` pairs.
    pub(crate) fn counters(pairs: &[(&str, i64)]) -> DayCounters {
        DayCounters { day: None, counters: pairs.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect() }
    }

    type Pairs<'a> = Vec<(&'a str, i64)>;
    /// (case, indicator, counters, verdict, value).
    type Case<'a> = (&'a str, Indicator, Pairs<'a>, HealthVerdict, Option<f64>);

    fn assess(indicator: Indicator, pairs: &[(&str, i64)]) -> IndicatorValue {
        IndicatorValue::assess(indicator, &counters(pairs), &HealthThresholds::default())
    }

    #[test]
    fn each_indicator_healthy_breached_insufficient_and_on_the_threshold() {
        use HealthVerdict::*;
        use Indicator::*;
        let rows: Vec<Case> = vec![
            // Sync delay: 20 events, all within a minute -> median 30 s.
            ("sync healthy", SyncDelayMedian, vec![("sync_delay_le_60", 20)], Healthy, Some(0.5)),
            ("sync breached", SyncDelayMedian, vec![("sync_delay_le_3600", 20)], Breached, Some(45.0)),
            ("sync insufficient", SyncDelayMedian, vec![("sync_delay_le_60", 19)], InsufficientData, None),
            // The middle event is the last of the ≤ 900 s bin: exactly 15 min.
            (
                "sync on threshold",
                SyncDelayMedian,
                vec![("sync_delay_le_900", 10), ("sync_delay_le_1800", 10)],
                Healthy,
                Some(15.0),
            ),
            ("ship healthy", OnTimeShipping, vec![("shipped_on_time", 99), ("shipped_late", 1)], Healthy, Some(0.99)),
            ("ship breached", OnTimeShipping, vec![("shipped_on_time", 98), ("shipped_late", 2)], Breached, Some(0.98)),
            (
                "ship insufficient",
                OnTimeShipping,
                vec![("shipped_on_time", 19), ("shipped_no_promise", 500)],
                InsufficientData,
                None,
            ),
            (
                "ship on threshold",
                OnTimeShipping,
                vec![("shipped_on_time", 985), ("shipped_late", 15)],
                Healthy,
                Some(0.985),
            ),
            ("trust healthy", TrustScore, vec![("trust_assessed", 10), ("trust_score_sum", 950)], Healthy, Some(95.0)),
            (
                "trust breached",
                TrustScore,
                vec![("trust_assessed", 10), ("trust_score_sum", 910)],
                Breached,
                Some(91.0),
            ),
            (
                "trust insufficient",
                TrustScore,
                vec![("trust_assessed", 9), ("trust_score_sum", 900)],
                InsufficientData,
                None,
            ),
            (
                "trust on threshold",
                TrustScore,
                vec![("trust_assessed", 25), ("trust_score_sum", 2300)],
                Healthy,
                Some(92.0),
            ),
            (
                "release healthy",
                RefundStockRelease,
                vec![("stock_release_due", 7), ("stock_released", 7), ("stock_released_on_time", 7)],
                Healthy,
                Some(1.0),
            ),
            // One line due and never released: the rate sees it although nothing was released.
            (
                "release stuck",
                RefundStockRelease,
                vec![("stock_release_due", 4), ("stock_released_on_time", 3)],
                Breached,
                Some(0.75),
            ),
            // Released late, and the writer never counted the lines due: released is the floor.
            (
                "release late",
                RefundStockRelease,
                vec![("stock_released", 2), ("stock_released_on_time", 1)],
                Breached,
                Some(0.5),
            ),
            ("release none due", RefundStockRelease, vec![("refund_succeeded", 12)], InsufficientData, None),
            (
                "release on threshold",
                RefundStockRelease,
                vec![("stock_release_due", 1), ("stock_released_on_time", 1)],
                Healthy,
                Some(1.0),
            ),
            (
                "self healthy",
                SelfService,
                vec![("app_logistics_views", 100), ("app_consultations", 10)],
                Healthy,
                Some(0.9),
            ),
            (
                "self breached",
                SelfService,
                vec![("app_logistics_views", 100), ("app_consultations", 16)],
                Breached,
                Some(0.84),
            ),
            (
                "self insufficient",
                SelfService,
                vec![("app_logistics_views", 29), ("app_consultations", 0)],
                InsufficientData,
                None,
            ),
            (
                "self on threshold",
                SelfService,
                vec![("app_logistics_views", 100), ("app_consultations", 15)],
                Healthy,
                Some(0.85),
            ),
            // More consultations than views: clamped to 0, not negative.
            (
                "self clamped",
                SelfService,
                vec![("app_logistics_views", 40), ("app_consultations", 90)],
                Breached,
                Some(0.0),
            ),
        ];
        for (case, indicator, pairs, verdict, value) in rows {
            let got = assess(indicator, &pairs);
            assert_eq!(got.verdict, verdict, "{case}");
            match (got.value, value) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-12, "{case}: {got} != {want}"),
                (got, want) => assert_eq!(got, want, "{case}"),
            }
        }
    }

    #[test]
    fn exact_threshold_values_are_exact_in_floating_point() {
        // No tolerance needed for these: the tolerance only guards against future formulas.
        assert_eq!(985.0 / 1000.0, 0.985);
        assert_eq!(85.0 / 100.0, 0.85);
        assert_eq!(
            median_sync_delay_s(&counters(&[("sync_delay_le_900", 10), ("sync_delay_le_1800", 10)])),
            Some(900.0)
        );
    }

    #[test]
    fn median_from_bins_known_answers() {
        let rows: Vec<(Pairs, Option<f64>)> = vec![
            (vec![], None),
            (vec![("sync_delay_le_60", 0)], None),
            // One event: rank 0.5 of a bin 0..60 holding one -> 30 s.
            (vec![("sync_delay_le_60", 1)], Some(30.0)),
            // 10 + 10: the middle is the end of the first bin.
            (vec![("sync_delay_le_60", 10), ("sync_delay_le_300", 10)], Some(60.0)),
            // 10 events in 60..300: rank 5 -> 60 + 240 × 5/10.
            (vec![("sync_delay_le_300", 10)], Some(180.0)),
            // 2 + 6 + 2: rank 5 falls 3/6 into 300..900 -> 600 s.
            (vec![("sync_delay_le_60", 2), ("sync_delay_le_900", 6), ("sync_delay_le_3600", 2)], Some(600.0)),
            // 1 + 3 in 7200..21600 -> rank 2, 1 of 3 into the bin -> 7200 + 14400/3.
            (vec![("sync_delay_le_60", 1), ("sync_delay_le_21600", 3)], Some(7200.0 + 14_400.0 / 3.0)),
            // The middle in the open bin: its lower bound.
            (vec![("sync_delay_le_60", 1), ("sync_delay_gt_86400", 5)], Some(86_400.0)),
            // Negative bins read as empty.
            (vec![("sync_delay_le_60", -50), ("sync_delay_le_1800", 4)], Some(900.0 + 900.0 / 2.0)),
        ];
        for (pairs, want) in rows {
            assert_eq!(median_sync_delay_s(&counters(&pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn the_bins_match_the_names_the_writers_use() {
        let names: Vec<String> = sync_delay_bins().into_iter().map(|(_, _, name)| name).collect();
        for delay in [0, 59, 61, 899, 901, 3_599, 7_201, 21_601, 86_400, 86_401, 10_000_000] {
            assert!(names.contains(&names::sync_delay_bin(delay)), "{delay}");
        }
        assert_eq!(names.len(), 9);
    }

    #[test]
    fn sample_below_min_is_insufficient_even_with_a_value() {
        let mut thresholds = HealthThresholds::default();
        thresholds.on_time_shipping.min_sample = 0;
        // A zero minimum still needs one event: there is nothing to divide otherwise.
        let got = IndicatorValue::assess(Indicator::OnTimeShipping, &counters(&[]), &thresholds);
        assert_eq!(got.verdict, HealthVerdict::InsufficientData);
        let got = IndicatorValue::assess(Indicator::OnTimeShipping, &counters(&[("shipped_late", 1)]), &thresholds);
        assert_eq!(got.verdict, HealthVerdict::Breached);
    }

    #[test]
    fn sanitized_replaces_non_finite_limits() {
        let thresholds = HealthThresholds {
            trust_score: Threshold { limit: f64::NAN, min_sample: 3 },
            ..HealthThresholds::default()
        };
        let clean = thresholds.sanitized();
        assert_eq!(clean.trust_score, Threshold { limit: 92.0, min_sample: 3 });
        assert_eq!(clean.on_time_shipping, thresholds.on_time_shipping);
    }

    #[test]
    fn thresholds_deserialize_partially_over_the_defaults() {
        let parsed: HealthThresholds =
            serde_json::from_str(r#"{"trust_score":{"limit":90,"min_sample":5}}"#).unwrap_or_default();
        assert_eq!(parsed.trust_score, Threshold { limit: 90.0, min_sample: 5 });
        assert_eq!(parsed.self_service, HealthThresholds::default().self_service);
    }
}
