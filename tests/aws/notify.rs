//! notify end to end on the local stack: its state in a private copy of the inbox table, its
//! configuration in SSM, its dead-letter queue on SQS, and the robots and SMS providers played by
//! `tests::fake_notify` (signatures checked, 20 messages a minute enforced, on the fake's clock,
//! which notify shares). moto cannot invoke Lambdas: the tests hand the function's handler the
//! events EventBridge, SQS and the schedule would.
//!
//! The burst measurement runs 280 findings here; `ORDERHUB_BENCH=1` runs 1 000:
//! `ORDERHUB_BENCH=1 cargo test -p tests --test aws notify::a_burst -- --nocapture`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use adapters::{Clients, DynamoContacts, SsmSecrets};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::app::sign_check::Notice;
use domain::model::alert::MobileNumber;
use domain::model::callback::Rejection;
use domain::model::domain_event::DomainEvent;
use domain::model::health::{Indicator, ReportKind, Scope};
use domain::model::status::RawStatus;
use domain::ports::Secrets;
use domain::ports::clock::Clock as _;
use domain::ports::notify::NotifyStore;
use domain::testing::clock::FixedClock;
use domain::testing::memory::MemoryPublisher;
use domain::{Lifecycle, OrderKey, Source};
use futures::StreamExt;
use notify::{Answer, Config, Wired};
use serde_json::{Value, json};
use tests::fake_notify::{FakeNotify, Fault, Provider, Received};
use tests::stack::{self, clients, namespace};

const PHONE: &str = "13812345678";

struct Rig {
    clients: Clients,
    fake: FakeNotify,
    clock: Arc<FixedClock>,
    ssm: SsmSecrets,
    config: Config,
    events: MemoryPublisher,
    dlq_url: String,
    table: String,
    prefix: String,
    n: String,
}

fn default_routing() -> Value {
    json!({
        "routes": [
            {"events": ["SlaBreached", "OrdersMissing"], "robots": ["warehouse"]},
            {"events": ["CallbackMissing", "HealthThresholdBreached"], "robots": ["finance"]},
            {"severities": ["critical"], "robots": ["warehouse"]},
            {"events": ["UnmappedStatus", "WebhookRejected", "ChannelSilent", "ChannelRecovered", "TokenRefreshFailed", "TokenExpiring", "AlarmStateChanged"], "robots": ["tech"]}
        ],
        "escalation": {"warehouse": "ops-lead", "tech": "ops-lead"}
    })
}

impl Rig {
    async fn new(name: &str, routing: Value, overrides: &[(&str, &str)]) -> Rig {
        let clients = clients().await;
        let ns = namespace(name);
        let n: String = ns.chars().filter(char::is_ascii_digit).collect();
        let fake = FakeNotify::start().await;
        let table = stack::private_table(&clients, "INBOX_TABLE", &ns).await;
        let dlq_url = stack::scratch_queue(&clients, &format!("{ns}-dlq")).await;
        let prefix = format!("/orderhub/local/notify-{ns}/");
        let ssm = SsmSecrets::new(clients.ssm.clone());
        ssm.put(&format!("{prefix}routing"), &routing.to_string()).await.unwrap();
        for (robot, token) in [("warehouse", format!("tokwh{n}")), ("ops-lead", format!("toklead{n}"))] {
            let secret = format!("SEC{robot}-{n}");
            fake.add_dingtalk_robot(robot, &token, &secret);
            let parameter = json!({"kind": "dingtalk", "webhook": format!("https://oapi.dingtalk.com/robot/send?access_token={token}"),
                                   "secret": secret, "at_mobiles": ["13900001111"], "at_user_ids": ["duty01"]});
            ssm.put(&format!("{prefix}robots/{robot}"), &parameter.to_string()).await.unwrap();
        }
        for (robot, key) in [("tech", format!("tech-{n}")), ("finance", format!("fin-{n}"))] {
            fake.add_wecom_robot(robot, &key);
            let parameter = json!({"kind": "wecom", "webhook": format!("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}")});
            ssm.put(&format!("{prefix}robots/{robot}"), &parameter.to_string()).await.unwrap();
        }
        let mut env = stack::env();
        let base = fake.base_url();
        for (var, value) in [
            ("INBOX_TABLE", table.as_str()),
            ("NOTIFY_DLQ_URL", dlq_url.as_str()),
            ("DINGTALK_BASE_URL", &base),
            ("WECOM_BASE_URL", &base),
            ("ALIYUN_SMS_BASE_URL", &base),
            ("TENCENT_SMS_BASE_URL", &base),
            ("NOTIFY_TIMEOUT_MS", "2000"),
            ("NOTIFY_CONFIG_TTL_SECONDS", "0"),
        ] {
            env.insert(var.to_owned(), value.to_owned());
        }
        env.insert("NOTIFY_ROUTING_PARAMETER".into(), format!("{prefix}routing"));
        env.insert("NOTIFY_ROBOTS_PREFIX".into(), format!("{prefix}robots/"));
        env.insert("NOTIFY_SMS_PARAMETER".into(), format!("{prefix}sms"));
        for (var, value) in overrides {
            env.insert((*var).to_owned(), (*value).to_owned());
        }
        let config = Config::from_env(&env).unwrap();
        Rig {
            clock: fake.clock(),
            clients,
            fake,
            ssm,
            config,
            events: MemoryPublisher::default(),
            dlq_url,
            table,
            prefix,
            n,
        }
    }

