//! The front door through the function's status table, on the in-memory ports.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use domain::app::intake::{Handled, Incoming, Intake, MAX_BODY_BYTES, ReplayRequest};
use domain::model::callback::InboundMessage;
use domain::ports::secrets::{SecretCache, parameter_name};
use domain::ports::{Inbox, Secrets};
use domain::sources;
use domain::testing::clock::FixedClock;
use domain::testing::fixtures::{self, Signed};
use domain::testing::memory::{MemoryInbox, MemoryPublisher, MemoryQueue, MemorySecrets, MemoryStore};
use domain::{ShopId, Source};

use super::{Reply, reply};

/// The door's answer as the function gives it: the outcome and its HTTP reply.
async fn receive(front: &Intake<'_>, incoming: Incoming) -> (Reply, Handled) {
    let source = incoming.source.parse::<Source>().ok();
    let handled = front.receive(incoming).await;
    (reply(source, &handled), handled)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or_default()
}

struct World {
    inbox: MemoryInbox,
    queue: MemoryQueue,
    bus: MemoryPublisher,
    store: MemoryStore,
    secrets: MemorySecrets,
    clock: FixedClock,
}

impl World {
    async fn new() -> Self {
        let world = World {
            inbox: MemoryInbox::default(),
            queue: MemoryQueue::default(),
            bus: MemoryPublisher::default(),
            store: MemoryStore::default(),
            secrets: MemorySecrets::default(),
            clock: FixedClock::new(at()),
        };
        for source in
            [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App]
        {
            world.set_secret(source, "s3cret", None).await;
        }
        world
    }

    async fn set_secret(&self, source: Source, secret: &str, previous: Option<&str>) {
        let shop = ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}"));
        let name = parameter_name("test", source, &shop);
        self.secrets
            .put(&name, &fixtures::secret_json(source, secret, previous))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn front<'a>(&'a self, cache: &'a SecretCache<'a>) -> Intake<'a> {
        Intake {
            inbox: &self.inbox,
            queue: &self.queue,
            events: &self.bus,
            stats: &self.store,
            secrets: cache,
            quarantine_quota_per_hour: 3,
            clock: &self.clock,
            lease: chrono::Duration::seconds(60),
            budget: std::time::Duration::from_secs(10),
            shards: 8,
        }
    }
}

fn incoming(source: Source, signed: &Signed) -> Incoming {
    Incoming {
        method: "POST".into(),
        source: source.to_string(),
        shop: "shop-1".into(),
        query: signed.query.clone(),
        headers: signed.headers.clone(),
        body: signed.body.clone(),
        received_at: at(),
        sender: "203.0.113.7".parse().ok(),
    }
}

fn payload(source: Source) -> Vec<u8> {
    match source {
        Source::Douyin => fixtures::douyin_push("101", "7000000000000000001", json!({"p_id": 6_921_000_000_001_i64, "pay_time": 1_794_362_400, "s_ids": [1]})),
        Source::Youzan => fixtures::youzan_push("trade_TradePaid", "E2026111100001", "WAIT_SELLER_SEND_GOODS", 1_794_362_400),
        Source::Kuaishou => fixtures::kuaishou_message("ks-msg-1", "KWAISHOP_ORDER_STATUS_CHANGE", "2026111100001", 30, 1_794_362_400_000, false),
        Source::Kuaidi100 => fixtures::kuaidi100_param("shunfeng", "SF1001", "3", "304", "快件已被丰巢智能柜签收", "2026-11-11 10:00:00", "120.15,30.28"),
        Source::Wechatpay => json!({"out_trade_no": "mp-1001", "transaction_id": "4200001", "trade_state": "SUCCESS", "success_time": "2026-11-11T10:00:00+08:00"}).to_string().into_bytes(),
        _ => fixtures::app_event("order.status", at(), json!({"order_id": "mp-1001", "status": "Paid"})),
    }
}

const SOURCES: [Source; 6] =
    [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App];

