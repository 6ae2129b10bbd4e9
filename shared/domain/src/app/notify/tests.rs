//! notify's use case on the in-memory doubles: folding, the rate budget, dedupe, quiet hours,
//! escalation and acknowledgement, robot failures, customer notices at most once, bad input.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::model::alert::{RobotOutcome, SmsOutcome};
use crate::model::ids::{OrderKey, Source};
use crate::model::lifecycle::Lifecycle;
use crate::ports::notify::RobotLookupError;
use crate::testing::clock::FixedClock;
use crate::testing::memory::MemorySecrets;
use crate::testing::notify::{MemoryContacts, MemoryDeadLetters, MemoryNotifyStore, MemoryRobots, MemorySms};

const ROUTING: &str = "/orderhub/test/notify/routing";

/// 2026-03-02 10:00 Beijing.
fn morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).single().unwrap()
}

struct World {
    clock: Arc<FixedClock>,
    store: MemoryNotifyStore,
    robots: MemoryRobots,
    sms: MemorySms,
    contacts: MemoryContacts,
    dlq: MemoryDeadLetters,
    secrets: MemorySecrets,
    policy: NotifyPolicy,
}

impl World {
    async fn new(routing: serde_json::Value) -> World {
        let clock = Arc::new(FixedClock::new(morning()));
        let robots = MemoryRobots::new(clock.clone());
        for name in ["warehouse", "finance", "tech", "ops-lead"] {
            robots.add(name);
        }
        let secrets = MemorySecrets::default();
        secrets.put(ROUTING, &routing.to_string()).await.unwrap();
        let mut policy = NotifyPolicy::new(ROUTING);
        policy.inline_backoff = std::time::Duration::from_millis(1);
        policy.inline_wait = Duration::zero();
        policy.config_ttl = Duration::zero();
        World {
            clock,
            store: MemoryNotifyStore::default(),
            robots,
            sms: MemorySms::default(),
            contacts: MemoryContacts::default(),
            dlq: MemoryDeadLetters::default(),
            secrets,
            policy,
        }
    }

    fn notify(&self) -> Notify<'_> {
        Notify::new(
            NotifyPorts {
                store: &self.store,
                robots: &self.robots,
                sms: &self.sms,
                contacts: &self.contacts,
                dead_letter: &self.dlq,
                dead_letters: &self.dlq,
                secrets: &self.secrets,
                clock: &*self.clock,
            },
            &self.policy,
        )
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

fn table() -> serde_json::Value {
    json!({
        "routes": [
            {"events": ["SlaBreached", "OrdersMissing"], "robots": ["warehouse"]},
            {"events": ["CallbackMissing"], "robots": ["finance"]},
            {"severities": ["critical"], "robots": ["tech"]},
            {"events": ["UnmappedStatus", "WebhookRejected"], "robots": ["tech"]}
        ],
        "escalation": {"warehouse": "ops-lead", "tech": "ops-lead"}
    })
}

fn sla(n: u32) -> DomainEvent {
    let key = OrderKey::parse(Source::Douyin, "shop-1", &format!("69210000{n:04}")).unwrap();
    DomainEvent::SlaBreached { key, state: Lifecycle::Paid, since: morning() - Duration::hours(1), limit_minutes: 30 }
}

fn silent(channel: Source) -> DomainEvent {
    DomainEvent::ChannelSilent { channel, silent_since: morning() - Duration::minutes(40), expected_per_slot: 12.0 }
}

fn notice(n: u32, customer: Option<&str>) -> Notice {
    Notice {
        notice_id: format!("douyin/shop-1/6921-trust-{n}"),
        order: OrderKey::parse(Source::Douyin, "shop-1", "6921").unwrap(),
        customer: customer.map(str::to_owned),
        template: "parcel_at_station".into(),
        text: "您的包裹已在菜鸟驿站(幸福里店)，请及时领取".into(),
    }
}

#[tokio::test]
async fn a_burst_of_one_kind_is_one_message_now_and_one_folded_message_with_the_count() {
    let world = World::new(table()).await;
    let notify = world.notify();
    for n in 0..200 {
        let outcome = notify.on_event(&sla(n), None).await.unwrap();
        assert!(matches!(outcome, FindingOutcome::Routed { .. }), "{outcome:?}");
    }
    let now = world.robots.messages("warehouse");
    assert_eq!(now.len(), 1, "the first goes out at once, the rest wait for the window");
    assert!(now[0].markdown.contains("douyin/shop-1/692100000000"), "{}", now[0].markdown);
    // The window (10 minutes) ends; the scheduled flush sends the fold.
    world.advance(Duration::minutes(11));
    let report = notify.flush().await;
    assert_eq!((report.folds_closed, report.fold_messages), (1, 1), "{report:?}");
    let messages = world.robots.messages("warehouse");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].title, "【警告】履约超时 ×199");
    assert!(messages[1].markdown.contains("又有 199 条（首条已单独发送）"), "{}", messages[1].markdown);
    assert_eq!(messages[1].markdown.matches("\n- douyin/shop-1/").count(), 5, "the first five listed");
    assert!(messages[1].markdown.contains("另有 194 条未列出"));
    // A second flush finds nothing more to send.
    assert_eq!(notify.flush().await.fold_messages, 0);
}

