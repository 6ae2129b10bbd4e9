//! The report: periods, per-channel and overall indicators, daily series, breaches.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::indicator::{HealthThresholds, HealthVerdict, Indicator, IndicatorValue, add_counters, count};
use super::monthly::{MonthlyExtras, monthly_extras};
use crate::model::counters::{DayCounters, names};
pub use crate::model::health::{ReportKind, Scope};
use crate::model::ids::Source;
use crate::model::time::business_day;

/// A range of Beijing calendar days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
}

impl Period {
    /// A period; the ends are swapped when given the wrong way round.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        if from <= to { Self { from, to } } else { Self { from: to, to: from } }
    }

    /// One day.
    pub fn day(day: NaiveDate) -> Self {
        Self { from: day, to: day }
    }

    /// The calendar month that holds `day`.
    pub fn month_of(day: NaiveDate) -> Self {
        let first = day.with_day(1).unwrap_or(day);
        let last = first.checked_add_months(Months::new(1)).and_then(|next| next.pred_opt()).unwrap_or(day);
        Self { from: first, to: last }
    }

    /// The Beijing day before the one `now` falls in (what the daily schedule reports).
    pub fn previous_day(now: DateTime<Utc>) -> Self {
        let today = business_day(now);
        Self::day(today.pred_opt().unwrap_or(today))
    }

    /// The Beijing month before the one `now` falls in (what the monthly schedule reports).
    pub fn previous_month(now: DateTime<Utc>) -> Self {
        let today = business_day(now);
        Self::month_of(today.with_day(1).and_then(|first| first.pred_opt()).unwrap_or(today))
    }

    /// Whether a day is inside (either end order accepted).
    pub fn contains(&self, day: NaiveDate) -> bool {
        let Period { from, to } = Self::new(self.from, self.to);
        from <= day && day <= to
    }

    /// How many days it covers.
    pub fn len_days(&self) -> u64 {
        let Period { from, to } = Self::new(self.from, self.to);
        u64::try_from((to - from).num_days()).unwrap_or(0).saturating_add(1)
    }

    /// The sort key of a stored report of this kind: `2026-11-11`, `2026-11`, `2026-11-01..2026-11-15`.
    pub fn label(&self, kind: ReportKind) -> String {
        let Period { from, to } = Self::new(self.from, self.to);
        match kind {
            ReportKind::Daily if from == to => from.to_string(),
            ReportKind::Monthly if Self::month_of(from) == (Period { from, to }) => {
                format!("{:04}-{:02}", from.year(), from.month())
            }
            _ => format!("{from}..{to}"),
        }
    }

    /// The day `n` days after `from`.
    pub(crate) fn nth_day(&self, n: u64) -> Option<NaiveDate> {
        self.from.checked_add_days(Days::new(n))
    }
}

/// One day's value of an indicator (a point of a chart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The Beijing day.
    pub day: NaiveDate,
    /// The value that day; `None` when the day's sample is below the minimum.
    pub value: Option<f64>,
    /// The day's sample.
    pub sample: u64,
}

/// An indicator's daily values over the period, for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSeries {
    /// Which indicator.
    pub indicator: Indicator,
    /// One point per day that has counters, in day order.
    pub points: Vec<SeriesPoint>,
}

/// The health of one channel (or of all of them) over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeHealth {
    /// Whom it is about.
    pub scope: Scope,
    /// Whether there was any counter at all in the period ("no data" otherwise).
    pub has_data: bool,
    /// Days of the period that had counters.
    pub days_with_data: u32,
    /// Events received (`received`) in the period, for scale.
    pub received: u64,
    /// The five indicators over the whole period, in [`Indicator::ALL`] order.
    pub indicators: Vec<IndicatorValue>,
    /// Their daily values, in [`Indicator::ALL`] order (empty when there is no data).
    pub series: Vec<IndicatorSeries>,
}

impl ScopeHealth {
    /// One indicator's entry.
    pub fn indicator(&self, indicator: Indicator) -> Option<&IndicatorValue> {
        self.indicators.iter().find(|value| value.indicator == indicator)
    }

