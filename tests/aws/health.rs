//! health-report against the local stack: a month of counters standing for a million orders
//! over 6 channels, written with `Stats::add` through `DynamoStore`, then the monthly
//! schedule's invocation through the function's library on `DynamoStore` and `BusPublisher`.
//! The report must be stored, and cost one `Query` per channel and month touched.
//!
//! What a month costs to read does not depend on the orders: a channel-month is one partition of
//! at most days × shards items, each holding one number per counter name. The seed therefore
//! writes the counters the report reads, one item per channel-day (a `COUNTER_SHARDS=1`
//! layout), with values for a million orders: moto parses each `ADD` clause in Python at
//! 1–3 ms a clause, so the ~360 000 clauses of the full 8-shard layout would take minutes.
//! `a_channel_month_costs_the_same_query_pages_whatever_the_volume` checks, with DynamoDB's item
//! size rules, that the full layout (8 shards, every counter the writers bump) takes at most two
//! 1 MB query pages at any volume (one at 4 shards).
//!
//! The stats table is shared by every test, and moto deep-copies a whole table for every
//! `TransactWriteItems` that touches it, which races with any concurrent write to that table.
//! So the month is written to a scratch table created with the live stats table's keys
//! (deleted at the end), in a far month unique to the process.

use std::collections::BTreeMap;
use std::time::Instant;

use adapters::DynamoStats;
use chrono::{Datelike, Days, Duration, Months, NaiveDate};
use domain::Lifecycle;
use domain::Source;
use domain::app::health_report::HealthReporting;
use domain::model::counters::{CounterAdd, names};
use domain::model::time::day_start;
use domain::ports::Stats;
use domain::rules::health::{HealthReport, HealthThresholds, HealthVerdict, Indicator, Period, Scope, SilenceRules};
use domain::testing::clock::FixedClock;
use serde_json::json;
use tests::stack::{self, clients};

const SIX: [Source; 6] = [Source::Douyin, Source::Pdd, Source::Taobao, Source::Jd, Source::Kuaishou, Source::Youzan];
const ORDERS: i64 = 1_000_000;
/// A DynamoDB query page.
const PAGE_BYTES: usize = 1024 * 1024;

/// The counters the report reads, for one channel-day of `orders` orders.
fn report_counters(orders: i64) -> Vec<(String, i64)> {
    vec![
        (names::RECEIVED.into(), orders * 6),
        (names::sync_delay_bin(60), orders * 3),
        (names::sync_delay_bin(300), orders),
        (names::sync_delay_bin(900), orders / 2),
        (names::sync_delay_bin(3600), orders / 10),
        (names::SHIPPED_ON_TIME.into(), orders - orders / 200),
        (names::SHIPPED_LATE.into(), orders / 200),
        (names::TRUST_ASSESSED.into(), orders),
        (names::TRUST_SCORE_SUM.into(), orders * 95),
        (names::STOCK_RELEASE_DUE.into(), orders / 40),
        (names::STOCK_RELEASED.into(), orders / 40),
        (names::STOCK_RELEASED_ON_TIME.into(), orders / 40),
        (names::APP_LOGISTICS_VIEWS.into(), orders * 2),
        (names::APP_CONSULTATIONS.into(), orders / 5),
        (names::QUARANTINED.into(), 3),
        (names::OPS_CALLS.into(), 1),
        (names::transition_count(Lifecycle::Paid, Lifecycle::WarehouseAccepted), orders),
        (names::transition_seconds(Lifecycle::Paid, Lifecycle::WarehouseAccepted), orders * 1800),
    ]
}

