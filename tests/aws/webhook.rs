//! webhook-verify end to end on the local stack: the function's handler with the real
//! adapters (DynamoDB inbox, SQS, EventBridge, SSM), every source: valid, tampered, rotated key,
//! duplicate, replay after a key fix, oversized, malformed.

use adapters::{BusPublisher, Clients, DynamoInbox, DynamoStats, SqsQueue, SsmSecrets};
use chrono::{DateTime, Duration, Utc};
use domain::Source;
use domain::app::intake::{Intake, MAX_BODY_BYTES};
use domain::model::callback::InboundMessage;
use domain::ports::secrets::{SecretCache, parameter_name};
use domain::ports::{Inbox, Secrets};
use domain::testing::clock::FixedClock;
use domain::testing::fixtures::{self, Signed};
use serde_json::{Value, json};
use tests::stack::{self, clients, namespace};

struct Rig {
    clients: Clients,
    inbox: DynamoInbox,
    queue: SqsQueue,
    queue_url: String,
    bus: BusPublisher,
    stats: DynamoStats,
    ssm: SsmSecrets,
    clock: FixedClock,
    stage: String,
    shop: String,
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        let clients = clients().await;
        let ns = namespace(prefix);
        let queue_url = stack::scratch_queue(&clients, &ns).await;
        Rig {
            inbox: DynamoInbox::new(clients.dynamodb.clone(), stack::var("INBOX_TABLE")),
            queue: SqsQueue::new(clients.sqs.clone(), queue_url.clone()),
            bus: BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME")),
            stats: DynamoStats::new(clients.dynamodb.clone(), stack::var("STATS_TABLE")),
            ssm: SsmSecrets::new(clients.ssm.clone()),
            clock: FixedClock::new(Utc::now()),
            stage: ns.clone(),
            // A shop of its own: quarantine and dedupe records never meet other runs'.
            shop: format!("s{}", ns.replace('-', "")),
            queue_url,
            clients,
        }
    }

    async fn set_secret(&self, source: Source, secret: &str, previous: Option<&str>) {
        let shop = domain::ShopId::parse(&self.shop).unwrap();
        self.ssm
            .put(&parameter_name(&self.stage, source, &shop), &fixtures::secret_json(source, secret, previous))
            .await
            .unwrap();
    }

    fn now(&self) -> DateTime<Utc> {
        use domain::ports::clock::Clock;
        self.clock.now()
    }

    async fn post(&self, cache: &SecretCache<'_>, source: &str, signed: &Signed) -> (u16, String) {
        let front = Intake {
            inbox: &self.inbox,
            queue: &self.queue,
            events: &self.bus,
            stats: &self.stats,
            secrets: cache,
            quarantine_quota_per_hour: 50,
            clock: &self.clock,
            lease: chrono::Duration::seconds(60),
            budget: std::time::Duration::from_secs(10),
            shards: 8,
        };
        let event = fixtures::http_event("POST", source, &self.shop, signed, self.now());
        let answer = serde_json::to_value(webhook_verify::handle(&front, event, self.now()).await).unwrap();
        let status = u16::try_from(answer["statusCode"].as_i64().unwrap_or(0)).unwrap();
        (status, answer["body"].as_str().unwrap_or_default().to_owned())
    }

    async fn enqueued(&self) -> Vec<InboundMessage> {
        stack::drain(&self.clients, &self.queue_url).await.iter().map(|b| serde_json::from_str(b).unwrap()).collect()
    }
}

fn payload(source: Source, at: DateTime<Utc>, n: u32) -> (Vec<u8>, Vec<(String, String)>, String) {
    let id = format!("{source}-{n}-{}", at.timestamp_micros());
    match source {
        Source::Douyin => (
            fixtures::douyin_push("101", &id, json!({"p_id": format!("69210{n:08}"), "pay_time": at.timestamp()})),
            vec![],
            id,
        ),
        Source::Youzan => (
            fixtures::youzan_push(
                "trade_TradePaid",
                &format!("E2026{n:08}"),
                "WAIT_SELLER_SEND_GOODS",
                at.timestamp() + i64::from(n),
            ),
            vec![],
            id,
        ),
        Source::Kuaishou => (
            fixtures::kuaishou_message(
                &id,
                "KWAISHOP_ORDER_STATUS_CHANGE",
                &format!("2026{n:08}"),
                30,
                at.timestamp_millis(),
                false,
            ),
            vec![],
            id,
        ),
        Source::Kuaidi100 => (
            fixtures::kuaidi100_param(
                "shunfeng",
                &format!("SF{n}-{}", at.timestamp_micros()),
                "0",
                "1002",
                "快件到达【杭州转运中心】",
                &format!("2026-11-11 10:{:02}:00", n % 60),
                "",
            ),
            vec![("order".into(), format!("douyin/shop-1001/69210{n:08}"))],
            id,
        ),
        Source::Wechatpay => (
            json!({"out_trade_no": format!("mp-{n:06}"), "trade_state": "SUCCESS", "success_time": at.to_rfc3339()})
                .to_string()
                .into_bytes(),
            vec![],
            id,
        ),
        _ => (
            fixtures::app_event(
                "order.status",
                at,
                json!({"order_id": format!("mp-{n:06}"), "status": "Paid", "at": at.to_rfc3339()}),
            ),
            vec![],
            id,
        ),
    }
}

