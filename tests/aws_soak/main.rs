//! The soak against the real SDK on the local stack: the same day, senders, schedules and oracle
//! as the in-process soak (`tests/soak`), with the AWS adapters — `DynamoTables` over private
//! copies of the stack's tables, `SqsQueue` over scratch queues with their redrive policies,
//! `BusPublisher` on a scratch bus — built over `adapters::faults` (throttling errors, 500s,
//! forward-then-drop, transaction conflicts, SQS and PutEvents partial failures, hangs cut by
//! the SDK's attempt timeout). The harness's own reads and the SQS event sources use plain
//! clients: AWS's own pollers are not what is under test.
//!
//! Real time on a compressed day: every duration of the in-process day (a minute a unit, SLA
//! limits, refund and trust re-checks, schedules, the sender's retries) is divided by
//! [`SCALE`]; the functions' timeouts, the door's budget and the SDK's limits stay real.
//! `SOAK_AWS_CALLBACKS` (default 150), `SOAK_AWS_CONCURRENCY` (20), `SOAK_SEED` (12).
//! `scripts/bench.sh soak` runs it at 1 000.
//!
//! Its own test binary, so that cargo runs it after the `aws` suite and not beside it: the day's
//! load on moto would slow the other tests past their SDK timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;

use adapters::faults::{FaultClient, FaultKind, FaultPlan, SdkLimits, sdk_config};
use adapters::{BusPublisher, Clients, DynamoSync, DynamoTables, SqsQueue};
use domain::app::announce::Announce;
use domain::app::apply::ApplyChange;
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
use domain::rules::timing::{Rules, SlaRules};
use domain::testing::memory::MemorySecrets;
use tests::soak::day::{self, DayPlan, STAGE};
use tests::soak::lambdas::{Lambdas, OutboxSweep};
use tests::soak::oracle::{self, Evidence, Stores};
use tests::soak::run::{self, Timing};
use tests::soak::sim::{EventSource, FakeDouyin, RuleBus, SoakClock};
use tests::soak::{env, summary};
use tests::stack::{self, namespace};

/// How much faster than the in-process day this one runs.
const SCALE: i32 = 360;

fn scaled(d: chrono::Duration) -> chrono::Duration {
    d / SCALE
}

/// A scratch queue with a dead-letter queue and the template's `maxReceiveCount`, as the
/// Lambda event source mapping sees it.
struct SqsSource {
    client: aws_sdk_sqs::Client,
    url: String,
    dlq: String,
}

impl SqsSource {
    async fn create(client: &aws_sdk_sqs::Client, name: &str, visibility_s: u32, max_receives: u32) -> Self {
        let dlq = stack::scratch_queue(&Clients::from_env().await, &format!("{name}-dlq")).await;
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap();
        let redrive = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives}).to_string();
        let url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.to_string())
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Self { client: client.clone(), url, dlq }
    }

    async fn count(&self, url: &str) -> usize {
        let Ok(out) = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
        else {
            return usize::MAX;
        };
        let attrs = out.attributes().cloned().unwrap_or_default();
        [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
            .iter()
            .map(|a| attrs.get(a).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0))
            .sum()
    }

    async fn drain(&self, url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let Ok(out) = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
            else {
                break;
            };
            if out.messages().is_empty() {
                break;
            }
            for message in out.messages() {
                if let Some(handle) = message.receipt_handle() {
                    let _ = self.client.delete_message().queue_url(url).receipt_handle(handle).send().await;
                }
                bodies.extend(message.body().map(str::to_owned));
            }
        }
        bodies
    }
}

#[async_trait(?Send)]
impl EventSource for SqsSource {
    async fn receive(&self, max: usize, wait: Duration) -> Vec<SqsMessage> {
        let wait_s = i32::try_from(wait.as_secs().clamp(0, 20)).unwrap_or(1);
        let Ok(out) = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(wait_s)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
        else {
            tokio::time::sleep(wait).await;
            return Vec::new();
        };
        out.messages()
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id().map(str::to_owned);
                record.receipt_handle = m.receipt_handle().map(str::to_owned);
                record.body = m.body().map(str::to_owned);
                if let Some(count) =
                    m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                {
                    record.attributes.insert("ApproximateReceiveCount".into(), count.clone());
                }
                record.event_source = Some("aws:sqs".into());
                record
            })
            .collect()
    }

    async fn delete(&self, receipt: &str) {
        let _ = self.client.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await;
    }

    async fn depth(&self) -> usize {
        self.count(&self.url).await
    }

    async fn dead_letters(&self) -> usize {
        self.count(&self.dlq).await
    }

    async fn redrive(&self) -> usize {
        let bodies = self.drain(&self.dlq).await;
        for body in &bodies {
            let _ = self.client.send_message().queue_url(&self.url).message_body(body).send().await;
        }
        bodies.len()
    }
}