    /// One indicator's daily series.
    pub fn series(&self, indicator: Indicator) -> Option<&IndicatorSeries> {
        self.series.iter().find(|series| series.indicator == indicator)
    }

    fn build(scope: Scope, days: &BTreeMap<NaiveDate, DayCounters>, thresholds: &HealthThresholds) -> Self {
        let days_with_data: Vec<(&NaiveDate, &DayCounters)> =
            days.iter().filter(|(_, counters)| !counters.counters.is_empty()).collect();
        if days_with_data.is_empty() {
            return Self {
                scope,
                has_data: false,
                days_with_data: 0,
                received: 0,
                indicators: Indicator::ALL.iter().map(|i| IndicatorValue::no_data(*i, thresholds)).collect(),
                series: Vec::new(),
            };
        }
        let mut total = DayCounters::default();
        for (_, counters) in &days_with_data {
            add_counters(&mut total.counters, &counters.counters);
        }
        let series = Indicator::ALL
            .iter()
            .map(|indicator| IndicatorSeries {
                indicator: *indicator,
                points: days_with_data
                    .iter()
                    .map(|(day, counters)| {
                        let value = IndicatorValue::assess(*indicator, counters, thresholds);
                        SeriesPoint { day: **day, value: value.value, sample: value.sample }
                    })
                    .collect(),
            })
            .collect();
        Self {
            scope,
            has_data: true,
            days_with_data: u32::try_from(days_with_data.len()).unwrap_or(u32::MAX),
            received: count(&total, names::RECEIVED),
            indicators: Indicator::ALL.iter().map(|i| IndicatorValue::assess(*i, &total, thresholds)).collect(),
            series,
        }
    }
}

/// A threshold breach, as published (`HealthThresholdBreached`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// Which indicator.
    pub indicator: Indicator,
    /// Which channel, or overall.
    pub scope: Scope,
    /// The value found.
    pub value: f64,
    /// The threshold it is on the wrong side of.
    pub threshold: f64,
    /// How many events the value stands for.
    pub sample: u64,
}

/// The order-health report of a period: stored as JSON, rendered by
/// [`render_markdown`](super::render_markdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Daily, monthly or range.
    pub kind: ReportKind,
    /// The Beijing days covered.
    pub period: Period,
    /// The thresholds applied.
    pub thresholds: HealthThresholds,
    /// All channels' counters summed, then measured (not an average of channel values).
    pub overall: ScopeHealth,
    /// Every sales channel (those without counters say so), then any other source that has
    /// counters, in [`Source`] order.
    pub channels: Vec<ScopeHealth>,
    /// Present for monthly reports.
    pub monthly: Option<MonthlyExtras>,
}

impl HealthReport {
    /// Every breached indicator: overall first, then channels, indicators in report order.
    pub fn breaches(&self) -> Vec<Breach> {
        std::iter::once(&self.overall)
            .chain(&self.channels)
            .flat_map(|scope| {
                scope.indicators.iter().filter_map(move |value| match (value.verdict, value.value) {
                    (HealthVerdict::Breached, Some(found)) => Some(Breach {
                        indicator: value.indicator,
                        scope: scope.scope,
                        value: found,
                        threshold: value.threshold,
                        sample: value.sample,
                    }),
                    _ => None,
                })
            })
            .collect()
    }

    /// The row of one scope.
    pub fn scope(&self, scope: Scope) -> Option<&ScopeHealth> {
        std::iter::once(&self.overall).chain(&self.channels).find(|row| row.scope == scope)
    }

    /// The sort key it is stored under (see [`Period::label`]).
    pub fn period_label(&self) -> String {
        self.period.label(self.kind)
    }
}