fn signed(source: Source, secret: &str, at: DateTime<Utc>, n: u32) -> Signed {
    let (body, query, id) = payload(source, at, n);
    let mut signed = fixtures::sign(source, &body, &fixtures::signing_key(source, secret), at, &id);
    signed.query = query;
    signed
}

const SOURCES: [Source; 6] =
    [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App];

#[tokio::test]
async fn every_source_end_to_end_valid_duplicate_and_three_aws_requests_per_callback() {
    let rig = Rig::new("wh-valid").await;
    for source in SOURCES {
        rig.set_secret(source, "s3cret", None).await;
    }
    let cache = SecretCache::new(&rig.ssm, &rig.clock, &rig.stage, Duration::minutes(2));
    for source in SOURCES {
        rig.clients.requests.take();
        let first = signed(source, "s3cret", rig.now(), 1);
        // Warm the secret cache, as any invocation after the first would be.
        let (status, body) = rig.post(&cache, source.as_str(), &first).await;
        let ack = domain::sources::ack(source);
        assert_eq!((status, body.as_str()), (ack.status, ack.body), "{source}");
        let before = rig.clients.requests.total();
        let (status, _) = rig.post(&cache, source.as_str(), &signed(source, "s3cret", rig.now(), 2)).await;
        let requests = rig.clients.requests.total() - before;
        assert_eq!(status, ack.status, "{source}");
        // The claim (with its lease), the enqueue, the mark "done": an attempt still in flight
        // is never taken for a duplicate, at one request more than a bare dedupe record.
        assert_eq!(requests, 3, "{source}: inbox claim, enqueue, done, nothing else, before the ack");
        eprintln!("{source}: {requests} AWS requests per accepted callback (warm)");
        let before = rig.clients.requests.total();
        let (status, _) = rig.post(&cache, source.as_str(), &first).await;
        assert_eq!(status, ack.status, "{source}: a duplicate is acked");
        assert_eq!(rig.clients.requests.total() - before, 1, "{source}: one refused conditional write");
        tests::policy::assert_granted("WebhookVerifyFunction", &rig.clients.requests.take());
        let enqueued = rig.enqueued().await;
        assert_eq!(enqueued.len(), 2, "{source}: the duplicate was not enqueued again");
        assert!(enqueued.iter().all(|m| m.source == source && m.payload.is_some()));
        let archived =
            rig.inbox.archived(source, &enqueued[0].shop, &enqueued[0].message_id).await.unwrap().expect("archived");
        assert_eq!(
            archived.key_slot.as_deref().map(|s| s.starts_with("current") || s.starts_with("serial")),
            Some(true)
        );
    }
}

#[tokio::test]
async fn tampered_and_rotated_keys_quarantine_then_replay_after_the_fix() {
    let rig = Rig::new("wh-rotate").await;
    let sources = [Source::Douyin, Source::Youzan, Source::Kuaidi100, Source::App];
    for source in sources {
        rig.set_secret(source, "s3cret", None).await;
    }
    let cache = SecretCache::new(&rig.ssm, &rig.clock, &rig.stage, Duration::seconds(0));
    for source in sources {
        // Any one changed byte fails.
        let mut tampered = signed(source, "s3cret", rig.now(), 10);
        let last = tampered.body.len() - 2;
        tampered.body[last] ^= 0x01;
        let (status, body) = rig.post(&cache, source.as_str(), &tampered).await;
        assert_eq!(status, 401, "{source}: {body}");
        assert!(!body.contains("s3cret"));
        // The platform rotates its key before we do: refused, quarantined, not lost.
        let new_secret =
            if source == Source::App { "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy0xMjM0NQ==" } else { "rotated" };
        let (status, _) = rig.post(&cache, source.as_str(), &signed(source, new_secret, rig.now(), 11)).await;
        assert_eq!(status, 401, "{source}");
        assert!(rig.enqueued().await.is_empty());
        // Ops store the new key with the old one as previous: both verify now.
        rig.set_secret(source, new_secret, Some(if source == Source::App { fixtures::APP_SECRET } else { "s3cret" }))
            .await;
        let (status, _) = rig.post(&cache, source.as_str(), &signed(source, "s3cret", rig.now(), 12)).await;
        assert_eq!(status, domain::sources::ack(source).status, "{source}: the previous secret still verifies");
        assert_eq!(rig.enqueued().await.len(), 1);
        // And the quarantined callback is replayed.
        let front = Intake {
            inbox: &rig.inbox,
            queue: &rig.queue,
            events: &rig.bus,
            stats: &rig.stats,
            secrets: &cache,
            quarantine_quota_per_hour: 50,
            clock: &rig.clock,
            lease: chrono::Duration::seconds(60),
            budget: std::time::Duration::from_secs(10),
            shards: 8,
        };
        let replay = json!({"replay": {"source": source.as_str(), "shop": rig.shop, "from": (rig.now() - Duration::minutes(5)).to_rfc3339(), "to": (rig.now() + Duration::minutes(5)).to_rfc3339()}});
        let report = serde_json::to_value(webhook_verify::handle(&front, replay, rig.now()).await).unwrap();
        assert_eq!(report["replayed"], 1, "{source}: {report}");
        assert_eq!(report["still_failing"], 1, "{source}: the tampered one stays in quarantine: {report}");
        assert_eq!(rig.enqueued().await.len(), 1);
    }
}