#[tokio::test]
async fn every_source_valid_callback_is_archived_enqueued_and_acked_as_the_sender_expects() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    for source in SOURCES {
        let mut signed = fixtures::sign(
            source,
            &payload(source),
            &fixtures::signing_key(source, "s3cret"),
            at(),
            &format!("{source}-m1"),
        );
        if source == Source::Kuaidi100 {
            signed.query = vec![("order".into(), "douyin/shop-1/6921000000001".into())];
        }
        let (reply, handled) = receive(&front, incoming(source, &signed)).await;
        assert_eq!(handled, Handled::Enqueued, "{source}");
        let ack = sources::ack(source);
        assert_eq!((reply.status, reply.body.as_str()), (ack.status, ack.body), "{source}");
        let sent = world.queue.drain();
        assert_eq!(sent.len(), 1, "{source}");
        let message: InboundMessage = serde_json::from_str(&sent[0].body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(message.source, source);
        let events = sources::parse(
            source,
            &message.shop,
            message.payload.as_deref().unwrap_or_default().as_bytes(),
            &message.query,
        );
        assert!(events.is_ok_and(|e| !e.is_empty()), "{source}: the enqueued payload parses");
        // A duplicate is acked and not enqueued again.
        let (reply, handled) = receive(&front, incoming(source, &signed)).await;
        assert_eq!((reply.status, handled), (ack.status, Handled::Duplicate), "{source}");
        assert!(world.queue.drain().is_empty());
    }
}

#[tokio::test]
async fn a_tampered_callback_is_401_quarantined_and_replayable_after_the_key_fix() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100, Source::App] {
        // The platform signs with a new secret we do not know yet (the 327-order outage).
        let new_secret = if source == Source::App {
            "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy0xMjM0NQ=="
        } else {
            "rotated-by-platform"
        };
        let signed = fixtures::sign(
            source,
            &payload(source),
            &fixtures::signing_key(source, new_secret),
            at(),
            &format!("{source}-q1"),
        );
        let (reply, handled) = receive(&front, incoming(source, &signed)).await;
        assert_eq!(reply.status, 401, "{source}");
        assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "{source}: {handled:?}");
        assert!(!reply.body.contains("s3cret") && !reply.body.contains("rotated"), "no secret in the answer");
        assert!(world.queue.drain().is_empty());
        // Ops fix the key, then replay the window.
        world.set_secret(source, new_secret, Some("s3cret")).await;
        let report = front
            .replay(&ReplayRequest {
                source: source.to_string(),
                shop: "shop-1".into(),
                from: at() - Duration::hours(1),
                to: at() + Duration::hours(1),
            })
            .await;
        assert_eq!((report.replayed, report.still_failing, report.duplicates), (1, 0, 0), "{source}: {report:?}");
        assert_eq!(world.queue.drain().len(), 1, "{source}: replayed into the queue");
        let again = front
            .replay(&ReplayRequest {
                source: source.to_string(),
                shop: "shop-1".into(),
                from: at() - Duration::hours(1),
                to: at() + Duration::hours(1),
            })
            .await;
        assert_eq!(again.examined, 0, "{source}: replayed copies leave the quarantine");
    }
    let rejected = world.bus.published().iter().filter(|e| e.detail_type() == "WebhookRejected").count();
    assert_eq!(rejected, 4, "every rejection is published");
}

#[tokio::test]
async fn the_previous_secret_still_verifies_during_a_rotation() {
    let world = World::new().await;
    for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100] {
        world.set_secret(source, "new-secret", Some("s3cret")).await;
    }
    world
        .set_secret(Source::App, "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy0xMjM0NQ==", Some(fixtures::APP_SECRET))
        .await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    for source in [Source::Douyin, Source::Youzan, Source::Kuaidi100, Source::App] {
        let signed = fixtures::sign(
            source,
            &payload(source),
            &fixtures::signing_key(source, "s3cret"),
            at(),
            &format!("{source}-r1"),
        );
        let (reply, handled) = receive(&front, incoming(source, &signed)).await;
        assert_eq!(handled, Handled::Enqueued, "{source}: {reply:?}");
        let archived = world
            .inbox
            .archived(
                source,
                &ShopId::parse("shop-1").unwrap_or_else(|e| panic!("{e}")),
                &serde_json::from_str::<InboundMessage>(&world.queue.drain()[0].body)
                    .map(|m| m.message_id)
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .await;
        assert_eq!(archived.ok().flatten().and_then(|a| a.key_slot).as_deref(), Some("previous"), "{source}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_answers_and_never_a_500() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let good = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "s3cret", at(), "m");
    let mut get = incoming(Source::Youzan, &good);
    get.method = "GET".into();
    assert_eq!(receive(&front, get).await.0.status, 405);
    let mut unknown = incoming(Source::Youzan, &good);
    unknown.source = "tiktok".into();
    assert_eq!(receive(&front, unknown).await.0.status, 404);
    let mut no_shop = incoming(Source::Youzan, &good);
    no_shop.shop = "shop-2".into();
    assert_eq!(receive(&front, no_shop).await.0.status, 404, "a shop without secrets is unknown");
    let mut pulled = incoming(Source::Youzan, &good);
    pulled.source = "pdd".into();
    assert_eq!(receive(&front, pulled).await.0.status, 404, "pdd is pulled, not pushed");
    let mut huge = incoming(Source::Youzan, &good);
    huge.body = vec![b'x'; MAX_BODY_BYTES + 1];
    assert_eq!(receive(&front, huge).await.0.status, 413);
    let malformed = fixtures::sign(Source::Youzan, b"{not json", "s3cret", at(), "m");
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &malformed)).await;
    assert_eq!(reply.status, 400);
    assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "malformed bodies are kept too");
    assert!(world.queue.drain().is_empty());
}

