//! The in-process soak (issue 12, "the proof"): a generated sales day, every callback delivered
//! three times — one copy overlapping the first in flight —, shuffled, at most 50 requests in
//! flight, through the real functions (`webhook_verify::handle`, status-normalize's,
//! signin-trust-check's and refund-dual-check's handlers) over the in-memory ports with faults
//! injected into every one of them (`domain::testing::faults`), simulated SQS and event bus,
//! schedules from `infra/template.yaml`, all on a paused tokio clock (virtual time). Then the
//! oracle (`tests::soak::oracle`).
//!
//! Size and faults from the environment: `SOAK_CALLBACKS` (default 1500), `SOAK_SEED` (12),
//! `SOAK_FAULTS` (`kind=rate,…` per call, kinds `before after conflict throttle delay hang
//! hang_after partial`; default below), `SOAK_DUPLICATES` (SQS duplicate deliveries, 0.02),
//! `SOAK_CONCURRENCY` (50). `scripts/bench.sh soak` runs it at 10 000.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use domain::app::announce::Announce;
use domain::app::apply::{ApplyChange, WritePorts};
use domain::app::apply_message::ApplyMessage;
use domain::app::dead_letters::DeadLetterOps;
use domain::app::intake::Intake;
use domain::app::order_lines::PlatformLines;
use domain::app::refund_check::{RefundCheck, RefundRules};
use domain::app::sign_check::{Notice, SignCheck};
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules};
use domain::ports::platform::PlatformQuery;
use domain::ports::pull::TokenRefresh;
use domain::ports::secrets::SecretCache;
use domain::rules::sign_trust::TrustRules;
use domain::rules::timing::Rules;
use domain::testing::faults::{Fault, FaultPlan, Faults, Faulty};
use domain::testing::memory::{MemoryInbox, MemorySecrets, MemoryStore, MemorySync};
use tests::soak::day::{self, DayPlan, STAGE};
use tests::soak::lambdas::Lambdas;
use tests::soak::oracle::{self, Evidence, Stores};
use tests::soak::run::{self, Timing};
use tests::soak::sim::{FakeDouyin, RuleBus, SimQueue, SoakClock};
use tests::soak::{env, summary};

/// The default fault rates, per call of every port.
const DEFAULT_FAULTS: &str =
    "before=0.01,after=0.01,conflict=0.01,throttle=0.01,delay=0.005,hang=0.002,hang_after=0.002,partial=0.02";