#[tokio::test]
async fn a_redelivered_event_id_is_sent_once() {
    let world = World::new(table()).await;
    let notify = world.notify();
    let event = silent(Source::Douyin);
    let detail = event.detail();
    let first = notify.on_bus_event("ChannelSilent", &detail).await.unwrap();
    assert!(matches!(first, FindingOutcome::Routed { .. }));
    let again = notify.on_bus_event("ChannelSilent", &detail).await.unwrap();
    assert_eq!(again, FindingOutcome::Duplicate { event_id: event.id() });
    assert_eq!(world.robots.messages("tech").len(), 1);
}

#[tokio::test]
async fn thirty_messages_at_once_never_exceed_twenty_a_minute_per_robot() {
    let world = World::new(json!({"routes": [{"robots": ["tech"]}]})).await;
    let notify = world.notify();
    let robot = world.robots.add("tech");
    let config = RoutingConfig::from_json(r#"{"routes": []}"#).unwrap();
    for n in 0..30u32 {
        let message = AlertMessage {
            title: format!("t{n}"),
            markdown: "x".into(),
            severity: Severity::Critical,
            ack_id: None,
            kind: "Test".into(),
        };
        notify.deliver(&config, "tech", message, 0, None).await.unwrap();
    }
    assert_eq!(robot.messages().len(), 20, "20 in the minute, the rest wait in the outbox");
    assert_eq!(robot.over_limit(), 0, "the robot never had to refuse one");
    world.advance(Duration::seconds(30));
    assert_eq!(notify.flush().await.outbox_sent, 0, "not within the same minute");
    world.advance(Duration::seconds(33));
    let report = notify.flush().await;
    assert_eq!(report.outbox_sent, 10, "{report:?}");
    assert_eq!(robot.messages().len(), 30);
    assert_eq!(robot.over_limit(), 0);
}

#[tokio::test]
async fn quiet_hours_hold_the_night_until_morning_but_not_criticals() {
    let world = World::new(table()).await;
    world.clock.set(Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).single().unwrap()); // 23:00 Beijing
    let notify = world.notify();
    for n in 0..3 {
        let outcome = notify.on_event(&sla(n), None).await.unwrap();
        assert!(
            matches!(&outcome, FindingOutcome::Routed { robots, .. } if robots["warehouse"] == "held"),
            "{outcome:?}"
        );
    }
    notify.on_event(&silent(Source::Pdd), None).await.unwrap();
    assert!(world.robots.messages("warehouse").iter().all(|m| m.severity == Severity::Critical));
    assert_eq!(world.robots.messages("warehouse").len(), 0, "ChannelSilent is not routed to warehouse");
    assert_eq!(world.robots.messages("tech").len(), 1, "a critical goes out at night");
    world.advance(Duration::hours(3));
    assert_eq!(notify.flush().await.fold_messages, 0, "still night");
    world.clock.set(Utc.with_ymd_and_hms(2026, 3, 3, 0, 1, 0).single().unwrap()); // 08:01 Beijing
    notify.flush().await;
    let morning = world.robots.messages("warehouse");
    assert_eq!(morning.len(), 1);
    assert!(morning[0].markdown.contains("夜间免打扰时段"), "{}", morning[0].markdown);
    assert!(morning[0].title.ends_with("×3"), "{}", morning[0].title);
}