#[tokio::test]
async fn test_pushes_and_heartbeats_are_acked_and_not_enqueued() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let douyin = fixtures::sign(Source::Douyin, &fixtures::douyin_push("0", "1", json!({})), "s3cret", at(), "m");
    let (reply, handled) = receive(&front, incoming(Source::Douyin, &douyin)).await;
    assert_eq!((reply.status, reply.body.as_str(), handled), (200, r#"{"code":0,"msg":"success"}"#, Handled::Probe));
    let heartbeat = fixtures::kuaishou_message("hb", "", "0", 0, 1_794_362_400_000, true);
    let kuaishou = fixtures::sign(Source::Kuaishou, &heartbeat, fixtures::KUAISHOU_MESSAGE_KEY, at(), "m");
    let (reply, handled) = receive(&front, incoming(Source::Kuaishou, &kuaishou)).await;
    assert_eq!((reply.body.as_str(), handled), (r#"{"result":1}"#, Handled::Probe));
    assert!(world.queue.drain().is_empty());
}

#[tokio::test]
async fn a_failed_enqueue_is_503_and_the_retry_is_not_taken_for_a_duplicate() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let signed = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "s3cret", at(), "m");
    world.queue.fail_next("throttled");
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!(reply.status, 503);
    assert!(matches!(handled, Handled::Unavailable(_)));
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!((reply.status, handled), (200, Handled::Enqueued));
}

#[tokio::test]
async fn the_quarantine_is_bounded_per_shop_and_hour() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let mut kept = 0;
    for n in 0..10 {
        let body = format!("{{\"garbage\":{n}}}").into_bytes();
        let forged = Signed {
            headers: vec![("client-id".into(), "yz-client-1".into()), ("event-sign".into(), "00".into())],
            body,
            query: vec![],
        };
        let mut request = incoming(Source::Youzan, &forged);
        request.received_at = at() + Duration::seconds(n);
        let (reply, handled) = receive(&front, request).await;
        assert_eq!(reply.status, 401);
        if matches!(handled, Handled::Rejected { quarantined: true, .. }) {
            kept += 1;
        }
    }
    assert_eq!(kept, 3, "the quota of 3 per hour holds");
    // The platform's own refused callbacks, from its network, still have their quota.
    let genuine = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "rotated", at(), "g-1");
    let mut from_platform = incoming(Source::Youzan, &genuine);
    from_platform.sender = "198.51.100.20".parse().ok();
    let (_, handled) = receive(&front, from_platform).await;
    assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "junk from elsewhere used none of it");
}

#[tokio::test]
async fn a_callback_for_a_shop_not_configured_yet_is_404_kept_and_replayed_once_it_is() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let signed = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "new-shop-secret", at(), "n-1");
    let mut first = incoming(Source::Youzan, &signed);
    first.shop = "shop-new".into();
    let (reply, handled) = receive(&front, first).await;
    assert_eq!(reply.status, 404, "unknown to us: the platform retries");
    assert!(matches!(handled, Handled::Rejected { quarantined: true, .. }), "{handled:?}");
    assert!(world.queue.drain().is_empty());
    // Ops configure the shop, then replay its window: the callback is not lost.
    let shop = ShopId::parse("shop-new").unwrap_or_else(|e| panic!("{e}"));
    world
        .secrets
        .put(
            &parameter_name("test", Source::Youzan, &shop),
            &fixtures::secret_json(Source::Youzan, "new-shop-secret", None),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let report = front
        .replay(&ReplayRequest {
            source: "youzan".into(),
            shop: "shop-new".into(),
            from: at() - Duration::hours(1),
            to: at() + Duration::hours(1),
        })
        .await;
    assert_eq!((report.replayed, report.still_failing), (1, 0), "{report:?}");
    assert_eq!(world.queue.drain().len(), 1);
}