/// Builds the report of `period` from each channel's day counters. Days outside the period, and
/// counters without a day, are ignored; several entries of the same day are summed. Overall is
/// every reported channel's counters summed, then measured.
pub fn build_report(
    kind: ReportKind,
    period: Period,
    channels: &BTreeMap<Source, Vec<DayCounters>>,
    thresholds: &HealthThresholds,
) -> HealthReport {
    let period = Period::new(period.from, period.to);
    let thresholds = thresholds.sanitized();
    let mut sources: Vec<Source> = Source::CHANNELS.to_vec();
    sources.extend(channels.keys().filter(|source| !source.is_channel()));
    sources.sort();
    sources.dedup();

    let mut overall_days: BTreeMap<NaiveDate, DayCounters> = BTreeMap::new();
    let mut per_channel: Vec<(Scope, DayCounters)> = Vec::with_capacity(sources.len());
    let mut rows = Vec::with_capacity(sources.len());
    for source in sources {
        let mut days: BTreeMap<NaiveDate, DayCounters> = BTreeMap::new();
        for counters in channels.get(&source).into_iter().flatten() {
            let Some(day) = counters.day.filter(|day| period.contains(*day)) else { continue };
            let entry = days.entry(day).or_insert_with(|| DayCounters { day: Some(day), ..Default::default() });
            add_counters(&mut entry.counters, &counters.counters);
        }
        let mut total = DayCounters::default();
        for (day, counters) in &days {
            add_counters(&mut total.counters, &counters.counters);
            let entry =
                overall_days.entry(*day).or_insert_with(|| DayCounters { day: Some(*day), ..Default::default() });
            add_counters(&mut entry.counters, &counters.counters);
        }
        rows.push(ScopeHealth::build(Scope::Channel(source), &days, &thresholds));
        per_channel.push((Scope::Channel(source), total));
    }
    let overall = ScopeHealth::build(Scope::Overall, &overall_days, &thresholds);

    let monthly = (kind == ReportKind::Monthly).then(|| {
        let mut total = DayCounters::default();
        for counters in overall_days.values() {
            add_counters(&mut total.counters, &counters.counters);
        }
        monthly_extras(&total, &per_channel, &thresholds)
    });

    HealthReport { kind, period, thresholds, overall, channels: rows, monthly }
}

#[cfg(test)]
mod tests {
    use super::super::indicator::tests::counters;
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn on(day: NaiveDate, pairs: &[(&str, i64)]) -> DayCounters {
        DayCounters { day: Some(day), ..counters(pairs) }
    }

    fn daily(channels: &BTreeMap<Source, Vec<DayCounters>>, day: NaiveDate) -> HealthReport {
        build_report(ReportKind::Daily, Period::day(day), channels, &HealthThresholds::default())
    }

    #[test]
    fn overall_sums_counters_it_does_not_average_channel_values() {
        let day = date(2026, 11, 11);
        let channels = BTreeMap::from([
            (Source::Douyin, vec![on(day, &[("shipped_on_time", 90), ("shipped_late", 10)])]),
            (Source::Pdd, vec![on(day, &[("shipped_on_time", 20)])]),
            (Source::Jd, vec![on(day, &[("shipped_on_time", 5), ("trust_assessed", 4), ("trust_score_sum", 400)])]),
            (Source::Taobao, vec![on(day, &[("trust_assessed", 6), ("trust_score_sum", 480)])]),
        ]);
        let report = daily(&channels, day);
        let rate = |scope| report.scope(scope).unwrap().indicator(Indicator::OnTimeShipping).unwrap().value;
        assert_eq!(rate(Scope::Channel(Source::Douyin)), Some(0.9));
        assert_eq!(rate(Scope::Channel(Source::Pdd)), Some(1.0));
        // JD has 5 shipments: below the minimum of 20 on its own, but it counts in the sum.
        assert_eq!(rate(Scope::Channel(Source::Jd)), None);
        assert_eq!(rate(Scope::Overall), Some(115.0 / 125.0));
        // Trust: (400 + 480) / 10 = 88, not the mean of 100 and 80 (nor insufficient: 10 signs).
        let trust = report.overall.indicator(Indicator::TrustScore).unwrap();
        assert_eq!((trust.value, trust.sample, trust.verdict), (Some(88.0), 10, HealthVerdict::Breached));
        // Histograms add bin by bin.
        let channels = BTreeMap::from([
            (Source::Douyin, vec![on(day, &[("sync_delay_le_60", 10)])]),
            (Source::Pdd, vec![on(day, &[("sync_delay_le_3600", 10)])]),
        ]);
        let report = daily(&channels, day);
        let median = report.overall.indicator(Indicator::SyncDelayMedian).unwrap();
        assert_eq!((median.value, median.sample), (Some(1.0), 20));
    }