/// The faults: about 1 % of requests each throttled, failed with a 500, applied with their
/// answer lost (forward-then-drop), failed before sending; transaction conflicts, partial
/// failures of SQS and PutEvents batches; a few hangs (ended by the SDK's attempt timeout).
fn fault_plan(seed: u64) -> FaultPlan {
    FaultPlan::new(seed)
        .rate("*", FaultKind::FailBeforeSend, 0.01)
        .rate("*", FaultKind::DropResponse, 0.01)
        .rate("*", FaultKind::Throttle, 0.01)
        .rate("*", FaultKind::ServerError, 0.01)
        .rate("*", FaultKind::TransactionConflict, 0.02)
        .rate("*", FaultKind::Delay, 0.005)
        .rate("*", FaultKind::Hang, 0.001)
        .rate("*", FaultKind::HangAfterApply, 0.001)
        .rate("*", FaultKind::PartialFailure, 0.05)
        .delay(Duration::from_millis(300))
}

#[tokio::test]
async fn a_compressed_sales_day_on_the_local_stack_loses_nothing_and_applies_nothing_twice() {
    let wall = Instant::now();
    let seed: u64 = env("SOAK_SEED", 12);
    let callbacks: usize = env("SOAK_AWS_CALLBACKS", 150);
    domain::app::failure::seed_jitter(seed);
    let plain = stack::clients().await;
    let ns = namespace("soak");
    let orders_table = stack::private_table(&plain, "ORDERS_TABLE", &ns).await;
    let stats_table = stack::private_table(&plain, "STATS_TABLE", &ns).await;
    let inbox_table = stack::private_table(&plain, "INBOX_TABLE", &ns).await;
    let sync_table = stack::private_table(&plain, "SYNC_TABLE", &ns).await;
    let template = run::template();
    let inbound = SqsSource::create(&plain.sqs, &format!("{ns}-inbound"), 2, template.max_receives).await;
    let trust_source = SqsSource::create(&plain.sqs, &format!("{ns}-trust"), 2, template.max_receives).await;
    let notify_url = stack::scratch_queue(&plain, &format!("{ns}-notify")).await;
    let bus_name = format!("{ns}-bus");
    plain.eventbridge.create_event_bus().name(&bus_name).send().await.unwrap();

    let faults = FaultClient::new(fault_plan(seed));
    let limits = SdkLimits {
        operation_timeout: Duration::from_secs(6),
        attempt_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
    };
    let faulty = Clients::from_sdk_config(&sdk_config(&stack::var("AWS_ENDPOINT_URL"), &faults, limits).await);
    let tables = DynamoTables::from_names(faulty.dynamodb.clone(), &orders_table, &stats_table, &inbox_table);
    let reads = DynamoTables::from_names(plain.dynamodb.clone(), &orders_table, &stats_table, &inbox_table);

    let start = Utc::now() + chrono::Duration::seconds(2);
    let clock = SoakClock::new(Utc::now());
    let day = day::generate(&DayPlan {
        seed,
        callbacks,
        start,
        unit: chrono::Duration::seconds(1),
        span_units: 12,
        pace: (1, 3),
        tail_units: 10,
    });
    let secrets = MemorySecrets::default();
    day::install_secrets(&secrets, start).await;
    let cache = SecretCache::new(&secrets, &clock, STAGE, chrono::Duration::minutes(2));

    let inbound_queue = SqsQueue::new(faulty.sqs.clone(), &inbound.url);
    let dead_letters = SqsQueue::new(faulty.sqs.clone(), &inbound.dlq);
    let notify = SqsQueue::new(faulty.sqs.clone(), &notify_url);
    // The template's rule delivers Signed changes to the trust queue; EventBridge retries a
    // target for a day, so the delivery itself is not faulted.
    let trust_target = SqsQueue::new(plain.sqs.clone(), &trust_source.url);
    let bus_publisher = BusPublisher::new(faulty.eventbridge.clone(), &bus_name);
    let bus = RuleBus::new(Some(&bus_publisher), &trust_target);
    let announce = Announce { bus: &bus, orders: &tables.orders };

    let defaults = SlaRules::default();
    let sla = SlaRules {
        default: defaults.default.iter().map(|(s, d)| (*s, scaled(*d))).collect(),
        per_channel: BTreeMap::new(),
    };
    let base = Rules::default();
    let rules = Rules {
        sla,
        refund_check_after: scaled(base.refund_check_after),
        release_within: scaled(base.release_within),
        trust_recheck_after: scaled(base.trust_recheck_after),
        // A paid order held for its lines (the fake Douyin's rate-limited hours) is asked about
        // again within the compressed day, as it would be within a real one.
        lines_retry_after: scaled(base.lines_retry_after),
        ..base
    };
    let write = ApplyChange::new(tables.write_ports(&clock), &rules);
    let intake = Intake {
        inbox: &tables.inbox,
        queue: &inbound_queue,
        events: &bus,
        stats: &tables.stats,
        secrets: &cache,
        clock: &clock,
        quarantine_quota_per_hour: 1000,
        lease: chrono::Duration::seconds(10),
        budget: Duration::from_secs(4),
        shards: rules.shards,
    };
    let inbound_letters = adapters::SqsDeadLetters::new(faulty.sqs.clone(), &inbound.dlq);
    // The trust queue's dead letters are not what this soak drives.
    let trust_letters = domain::testing::notify::MemoryDeadLetters::default();
    let douyin = FakeDouyin::new(
        &day.truth,
        &clock,
        (start + scaled(chrono::Duration::hours(2)), start + scaled(chrono::Duration::hours(4))),
        start + scaled(chrono::Duration::hours(6)),
    );
    let platforms: [&dyn PlatformQuery; 1] = [&douyin];
    // The shops' tokens: each function its own keeper over the token ledger (the sync table,
    // through the faulty SDK) and the parameters.
    let ledger = DynamoSync::new(faulty.dynamodb.clone(), &sync_table);
    let refreshers: [&dyn TokenRefresh; 1] = [&douyin];
    let token_ports =
        TokenPorts { ledger: &ledger, params: &secrets, secrets: &cache, refreshers: &refreshers, clock: &clock };
    let token_rules = TokenRules { refresh_before: chrono::Duration::minutes(30), ..TokenRules::default() };
    let normalize_tokens = TokenKeeper::new(token_ports, STAGE, token_rules.clone(), "status-normalize");
    let refund_tokens = TokenKeeper::new(token_ports, STAGE, token_rules, "refund-dual-check");
    // A paid Douyin order's lines come from the order detail API (its outages hold them; an
    // expired token is refreshed through the keeper).
    let platform_lines = PlatformLines { platforms: &platforms, tokens: &normalize_tokens };
    let normalize = status_normalize::Handler {
        messages: ApplyMessage::new(write).with_lines(&platform_lines),
        events: &announce,
        dead_letter: &dead_letters,
        stats: &tables.stats,
        letters: DeadLetterOps { dead_letters: &inbound_letters, source: &inbound_queue },
    };
    let trust_rules = TrustRules { app_window: scaled(TrustRules::default().app_window), ..TrustRules::default() };
    let trust = signin_trust_check::Handler {
        checker: SignCheck { write, signals: &tables.signals, notify: &notify, rules: &trust_rules },
        events: &announce,
        letters: DeadLetterOps { dead_letters: &trust_letters, source: &trust_target },
    };
    let refund_rules = RefundRules {
        pending_recheck_after: scaled(RefundRules::default().pending_recheck_after),
        max_backoff: Duration::from_millis(200),
        ..RefundRules::default()
    };
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
        outbox: Some(OutboxSweep {
            announce: &announce,
            orders: &tables.orders,
            shards: rules.shards,
            grace: scaled(status_normalize::OUTBOX_GRACE),
        }),
    };
    let schedule: Vec<Duration> = [15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600]
        .iter()
        .map(|s| Duration::from_millis((s * 1000 / SCALE as u64).max(50)))
        .collect();
    let timing = Timing {
        retry_schedule: schedule,
        overlap: Duration::from_millis(40),
        third_within: Duration::from_secs(2),
        concurrency: env("SOAK_AWS_CONCURRENCY", 20),
        pollers: 3,
        poll_wait: Duration::from_secs(1),
        margin: Duration::from_secs(3),
        schedule_scale: u32::try_from(SCALE).unwrap_or(1),
        settle: Duration::from_secs(25),
    };

    let record = run::run(
        &day,
        &functions,
        &inbound,
        &trust_source,
        &clock,
        &timing,
        &template,
        &|on| faults.set_enabled(on),
        seed,
    )
    .await;

    use domain::ports::clock::Clock;
    let notices: Vec<Notice> =
        inbound.drain(&notify_url).await.iter().filter_map(|body| serde_json::from_str(body).ok()).collect();
    let published = bus.published();
    let verdict = oracle::check(&Evidence {
        day: &day,
        record: &record,
        stores: Stores {
            orders: &reads.orders,
            inventory: &reads.inventory,
            stats: &reads.stats,
            signals: &reads.signals,
            inbox: &reads.inbox,
        },
        published: &published,
        notices: &notices,
        rules: &rules,
        trust_threshold: trust_rules.threshold,
        span: (start, clock.now()),
    })
    .await;
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for (_, kind, n) in faults.counts().iter() {
        *by_kind.entry(kind.name().to_owned()).or_default() += n;
    }
    println!("{}", summary("local stack", &day, &record, &verdict, &by_kind, wall.elapsed(), seed));
    println!(
        "soak[local stack] orders={} history_entries={} events_published={} notices={} statuses={:?} invocations={:?} killed={:?} aws_requests={}",
        verdict.sizes.0,
        verdict.sizes.1,
        verdict.sizes.3,
        notices.len(),
        record.statuses,
        record.invocations,
        record.killed,
        faulty.requests.total(),
    );
    if !verdict.findings.is_empty() {
        println!("{}", verdict.report());
    }
    assert!(verdict.holds(), "the soak's promises did not hold on the local stack (seed {seed}); see above");
}