    fn wired(&self) -> Wired<'_> {
        let mut wired = Wired::new(&self.config, &self.clients, &self.ssm, &*self.clock, self.clock.clone()).unwrap();
        // The fake's clock only moves when a test moves it: waiting inside an invocation for a
        // rate slot or between attempts would wait for nothing.
        wired.policy.inline_wait = Duration::zero();
        wired.policy.inline_backoff = std::time::Duration::from_millis(5);
        wired
    }

    async fn aliyun(&self) {
        let (id, secret) = (format!("LTAI{}", self.n), format!("aliyun-secret-{}", self.n));
        self.fake.add_aliyun_key(&id, &secret);
        let parameter = json!({"provider": "aliyun", "access_key_id": id, "access_key_secret": secret, "sign_name": "测试旗舰店",
            "templates": {"parcel_at_station": {"code": "SMS_100001", "params": [["text", "text"]]}}});
        self.ssm.put(&format!("{}sms", self.prefix), &parameter.to_string()).await.unwrap();
    }

    async fn tencent(&self) {
        let (id, key) = (format!("AKID{}", self.n), format!("tencent-key-{}", self.n));
        self.fake.add_tencent_key(&id, &key, "1400000001");
        let parameter = json!({"provider": "tencent", "secret_id": id, "secret_key": key, "sdk_app_id": "1400000001",
            "sign_name": "测试旗舰店", "templates": {"parcel_at_station": {"code": "1000001", "params": [["1", "text"]]}}});
        self.ssm.put(&format!("{}sms", self.prefix), &parameter.to_string()).await.unwrap();
    }

    async fn contact(&self, customer: &str, mobile: &str) {
        let contacts = DynamoContacts::new(self.clients.dynamodb.clone(), &self.table);
        contacts.put(customer, &MobileNumber::new(mobile)).await.unwrap();
    }

    fn set_beijing(&self, y: i32, m: u32, d: u32, h: u32, min: u32) {
        let at = chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap();
        self.clock.set(at.with_timezone(&Utc));
    }

    async fn dead_letters(&self) -> Vec<(String, BTreeMap<String, String>)> {
        let mut out = Vec::new();
        loop {
            let page = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            if page.messages().is_empty() {
                return out;
            }
            for message in page.messages() {
                let attributes = message
                    .message_attributes()
                    .map(|a| {
                        a.iter().map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned())).collect()
                    })
                    .unwrap_or_default();
                out.push((message.body().unwrap_or_default().to_owned(), attributes));
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(&self.dlq_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// What an EventBridge rule hands the function: the bus's envelope of a published event.
fn envelope(event: &DomainEvent, at: DateTime<Utc>) -> Value {
    json!({"version": "0", "id": format!("eb-{}", event.id()), "detail-type": event.detail_type(), "source": "orderhub",
           "account": "123456789012", "time": at.to_rfc3339(), "region": "cn-north-1", "resources": [], "detail": event.detail()})
}

fn batch(bodies: &[String]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({"messageId": format!("m-{i}"), "receiptHandle": format!("rh-{i}"), "body": body,
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs"})
        })
        .collect();
    json!({ "Records": records })
}

fn notice(id: &str, customer: &str) -> String {
    serde_json::to_string(&Notice {
        notice_id: id.to_owned(),
        order: OrderKey::parse(Source::Douyin, "shop-1001", "6921000000000002").unwrap(),
        customer: Some(customer.to_owned()),
        template: "parcel_at_station".into(),
        text: "您的包裹已在菜鸟驿站(幸福里店)，请及时领取".into(),
    })
    .unwrap()
}

/// One finding of 14 kinds-and-severities (every fold key a robot can see), unique by `n`.
fn finding(n: usize, at: DateTime<Utc>) -> DomainEvent {
    let key = OrderKey::parse(Source::Douyin, "shop-1001", &format!("6921{n:012}")).unwrap();
    let channel = Source::CHANNELS[n % Source::CHANNELS.len()];
    let shop = format!("shop-{n}");
    let alarm = |state: &str| DomainEvent::AlarmStateChanged {
        alarm: format!("orderhub-alarm-{n}"),
        state: state.into(),
        previous: Some("OK".into()),
        reason: "Threshold Crossed".into(),
        at: at.to_rfc3339(),
    };
    match n % 14 {
        0 => {
            DomainEvent::SlaBreached { key, state: Lifecycle::Paid, since: at - Duration::hours(1), limit_minutes: 30 }
        }
        1 => DomainEvent::ChannelSilent {
            channel,
            silent_since: at - Duration::minutes(30) + Duration::seconds(n as i64),
            expected_per_slot: 12.0,
        },
        2 => DomainEvent::ChannelRecovered { channel, silent_for_minutes: n as i64 },
        3 => DomainEvent::CallbackMissing { key, hint: "refund confirmed by query".into() },
        4 => DomainEvent::TokenRefreshFailed { source: channel, shop, reason: "refresh token expired".into() },
        5 => DomainEvent::HealthThresholdBreached {
            indicator: Indicator::OnTimeShipping,
            channel: Scope::Channel(channel),
            value: 0.9,
            threshold: 0.985,
            period: format!("2026-03-01#{n}"),
            kind: ReportKind::Daily,
        },
        6 => DomainEvent::UnmappedStatus { key, raw: RawStatus::new("tag", n.to_string()), day: None },
        7 => DomainEvent::WebhookRejected {
            source: channel,
            shop: Some(shop),
            rejection: Rejection::Unverified,
            reason: "signature mismatch".into(),
            at,
        },
        8 => DomainEvent::OrdersMissing {
            source: channel,
            shop,
            day: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            missing: 2,
            platform_count: 100,
            hub_count: 98,
            channel: "pull".into(),
        },
        9 => DomainEvent::TokenExpiring { source: channel, shop, token: "refresh_token".into(), expires_at: at },
        10 => alarm("ALARM"),
        11 => alarm("OK"),
        12 => alarm("INSUFFICIENT_DATA"),
        _ => DomainEvent::NotifyFailed {
            stage: "robot".into(),
            target: format!("robot-{n}"),
            code: "310000".into(),
            reason: "sign not match".into(),
            at,
        },
    }
}

/// Findings a message stands for: `×N` in a folded title, else one.
fn represented(message: &Received) -> u64 {
    message.title.rsplit_once('×').and_then(|(_, n)| n.trim().parse().ok()).unwrap_or(1)
}

#[tokio::test]
async fn a_burst_of_findings_is_folded_and_no_robot_ever_gets_more_than_twenty_a_minute() {
    let size: usize = if std::env::var("ORDERHUB_BENCH").is_ok_and(|v| v == "1") { 1_000 } else { 280 };
    // Everything to one WeCom robot, criticals also to one DingTalk robot.
    let routing = json!({"routes": [{"robots": ["tech"]}, {"severities": ["critical"], "robots": ["warehouse"]}]});
    let rig = Rig::new("notify-burst", routing, &[("NOTIFY_CONFIG_TTL_SECONDS", "3600")]).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    // The burst straddles a fold window's end (10:10 Beijing): two windows' first messages
    // within 20 seconds, more than 20 for one robot in a minute unless the budget holds them.
    rig.set_beijing(2026, 3, 2, 10, 9);
    rig.clock.advance(Duration::seconds(50));
    rig.clients.requests.take();
    let started = Instant::now();
    let events: Vec<(DomainEvent, Value)> = (0..size)
        .map(|n| {
            let event = finding(n, rig.clock.now());
            let body = envelope(&event, rig.clock.now());
            (event, body)
        })
        .collect();
    let (first, second) = events.split_at(size / 2);
    for half in [first, second] {
        // Ten concurrent invocations, as Lambda would run them.
        let answers: Vec<Answer> = futures::stream::iter(half.iter().map(|(_, body)| handler.handle(body.clone())))
            .buffer_unordered(10)
            .collect()
            .await;
        assert!(
            answers.iter().all(|a| matches!(a, Answer::Finding(_))),
            "{:?}",
            answers.iter().find(|a| !matches!(a, Answer::Finding(_)))
        );
        rig.clock.advance(Duration::seconds(20));
    }
    let burst_time = started.elapsed();
    let burst_requests = rig.clients.requests.take();
    tests::policy::assert_granted("NotifyFunction", &burst_requests);
    // The schedule's flush every few minutes of the fake's clock until the windows closed and the
    // outbox emptied.
    let mut flushes = 0;
    for _ in 0..16 {
        rig.clock.advance(Duration::seconds(65));
        let Answer::Flush(report) = handler.handle(json!({"flush": "all"})).await else { panic!("a flush report") };
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(report.dead_lettered, 0, "{report:?}");
        flushes += 1;
    }
    let total_time = started.elapsed();
    let flush_requests = rig.clients.requests.take();
    tests::policy::assert_granted("NotifyFunction", &flush_requests);
    let received = rig.fake.received();
    let refused: Vec<&Received> = received.iter().filter(|r| !r.accepted).collect();
    assert!(refused.is_empty(), "no robot had to refuse a message: {refused:?}");
    let criticals = events
        .iter()
        .filter(|(e, _)| {
            matches!(
                e,
                DomainEvent::ChannelSilent { .. }
                    | DomainEvent::TokenRefreshFailed { .. }
                    | DomainEvent::OrdersMissing { .. }
            ) || matches!(e, DomainEvent::AlarmStateChanged { state, .. } if state == "ALARM")
        })
        .count() as u64;
    let per_robot = |robot: &str| received.iter().filter(|r| r.to == robot).map(represented).sum::<u64>();
    assert_eq!(per_robot("tech"), size as u64, "every finding is in exactly one message to tech");
    assert_eq!(per_robot("warehouse"), criticals, "every critical is in exactly one message to warehouse");
    let messages = |robot: &str| received.iter().filter(|r| r.to == robot).count();
    assert!(messages("tech") <= 4 * 14, "folded: {} messages for {size} findings", messages("tech"));
    assert!(
        received.iter().any(|r| r.to == "warehouse" && r.at.contains(&"139****1111".to_owned())),
        "criticals @ the duty phone"
    );
    let count = |requests: &BTreeMap<String, u64>| requests.values().sum::<u64>();
    eprintln!(
        "notify burst: {size} findings → {} robot messages (tech {}, warehouse {}), {} robot HTTP requests, none refused; \
         AWS requests: burst {} ({:.2}/finding) {burst_requests:?}, {flushes} flushes {} {flush_requests:?}; \
         wall time: burst {:.2} s ({:.1} ms/finding), with flushes {:.2} s",
        messages("tech") + messages("warehouse"),
        messages("tech"),
        messages("warehouse"),
        received.len(),
        count(&burst_requests),
        count(&burst_requests) as f64 / size as f64,
        count(&flush_requests),
        burst_time.as_secs_f64(),
        burst_time.as_secs_f64() * 1000.0 / size as f64,
        total_time.as_secs_f64(),
    );
}

#[tokio::test]
async fn a_redelivered_event_id_is_sent_once() {
    let rig = Rig::new("notify-dedupe", default_routing(), &[]).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    let event = finding(1, rig.clock.now());
    let body = envelope(&event, rig.clock.now());
    assert!(matches!(
        handler.handle(body.clone()).await,
        Answer::Finding(domain::app::notify::FindingOutcome::Routed { .. })
    ));
    let again = handler.handle(body).await;
    assert!(matches!(again, Answer::Finding(domain::app::notify::FindingOutcome::Duplicate { .. })), "{again:?}");
    assert_eq!(rig.fake.received().len(), 2, "one message each to warehouse (critical) and tech");
}

#[tokio::test]
async fn quiet_hours_hold_non_criticals_until_the_morning_release() {
    let rig = Rig::new("notify-quiet", default_routing(), &[]).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    rig.set_beijing(2026, 3, 2, 23, 10);
    for n in [14, 28, 42] {
        handler.handle(envelope(&finding(n, rig.clock.now()), rig.clock.now())).await; // SlaBreached
    }
    handler.handle(envelope(&finding(15, rig.clock.now()), rig.clock.now())).await; // ChannelSilent: critical
    let night = rig.fake.received();
    assert_eq!(night.len(), 2, "only the critical, to warehouse and tech: {night:?}");
    assert!(night.iter().all(|r| r.title.starts_with("【严重】")));
    rig.set_beijing(2026, 3, 3, 7, 55);
    handler.handle(json!({"flush": "all"})).await;
    let breaches = || rig.fake.delivered("warehouse").into_iter().filter(|r| r.title.contains("履约超时")).count();
    assert_eq!(breaches(), 0, "still quiet at 07:55");
    // The critical nobody acknowledged went up the chain in the night: criticals know no quiet.
    assert_eq!(rig.fake.delivered("ops-lead").len(), 1);
    rig.set_beijing(2026, 3, 3, 8, 1);
    handler.handle(json!({"flush": "all"})).await;
    let morning = rig.fake.delivered("warehouse");
    let held = morning.iter().find(|r| r.title.contains("履约超时")).expect("the night's breaches in the morning");
    assert!(held.title.ends_with("×3") && held.text.contains("夜间免打扰"), "{held:?}");
}

#[tokio::test]
async fn an_unacknowledged_critical_is_escalated_after_two_hours_and_an_acknowledged_one_is_not() {
    let rig = Rig::new("notify-escalate", default_routing(), &[]).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    let silent = finding(1, rig.clock.now()); // ChannelSilent
    let missing = finding(8, rig.clock.now()); // OrdersMissing
    handler.handle(envelope(&silent, rig.clock.now())).await;
    handler.handle(envelope(&missing, rig.clock.now())).await;
    let warehouse = rig.fake.delivered("warehouse");
    assert_eq!(warehouse.len(), 2);
    assert!(warehouse.iter().all(|r| r.at.contains(&"duty01".to_owned())), "criticals @ the people on duty");
    let ack = handler.handle(json!({"ack": {"id": silent.id(), "by": "值班-王"}})).await;
    assert!(matches!(ack, Answer::Ack(domain::app::notify::AckOutcome::Acknowledged { .. })), "{ack:?}");
    rig.clock.advance(Duration::minutes(119));
    handler.handle(json!({"flush": "all"})).await;
    assert!(rig.fake.delivered("ops-lead").is_empty(), "not before two hours");
    rig.clock.advance(Duration::minutes(2));
    handler.handle(json!({"flush": "all"})).await;
    let lead = rig.fake.delivered("ops-lead");
    assert_eq!(lead.len(), 1, "{lead:?}");
    assert!(lead[0].text.contains(&missing.id()), "the unacknowledged one: {}", lead[0].text);
    assert!(!lead[0].text.contains(&silent.id()), "not the acknowledged one");
    assert!(lead[0].text.contains("订单缺失"));
}

#[tokio::test]
async fn a_failing_robot_is_retried_with_backoff_then_dead_lettered_with_its_reason_and_holds_up_nobody() {
    let rig = Rig::new("notify-failing", default_routing(), &[]).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    rig.fake.fail_next(Provider::WeCom, 1_000, Fault::Status(502));
    let unmapped = finding(6, rig.clock.now()); // UnmappedStatus → tech (WeCom)
    let answer = handler.handle(envelope(&unmapped, rig.clock.now())).await;
    assert!(format!("{answer:?}").contains("deferred"), "{answer:?}");
    // DingTalk works meanwhile.
    handler.handle(envelope(&finding(0, rig.clock.now()), rig.clock.now())).await;
    assert_eq!(rig.fake.delivered("warehouse").len(), 1);
    let mut flushes = 0;
    let mut dead = Vec::new();
    while dead.is_empty() && flushes < 20 {
        rig.clock.advance(Duration::minutes(31));
        handler.handle(json!({"flush": "all"})).await;
        dead = rig.dead_letters().await;
        flushes += 1;
    }
    assert_eq!(dead.len(), 1, "dead-lettered once the attempts ran out");
    let (body, attributes) = &dead[0];
    assert_eq!(attributes.get("kind").map(String::as_str), Some("robot"));
    assert_eq!(attributes.get("robot").map(String::as_str), Some("tech"));
    let reason = &attributes["reason"];
    assert!(reason.contains("gave up after 6 attempts") && reason.contains("HTTP 502"), "{reason}");
    assert!(body.contains("未映射状态码"), "the message itself is kept: {body}");
    assert!(flushes >= 5, "backoff across runs, not a storm: {flushes} flushes");
    let failed: Vec<DomainEvent> =
        rig.events.published().into_iter().filter(|e| matches!(e, DomainEvent::NotifyFailed { .. })).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
}

#[tokio::test]
async fn a_robot_with_a_wrong_secret_is_dead_lettered_at_once_with_one_event() {
    let rig = Rig::new("notify-refused", default_routing(), &[]).await;
    // The seller rotated the 加签 secret in DingTalk but not in orderhub.
    let parameter = json!({"kind": "dingtalk", "webhook": format!("https://oapi.dingtalk.com/robot/send?access_token=tokwh{}", rig.n),
                           "secret": "SECnot-the-current-one"});
    rig.ssm.put(&format!("{}robots/warehouse", rig.prefix), &parameter.to_string()).await.unwrap();
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    for n in [0, 14] {
        rig.clock.advance(Duration::minutes(11));
        handler.handle(envelope(&finding(n, rig.clock.now()), rig.clock.now())).await;
    }
    let dead = rig.dead_letters().await;
    assert_eq!(dead.len(), 2, "both messages kept");
    assert!(dead.iter().all(|(_, a)| a.get("code").map(String::as_str) == Some("310000")), "{dead:?}");
    assert!(dead.iter().all(|(body, _)| !body.contains("SECnot") && !body.contains("access_token")), "no secret kept");
    let failed = rig.events.published().into_iter().filter(|e| matches!(e, DomainEvent::NotifyFailed { .. })).count();
    assert_eq!(failed, 2, "one per cause and 10-minute window");
    // An event type notify does not know: dead-lettered, reported, not retried.
    let unknown =
        json!({"version": "0", "id": "x", "detail-type": "SomethingNew", "source": "orderhub", "detail": {"a": 1}});
    assert!(matches!(
        handler.handle(unknown).await,
        Answer::Finding(domain::app::notify::FindingOutcome::DeadLettered { .. })
    ));
    let dead = rig.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.get("kind").map(String::as_str), Some("finding"));
}

/// Every log line notify writes while the test runs, as JSON (Lambda's format), at the level
/// the function runs with in production and orderhub's own crates at trace.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn customer_notices_go_out_at_most_once_and_the_number_never_reaches_a_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,domain=trace,adapters=trace,notify=trace"))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rig = Rig::new("notify-sms", default_routing(), &[("NOTIFY_TIMEOUT_MS", "500")]).await;
    rig.aliyun().await;
    rig.contact("cust-1", PHONE).await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    let first = notice("douyin/shop-1001/6921-trust-1", "cust-1");
    // Delivered, then delivered again (SQS redelivers), and twice in one batch.
    for bodies in [vec![first.clone()], vec![first.clone()], vec![first.clone(), first.clone()]] {
        let Answer::Batch(answer) = handler.handle(batch(&bodies)).await else { panic!("a batch answer") };
        // The concurrent copy in one batch may be told to come back later; never sent twice.
        assert!(answer.batch_item_failures.len() <= 1, "{answer:?}");
    }
    assert_eq!(rig.fake.delivered("138****5678").len(), 1, "one SMS for the notice");

    // The provider answers after our timeout: it may have sent it. Never again without a person.
    rig.fake.fail_next(Provider::Aliyun, 1, Fault::Delay(std::time::Duration::from_millis(1_500)));
    let slow = notice("douyin/shop-1001/6921-trust-2", "cust-1");
    handler.handle(batch(std::slice::from_ref(&slow))).await;
    let aliyun = || rig.fake.received().iter().filter(|r| r.provider == Provider::Aliyun).count();
    // The fake records the slow request when its delay ends (if the closed connection lets it).
    let deadline = Instant::now() + std::time::Duration::from_secs(3);
    while aliyun() < 2 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let settled = aliyun();
    assert!(settled <= 2);
    handler.handle(batch(&[slow])).await;
    rig.clock.advance(Duration::hours(1));
    handler.handle(json!({"flush": "all"})).await;
    assert_eq!(aliyun(), settled, "the slow notice is not sent again, by redelivery or by a flush");
    let counts = wired.store.counts(domain::model::time::business_day(rig.clock.now())).await.unwrap();
    assert_eq!(counts.get("notices_unknown"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("notices_sent"), Some(&1), "{counts:?}");

    drop(_guard);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("douyin/shop-1001/6921-trust-1"), "the notice id is logged: {text}");
    assert!(text.contains("outcome unknown"), "the ambiguous send is said");
    for form in [PHONE, "8613812345678", "+86 138"] {
        assert!(!text.contains(form), "the number appears in the logs as {form}: {text}");
    }
}