/// Every counter a writer bumps on one channel-day-shard, for `orders` orders of that shard.
fn shard_counters(orders: i64) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = vec![
        (names::RECEIVED.into(), orders * 6),
        (names::APPLIED.into(), orders * 5),
        (names::STALE.into(), orders / 50),
        (names::DUPLICATE.into(), orders / 20),
        (names::REFUSED.into(), 1),
        (names::UNMAPPED.into(), 1),
        (names::NOTED.into(), orders / 10),
        (names::SYNC_DELAY_COUNT.into(), orders * 5),
        (names::SYNC_DELAY_SUM_S.into(), orders * 5 * 240),
        (names::SHIPPED_ON_TIME.into(), orders - orders / 200),
        (names::SHIPPED_LATE.into(), orders / 200),
        (names::SHIPPED_NO_PROMISE.into(), 2),
        (names::REFUND_SUCCEEDED.into(), orders / 20),
        (names::REFUND_FOUND_BY_POLL.into(), 1),
        (names::STOCK_RELEASE_DUE.into(), orders / 40),
        (names::STOCK_RELEASED.into(), orders / 40),
        (names::STOCK_RELEASED_ON_TIME.into(), orders / 40),
        (names::STOCK_RELEASE_DELAY_SUM_S.into(), orders / 40 * 90),
        (names::TRUST_ASSESSED.into(), orders),
        (names::TRUST_SCORE_SUM.into(), orders * 95),
        (names::SIGN_DOWNGRADED.into(), orders / 100),
        (names::APP_LOGISTICS_VIEWS.into(), orders * 2),
        (names::APP_CONSULTATIONS.into(), orders / 5),
        (names::WEBHOOK_REJECTED.into(), 2),
        (names::QUARANTINED.into(), 2),
        (names::OPS_CALLS.into(), 1),
        (names::SLA_BREACHED.into(), 1),
    ];
    for (i, bound) in names::SYNC_DELAY_BOUNDS_S.into_iter().enumerate() {
        out.push((names::sync_delay_bin(bound), orders * 5 / (i as i64 + 2)));
    }
    out.push((names::sync_delay_bin(i64::MAX), 1));
    for hour in 0..24 {
        out.push((names::received_in_hour(hour), orders / 4));
        for minute in (0..60).step_by(10) {
            out.push((names::received_in_slot(hour, minute), orders / 24));
        }
    }
    for from in Lifecycle::ALL {
        for to in Lifecycle::ALL {
            if from.move_to(to).is_some() {
                out.push((names::transition_count(from, to), orders / 4));
                out.push((names::transition_seconds(from, to), orders / 4 * 3600));
            }
        }
    }
    out
}

/// Writes the month's counters, one `Stats::add` (one `UpdateItem … ADD`) per channel-day.
/// Returns the calls made and the orders and callbacks (`received`) they stand for.
async fn seed(store: &DynamoStats, month: NaiveDate) -> (usize, i64, i64) {
    let days = Period::month_of(month).len_days();
    let per_day = ORDERS / (SIX.len() as i64 * days as i64);
    let mut calls = 0;
    for channel in SIX {
        for offset in 0..days {
            let day = month.checked_add_days(Days::new(offset)).unwrap();
            let adds: Vec<CounterAdd> = report_counters(per_day)
                .into_iter()
                .map(|(name, mut by)| {
                    // One stuck stock line on Douyin on the 7th: a refund-release breach.
                    if channel == Source::Douyin && offset == 6 && name == names::STOCK_RELEASE_DUE {
                        by += 1;
                    }
                    CounterAdd { channel, day, shard: 0, name, by }
                })
                .collect();
            store.add(&adds).await.unwrap();
            calls += 1;
        }
    }
    let orders = per_day * SIX.len() as i64 * days as i64;
    (calls, orders, orders * 6)
}

/// DynamoDB's size of a number: one byte per two significant digits, plus one.
fn number_bytes(value: i64) -> usize {
    let digits = value.unsigned_abs().to_string();
    digits.trim_end_matches('0').len().max(1).div_ceil(2) + 1
}

/// DynamoDB's size of one channel-month in the full layout: `days` × `shards` items, each with
/// every counter the writers bump, for `orders` orders a month on the channel.
fn channel_month_bytes(orders: i64, days: i64, shards: i64) -> usize {
    let counters = shard_counters((orders / (days * shards)).max(1));
    let item: usize = "pk".len()
        + "D#kuaishou#2026-11".len()
        + "sk".len()
        + "31#007".len()
        + counters.iter().map(|(name, value)| "c_".len() + name.len() + number_bytes(*value)).sum::<usize>();
    item * (days * shards) as usize
}

#[test]
fn a_channel_month_costs_the_same_query_pages_whatever_the_volume() {
    // Every counter present in every shard of every day: the most a channel-month can weigh.
    // Only the numbers' digits grow with volume (half a byte per digit), never the item count.
    let pages = |bytes: usize| bytes.div_ceil(PAGE_BYTES);
    let sizes: Vec<(i64, usize)> = [1_000, 1_000_000, 100_000_000]
        .into_iter()
        .map(|orders| (orders, channel_month_bytes(orders, 31, 8)))
        .collect();
    for (orders, bytes) in &sizes {
        eprintln!(
            "full layout, 31 days × 8 shards × {} counters, {orders} orders: {bytes} B = {} query page(s)",
            shard_counters(1).len(),
            pages(*bytes)
        );
    }
    assert!(sizes.iter().all(|(_, bytes)| pages(*bytes) == pages(sizes[0].1)), "{sizes:?}");
    assert!(pages(sizes[2].1) <= 2, "{sizes:?}");
    // With 4 shards the busiest month is one page.
    assert_eq!(pages(channel_month_bytes(100_000_000, 31, 4)), 1);
}