fn plan(seed: u64) -> FaultPlan {
    let spec = std::env::var("SOAK_FAULTS").unwrap_or_else(|_| DEFAULT_FAULTS.to_owned());
    let mut plan =
        FaultPlan::new(seed).latency(Duration::from_millis(2), Duration::from_millis(25)).delay(Duration::from_secs(3));
    for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (kind, rate) = part.split_once('=').unwrap_or_else(|| panic!("SOAK_FAULTS: `{part}` is not kind=rate"));
        let kind = Fault::parse(kind.trim()).unwrap_or_else(|| panic!("SOAK_FAULTS: unknown kind `{kind}`"));
        plan = plan.rate("*", kind, rate.trim().parse().unwrap_or_else(|_| panic!("SOAK_FAULTS: rate of `{part}`")));
    }
    plan
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_sales_day_under_faults_loses_nothing_and_applies_nothing_twice() {
    let wall = Instant::now();
    let seed: u64 = env("SOAK_SEED", 12);
    // The write path's retry jitter from the seed too: a run replays exactly.
    domain::app::failure::seed_jitter(seed);
    let callbacks: usize = env("SOAK_CALLBACKS", 1500);
    // 11.11, 00:00 in Beijing.
    let start = Utc.with_ymd_and_hms(2026, 11, 10, 16, 0, 0).single().unwrap();
    let day = day::generate(&DayPlan::sales_day(seed, callbacks, start));
    let template = run::template();

    let clock = SoakClock::new(start);
    let faults = Faults::new(plan(seed));
    let store = MemoryStore::default();
    let inbox = MemoryInbox::default();
    let secrets = MemorySecrets::default();
    day::install_secrets(&secrets, start).await;
    let duplicates: f64 = env("SOAK_DUPLICATES", 0.02);
    let inbound = SimQueue::new("inbound", template.visibility, template.max_receives, duplicates, seed ^ 1);
    let trust_queue = SimQueue::new("trust", template.visibility, template.max_receives, duplicates, seed ^ 2);
    let notify = SimQueue::new("notify", template.visibility, template.max_receives, 0.0, seed ^ 3);

    let f_store = Faulty::new(&store, &faults);
    let f_inbox = Faulty::new(&inbox, &faults);
    let f_inbound = Faulty::named(&inbound, &faults, "inbound");
    let dead_letters = inbound.dead_letter_port();
    let f_dead_letters = Faulty::named(&dead_letters, &faults, "dlq");
    let f_notify = Faulty::named(&notify, &faults, "notify");
    let bus = RuleBus::new(None, &trust_queue);
    let f_bus = Faulty::new(&bus, &faults);
    let announce = Announce { bus: &f_bus, orders: &f_store };
    let cache = SecretCache::new(&secrets, &clock, STAGE, chrono::Duration::minutes(2));

    let rules = Rules::default();
    let ports = WritePorts {
        orders: &f_store,
        inventory: &f_store,
        stats: &f_store,
        signals: &f_store,
        inbox: &f_inbox,
        clock: &clock,
    };
    let write = ApplyChange::new(ports, &rules);
    let intake = Intake {
        inbox: &f_inbox,
        queue: &f_inbound,
        events: &f_bus,
        stats: &f_store,
        secrets: &cache,
        clock: &clock,
        quarantine_quota_per_hour: 1000,
        lease: chrono::Duration::seconds(60),
        budget: Duration::from_millis(4000),
        shards: rules.shards,
    };
    // The ops events on dead letters are not what the soak drives (its simulated queues redrive).
    let ops_letters = domain::testing::notify::MemoryDeadLetters::default();
    // Douyin's query API rate-limits every call (HTTP 429) from 02:00 to 04:00, and revokes the
    // first access token at 06:00.
    let douyin = FakeDouyin::new(
        &day.truth,
        &clock,
        (start + chrono::Duration::hours(2), start + chrono::Duration::hours(4)),
        start + chrono::Duration::hours(6),
    );
    let platforms: [&dyn PlatformQuery; 1] = [&douyin];
    // The shops' tokens: each function its own keeper (its own cache and name), over one token
    // ledger (faults injected like every port) and the parameters; Douyin's tokens start in its
    // webhook secret (the old layout) and move to their own parameter at the first refresh.
    let sync = MemorySync::default();
    let f_sync = Faulty::new(&sync, &faults);
    let refreshers: [&dyn TokenRefresh; 1] = [&douyin];
    let token_ports =
        TokenPorts { ledger: &f_sync, params: &secrets, secrets: &cache, refreshers: &refreshers, clock: &clock };
    let token_rules = TokenRules { refresh_before: chrono::Duration::minutes(30), ..TokenRules::default() };
    let normalize_tokens = TokenKeeper::new(token_ports, STAGE, token_rules.clone(), "status-normalize");
    let refund_tokens = TokenKeeper::new(token_ports, STAGE, token_rules, "refund-dual-check");
    // A paid Douyin order's lines come from the order detail API (its outages hold them; an
    // expired token is refreshed through the keeper).
    let platform_lines = PlatformLines { platforms: &platforms, tokens: &normalize_tokens };
    let normalize = status_normalize::Handler {
        messages: ApplyMessage::new(write).with_lines(&platform_lines),
        events: &announce,
        dead_letter: &f_dead_letters,
        stats: &f_store,
        letters: DeadLetterOps { dead_letters: &ops_letters, source: &f_inbound },
    };
    let trust_rules = TrustRules::default();
    let trust = signin_trust_check::Handler {
        checker: SignCheck { write, signals: &f_store, notify: &f_notify, rules: &trust_rules },
        events: &announce,
        letters: DeadLetterOps { dead_letters: &ops_letters, source: &f_inbound },
    };
    let refund_rules = RefundRules::default();
    let refunds = refund_dual_check::Handler {
        checker: RefundCheck { write, platforms: &platforms, tokens: &refund_tokens, rules: &refund_rules },
        events: &announce,
        release_concurrency: 16,
    };
    let functions = Lambdas {
        intake: &intake,
        clock: &clock,
        normalize: &normalize,
        trust: &trust,
        refunds: &refunds,
        outbox: None,
    };
    // WeChat Pay's notify schedule (15/15/30/180/1800/1800/1800/1800/3600 s, as quoted in
    // public pages, e.g. https://www.q58.club/t/topic/446; unconfirmed against WeChat's own
    // page): the sender every platform here is modelled on.
    let secs = Duration::from_secs;
    let timing = Timing {
        retry_schedule: vec![
            secs(15),
            secs(15),
            secs(30),
            secs(180),
            secs(1800),
            secs(1800),
            secs(1800),
            secs(1800),
            secs(3600),
        ],
        overlap: Duration::from_millis(40),
        third_within: secs(600),
        concurrency: env("SOAK_CONCURRENCY", 50),
        pollers: 5,
        poll_wait: secs(20),
        margin: secs(3),
        schedule_scale: 1,
        settle: secs(3 * 3600),
    };

    let record = run::run(
        &day,
        &functions,
        &inbound,
        &trust_queue,
        &clock,
        &timing,
        &template,
        &|on| faults.set_enabled(on),
        seed,
    )
    .await;

    use domain::ports::clock::Clock;
    let notices: Vec<Notice> = notify.sent().iter().filter_map(|m| serde_json::from_str(&m.body).ok()).collect();
    let published = bus.published();
    let verdict = oracle::check(&Evidence {
        day: &day,
        record: &record,
        stores: Stores { orders: &store, inventory: &store, stats: &store, signals: &store, inbox: &inbox },
        published: &published,
        notices: &notices,
        rules: &rules,
        trust_threshold: trust_rules.threshold,
        span: (start, clock.now()),
    })
    .await;
    let by_kind: BTreeMap<String, u64> =
        faults.by_kind().into_iter().map(|(kind, n)| (kind.name().to_owned(), n)).collect();
    println!("{}", summary("in-process", &day, &record, &verdict, &by_kind, wall.elapsed(), seed));
    println!(
        "soak[in-process] orders={} history_entries={} events_published={} (distinct {}) notices={} statuses={:?} invocations={:?} killed={:?} errors={:?} inbound={:?} trust={:?} douyin_api={:?}",
        verdict.sizes.0,
        verdict.sizes.1,
        verdict.sizes.3,
        verdict.sizes.2,
        notices.len(),
        record.statuses,
        record.invocations,
        record.killed,
        record.errors,
        inbound.stats(),
        trust_queue.stats(),
        douyin.calls(),
    );
    if !verdict.findings.is_empty() {
        println!("{}", verdict.report());
    }
    if std::env::var("SOAK_TRACE").is_ok() {
        for token in store.counted_once().iter().filter(|t| t.starts_with("sla#")) {
            let announced = published.iter().any(|e| match e {
                domain::model::domain_event::DomainEvent::SlaBreached { key, state, since, .. } => {
                    *token == format!("sla#{key}#{state}#{}", since.timestamp_millis())
                }
                _ => false,
            });
            if !announced {
                println!("trace: breach counted, never announced: {token}");
            }
        }
    }
    // SOAK_TRACE=<part of an order key>: that order's history, stock and published events.
    if let Ok(trace) = std::env::var("SOAK_TRACE") {
        use domain::ports::{InventoryStore, OrderStore};
        for key in day.truth.orders.iter().filter(|k| k.to_string().contains(&trace)) {
            println!("trace {key}: {:?}", store.get(key).await.ok().flatten());
            for entry in store.history(key, None, 200).await.map(|p| p.items).unwrap_or_default() {
                println!("  history {entry:?}");
            }
            println!("  stock {:?}", store.reservations(key).await.unwrap_or_default());
            for event in published.iter().filter(|e| e.order() == Some(key)) {
                println!("  published {} {}", event.detail_type(), event.detail());
            }
        }
    }
    for (body, attributes) in inbound.dead().iter().chain(trust_queue.dead().iter()).take(5) {
        println!("  dead letter: {attributes:?} {}", body.chars().take(200).collect::<String>());
    }
    assert!(verdict.holds(), "the soak's promises did not hold (seed {seed}, {callbacks} callbacks); see above");
}