#[tokio::test]
async fn without_a_provider_notices_are_kept_counted_and_sent_once_one_is_configured() {
    let rig = Rig::new("notify-noprovider", default_routing(), &[]).await;
    rig.contact("cust-2", "+8613900002222").await;
    let wired = rig.wired();
    let handler = wired.handler_with(&rig.events);
    let bodies: Vec<String> = (0..3).map(|n| notice(&format!("douyin/shop-1001/6921-trust-np{n}"), "cust-2")).collect();
    let Answer::Batch(answer) = handler.handle(batch(&bodies)).await else { panic!("a batch answer") };
    assert!(answer.batch_item_failures.is_empty(), "kept, so the queue may let go: {answer:?}");
    assert!(rig.dead_letters().await.is_empty(), "parked, not dead-lettered");
    let day = domain::model::time::business_day(rig.clock.now());
    assert_eq!(wired.store.counts(day).await.unwrap().get("notices_parked_no_provider"), Some(&3));
    rig.clock.advance(Duration::minutes(31));
    let Answer::Flush(report) = handler.handle(json!({"flush": "all"})).await else { panic!("flush") };
    assert_eq!(report.notices_waiting, 3, "still no provider: still kept, not counted twice");
    assert_eq!(wired.store.counts(day).await.unwrap().get("notices_parked_no_provider"), Some(&3));
    rig.tencent().await;
    rig.clock.advance(Duration::minutes(31));
    let Answer::Flush(report) = handler.handle(json!({"flush": "all"})).await else { panic!("flush") };
    assert_eq!(report.notices_sent, 1, "Tencent takes one per number per 30 s: {report:?}");
    for _ in 0..6 {
        rig.clock.advance(Duration::minutes(5));
        handler.handle(json!({"flush": "all"})).await;
    }
    assert_eq!(rig.fake.delivered("139****2222").len(), 3, "each notice once, within the provider's limits");
    let refused: Vec<String> = rig.fake.received().iter().filter(|r| !r.accepted).map(|r| r.outcome.clone()).collect();
    assert!(
        refused.iter().all(|code| code.starts_with("LimitExceeded.")),
        "only the 30-second rule refused: {refused:?}"
    );
}