#[tokio::test]
async fn an_unacknowledged_critical_is_escalated_after_two_hours_and_an_acknowledged_one_is_not() {
    let world = World::new(table()).await;
    let notify = world.notify();
    let douyin = silent(Source::Douyin);
    let pdd = silent(Source::Pdd);
    notify.on_event(&douyin, None).await.unwrap();
    notify.on_event(&pdd, None).await.unwrap();
    assert_eq!(world.robots.messages("tech").len(), 1, "one immediate, the other folded");
    assert_eq!(notify.ack(&douyin.id(), "值班-王").await.unwrap(), AckOutcome::Acknowledged { id: douyin.id() });
    assert!(matches!(notify.ack(&douyin.id(), "x").await.unwrap(), AckOutcome::AlreadyAcknowledged { .. }));
    assert!(matches!(notify.ack("ev-nope", "x").await.unwrap(), AckOutcome::Unknown { .. }));
    // The fold of the second closes after its window: a critical fold has its own ack id.
    world.advance(Duration::minutes(11));
    notify.flush().await;
    let tech = world.robots.messages("tech");
    assert_eq!(tech.len(), 2);
    let fold_ack = tech[1].ack_id.clone().unwrap();
    world.advance(Duration::minutes(100));
    assert_eq!(notify.flush().await.escalated, 0, "not yet two hours");
    world.advance(Duration::minutes(20));
    let report = notify.flush().await;
    assert_eq!(report.escalated, 1, "{report:?}");
    let lead = world.robots.messages("ops-lead");
    assert_eq!(lead.len(), 1);
    assert!(lead[0].markdown.contains(&fold_ack), "{}", lead[0].markdown);
    assert!(!lead[0].markdown.contains(&douyin.id()), "the acknowledged one is not escalated");
    assert_eq!(lead[0].severity, Severity::Critical);
    world.advance(Duration::hours(3));
    notify.flush().await;
    assert_eq!(world.robots.messages("ops-lead").len(), 1, "the end of the chain: escalated once");
}

#[tokio::test]
async fn a_failing_robot_is_retried_with_backoff_then_dead_lettered_and_holds_up_nobody() {
    let world = World::new(table()).await;
    let notify = world.notify();
    let warehouse = world.robots.add("warehouse");
    warehouse.answer(std::iter::repeat_n(RobotOutcome::Unavailable("HTTP 502".into()), 100));
    let outcome = notify.on_event(&sla(1), None).await.unwrap();
    assert!(matches!(&outcome, FindingOutcome::Routed { robots, .. } if robots["warehouse"] == "deferred"));
    // Meanwhile another robot works.
    notify.on_event(&silent(Source::Jd), None).await.unwrap();
    assert_eq!(world.robots.messages("tech").len(), 1);
    let mut flushes = 0;
    while world.dlq.messages().is_empty() && flushes < 20 {
        world.advance(Duration::minutes(31));
        notify.flush().await;
        flushes += 1;
    }
    let dead = world.dlq.messages();
    assert_eq!(dead.len(), 1, "dead-lettered after the attempts ran out");
    let reason = dead[0].attributes.iter().find(|(k, _)| k == "reason").map(|(_, v)| v.clone()).unwrap();
    assert!(reason.contains("gave up after 6 attempts") && reason.contains("HTTP 502"), "{reason}");
    assert!(flushes >= 5, "backed off across runs, not a storm: {flushes}");
    let events = notify.take_events();
    assert_eq!(events.len(), 1, "one NotifyFailed");
    assert!(
        matches!(&events[0], DomainEvent::NotifyFailed { target, code, .. } if target == "warehouse" && code == "retries_exhausted")
    );
}

