//! The orchestration on the in-memory ports and a fixed clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::json;

use chrono::{Datelike, Days, NaiveDate};
use domain::Source;
use domain::app::health_report::{HealthReporting, MAX_RANGE_DAYS, ReportFailure, months_touched};
use domain::model::counters::{CounterAdd, DayCounters, StoredReport, names};
use domain::model::domain_event::DomainEvent;
use domain::model::time::business_day;
use domain::ports::{Stats, StoreError};
use domain::rules::health::fit::MAX_STORED_BYTES;
use domain::rules::health::silence::SilenceState;
use domain::rules::health::{HealthReport, HealthThresholds, Indicator, Period, ReportKind, Scope, SilenceRules};
use domain::testing::clock::FixedClock;
use domain::testing::memory::{MemoryPages, MemoryPublisher, MemoryStore};
use serde_json::Value;

use super::*;

/// A stats port that counts the month queries that reach the store.
#[derive(Default)]
struct CountingStats {
    inner: MemoryStore,
    months: AtomicUsize,
}

impl CountingStats {
    fn months(&self) -> usize {
        self.months.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Stats for CountingStats {
    async fn add(&self, adds: &[CounterAdd]) -> Result<(), StoreError> {
        self.inner.add(adds).await
    }

    async fn month(&self, channel: Source, month_of: NaiveDate) -> Result<Vec<DayCounters>, StoreError> {
        self.months.fetch_add(1, Ordering::Relaxed);
        self.inner.month(channel, month_of).await
    }

    async fn put_report(&self, report: &StoredReport) -> Result<(), StoreError> {
        self.inner.put_report(report).await
    }

    async fn report(&self, kind: &str, period: &str) -> Result<Option<StoredReport>, StoreError> {
        self.inner.report(kind, period).await
    }
}

struct World {
    stats: CountingStats,
    bus: MemoryPublisher,
    clock: FixedClock,
    thresholds: HealthThresholds,
    silence: SilenceRules,
    pages: MemoryPages,
    with_pages: bool,
}

impl World {
    fn at(now: DateTime<Utc>) -> Self {
        Self {
            stats: CountingStats::default(),
            bus: MemoryPublisher::default(),
            clock: FixedClock::new(now),
            thresholds: HealthThresholds::default(),
            silence: SilenceRules::default(),
            pages: MemoryPages::new(now),
            with_pages: false,
        }
    }

    /// With the report bucket configured.
    fn with_pages(now: DateTime<Utc>) -> Self {
        Self { with_pages: true, ..Self::at(now) }
    }

    fn app(&self) -> HealthReporting<'_> {
        HealthReporting {
            stats: &self.stats,
            events: &self.bus,
            clock: &self.clock,
            thresholds: &self.thresholds,
            silence: &self.silence,
            pages: self.with_pages.then_some(&self.pages as &dyn domain::ports::ReportPages),
        }
    }

    async fn invoke(&self, event: Value) -> Value {
        handle(&self.app(), event).await.unwrap()
    }

    /// Adds counters the way the writers do: on the Beijing day of `at`, over a few shards.
    async fn count_at(&self, channel: Source, at: DateTime<Utc>, pairs: &[(&str, i64)]) {
        self.count_on(channel, business_day(at), pairs).await;
    }

    async fn count_on(&self, channel: Source, day: NaiveDate, pairs: &[(&str, i64)]) {
        let adds: Vec<CounterAdd> = pairs
            .iter()
            .enumerate()
            .map(|(i, (name, by))| CounterAdd {
                channel,
                day,
                shard: (i % 3) as u16,
                name: (*name).to_owned(),
                by: *by,
            })
            .collect();
        self.stats.add(&adds).await.unwrap();
    }

    async fn stored(&self, kind: &str, period: &str) -> (HealthReport, String) {
        let stored = self.stats.report(kind, period).await.unwrap().unwrap_or_else(|| panic!("{kind} {period}"));
        (serde_json::from_str(&stored.json).unwrap(), stored.rendered)
    }

    fn published(&self, detail_type: &str) -> Vec<DomainEvent> {
        self.bus.published().into_iter().filter(|e| e.detail_type() == detail_type).collect()
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
}

const HEALTHY_DAY: [(&str, i64); 6] = [
    ("received", 500),
    ("shipped_on_time", 200),
    ("trust_assessed", 50),
    ("trust_score_sum", 4750),
    ("app_logistics_views", 100),
    ("app_consultations", 5),
];

#[tokio::test]
async fn the_daily_schedule_at_two_in_beijing_reports_yesterday() {
    let world = World::at(beijing(2026, 11, 12, 2, 0));
    world.count_on(Source::Douyin, date(2026, 11, 11), &HEALTHY_DAY).await;
    world.count_on(Source::Douyin, date(2026, 11, 12), &[("received", 7)]).await;
    world.count_on(Source::Douyin, date(2026, 11, 10), &[("received", 9)]).await;

    let answer = world.invoke(json!({"report":"daily"})).await;
    assert_eq!(answer["kind"], "daily");
    assert_eq!(answer["period"], "2026-11-11");
    assert_eq!(answer["breaches"], 0);
    assert_eq!(answer["verdicts"]["douyin"], "healthy");
    assert_eq!(answer["verdicts"]["overall"], "healthy");
    assert_eq!(answer["verdicts"]["pdd"], "no_data");
    assert_eq!(answer["stored"], json!([{"pk":"R#daily","sk":"2026-11-11"}]));
    assert_eq!(answer["fit"], "whole");
    let (report, page) = world.stored("daily", "2026-11-11").await;
    assert_eq!(report.period, Period::day(date(2026, 11, 11)));
    assert_eq!(report.overall.received, 500, "only the 11th");
    assert!(page.contains("2026-11-11"), "{page}");
    assert!(world.bus.published().is_empty());
}

#[tokio::test]
async fn the_monthly_schedule_on_the_fifth_reports_last_month() {
    // 2026-12-05 03:00 Beijing is still the 4th in UTC.
    let world = World::at(beijing(2026, 12, 5, 3, 0));
    world.count_on(Source::Pdd, date(2026, 11, 1), &HEALTHY_DAY).await;
    world.count_on(Source::Pdd, date(2026, 11, 30), &HEALTHY_DAY).await;
    world.count_on(Source::Pdd, date(2026, 12, 1), &[("received", 1)]).await;

    let answer = world.invoke(json!({"report":"monthly"})).await;
    assert_eq!(answer["period"], "2026-11");
    assert_eq!(answer["counter_queries"], Source::CHANNELS.len());
    let (report, page) = world.stored("monthly", "2026-11").await;
    assert_eq!(report.overall.received, 1000);
    assert_eq!(report.overall.days_with_data, 2);
    assert!(report.monthly.is_some(), "monthly extras");
    assert!(page.contains("月度附加"), "{page}");

    // A re-run names its month.
    let answer = world.invoke(json!({"report":"monthly","month":"2026-12"})).await;
    assert_eq!(answer["period"], "2026-12");
    assert_eq!(world.stored("monthly", "2026-12").await.0.overall.received, 1);
}

#[tokio::test]
async fn a_daily_rerun_names_its_day() {
    let world = World::at(beijing(2026, 12, 20, 9, 0));
    world.count_on(Source::Jd, date(2026, 11, 11), &HEALTHY_DAY).await;
    let answer = world.invoke(json!({"report":"daily","day":"2026-11-11"})).await;
    assert_eq!(answer["period"], "2026-11-11");
    assert_eq!(world.stored("daily", "2026-11-11").await.0.overall.received, 500);
}

#[tokio::test]
async fn an_ops_range_reports_the_channels_asked_for() {
    let world = World::at(beijing(2026, 12, 1, 10, 0));
    for channel in [Source::Douyin, Source::Pdd, Source::Jd] {
        world.count_on(channel, date(2026, 10, 31), &HEALTHY_DAY).await;
        world.count_on(channel, date(2026, 11, 1), &HEALTHY_DAY).await;
        world.count_on(channel, date(2026, 11, 15), &HEALTHY_DAY).await;
        world.count_on(channel, date(2026, 11, 16), &HEALTHY_DAY).await;
    }
    let answer =
        world.invoke(json!({"report":"range","from":"2026-11-01","to":"2026-11-15","channels":["douyin","pdd"]})).await;
    assert_eq!(answer["period"], "2026-11-01..2026-11-15#douyin+pdd");
    assert_eq!(answer["counter_queries"], 2, "two channels, one month");
    let verdicts: Vec<&str> = answer["verdicts"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(verdicts, vec!["douyin", "overall", "pdd"]);
    let (report, page) = world.stored("range", "2026-11-01..2026-11-15#douyin+pdd").await;
    let scopes: Vec<Scope> = report.channels.iter().map(|row| row.scope).collect();
    assert_eq!(scopes, vec![Scope::Channel(Source::Douyin), Scope::Channel(Source::Pdd)]);
    assert_eq!(report.overall.received, 2 * 2 * 500, "two channels, the 1st and the 15th");
    assert!(!page.contains("京东"), "JD was not asked for");

    // Without channels: every channel, under the plain label (never mixed up with the subset).
    let answer = world.invoke(json!({"report":"range","from":"2026-10-31","to":"2026-11-01"})).await;
    assert_eq!(answer["period"], "2026-10-31..2026-11-01");
    assert_eq!(answer["counter_queries"], Source::CHANNELS.len() * 2, "two months");
    assert_eq!(world.stored("range", "2026-10-31..2026-11-01").await.0.overall.received, 3 * 2 * 500);
}

#[tokio::test]
async fn a_breach_publishes_an_event_with_its_scope_period_and_kind() {
    let world = World::at(beijing(2026, 11, 12, 2, 0));
    world.count_on(Source::Douyin, date(2026, 11, 11), &[("shipped_on_time", 180), ("shipped_late", 20)]).await;
    world.count_on(Source::Pdd, date(2026, 11, 11), &[("shipped_on_time", 100)]).await;
    let answer = world.invoke(json!({"report":"daily"})).await;
    let events = world.published("HealthThresholdBreached");
    assert_eq!(answer["breaches"], events.len());
    assert_eq!(
        events,
        vec![
            DomainEvent::HealthThresholdBreached {
                indicator: Indicator::OnTimeShipping,
                channel: Scope::Overall,
                value: 280.0 / 300.0,
                threshold: 0.985,
                period: "2026-11-11".into(),
                kind: ReportKind::Daily,
            },
            DomainEvent::HealthThresholdBreached {
                indicator: Indicator::OnTimeShipping,
                channel: Scope::Channel(Source::Douyin),
                value: 0.9,
                threshold: 0.985,
                period: "2026-11-11".into(),
                kind: ReportKind::Daily,
            },
        ]
    );
    assert_eq!(answer["verdicts"]["douyin"], "breached");
    assert_eq!(answer["verdicts"]["pdd"], "healthy");
    assert_eq!(world.bus.calls(), 1, "one batch");
    let detail = events[0].detail();
    assert_eq!(detail["channel"], "overall");
    assert_eq!(detail["indicator"], "on_time_shipping");
    assert_eq!(detail["kind"], "daily");
}

#[tokio::test]
async fn configured_thresholds_decide_the_breaches() {
    let mut world = World::at(beijing(2026, 11, 12, 2, 0));
    world.thresholds = thresholds_from_json(r#"{"on_time_shipping":{"limit":0.9}}"#).unwrap();
    world.count_on(Source::Douyin, date(2026, 11, 11), &[("shipped_on_time", 180), ("shipped_late", 20)]).await;
    let answer = world.invoke(json!({"report":"daily"})).await;
    assert_eq!(answer["breaches"], 0, "90 % is on the threshold: healthy");
}

#[tokio::test]
async fn a_bus_failure_fails_the_invocation_after_the_report_is_stored() {
    let world = World::at(beijing(2026, 11, 12, 2, 0));
    world.count_on(Source::Douyin, date(2026, 11, 11), &[("shipped_on_time", 180), ("shipped_late", 20)]).await;
    world.bus.fail_next("down");
    let err = handle(&world.app(), json!({"report":"daily"})).await.unwrap_err();
    assert_eq!(err, ReportFailure::Publish { failed: 2, total: 2 });
    assert!(!err.to_string().contains("down"), "no internal detail in the answer: {err}");
    assert!(world.stats.report("daily", "2026-11-11").await.unwrap().is_some());
    // The retry publishes them.
    world.invoke(json!({"report":"daily"})).await;
    assert_eq!(world.published("HealthThresholdBreached").len(), 2);
}

#[tokio::test]
async fn a_callback_at_half_past_midnight_beijing_counts_on_that_beijing_day() {
    // 2026-11-11 00:30 Beijing is 2026-11-10 16:30 UTC.
    let callback = Utc.with_ymd_and_hms(2026, 11, 10, 16, 30, 0).unwrap();
    let world = World::at(beijing(2026, 11, 12, 2, 0));
    world.count_at(Source::Kuaishou, callback, &[("received", 1), ("shipped_on_time", 40)]).await;
    // And one at 23:59 Beijing on the 11th (15:59 UTC), the same Beijing day.
    world.count_at(Source::Kuaishou, beijing(2026, 11, 11, 23, 59), &[("received", 1)]).await;
    // And one at 00:00 Beijing on the 12th, the next day.
    world.count_at(Source::Kuaishou, beijing(2026, 11, 12, 0, 0), &[("received", 100)]).await;

    world.invoke(json!({"report":"daily"})).await;
    let (report, _) = world.stored("daily", "2026-11-11").await;
    let row = report.scope(Scope::Channel(Source::Kuaishou)).unwrap();
    assert_eq!(row.received, 2);
    assert_eq!(row.indicator(Indicator::OnTimeShipping).unwrap().value, Some(1.0));
    // The UTC day of the callback (the 10th) has nothing.
    world.invoke(json!({"report":"daily","day":"2026-11-10"})).await;
    assert!(!world.stored("daily", "2026-11-10").await.0.overall.has_data);

    // At 00:30 Beijing on the 12th (still the 11th in UTC) the daily report is the 11th's.
    world.clock.set(beijing(2026, 11, 12, 0, 30));
    assert_eq!(world.invoke(json!({"report":"daily"})).await["period"], "2026-11-11");
    // At 00:30 Beijing on 1 December (still November in UTC) the month re-run default is November.
    world.clock.set(beijing(2026, 12, 1, 0, 30));
    assert_eq!(world.invoke(json!({"report":"monthly"})).await["period"], "2026-11");
}

/// A channel-day's counters standing for `orders` orders.
fn day_of(orders: i64) -> Vec<(String, i64)> {
    let mut counters = vec![
        (names::RECEIVED.to_owned(), orders * 6),
        (names::SHIPPED_ON_TIME.to_owned(), orders - orders / 100),
        (names::SHIPPED_LATE.to_owned(), orders / 100),
        (names::TRUST_ASSESSED.to_owned(), orders),
        (names::TRUST_SCORE_SUM.to_owned(), orders * 94),
        (names::APP_LOGISTICS_VIEWS.to_owned(), orders * 2),
        (names::APP_CONSULTATIONS.to_owned(), orders / 5),
        (names::sync_delay_bin(30), orders * 4),
        (names::sync_delay_bin(600), orders),
    ];
    for hour in 0..24 {
        counters.push((names::received_in_hour(hour), orders / 4));
    }
    counters
}

async fn seed_month(world: &World, channels: &[Source], month: NaiveDate, orders_per_month: i64) {
    let days = i64::from(Period::month_of(month).len_days() as u32);
    let per_day = orders_per_month / (channels.len() as i64 * days);
    for channel in channels {
        for day in 0..days {
            let day = month.checked_add_days(Days::new(day as u64)).unwrap();
            let counters = day_of(per_day);
            let pairs: Vec<(&str, i64)> = counters.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            world.count_on(*channel, day, &pairs).await;
        }
    }
}

#[tokio::test]
async fn a_month_of_six_channels_reads_channels_times_months_whatever_the_volume() {
    let six = [Source::Douyin, Source::Pdd, Source::Taobao, Source::Jd, Source::Kuaishou, Source::Youzan];
    let names: Vec<&str> = six.iter().map(|s| s.as_str()).collect();
    let mut reads = Vec::new();
    for orders in [1_000, 1_000_000] {
        let world = World::at(beijing(2026, 12, 5, 3, 0));
        seed_month(&world, &six, date(2026, 11, 1), orders).await;
        let answer =
            world.invoke(json!({"report":"range","from":"2026-11-01","to":"2026-11-30","channels":names})).await;
        assert_eq!(world.stats.months(), 6, "6 channels × 1 month");
        assert_eq!(answer["counter_queries"], 6);
        let (report, _) = world.stored("range", "2026-11-01..2026-11-30#douyin+pdd+taobao+jd+kuaishou+youzan").await;
        assert_eq!(report.channels.len(), 6);
        assert_eq!(report.overall.days_with_data, 30);
        // A month across two months of the calendar: 6 × 2.
        world.invoke(json!({"report":"range","from":"2026-10-20","to":"2026-11-10","channels":names})).await;
        assert_eq!(world.stats.months(), 6 + 12);
        // The monthly report reads every sales channel once.
        world.invoke(json!({"report":"monthly"})).await;
        assert_eq!(world.stats.months(), 6 + 12 + Source::CHANNELS.len());
        reads.push(world.stats.months());
    }
    assert_eq!(reads[0], reads[1], "1 000 and 1 000 000 orders cost the same reads");
}

/// A week of Douyin traffic, 09:00–22:00 Beijing, 20 callbacks per 10-minute slot.
async fn busy_week(world: &World, before: NaiveDate) {
    for back in 1..=7 {
        let day = before.checked_sub_days(Days::new(back)).unwrap();
        let mut pairs = Vec::new();
        for hour in 9..22 {
            for minute in (0..60).step_by(10) {
                pairs.push((names::received_in_slot(hour, minute), 20));
            }
        }
        let pairs: Vec<(&str, i64)> = pairs.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        world.count_on(Source::Douyin, day, &pairs).await;
    }
}

async fn callback(world: &World, at: DateTime<Utc>) {
    let local = at.with_timezone(&Shanghai);
    use chrono::Timelike;
    world.count_at(Source::Douyin, at, &[(&names::received_in_slot(local.hour(), local.minute()), 1)]).await;
}

#[tokio::test]
async fn silence_is_raised_once_then_recovery() {
    let world = World::at(beijing(2026, 11, 11, 10, 15));
    busy_week(&world, date(2026, 11, 11)).await;
    callback(&world, beijing(2026, 11, 11, 10, 12)).await;

    // 10:15 and 10:25: a callback in the window.
    for at in [beijing(2026, 11, 11, 10, 15), beijing(2026, 11, 11, 10, 25)] {
        world.clock.set(at);
        let answer = world.invoke(json!({"report":"silence"})).await;
        assert_eq!(answer["silent"], json!([]), "{at}");
    }
    // 10:35: the 10:20 and 10:30 slots are empty.
    world.clock.set(beijing(2026, 11, 11, 10, 35));
    let answer = world.invoke(json!({"report":"silence"})).await;
    assert_eq!(answer["raised"], json!(["douyin"]));
    assert_eq!(
        world.published("ChannelSilent"),
        vec![DomainEvent::ChannelSilent {
            channel: Source::Douyin,
            silent_since: beijing(2026, 11, 11, 10, 20),
            expected_per_slot: 20.0,
        }]
    );
    let state = world.stats.report("silence-state", "douyin").await.unwrap().unwrap();
    assert!(SilenceState::from_stored(&state).unwrap().silent);

    // Still silent at 10:40 and 10:45: no second alert.
    for at in [beijing(2026, 11, 11, 10, 40), beijing(2026, 11, 11, 10, 45)] {
        world.clock.set(at);
        let answer = world.invoke(json!({"report":"silence"})).await;
        assert_eq!(answer["silent"], json!(["douyin"]));
        assert_eq!(answer["raised"], json!([]));
    }
    assert_eq!(world.published("ChannelSilent").len(), 1);

    // A callback at 10:47; the 10:50 run sees it.
    callback(&world, beijing(2026, 11, 11, 10, 47)).await;
    world.clock.set(beijing(2026, 11, 11, 10, 50));
    let answer = world.invoke(json!({"report":"silence"})).await;
    assert_eq!(answer["recovered"], json!(["douyin"]));
    assert_eq!(
        world.published("ChannelRecovered"),
        vec![DomainEvent::ChannelRecovered { channel: Source::Douyin, silent_for_minutes: 20 }]
    );
    // 10:55: quiet again but only for one slot; nothing new.
    world.clock.set(beijing(2026, 11, 11, 10, 55));
    let answer = world.invoke(json!({"report":"silence"})).await;
    assert_eq!((answer["raised"].clone(), answer["recovered"].clone()), (json!([]), json!([])));
    assert_eq!(world.bus.published().len(), 2);
    assert_eq!(answer["counter_queries"], Source::CHANNELS.len(), "the look-back stays in November");
}

#[tokio::test]
async fn a_silence_alert_that_could_not_be_published_is_raised_again() {
    let world = World::at(beijing(2026, 11, 11, 10, 35));
    busy_week(&world, date(2026, 11, 11)).await;
    callback(&world, beijing(2026, 11, 11, 10, 12)).await;
    world.bus.fail_next("down");
    assert!(handle(&world.app(), json!({"report":"silence"})).await.is_err());
    assert!(world.stats.report("silence-state", "douyin").await.unwrap().is_none(), "state not moved");
    world.clock.set(beijing(2026, 11, 11, 10, 40));
    assert_eq!(world.invoke(json!({"report":"silence"})).await["raised"], json!(["douyin"]));
    assert_eq!(world.published("ChannelSilent").len(), 1);
}

#[tokio::test]
async fn silence_across_beijing_midnight() {
    // Busy around the clock; the last callback at 23:45 Beijing on the 10th (15:45 UTC).
    let world = World::at(beijing(2026, 11, 11, 0, 5));
    for back in 1..=7 {
        let day = date(2026, 11, 11).checked_sub_days(Days::new(back)).unwrap();
        let mut pairs = Vec::new();
        for hour in 0..24 {
            for minute in (0..60).step_by(10) {
                if back == 1 && (hour, minute) >= (23, 50) {
                    continue;
                }
                pairs.push((names::received_in_slot(hour, minute), 9));
            }
        }
        let pairs: Vec<(&str, i64)> = pairs.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        world.count_on(Source::Douyin, day, &pairs).await;
    }
    let answer = world.invoke(json!({"report":"silence"})).await;
    assert_eq!(answer["raised"], json!(["douyin"]));
    assert_eq!(
        world.published("ChannelSilent")[0],
        DomainEvent::ChannelSilent {
            channel: Source::Douyin,
            silent_since: beijing(2026, 11, 10, 23, 50),
            expected_per_slot: 9.0
        }
    );
    // A callback at 00:07 Beijing (16:07 UTC on the 10th) belongs to the 11th and ends it.
    callback(&world, Utc.with_ymd_and_hms(2026, 11, 10, 16, 7, 0).unwrap()).await;
    world.clock.set(beijing(2026, 11, 11, 0, 10));
    assert_eq!(world.invoke(json!({"report":"silence"})).await["recovered"], json!(["douyin"]));
    assert_eq!(
        world.published("ChannelRecovered"),
        vec![DomainEvent::ChannelRecovered { channel: Source::Douyin, silent_for_minutes: 10 }]
    );
}

#[tokio::test]
async fn a_bad_request_is_answered_and_nothing_is_read() {
    let world = World::at(beijing(2026, 11, 12, 2, 0));
    let answer =
        world.invoke(json!({"report":"range","from":"2026-11-01","to":"2026-11-02","channels":["tmall"]})).await;
    assert_eq!(answer, json!({"error": "unknown channel `tmall`"}));
    let answer = world.invoke(json!({"Records": []})).await;
    assert!(answer["error"].as_str().unwrap().starts_with("unrecognised event"), "{answer}");
    assert_eq!(world.stats.months(), 0);
}

#[tokio::test]
async fn the_longest_range_fits_one_item() {
    let world = World::at(beijing(2026, 12, 31, 10, 0));
    let from = date(2026, 9, 1);
    let to = from.checked_add_days(Days::new(MAX_RANGE_DAYS - 1)).unwrap();
    for channel in Source::ALL {
        for day in 0..MAX_RANGE_DAYS {
            let day = from.checked_add_days(Days::new(day)).unwrap();
            let counters = day_of(4_000 + day.ordinal() as i64);
            let pairs: Vec<(&str, i64)> = counters.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            world.count_on(channel, day, &pairs).await;
        }
    }
    let all: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
    let answer = world.invoke(json!({"report":"range","from":from,"to":to,"channels":all})).await;
    let period = answer["period"].as_str().unwrap().to_owned();
    let stored = world.stats.report("range", &period).await.unwrap().unwrap();
    let bytes = stored.json.len() + stored.rendered.len();
    eprintln!(
        "92 days × 9 sources: json {} B, page {} B, fit {}",
        stored.json.len(),
        stored.rendered.len(),
        answer["fit"]
    );
    assert!(bytes <= MAX_STORED_BYTES, "{bytes}");
    assert_eq!(answer["stored_bytes"], bytes);
    // The JSON is whole: every scope keeps its daily series.
    let report: HealthReport = serde_json::from_str(&stored.json).unwrap();
    assert_eq!(report.overall.series(Indicator::TrustScore).unwrap().points.len(), 92);
    assert_eq!(answer["fit"], "whole", "the longest range of every source is stored whole");
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let base = [("ORDERHUB_STAGE", "dev"), ("ORDERS_TABLE", "o"), ("STATS_TABLE", "s"), ("EVENT_BUS_NAME", "b")];
    base.iter().chain(pairs).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn config_reads_thresholds_and_silence_minutes() {
    let config = Config::from_env(&env(&[])).unwrap();
    assert_eq!(config.thresholds, HealthThresholds::default());
    assert_eq!(config.silence.silence_minutes, 10);
    assert_eq!(config.event_bus, "b");

    let config = Config::from_env(&env(&[
        ("HEALTH_THRESHOLDS", r#"{"trust_score":{"limit":90},"self_service":{"limit":0.8,"min_sample":50}}"#),
        ("SILENCE_MINUTES", "20"),
    ]))
    .unwrap();
    assert_eq!(config.thresholds.trust_score.limit, 90.0);
    assert_eq!(config.thresholds.trust_score.min_sample, HealthThresholds::default().trust_score.min_sample);
    assert_eq!((config.thresholds.self_service.limit, config.thresholds.self_service.min_sample), (0.8, 50));
    assert_eq!(config.thresholds.on_time_shipping, HealthThresholds::default().on_time_shipping);
    assert_eq!(config.silence.silence_minutes, 20);
}

#[test]
fn malformed_config_names_the_variable() {
    for (var, value) in [
        ("HEALTH_THRESHOLDS", "{"),
        ("HEALTH_THRESHOLDS", r#"{"trust":{"limit":90}}"#),
        ("HEALTH_THRESHOLDS", r#"{"on_time_shipping":{"limit":98.5}}"#),
        ("HEALTH_THRESHOLDS", r#"{"trust_score":90}"#),
        ("HEALTH_THRESHOLDS", r#"{"trust_score":{"limit":"90"}}"#),
        ("HEALTH_THRESHOLDS", "[]"),
        ("SILENCE_MINUTES", "ten"),
        ("SILENCE_MINUTES", "0"),
        ("SILENCE_MINUTES", "2000"),
    ] {
        let err = Config::from_env(&env(&[(var, value)])).unwrap_err();
        assert!(matches!(&err, ConfigError::Malformed { var: named, .. } if *named == var), "{var}={value}: {err}");
        assert!(err.to_string().contains(var), "{err}");
    }
    let mut missing = env(&[]);
    missing.remove("EVENT_BUS_NAME");
    assert_eq!(Config::from_env(&missing).unwrap_err(), ConfigError::Missing("EVENT_BUS_NAME"));
}

#[test]
fn months_touched_by_a_period() {
    let months = months_touched(Period::new(date(2026, 10, 20), date(2027, 1, 3)));
    assert_eq!(months, vec![date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]);
    assert_eq!(months_touched(Period::day(date(2026, 11, 30))), vec![date(2026, 11, 1)]);
}

#[tokio::test]
async fn early_in_the_month_the_silence_watch_reads_last_month_too() {
    let world = World::at(beijing(2026, 12, 3, 10, 35));
    busy_week(&world, date(2026, 12, 3)).await;
    callback(&world, beijing(2026, 12, 3, 10, 12)).await;
    let answer = world.invoke(json!({"report":"silence"})).await;
    assert_eq!(answer["counter_queries"], Source::CHANNELS.len() * 2, "November and December");
    assert_eq!(answer["raised"], json!(["douyin"]), "the history in November counts");
}

#[test]
fn the_new_events_survive_the_bus() {
    let events = [
        DomainEvent::ChannelSilent {
            channel: Source::Pdd,
            silent_since: beijing(2026, 11, 11, 10, 20),
            expected_per_slot: 12.0,
        },
        DomainEvent::ChannelRecovered { channel: Source::Pdd, silent_for_minutes: 40 },
        DomainEvent::HealthThresholdBreached {
            indicator: Indicator::TrustScore,
            channel: Scope::Overall,
            value: 88.5,
            threshold: 92.0,
            period: "2026-11".into(),
            kind: ReportKind::Monthly,
        },
    ];
    for event in events {
        let detail = event.detail();
        assert_eq!(DomainEvent::from_parts(event.detail_type(), detail.clone()).unwrap(), event, "{detail}");
    }
    let event = DomainEvent::ChannelSilent {
        channel: Source::Pdd,
        silent_since: beijing(2026, 11, 11, 10, 20),
        expected_per_slot: 12.0,
    };
    let mut detail = event.detail();
    // Every event carries its stable id beside its fields (consumers dedupe on it).
    assert_eq!(detail.as_object_mut().and_then(|d| d.remove("event_id")), Some(json!(event.id())));
    assert_eq!(detail, json!({"channel":"pdd","silent_since":"2026-11-11T02:20:00Z","expected_per_slot":12.0}));
}

#[tokio::test]
async fn a_daily_report_stores_its_page_and_is_announced_with_verdicts_breaches_and_the_link() {
    let world = World::with_pages(beijing(2026, 11, 12, 2, 0));
    world.count_on(Source::Douyin, date(2026, 11, 11), &HEALTHY_DAY).await;
    // Late shipments on pdd: a breach.
    world
        .count_on(Source::Pdd, date(2026, 11, 11), &[("received", 300), ("shipped_on_time", 150), ("shipped_late", 50)])
        .await;

    let answer = world.invoke(json!({"report":"daily"})).await;
    assert_eq!(answer["page"]["key"], "reports/daily/2026-11-11.html");
    assert_eq!(answer["page"]["url"], "memory://reports/daily/2026-11-11.html");
    assert_eq!(answer["indicators"]["douyin"]["on_time_shipping"], 1.0);
    let page = world.pages.page("reports/daily/2026-11-11.html").unwrap_or_default();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("订单健康度日报") && page.contains("<svg"), "{page}");

    let ready = world.published("HealthReportReady");
    let [DomainEvent::HealthReportReady { kind, period, verdicts, breaches, url, expires_at }] = ready.as_slice()
    else {
        panic!("one announcement: {ready:?}")
    };
    assert_eq!((*kind, period.as_str()), (ReportKind::Daily, "2026-11-11"));
    assert_eq!(verdicts.get("douyin").map(String::as_str), Some("healthy"));
    assert_eq!(verdicts.get("pdd").map(String::as_str), Some("breached"));
    assert_eq!(breaches.len(), world.published("HealthThresholdBreached").len());
    assert!(
        breaches.iter().any(|b| b.indicator == Indicator::OnTimeShipping && b.channel == Scope::Channel(Source::Pdd))
    );
    assert_eq!(url, "memory://reports/daily/2026-11-11.html");
    assert_eq!(*expires_at, beijing(2026, 11, 19, 2, 0));

    // Run again (a retry): the same report keeps its announcement's id, whatever the link.
    let again = world.invoke(json!({"report":"daily"})).await;
    assert_eq!(again["period"], "2026-11-11");
    let ids: Vec<String> = world.published("HealthReportReady").iter().map(DomainEvent::id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "notify sends it once");
}

#[tokio::test]
async fn an_ops_range_gets_a_page_but_no_announcement() {
    let world = World::with_pages(beijing(2026, 12, 1, 10, 0));
    world.count_on(Source::Douyin, date(2026, 11, 1), &HEALTHY_DAY).await;
    let answer =
        world.invoke(json!({"report":"range","from":"2026-11-01","to":"2026-11-15","channels":["douyin","pdd"]})).await;
    assert_eq!(answer["page"]["key"], "reports/range/2026-11-01..2026-11-15_douyin_pdd.html");
    assert!(world.published("HealthReportReady").is_empty(), "a range answers its caller only");
}

#[tokio::test]
async fn a_page_that_cannot_be_stored_fails_the_invocation_after_the_breaches_went_out() {
    let world = World::with_pages(beijing(2026, 11, 12, 2, 0));
    world
        .count_on(Source::Pdd, date(2026, 11, 11), &[("received", 300), ("shipped_on_time", 150), ("shipped_late", 50)])
        .await;
    world.pages.fail_next("SlowDown");
    let failed = handle(&world.app(), json!({"report":"daily"})).await;
    assert!(matches!(failed, Err(ReportFailure::Store(_))), "{failed:?}");
    assert!(!world.published("HealthThresholdBreached").is_empty(), "the breaches are not held back");
    assert!(world.published("HealthReportReady").is_empty(), "nothing to link to yet");
    // The retry stores the page and announces it.
    world.invoke(json!({"report":"daily"})).await;
    assert_eq!(world.published("HealthReportReady").len(), 1);
}