#[tokio::test]
async fn made_up_shop_names_share_one_bounded_quota() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let junk = Signed { headers: vec![], body: b"{}".to_vec(), query: vec![] };
    let mut kept = 0;
    let tries = domain::app::intake::UNCONFIGURED_SHOPS_QUOTA_PER_HOUR + 50;
    for n in 0..tries {
        let mut request = incoming(Source::Youzan, &junk);
        request.shop = format!("made-up-{n}");
        request.received_at = at() + Duration::seconds(i64::from(n));
        // One a second: within the secret reads' budget (a faster flood is answered 503).
        world.clock.set(request.received_at);
        let (reply, handled) = receive(&front, request).await;
        assert_eq!(reply.status, 404);
        kept += u32::from(matches!(handled, Handled::Rejected { quarantined: true, .. }));
    }
    assert_eq!(kept, domain::app::intake::UNCONFIGURED_SHOPS_QUOTA_PER_HOUR, "one quota for every unconfigured shop");
}

#[tokio::test]
async fn wechatpay_probes_and_stale_timestamps_are_refused() {
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let front = world.front(&cache);
    let mut probe =
        fixtures::sign(Source::Wechatpay, &payload(Source::Wechatpay), fixtures::WECHATPAY_PRIVATE_KEY, at(), "wx-1");
    for (name, value) in &mut probe.headers {
        if name == "wechatpay-signature" {
            *value = format!("WECHATPAY/SIGNTEST/{value}");
        }
    }
    assert_eq!(receive(&front, incoming(Source::Wechatpay, &probe)).await.0.status, 401);
    let old = fixtures::sign(
        Source::Wechatpay,
        &payload(Source::Wechatpay),
        fixtures::WECHATPAY_PRIVATE_KEY,
        at() - Duration::seconds(301),
        "wx-2",
    );
    let (reply, handled) = receive(&front, incoming(Source::Wechatpay, &old)).await;
    assert_eq!(reply.status, 401);
    assert!(matches!(handled, Handled::Rejected { reason, .. } if reason.contains("replay window")));
    let fresh = fixtures::sign(
        Source::Wechatpay,
        &payload(Source::Wechatpay),
        fixtures::WECHATPAY_PRIVATE_KEY,
        at() - Duration::seconds(299),
        "wx-3",
    );
    assert_eq!(receive(&front, incoming(Source::Wechatpay, &fresh)).await.0.status, 204);
}

/// A queue whose sends hang (the call never answers: the Lambda would be killed) while `hang` is
/// set, and otherwise go to the memory queue.
struct HangingQueue<'a> {
    inner: &'a MemoryQueue,
    hang: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl domain::ports::Queue for HangingQueue<'_> {
    async fn send(
        &self,
        messages: &[domain::ports::OutboundMessage],
    ) -> Result<Vec<String>, domain::ports::QueueError> {
        if self.hang.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.send(messages).await
    }
}

#[tokio::test]
async fn a_delivery_in_flight_is_not_a_duplicate_and_a_dead_one_is_retried_after_its_lease() {
    // Before: the dedupe record was written before the enqueue with no state, so a second
    // delivery during the first (or any retry after the first hung and was killed) was acked
    // as a duplicate — and nothing was ever enqueued.
    let world = World::new().await;
    let cache = SecretCache::new(&world.secrets, &world.clock, "test", Duration::minutes(2));
    let hanging = HangingQueue { inner: &world.queue, hang: std::sync::atomic::AtomicBool::new(true) };
    let front = Intake { queue: &hanging, budget: std::time::Duration::from_millis(50), ..world.front(&cache) };
    let signed = fixtures::sign(Source::Youzan, &payload(Source::Youzan), "s3cret", at(), "m-hang");
    // The first delivery hangs in the enqueue past the door's budget: the sender must retry.
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!((reply.status, &handled), (503, &Handled::Unavailable("timed out".into())));
    // Its retry (or an overlapping second delivery) while the first may still be acting: 503.
    hanging.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!(reply.status, 503, "{handled:?}");
    assert!(world.queue.drain().is_empty());
    // Once the lease has run out, the retry is taken: enqueued once, acked.
    world.clock.advance(Duration::seconds(61));
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!((reply.status, handled), (200, Handled::Enqueued));
    assert_eq!(world.queue.drain().len(), 1);
    let (reply, handled) = receive(&front, incoming(Source::Youzan, &signed)).await;
    assert_eq!((reply.status, handled), (200, Handled::Duplicate), "now it is on its way: a duplicate");
}