#[tokio::test]
async fn a_robot_that_times_out_costs_one_attempt_per_minute_not_one_per_message() {
    let world = World::new(json!({"routes": [{"robots": ["tech"]}]})).await;
    let notify = world.notify();
    let tech = world.robots.add("tech");
    tech.answer(std::iter::repeat_n(RobotOutcome::Unavailable("timeout".into()), 100));
    // Three kinds: three messages that would each go out at once.
    notify.on_event(&sla(1), None).await.unwrap();
    notify.on_event(&silent(Source::Douyin), None).await.unwrap();
    notify
        .on_event(&DomainEvent::ChannelRecovered { channel: Source::Pdd, silent_for_minutes: 40 }, None)
        .await
        .unwrap();
    assert_eq!(tech.calls(), 3, "the first message's three tries; the others wait in the outbox");
    assert_eq!(world.store.records(RecordKind::Outbox).len(), 3);
    world.advance(Duration::minutes(2));
    notify.flush().await;
    assert_eq!(tech.calls(), 6, "one message tried again, the rest left for the next run");
}

#[tokio::test]
async fn a_rejected_or_malformed_robot_is_dead_lettered_at_once_with_one_event_per_window() {
    let world = World::new(table()).await;
    let notify = world.notify();
    world.robots.add("finance").answer([
        RobotOutcome::Rejected { code: "310000".into(), message: "sign not match".into() },
        RobotOutcome::Rejected { code: "310000".into(), message: "sign not match".into() },
    ]);
    world.robots.break_robot("warehouse", RobotLookupError::Malformed("access_token is missing".into()));
    let missing = |n: &str| DomainEvent::CallbackMissing {
        key: OrderKey::parse(Source::Douyin, "shop-1", n).unwrap(),
        hint: "token expired".into(),
    };
    notify.on_event(&missing("1"), None).await.unwrap();
    world.advance(Duration::minutes(11));
    notify.on_event(&missing("2"), None).await.unwrap();
    notify.on_event(&sla(1), None).await.unwrap();
    let dead = world.dlq.messages();
    assert_eq!(dead.len(), 3, "{dead:?}");
    let codes: Vec<String> =
        dead.iter().filter_map(|m| m.attributes.iter().find(|(k, _)| k == "code").map(|(_, v)| v.clone())).collect();
    assert_eq!(codes, ["310000", "310000", "malformed_robot"]);
    let events = notify.take_events();
    assert_eq!(events.len(), 3, "two windows for finance, one for warehouse: {events:?}");
    assert!(dead.iter().all(|m| !m.body.contains("SEC") && !m.body.contains("access_token=")));
}

#[tokio::test]
async fn an_unknown_event_is_dead_lettered_with_one_line_and_one_event_and_never_retried() {
    let world = World::new(table()).await;
    let notify = world.notify();
    for n in 0..5 {
        let outcome = notify.on_bus_event("SomethingNew", &json!({"n": n})).await.unwrap();
        assert!(matches!(outcome, FindingOutcome::DeadLettered { .. }));
    }
    let stock = DomainEvent::StockReserved { key: OrderKey::parse(Source::Douyin, "s", "o").unwrap(), lines: vec![] };
    assert!(matches!(notify.on_event(&stock, None).await.unwrap(), FindingOutcome::DeadLettered { .. }));
    assert_eq!(world.dlq.messages().len(), 6, "nothing lost");
    let events = notify.take_events();
    assert_eq!(events.len(), 2, "one per event type and window: {events:?}");
}

#[tokio::test]
async fn findings_wait_for_a_usable_routing_table_and_are_routed_once_it_is_fixed() {
    let world = World::new(json!({"routes": [{"robots": ["tech"]}], "oops": 1})).await;
    let notify = world.notify();
    let outcome = notify.on_event(&silent(Source::Douyin), None).await.unwrap();
    assert!(matches!(outcome, FindingOutcome::Deferred { .. }), "{outcome:?}");
    assert_eq!(notify.take_events().len(), 1, "the broken table is reported");
    world.secrets.put(ROUTING, &table().to_string()).await.unwrap();
    world.advance(Duration::minutes(6));
    let report = notify.flush().await;
    assert_eq!(report.findings_routed, 1, "{report:?}");
    assert_eq!(world.robots.messages("tech").len(), 1);
}

#[tokio::test]
async fn a_claim_whose_invocation_died_is_routed_by_the_next_flush_after_its_lease() {
    let world = World::new(table()).await;
    let notify = world.notify();
    let event = silent(Source::Kuaishou);
    // The store fails right after the claim: the invocation errs out mid-way.
    let claimed = notify.claim(&event.id(), "ChannelSilent", &event.detail()).await.unwrap();
    assert!(matches!(claimed, Claim::Mine(_)));
    assert!(matches!(notify.on_event(&event, None).await.unwrap(), FindingOutcome::InFlight { .. }));
    world.advance(Duration::minutes(6));
    assert_eq!(notify.flush().await.findings_routed, 1);
    assert_eq!(world.robots.messages("tech").len(), 1);
}