    #[test]
    fn days_outside_the_period_are_ignored() {
        let period = Period::new(date(2026, 11, 10), date(2026, 11, 12));
        let channels = BTreeMap::from([(
            Source::Douyin,
            vec![
                on(date(2026, 11, 9), &[("shipped_late", 1000)]),
                on(date(2026, 11, 10), &[("shipped_on_time", 30)]),
                on(date(2026, 11, 12), &[("shipped_on_time", 10)]),
                on(date(2026, 11, 13), &[("shipped_late", 1000)]),
                DayCounters { day: None, ..counters(&[("shipped_late", 1000)]) },
            ],
        )]);
        let report = build_report(ReportKind::Range, period, &channels, &HealthThresholds::default());
        let row = report.scope(Scope::Channel(Source::Douyin)).unwrap();
        let rate = row.indicator(Indicator::OnTimeShipping).unwrap();
        assert_eq!((rate.value, rate.sample, rate.verdict), (Some(1.0), 40, HealthVerdict::Healthy));
        assert_eq!(row.days_with_data, 2);
        let days: Vec<NaiveDate> =
            row.series(Indicator::OnTimeShipping).unwrap().points.iter().map(|point| point.day).collect();
        assert_eq!(days, vec![date(2026, 11, 10), date(2026, 11, 12)]);
        // The same period given backwards is the same report.
        let backwards = build_report(
            ReportKind::Range,
            Period { from: period.to, to: period.from },
            &channels,
            &HealthThresholds::default(),
        );
        assert_eq!(backwards, report);
    }

    #[test]
    fn counters_of_half_past_midnight_beijing_belong_to_that_beijing_day() {
        // 2026-11-11 00:30 Beijing is still 2026-11-10 in UTC: the writer files it under its
        // Beijing day, and the report of the 11th (not the 10th) sees it.
        let at = Utc.with_ymd_and_hms(2026, 11, 10, 16, 30, 0).unwrap();
        let day = business_day(at);
        assert_eq!(day, date(2026, 11, 11));
        let channels = BTreeMap::from([(Source::Pdd, vec![on(day, &[("received", 1), ("shipped_late", 30)])])]);
        assert!(daily(&channels, date(2026, 11, 11)).scope(Scope::Channel(Source::Pdd)).unwrap().has_data);
        let before = daily(&channels, date(2026, 11, 10));
        assert!(!before.scope(Scope::Channel(Source::Pdd)).unwrap().has_data);
        assert!(before.breaches().is_empty());
        // And the schedule running just after Beijing midnight reports the Beijing day that ended.
        let run = Utc.with_ymd_and_hms(2026, 11, 11, 16, 5, 0).unwrap();
        assert_eq!(Period::previous_day(run), Period::day(date(2026, 11, 11)));
        assert_eq!(
            Period::previous_month(Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap()),
            Period::month_of(day)
        );
    }

    #[test]
    fn channels_without_counters_say_no_data() {
        let day = date(2026, 11, 11);
        let channels = BTreeMap::from([
            (Source::Douyin, vec![on(day, &[("received", 3)])]),
            (Source::Pdd, vec![on(day, &[])]),
            (Source::Kuaidi100, vec![on(day, &[("received", 9)])]),
        ]);
        let report = daily(&channels, day);
        let scopes: Vec<Scope> = report.channels.iter().map(|row| row.scope).collect();
        let mut expected: Vec<Scope> = Source::CHANNELS.iter().map(|s| Scope::Channel(*s)).collect();
        expected.push(Scope::Channel(Source::Kuaidi100));
        assert_eq!(scopes, expected);
        let pdd = report.scope(Scope::Channel(Source::Pdd)).unwrap();
        assert!(!pdd.has_data);
        assert!(pdd.indicators.iter().all(|value| value.verdict == HealthVerdict::NoData && value.value.is_none()));
        let douyin = report.scope(Scope::Channel(Source::Douyin)).unwrap();
        assert!(douyin.has_data);
        assert!(douyin.indicators.iter().all(|value| value.verdict == HealthVerdict::InsufficientData));
        assert_eq!(report.overall.received, 12);
        assert!(report.monthly.is_none());
    }