/// A table with the live stats table's keys, for this test alone.
async fn scratch_stats_table(clients: &adapters::Clients, name: &str) {
    let live = clients.dynamodb.describe_table().table_name(stack::var("STATS_TABLE")).send().await.unwrap();
    let live = live.table.unwrap();
    clients
        .dynamodb
        .create_table()
        .table_name(name)
        .set_key_schema(Some(live.key_schema().to_vec()))
        .set_attribute_definitions(Some(live.attribute_definitions().to_vec()))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// A month nobody else writes: a far year from the process id.
fn unique_month() -> NaiveDate {
    let pid = std::process::id();
    NaiveDate::from_ymd_opt(2200 + (pid % 700) as i32, 1 + (pid / 700) % 12, 1).unwrap()
}

fn reads(counts: &BTreeMap<String, u64>) -> u64 {
    ["DynamoDB.Query", "DynamoDB.GetItem", "DynamoDB.BatchGetItem", "DynamoDB.Scan"]
        .iter()
        .map(|op| counts.get(*op).copied().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn a_million_orders_month_costs_one_query_per_channel_month_and_counter_shard() {
    let clients = clients().await;
    let table = stack::namespace("health-stats");
    scratch_stats_table(&clients, &table).await;
    let store = DynamoStats::new(clients.dynamodb.clone(), &table);
    let bus = adapters::BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME"));
    let month = unique_month();
    let label = format!("{:04}-{:02}", month.year(), month.month());

    let started = Instant::now();
    let (adds, orders, received) = seed(&store, month).await;
    eprintln!(
        "seeded {label}: {orders} orders, {} channels × {} days × {} counters, {adds} Stats::add calls in {:?}",
        SIX.len(),
        Period::month_of(month).len_days(),
        report_counters(1).len(),
        started.elapsed()
    );

    // The monthly schedule fires on the 5th of the next month, 03:00 Beijing.
    let next = month.checked_add_months(Months::new(1)).unwrap();
    let fifth = day_start(next.with_day(5).unwrap()) + Duration::hours(3);
    let clock = FixedClock::new(fifth);
    let (thresholds, silence) = (HealthThresholds::default(), SilenceRules::default());
    let app = HealthReporting {
        stats: &store,
        events: &bus,
        clock: &clock,
        thresholds: &thresholds,
        silence: &silence,
        pages: None,
    };

    clients.requests.take();
    clients.requests.take_operations();
    let started = Instant::now();
    let answer = health_report::handle(&app, json!({"report":"monthly"})).await.unwrap();
    let elapsed = started.elapsed();
    let sent = clients.requests.take();
    tests::policy::assert_granted("HealthReportFunction", &sent);
    // The calls asked for (a retried attempt under the suite's load counts once).
    let counts = clients.requests.take_operations();
    let months = 1;
    eprintln!(
        "monthly report of {ORDERS} orders ({} channels read, {months} month): {:?} end to end, build {} ms \
         (reading {} ms), {} DynamoDB reads, requests {counts:?}, stored {} bytes",
        Source::CHANNELS.len(),
        elapsed,
        answer["build_ms"],
        answer["read_ms"],
        reads(&counts),
        answer["stored_bytes"]
    );
    assert_eq!(answer["period"], label.as_str(), "{answer}");
    // The counters' partitions are sharded (16 by default) so a channel's peak writes spread:
    // the report pays with one Query per channel, month and shard, whatever the orders.
    let shards = usize::from(domain::model::counters::DEFAULT_SHARDS);
    let queries = (Source::CHANNELS.len() * months * shards) as u64;
    assert_eq!(reads(&counts), queries, "one Query per channel, month and shard: {counts:?}");
    assert_eq!(counts.get("DynamoDB.Query").copied(), Some(queries));
    assert_eq!(counts.get("DynamoDB.PutItem").copied(), Some(1), "the report, once");
    let breaches = answer["breaches"].as_u64().unwrap();
    assert_eq!(breaches, 2, "refund stock release: Douyin and overall: {answer}");
    assert_eq!(counts.get("EventBridge.PutEvents").copied(), Some(1), "breaches in one batch");
    // The target is under 2 s; the bound leaves room for a loaded 2-core machine.
    assert!(elapsed.as_secs_f64() < 5.0, "report took {elapsed:?}");

    let stored = store.report("monthly", &label).await.unwrap().expect("stored");
    let report: HealthReport = serde_json::from_str(&stored.json).unwrap();
    assert_eq!(report.overall.received, received as u64);
    assert_eq!(report.overall.days_with_data, Period::month_of(month).len_days() as u32);
    let with_data: Vec<Scope> = report.channels.iter().filter(|row| row.has_data).map(|row| row.scope).collect();
    assert_eq!(with_data, SIX.iter().map(|s| Scope::Channel(*s)).collect::<Vec<_>>());
    let release =
        report.scope(Scope::Channel(Source::Douyin)).unwrap().indicator(Indicator::RefundStockRelease).unwrap();
    assert_eq!(release.verdict, HealthVerdict::Breached);
    assert!(report.monthly.is_some());
    assert!(stored.rendered.contains("订单健康度月报"), "the page is stored");
    assert_eq!(answer["verdicts"]["app"], "no_data");
    assert_eq!(answer["verdicts"]["douyin"], "breached");

    // An ops range over the six channels that runs into the next month: 6 × 2 × shards queries.
    clients.requests.take();
    clients.requests.take_operations();
    let from = month.checked_add_days(Days::new(20)).unwrap();
    let to = next.checked_add_days(Days::new(2)).unwrap();
    let channels: Vec<&str> = SIX.iter().map(|s| s.as_str()).collect();
    let started = Instant::now();
    let answer =
        health_report::handle(&app, json!({"report":"range","from":from,"to":to,"channels":channels})).await.unwrap();
    let counts = clients.requests.take();
    // Asked for, not sent: under the suite's load an attempt can pass the SDK's attempt timeout
    // on the serialising emulator and be retried (AWS bills those; the design is the asking).
    let asked = clients.requests.take_operations();
    tests::policy::assert_granted("HealthReportFunction", &counts);
    eprintln!(
        "range {from}..{to} over 6 channels: {:?}, build {} ms, {} DynamoDB reads ({} sent)",
        started.elapsed(),
        answer["build_ms"],
        reads(&asked),
        reads(&counts)
    );
    assert_eq!(reads(&asked), 6 * 2 * u64::from(domain::model::counters::DEFAULT_SHARDS), "{asked:?}");
    let period = answer["period"].as_str().unwrap();
    assert!(store.report("range", period).await.unwrap().is_some(), "{period}");

    clients.dynamodb.delete_table().table_name(&table).send().await.unwrap();
}

/// The daily report's HTML page goes to the stack's report bucket; its presigned link opens it
/// with no credentials; the announcement carries that link; and every AWS call made is one
/// health-report's policy grants (s3:PutObject; the link is authorised as s3:GetObject).
#[tokio::test]
async fn the_daily_page_is_stored_in_the_bucket_and_its_presigned_link_opens_it() {
    use adapters::pages::S3Pages;
    use domain::model::domain_event::DomainEvent;
    use domain::testing::memory::MemoryPublisher;

    let clients = clients().await;
    let stats = DynamoStats::new(clients.dynamodb.clone(), stack::var("STATS_TABLE"));
    let bus = MemoryPublisher::default();
    let pages = S3Pages::new(clients.s3(), &stack::var("REPORT_BUCKET"), std::time::Duration::from_secs(7 * 24 * 3600));
    // 02:00 Beijing on a day of its own: yesterday's report (no counters: every channel 无数据).
    let today = NaiveDate::from_ymd_opt(2031, 3, 1).unwrap() + Days::new(u64::from(std::process::id() % 300));
    let clock = FixedClock::new(day_start(today) + Duration::hours(2));
    let (thresholds, silence) = (HealthThresholds::default(), SilenceRules::default());
    let app = HealthReporting {
        stats: &stats,
        events: &bus,
        clock: &clock,
        thresholds: &thresholds,
        silence: &silence,
        pages: Some(&pages),
    };

    clients.requests.take();
    let answer = health_report::handle(&app, json!({"report":"daily"})).await.unwrap();
    let counts = clients.requests.take();
    tests::policy::assert_granted("HealthReportFunction", &counts);
    assert_eq!(counts.get("S3.PutObject"), Some(&1), "{counts:?}");

    let yesterday = today.pred_opt().unwrap();
    assert_eq!(answer["page"]["key"], format!("reports/daily/{yesterday}.html"));
    let url = answer["page"]["url"].as_str().unwrap();
    for part in ["X-Amz-Signature=", "X-Amz-Expires=604800", &format!("/reports/daily/{yesterday}.html")] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains("订单健康度日报") && page.contains("无数据"), "{page}");
    assert_eq!(page.matches("<svg").count(), Indicator::ALL.len());

    let ready: Vec<DomainEvent> =
        bus.published().into_iter().filter(|e| e.detail_type() == "HealthReportReady").collect();
    let [DomainEvent::HealthReportReady { url: announced, period, .. }] = ready.as_slice() else {
        panic!("announced once: {ready:?}")
    };
    assert_eq!((announced.as_str(), period.as_str()), (url, yesterday.to_string().as_str()));
}