#[tokio::test]
async fn a_notice_is_sent_once_however_often_it_is_delivered() {
    let world = World::new(table()).await;
    world.sms.configure(&["parcel_at_station"]);
    world.contacts.set("cust-1", "13812345678");
    let notify = world.notify();
    let notice = notice(1, Some("cust-1"));
    assert!(matches!(notify.on_notice(&notice).await.unwrap(), NoticeOutcome::Sent { .. }));
    for _ in 0..3 {
        let again = notify.on_notice(&notice).await.unwrap();
        assert!(matches!(again, NoticeOutcome::AlreadyHandled { state: NoticeState::Sent, .. }), "{again:?}");
    }
    let calls = world.sms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "138****5678");
    assert!(calls[0].2.values.contains(&("channel".into(), "抖店".into())));
    let stored = format!("{:?}", world.store.records(RecordKind::Notice));
    assert!(!stored.contains("13812345678"), "no number in the records: {stored}");
}

#[tokio::test]
async fn an_ambiguous_send_is_never_repeated_without_a_person() {
    let world = World::new(table()).await;
    world.sms.configure(&["parcel_at_station"]);
    world.contacts.set("cust-1", "13812345678");
    world.sms.answer([SmsOutcome::Unknown("timeout".into())]);
    let notify = world.notify();
    let notice = notice(2, Some("cust-1"));
    assert!(matches!(notify.on_notice(&notice).await.unwrap(), NoticeOutcome::Unknown { .. }));
    assert!(matches!(
        notify.on_notice(&notice).await.unwrap(),
        NoticeOutcome::AlreadyHandled { state: NoticeState::Unknown, .. }
    ));
    world.advance(Duration::hours(2));
    notify.flush().await;
    assert_eq!(world.sms.calls().len(), 1, "no resend on redelivery or flush");
    assert!(notify.resend_notice(&notice.notice_id, false).await.is_err(), "not without checking the receipt");
    assert!(matches!(notify.resend_notice(&notice.notice_id, true).await.unwrap(), NoticeOutcome::Sent { .. }));
    assert_eq!(world.sms.calls().len(), 2);
}

#[tokio::test]
async fn an_attempt_interrupted_mid_send_becomes_unknown_not_a_second_sms() {
    let world = World::new(table()).await;
    world.sms.configure(&["parcel_at_station"]);
    world.contacts.set("cust-1", "13812345678");
    let notify = world.notify();
    let notice = notice(3, Some("cust-1"));
    // Simulate the crash: the record moved to `attempting`, the process died.
    let state = NoticeRecord {
        state: NoticeState::Attempting,
        notice: notice.clone(),
        attempts: 1,
        reason: None,
        receipt: None,
        attempt_started: Some(world.clock.now()),
    };
    let mut record =
        Record::new(RecordKind::Notice, notice.notice_id.clone(), encode(&state), morning() + Duration::days(30));
    record.due = Some(world.clock.now() + Duration::minutes(5));
    assert!(world.store.put(&record).await.unwrap());
    assert!(notify.on_notice(&notice).await.is_err(), "within the lease: the queue retries later");
    world.advance(Duration::minutes(6));
    let report = notify.flush().await;
    assert_eq!(report.notices_unknown, 1, "{report:?}");
    assert!(world.sms.calls().is_empty());
}

#[tokio::test]
async fn a_rate_limited_notice_is_retried_later_and_sent_once() {
    let world = World::new(table()).await;
    world.sms.configure(&["parcel_at_station"]);
    world.contacts.set("cust-1", "13812345678");
    world.sms.answer([SmsOutcome::NotSent { retry_after: Some(Duration::seconds(30)), reason: "30s limit".into() }]);
    let notify = world.notify();
    let notice = notice(4, Some("cust-1"));
    assert!(matches!(
        notify.on_notice(&notice).await.unwrap(),
        NoticeOutcome::Waiting { state: NoticeState::Retry, .. }
    ));
    assert!(matches!(notify.on_notice(&notice).await.unwrap(), NoticeOutcome::Waiting { .. }), "not before it is due");
    world.advance(Duration::minutes(2));
    assert_eq!(notify.flush().await.notices_sent, 1);
    assert_eq!(world.sms.calls().len(), 2, "one refused, one sent");
    notify.flush().await;
    assert_eq!(world.sms.calls().len(), 2);
}