    #[test]
    fn breaches_list_every_breached_verdict() {
        let day = date(2026, 11, 11);
        let channels = BTreeMap::from([
            (Source::Douyin, vec![on(day, &[("shipped_on_time", 90), ("shipped_late", 10)])]),
            (Source::Youzan, vec![on(day, &[("stock_release_due", 327), ("stock_released_on_time", 0)])]),
        ]);
        let report = daily(&channels, day);
        let found: Vec<(Indicator, Scope, f64, f64)> =
            report.breaches().into_iter().map(|b| (b.indicator, b.scope, b.value, b.threshold)).collect();
        assert_eq!(
            found,
            vec![
                (Indicator::OnTimeShipping, Scope::Overall, 0.9, 0.985),
                (Indicator::RefundStockRelease, Scope::Overall, 0.0, 1.0),
                (Indicator::OnTimeShipping, Scope::Channel(Source::Douyin), 0.9, 0.985),
                (Indicator::RefundStockRelease, Scope::Channel(Source::Youzan), 0.0, 1.0),
            ]
        );
    }

    #[test]
    fn daily_series_has_one_point_per_day_with_counters() {
        let channels = BTreeMap::from([(
            Source::Jd,
            vec![
                on(date(2026, 11, 1), &[("trust_assessed", 10), ("trust_score_sum", 950)]),
                on(date(2026, 11, 2), &[("trust_assessed", 2), ("trust_score_sum", 100)]),
                // Two entries of the same day (e.g. from two pages) are one day.
                on(date(2026, 11, 3), &[("trust_assessed", 5), ("trust_score_sum", 400)]),
                on(date(2026, 11, 3), &[("trust_assessed", 5), ("trust_score_sum", 500)]),
            ],
        )]);
        let report = build_report(
            ReportKind::Monthly,
            Period::month_of(date(2026, 11, 1)),
            &channels,
            &HealthThresholds::default(),
        );
        let points = &report.overall.series(Indicator::TrustScore).unwrap().points;
        let values: Vec<(u32, Option<f64>, u64)> = points.iter().map(|p| (p.day.day(), p.value, p.sample)).collect();
        assert_eq!(values, vec![(1, Some(95.0), 10), (2, None, 2), (3, Some(90.0), 10)]);
        assert_eq!(report.overall.indicator(Indicator::TrustScore).unwrap().value, Some(1950.0 / 22.0));
    }

    #[test]
    fn the_report_survives_json() {
        let day = date(2026, 11, 11);
        let channels = BTreeMap::from([(
            Source::Douyin,
            vec![on(
                day,
                &[("shipped_on_time", 30), ("shipped_late", 10), ("tr_risk_paid_n", 8), ("tr_risk_paid_s", 800)],
            )],
        )]);
        let report = build_report(ReportKind::Monthly, Period::month_of(day), &channels, &HealthThresholds::default());
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""scope":"douyin""#), "{json}");
        assert!(json.contains(r#""verdict":"breached""#), "{json}");
        let back: HealthReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn period_labels_match_the_stored_report_keys() {
        assert_eq!(Period::day(date(2026, 11, 11)).label(ReportKind::Daily), "2026-11-11");
        assert_eq!(Period::month_of(date(2026, 2, 11)), Period::new(date(2026, 2, 1), date(2026, 2, 28)));
        assert_eq!(Period::month_of(date(2026, 12, 31)).label(ReportKind::Monthly), "2026-12");
        assert_eq!(
            Period::new(date(2026, 11, 15), date(2026, 11, 1)).label(ReportKind::Range),
            "2026-11-01..2026-11-15"
        );
        assert_eq!(Period::new(date(2026, 11, 15), date(2026, 11, 1)).len_days(), 15);
        assert_eq!("overall".parse::<Scope>(), Ok(Scope::Overall));
        assert_eq!("jd".parse::<Scope>(), Ok(Scope::Channel(Source::Jd)));
        assert!("nobody".parse::<Scope>().is_err());
    }
}