#[tokio::test]
async fn bad_requests_are_400_404_405_413_never_500_and_counted() {
    let rig = Rig::new("wh-bad").await;
    rig.set_secret(Source::Youzan, "s3cret", None).await;
    let cache = SecretCache::new(&rig.ssm, &rig.clock, &rig.stage, Duration::minutes(2));
    let front = Intake {
        inbox: &rig.inbox,
        queue: &rig.queue,
        events: &rig.bus,
        stats: &rig.stats,
        secrets: &cache,
        quarantine_quota_per_hour: 50,
        clock: &rig.clock,
        lease: chrono::Duration::seconds(60),
        budget: std::time::Duration::from_secs(10),
        shards: 8,
    };
    let good = signed(Source::Youzan, "s3cret", rig.now(), 20);
    let cases: Vec<(Value, u16)> = vec![
        (fixtures::http_event("GET", "youzan", &rig.shop, &good, rig.now()), 405),
        (fixtures::http_event("POST", "tiktok", &rig.shop, &good, rig.now()), 404),
        (fixtures::http_event("POST", "youzan", "no-such-shop", &good, rig.now()), 404),
        (
            fixtures::http_event(
                "POST",
                "youzan",
                &rig.shop,
                &Signed { body: vec![b'{'; MAX_BODY_BYTES + 1], ..good.clone() },
                rig.now(),
            ),
            413,
        ),
        (
            fixtures::http_event(
                "POST",
                "youzan",
                &rig.shop,
                &fixtures::sign(Source::Youzan, b"[not an object", "s3cret", rig.now(), ""),
                rig.now(),
            ),
            400,
        ),
        (
            json!({"requestContext": {"http": {"method": "POST"}}, "isBase64Encoded": true, "body": "%%%", "rawPath": "/webhooks/youzan/shop-1001"}),
            400,
        ),
    ];
    for (event, want) in cases {
        let answer = serde_json::to_value(webhook_verify::handle(&front, event, rig.now()).await).unwrap();
        assert_eq!(answer["statusCode"], want, "{answer}");
    }
    let ops = serde_json::to_value(webhook_verify::handle(&front, json!({"nonsense": true}), rig.now()).await).unwrap();
    assert!(ops["error"].is_string(), "ops junk gets a clear answer: {ops}");
    assert!(rig.enqueued().await.is_empty());
}

#[tokio::test]
async fn a_large_callback_travels_through_the_archive_not_the_queue_message() {
    let rig = Rig::new("wh-large").await;
    rig.set_secret(Source::App, fixtures::APP_SECRET, None).await;
    let cache = SecretCache::new(&rig.ssm, &rig.clock, &rig.stage, Duration::minutes(2));
    // Within the body limit, but escaping (every quote and backslash doubled) makes its
    // message longer than SQS takes: it must go by the archive, not fail.
    let note = "\\\"".repeat(40_000);
    let body = fixtures::app_event(
        "order.status",
        rig.now(),
        json!({"order_id": "mp-large", "status": "Paid", "at": rig.now().to_rfc3339(), "note": note}),
    );
    assert!(body.len() <= MAX_BODY_BYTES && body.len() > 150 * 1024, "{}", body.len());
    // And a body at the limit of random Chinese text (little for deflate to take): accepted.
    let mut note = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while note.len() < MAX_BODY_BYTES - 512 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        note.push(char::from_u32(0x4e00 + u32::try_from(x % 0x5000).unwrap()).unwrap());
    }
    let random = fixtures::app_event(
        "order.status",
        rig.now(),
        json!({"order_id": "mp-random", "status": "Paid", "at": rig.now().to_rfc3339(), "note": note}),
    );
    assert!(random.len() <= MAX_BODY_BYTES, "{}", random.len());
    for (n, body) in [body, random].into_iter().enumerate() {
        let id = format!("msg_large_{n}_{}", rig.now().timestamp_micros());
        let large = fixtures::sign(Source::App, &body, fixtures::APP_SECRET, rig.now(), &id);
        let (status, _) = rig.post(&cache, "app", &large).await;
        assert_eq!(status, 204, "body {n} of {} bytes", body.len());
        let enqueued = rig.enqueued().await;
        assert_eq!(enqueued.len(), 1);
        if n == 0 {
            assert_eq!(enqueued[0].payload, None, "too large for SQS once escaped: the consumer reads the archive");
        }
        let archived = rig
            .inbox
            .archived(Source::App, &enqueued[0].shop, &enqueued[0].message_id)
            .await
            .unwrap()
            .expect("archived");
        assert_eq!(archived.payload(), body.as_slice(), "byte for byte");
    }
}