#[tokio::test]
async fn without_a_provider_notices_are_kept_counted_and_sent_once_one_is_configured() {
    let world = World::new(table()).await;
    world.contacts.set("cust-1", "13812345678");
    let notify = world.notify();
    for n in 10..13 {
        let outcome = notify.on_notice(&notice(n, Some("cust-1"))).await.unwrap();
        assert!(
            matches!(&outcome, NoticeOutcome::Waiting { state: NoticeState::Parked, reason, .. } if reason == "no SMS provider configured"),
            "{outcome:?}"
        );
    }
    let counts = world.store.counts(business_day(world.clock.now())).await.unwrap();
    assert_eq!(counts.get(counters::NOTICES_NO_PROVIDER), Some(&3));
    world.advance(Duration::minutes(31));
    assert_eq!(notify.flush().await.notices_waiting, 3, "still no provider: still kept");
    assert_eq!(world.store.counts(business_day(world.clock.now())).await.unwrap()[counters::NOTICES_NO_PROVIDER], 3);
    world.sms.configure(&["parcel_at_station"]);
    world.advance(Duration::minutes(31));
    assert_eq!(notify.flush().await.notices_sent, 3);
    // A notice for nobody is parked for a person, and one for a customer without a contact waits.
    let nobody = notify.on_notice(&notice(20, None)).await.unwrap();
    assert!(matches!(nobody, NoticeOutcome::Waiting { state: NoticeState::Parked, .. }));
    let unknown = notify.on_notice(&notice(21, Some("cust-404"))).await.unwrap();
    assert!(matches!(&unknown, NoticeOutcome::Waiting { reason, .. } if reason.contains("no contact")));
}

#[tokio::test]
async fn a_refused_notice_is_dead_lettered_and_redriven_after_the_fix() {
    let world = World::new(table()).await;
    world.sms.configure(&["parcel_at_station"]);
    world.contacts.set("cust-1", "13812345678");
    world.sms.answer([SmsOutcome::Rejected { code: "isv.SMS_TEMPLATE_ILLEGAL".into(), message: "bad".into() }]);
    let notify = world.notify();
    let notice = notice(5, Some("cust-1"));
    assert!(matches!(notify.on_notice(&notice).await.unwrap(), NoticeOutcome::Failed { .. }));
    assert_eq!(world.dlq.messages().len(), 1);
    assert!(!world.dlq.messages()[0].body.contains("13812345678"));
    let report = notify.redrive(10).await;
    assert_eq!((report.read, report.redriven), (1, 1), "{report:?}");
    assert!(world.dlq.messages().is_empty());
    assert_eq!(world.sms.calls().len(), 2);
}

#[tokio::test]
async fn a_dead_lettered_robot_message_is_redriven_once_the_robot_is_fixed() {
    let world = World::new(table()).await;
    let notify = world.notify();
    world.robots.break_robot("finance", RobotLookupError::NotConfigured);
    let missing = DomainEvent::CallbackMissing {
        key: OrderKey::parse(Source::Pdd, "shop-9", "1").unwrap(),
        hint: "callback URL changed".into(),
    };
    notify.on_event(&missing, None).await.unwrap();
    assert_eq!(world.dlq.messages().len(), 1);
    let fixed = World::new(table()).await;
    // The robot configured now: same store, same queue, working robot.
    let notify = Notify::new(
        NotifyPorts {
            store: &world.store,
            robots: &fixed.robots,
            sms: &world.sms,
            contacts: &world.contacts,
            dead_letter: &world.dlq,
            dead_letters: &world.dlq,
            secrets: &world.secrets,
            clock: &*world.clock,
        },
        &world.policy,
    );
    assert_eq!(notify.redrive(10).await.redriven, 1);
    assert!(world.dlq.messages().is_empty());
    assert_eq!(fixed.robots.messages("finance").len(), 1);
}
