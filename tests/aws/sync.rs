//! order-sync end to end on the local stack, against the independent fake gateway: PDD and
//! Taobao shops whose orders arrive only by pull; the articles' outage (a channel's callbacks all
//! refused for two hours while refunds succeed on the platform) healed without any replay; bad
//! input per shop; the token lifecycle in its own parameters; Kuaidi100 subscription and
//! re-subscription; the daily count reconciliation; and the catch-up of a cold shop, measured.
//!
//! Every test has its own tables (orders, stats, inbox, sync) and queue, so runs and sweeps see
//! only their own shops. One clock for everything: the fake gateway's.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use adapters::platform::{ClientConfig, Kuaidi100Client};
use adapters::{Clients, DynamoSync, DynamoTables, SqsQueue, SsmSecrets};
use chrono::Duration;
use domain::app::apply::ApplyChange;
use domain::app::apply_message::ApplyMessage;
use domain::app::intake::{Handled, Incoming, Intake};
use domain::app::refund_check::{RefundCheck, RefundRules};
use domain::app::subscribe_tracking::{SubscribeTracking, TrackingConfig, TrackingPorts, TrackingRules};
use domain::app::sync_channel::{SyncChannel, SyncPorts, SyncRules};
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules, token_parameter};
use domain::model::callback::InboundMessage;
use domain::model::domain_event::DomainEvent;
use domain::model::lifecycle::{Lifecycle, RefundState};
use domain::model::order::Provenance;
use domain::model::sync::{Feed, ShopTokens};
use domain::ports::platform::PlatformQuery;
use domain::ports::pull::{ChangeFeed, TokenRefresh};
use domain::ports::secrets::{Secret, SecretCache, parameter_name};
use domain::ports::sync::{CheckpointStore, TokenLedger};
use domain::ports::{InventoryStore, OrderStore, Secrets};
use domain::rules::timing::Rules;
use domain::testing::fixtures;
use domain::testing::memory::MemoryPublisher;
use domain::{OrderKey, ShopId, Source};
use order_sync::Handler;
use serde_json::{Value, json};
use tests::fake_gateway::{self, FakeGateway, Order, Platform, RateLimit, RawFault, Refund, default_app};
use tests::stack::{self, clients, namespace};

fn platform_of(source: Source) -> Platform {
    match source {
        Source::Pdd => Platform::Pdd,
        Source::Taobao => Platform::Taobao,
        Source::Jd => Platform::Jd,
        Source::Douyin => Platform::Douyin,
        Source::Kuaishou => Platform::Kuaishou,
        Source::Youzan => Platform::Youzan,
        other => panic!("no gateway for {other}"),
    }
}

struct Rig {
    clients: Clients,
    gw: FakeGateway,
    tables: DynamoTables,
    /// The inbox table's name (the test drops dedupe records to play a lost window).
    inbox_table: String,
    sync: DynamoSync,
    queue_url: String,
    queue: SqsQueue,
    ssm: SsmSecrets,
    bus: MemoryPublisher,
    stage: String,
    ns: String,
    feeds: Vec<Arc<dyn ChangeFeed>>,
    queries: Vec<Arc<dyn PlatformQuery>>,
    kuaidi100: Kuaidi100Client,
    rules: Rules,
    sync_rules: SyncRules,
    tracking: TrackingConfig,
    tracking_rules: TrackingRules,
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        let clients = clients().await;
        let ns = namespace(prefix);
        let gw = FakeGateway::start().await.unwrap();
        let private = |var| stack::private_table(&clients, var, &ns);
        let (orders, stats, inbox, sync) = (
            private("ORDERS_TABLE").await,
            private("STATS_TABLE").await,
            private("INBOX_TABLE").await,
            private("SYNC_TABLE").await,
        );
        let queue_url = stack::scratch_queue(&clients, &ns).await;
        let built = adapters::platform::CLIENTS
            .iter()
            .map(|row| {
                let config =
                    ClientConfig::new(&gw.base_url(platform_of(row.source))).unwrap().with_clock(Arc::new(gw.clone()));
                (row.build)(config).unwrap()
            })
            .collect::<Vec<_>>();
        let kuaidi100 = Kuaidi100Client::new(ClientConfig::new(&gw.kuaidi100_url()).unwrap()).unwrap();
        Rig {
            tables: DynamoTables::from_names(clients.dynamodb.clone(), &orders, &stats, &inbox),
            inbox_table: inbox.clone(),
            sync: DynamoSync::new(clients.dynamodb.clone(), sync),
            queue: SqsQueue::new(clients.sqs.clone(), queue_url.clone()),
            queue_url,
            ssm: SsmSecrets::new(clients.ssm.clone()),
            bus: MemoryPublisher::default(),
            stage: ns.clone(),
            ns: ns.replace('-', ""),
            feeds: built.iter().map(|c| c.feed.clone()).collect(),
            queries: built.iter().filter_map(|c| c.query.clone()).collect(),
            kuaidi100,
            rules: Rules::default(),
            sync_rules: SyncRules { max_wait: StdDuration::from_millis(50), concurrency: 1, ..SyncRules::default() },
            tracking: TrackingConfig {
                webhook_base: "https://hooks.example.com".into(),
                key_parameter: format!("/orderhub/{ns}/kuaidi100/key"),
                instance: "test".into(),
            },
            tracking_rules: TrackingRules::default(),
            gw,
            clients,
        }
    }

    /// A shop name unique to this test.
    fn shop(&self, name: &str) -> String {
        format!("{name}-{}", self.ns)
    }

    /// An order id unique to this test (the inbox's dedupe keys are per source, not per shop).
    fn order(&self, n: usize) -> String {
        format!(
            "{}{n:05}",
            self.ns
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .chars()
                .filter(char::is_ascii_digit)
                .take(9)
                .collect::<String>()
        )
    }

    /// Onboards a shop: its webhook secret holds the app key and secret, its tokens (issued by
    /// the platform's authorisation) go to their own parameter and the token ledger.
    async fn register(&self, source: Source, shop: &str) {
        let platform = platform_of(source);
        let (app_key, secret) = default_app(platform);
        let shop_id = ShopId::parse(shop).unwrap();
        let webhook = json!({"app_key": app_key, "secret": secret});
        self.ssm.put(&parameter_name(&self.stage, source, &shop_id), &webhook.to_string()).await.unwrap();
        let issued = self.gw.issue_default_tokens(platform, shop);
        let tokens = ShopTokens {
            access_token: Secret::new(issued.access_token),
            access_token_expires_at: Some(issued.expires_at),
            refresh_token: Some(Secret::new(issued.refresh_token)),
            refresh_token_expires_at: Some(issued.refresh_expires_at),
            generation: 0,
        };
        self.with(async |h| h.tokens.install(source, &shop_id, tokens).await).await.unwrap();
    }

    async fn with<R>(&self, f: impl AsyncFnOnce(&Handler<'_>) -> R) -> R {
        let cache = SecretCache::new(&self.ssm, &self.gw, &self.stage, Duration::minutes(15));
        let refreshers: Vec<&dyn TokenRefresh> = self.feeds.iter().map(|f| f.as_ref() as &dyn TokenRefresh).collect();
        let feeds: Vec<&dyn ChangeFeed> = self.feeds.iter().map(AsRef::as_ref).collect();
        let tokens = TokenKeeper::new(
            TokenPorts {
                ledger: &self.sync,
                params: &self.ssm,
                secrets: &cache,
                refreshers: &refreshers,
                clock: &self.gw,
            },
            &self.stage,
            TokenRules::default(),
            "test",
        );
        let handler = Handler {
            sync: SyncChannel {
                ports: SyncPorts {
                    feeds: &feeds,
                    checkpoints: &self.sync,
                    tokens: &tokens,
                    inbox: &self.tables.inbox,
                    queue: &self.queue,
                    clock: &self.gw,
                },
                rules: &self.sync_rules,
            },
            tokens: &tokens,
            tracking: SubscribeTracking {
                ports: TrackingPorts {
                    orders: &self.tables.orders,
                    subscriptions: &self.sync,
                    carrier: &self.kuaidi100,
                    secrets: &cache,
                    params: &self.ssm,
                    stats: &self.tables.stats,
                    clock: &self.gw,
                },
                config: &self.tracking,
                rules: &self.tracking_rules,
            },
            stats: &self.tables.stats,
            marks: &self.sync,
            events: &self.bus,
            clock: &self.gw,
        };
        f(&handler).await
    }

    /// Invokes order-sync with `event` and a minute of budget.
    async fn invoke(&self, event: Value) -> Value {
        let run = format!("run-{}", self.gw.now().timestamp());
        let answer = self.with(async |h| h.handle(event, StdDuration::from_secs(60), &run).await).await;
        serde_json::to_value(answer).unwrap()
    }

    /// Everything on the queue, applied by status-normalize's use case; the events it produced.
    async fn apply_queued(&self) -> (usize, Vec<DomainEvent>) {
        let apply = ApplyMessage::new(ApplyChange::new(self.tables.write_ports(&self.gw), &self.rules));
        let mut events = Vec::new();
        let mut applied = 0;
        loop {
            let bodies = stack::drain(&self.clients, &self.queue_url).await;
            if bodies.is_empty() {
                return (applied, events);
            }
            for body in bodies {
                let message: InboundMessage = serde_json::from_str(&body).unwrap();
                events.extend(apply.handle(&message).await.unwrap_or_else(|e| panic!("{e}: {body}")));
                applied += 1;
            }
        }
    }

    fn published(&self) -> Vec<DomainEvent> {
        self.bus.published()
    }
}

fn kinds(events: &[DomainEvent]) -> Vec<&'static str> {
    events.iter().map(DomainEvent::detail_type).collect()
}

#[tokio::test]
async fn pdd_and_taobao_orders_arrive_by_pull_with_provenance_pull_and_the_checkpoints_follow() {
    let rig = Rig::new("sync-pull").await;
    let (pdd, taobao) = (rig.shop("pdd"), rig.shop("tb"));
    rig.register(Source::Pdd, &pdd).await;
    rig.register(Source::Taobao, &taobao).await;
    let t0 = rig.gw.now();
    for n in 0..30 {
        let at = t0 - Duration::minutes(90) + Duration::minutes(n as i64 * 2);
        rig.gw.put_order(Platform::Pdd, Order::new(&rig.order(n), &pdd, "1", at));
        rig.gw.put_order(Platform::Taobao, Order::new(&rig.order(100 + n), &taobao, "WAIT_SELLER_SEND_GOODS", at));
    }
    let answer = rig.invoke(json!({"sync": {"platforms": ["pdd", "taobao", "jd"], "feeds": ["orders"]}})).await;
    let feeds = answer["feeds"].as_array().cloned().unwrap_or_default();
    assert_eq!(feeds.len(), 2, "two registered shops, one feed each: {answer}");
    assert!(feeds.iter().all(|f| f["outcome"] == "caught_up" && f["enqueued"] == 30), "{answer}");
    let (applied, events) = rig.apply_queued().await;
    assert_eq!(applied, 60);
    assert_eq!(kinds(&events).iter().filter(|k| **k == "OrderStatusChanged").count(), 60);
    assert!(
        events.iter().all(
            |e| !matches!(e, DomainEvent::OrderStatusChanged { provenance, .. } if *provenance != Provenance::Pull)
        )
    );
    let key = OrderKey::parse(Source::Pdd, &pdd, &rig.order(0)).unwrap();
    let order = rig.tables.orders.get(&key).await.unwrap().unwrap();
    assert_eq!(order.lifecycle, Some(Lifecycle::Paid));
    assert_eq!(
        rig.tables.inventory.reservations(&key).await.unwrap().len(),
        1,
        "stock reserved per line, as for a callback"
    );
    let checkpoint = rig.sync.checkpoint(Source::Pdd, &ShopId::parse(&pdd).unwrap(), Feed::Orders).await.unwrap();
    assert_eq!(
        checkpoint.through,
        Some(t0 - Duration::minutes(3)),
        "PDD's windows end 3 minutes before the platform's time"
    );
    assert!(rig.gw.records().iter().all(|r| r.accepted()), "every call signed as the platform checks");
    // The day counters tell pulls apart: the health report fills PDD's and Taobao's columns.
    let month = domain::ports::Stats::month(&rig.tables.stats, Source::Pdd, domain::model::time::business_day(t0))
        .await
        .unwrap();
    let total = |name| month.iter().map(|d| d.get(name)).sum::<i64>();
    assert_eq!((total("received"), total("pulled"), total("applied"), total("applied_by_pull")), (30, 30, 30, 30));
    // Five minutes on, a quiet window on a warm instance: one list call per shop and platform,
    // one checkpoint write per shop, one roster read per platform.
    let (calls, aws) = rig
        .with(async |h| {
            rig.gw.advance(Duration::minutes(5));
            let quiet = json!({"sync": {"platforms": ["pdd", "taobao"], "feeds": ["orders"]}});
            h.handle(quiet.clone(), StdDuration::from_secs(60), "warm-up").await;
            rig.gw.advance(Duration::minutes(5));
            rig.gw.clear_records();
            rig.clients.requests.take();
            h.handle(quiet, StdDuration::from_secs(60), "quiet").await;
            (rig.gw.records().len(), rig.clients.requests.take())
        })
        .await;
    eprintln!("quiet 5-minute window, 2 shops on 2 platforms, warm instance: {calls} list calls, AWS requests {aws:?}");
    assert_eq!(calls, 2);
    assert_eq!(aws.values().sum::<u64>(), 4, "a checkpoint write per shop, a roster read per platform: {aws:?}");
}

/// The articles' outage: a channel's callbacks all refused for two hours while refunds succeed on
/// the platform. Without any replay, the hourly backstop pull finds every refund, status-normalize
/// applies them as it applies callbacks and releases their stock, refund-dual-check's next sweep
/// confirms the releases, and a `CallbackMissingSummary` names the channel and the count.
#[tokio::test]
async fn a_two_hour_callback_outage_heals_without_replay_and_is_summarised() {
    let rig = Rig::new("sync-outage").await;
    let shop = rig.shop("dy");
    rig.register(Source::Douyin, &shop).await;
    let t0 = rig.gw.now();
    let orders: Vec<String> = (0..12).map(|n| rig.order(n)).collect();
    let apply = ApplyMessage::new(ApplyChange::new(rig.tables.write_ports(&rig.gw), &rig.rules));
    // Paid before the outage, by callback: stock reserved.
    for id in &orders {
        let payload = fixtures::douyin_push(
            "101",
            &format!("{id}-101"),
            json!({"p_id": id, "pay_time": (t0 - Duration::minutes(30)).timestamp(), "s_ids": [format!("{id}1")]}),
        );
        let message = InboundMessage {
            source: Source::Douyin,
            shop: ShopId::parse(&shop).unwrap(),
            message_id: domain::MessageId::parse(&format!("{id}-101")).unwrap(),
            received_at: t0 - Duration::minutes(30),
            query: vec![],
            payload: Some(String::from_utf8(payload).unwrap()),
            origin: "callback".into(),
        };
        apply.handle(&message).await.unwrap();
        let mut order = Order::new(id, &shop, "105", t0 - Duration::minutes(30));
        order.lines[0].line_id = format!("{id}1");
        rig.gw.put_order(Platform::Douyin, order);
    }
    // The outage: the seller rotated the app secret in Douyin's console, not in orderhub. For two
    // hours every refund succeeds on the platform, and every refund callback is refused.
    let cache = SecretCache::new(&rig.ssm, &rig.gw, &rig.stage, Duration::seconds(1));
    let intake = Intake {
        inbox: &rig.tables.inbox,
        queue: &rig.queue,
        events: &rig.bus,
        stats: &rig.tables.stats,
        secrets: &cache,
        clock: &rig.gw,
        quarantine_quota_per_hour: 1000,
        lease: Duration::seconds(60),
        budget: StdDuration::from_secs(4),
        shards: 8,
    };
    let mut refused = 0;
    for (n, id) in orders.iter().enumerate() {
        let at = t0 + Duration::minutes(10 * n as i64);
        rig.gw.set_now(at);
        rig.gw.update_order(Platform::Douyin, id, |o| {
            o.refunds.push(Refund {
                id: format!("as-{id}"),
                status: "12".into(),
                line_id: Some(format!("{id}1")),
                amount_fen: 990,
                updated_at: at,
            });
        });
        let payload =
            fixtures::douyin_push("206", &format!("{id}-206"), json!({"p_id": id, "success_time": at.timestamp()}));
        let signed = fixtures::sign(
            Source::Douyin,
            &payload,
            &fixtures::signing_key(Source::Douyin, "rotated-in-the-console"),
            at,
            &format!("{id}-206"),
        );
        let handled = intake
            .receive(Incoming {
                method: "POST".into(),
                source: "douyin".into(),
                shop: shop.clone(),
                query: signed.query,
                headers: signed.headers,
                body: signed.body,
                received_at: at,
                sender: None,
            })
            .await;
        if matches!(handled, Handled::Rejected { quarantined: true, .. }) {
            refused += 1;
        }
    }
    assert_eq!(refused, 12, "every refund callback of the outage refused and quarantined");
    assert!(stack::drain(&rig.clients, &rig.queue_url).await.is_empty());
    // Twenty minutes after the outage, the hourly backstop runs (no replay anywhere).
    rig.gw.set_now(t0 + Duration::minutes(140));
    let backstop = json!({"sync": {"platforms": ["douyin", "kuaishou", "youzan"], "feeds": ["orders", "refunds"], "settle_minutes": 15}});
    let answer = rig.invoke(backstop.clone()).await;
    assert!(answer["feeds"].as_array().unwrap().iter().all(|f| f["outcome"] == "caught_up"), "{answer}");
    let (_, events) = rig.apply_queued().await;
    let released: Vec<&OrderKey> = events
        .iter()
        .filter_map(|e| match e {
            DomainEvent::InventoryReleased { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(released.len(), 12, "{:?}", kinds(&events));
    for id in &orders {
        let key = OrderKey::parse(Source::Douyin, &shop, id).unwrap();
        let order = rig.tables.orders.get(&key).await.unwrap().unwrap();
        assert_eq!(order.refund, RefundState::Succeeded);
        let lines = rig.tables.inventory.reservations(&key).await.unwrap();
        assert!(!lines.is_empty() && lines.iter().all(|l| l.released_at.is_some()), "{id}: stock released");
        let history = rig.tables.orders.history(&key, None, 20).await.unwrap().items;
        assert!(history.iter().any(|h| h.provenance == Provenance::Pull && h.refund.is_some()));
    }
    // refund-dual-check's next sweep (ten minutes on) finds every release done and clears its markers.
    rig.gw.advance(Duration::minutes(11));
    let refund_rules = RefundRules::default();
    let refreshers: Vec<&dyn TokenRefresh> = rig.feeds.iter().map(|f| f.as_ref() as &dyn TokenRefresh).collect();
    let queries: Vec<&dyn PlatformQuery> = rig.queries.iter().map(AsRef::as_ref).collect();
    let keeper = TokenKeeper::new(
        TokenPorts { ledger: &rig.sync, params: &rig.ssm, secrets: &cache, refreshers: &refreshers, clock: &rig.gw },
        &rig.stage,
        TokenRules::default(),
        "test",
    );
    let check = RefundCheck {
        write: ApplyChange::new(rig.tables.write_ports(&rig.gw), &rig.rules),
        platforms: &queries,
        tokens: &keeper,
        rules: &refund_rules,
    };
    let (_, report) = check.sweep().await;
    assert_eq!(report.outcomes.get("released"), Some(&12), "{report:?}");
    // The next backstop run reports the outage: the channel and the count.
    rig.gw.advance(Duration::minutes(49));
    rig.invoke(backstop).await;
    let summary: Vec<DomainEvent> =
        rig.published().into_iter().filter(|e| matches!(e, DomainEvent::CallbackMissingSummary { .. })).collect();
    let [DomainEvent::CallbackMissingSummary { channel, missing, refunds, .. }] = &summary[..] else {
        panic!("{:?}", kinds(&rig.published()))
    };
    assert_eq!((*channel, *missing, *refunds), (Source::Douyin, 12, 12));
    // The quarantine still holds the refused callbacks: nothing was replayed.
    let quarantined = domain::ports::Inbox::quarantined(
        &rig.tables.inbox,
        Source::Douyin,
        &ShopId::parse(&shop).unwrap(),
        t0 - Duration::hours(1),
        t0 + Duration::hours(5),
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(quarantined.items.len(), 12);
}

#[tokio::test]
async fn a_broken_shop_keeps_its_checkpoint_backs_off_and_never_stops_the_others() {
    let rig = Rig::new("sync-bad").await;
    let shops: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| rig.shop(s)).collect();
    for shop in &shops {
        rig.register(Source::Pdd, shop).await;
    }
    let t0 = rig.gw.now();
    for (s, shop) in shops.iter().enumerate() {
        for n in 0..5 {
            rig.gw.put_order(
                Platform::Pdd,
                Order::new(&rig.order(s * 10 + n), shop, "1", t0 - Duration::minutes(20 + n as i64)),
            );
        }
    }
    let from = t0 - Duration::hours(1);
    for shop in &shops {
        rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"], "shop": shop, "from": from}})).await;
    }
    rig.apply_queued().await;
    rig.gw.advance(Duration::minutes(30));
    for (s, shop) in shops.iter().enumerate() {
        rig.gw.put_order(
            Platform::Pdd,
            Order::new(&rig.order(s * 10 + 9), shop, "1", rig.gw.now() - Duration::minutes(10)),
        );
    }
    let mut before = Vec::new();
    for shop in &shops {
        before.push(rig.sync.checkpoint(Source::Pdd, &ShopId::parse(shop).unwrap(), Feed::Orders).await);
    }
    // Shop a: the platform answers garbage. Shop b: its authorisation was revoked. Shop c: rate
    // limited for longer than a run waits. Shop d: fine.
    rig.gw.break_next(Platform::Pdd, RawFault::Garbage, 1);
    rig.gw.revoke(Platform::Pdd, &rig.gw.issue_default_tokens(Platform::Pdd, &shops[1]).access_token);
    let answer = rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"]}})).await;
    let outcome = |shop: &str| {
        answer["feeds"].as_array().unwrap().iter().find(|f| f["shop"] == shop).map(|f| f["outcome"].clone())
    };
    assert_eq!(outcome(&shops[0]), Some(json!("failed")), "{answer}");
    assert_eq!(outcome(&shops[1]), Some(json!("failed")), "{answer}");
    assert_eq!(outcome(&shops[3]), Some(json!("caught_up")), "{answer}");
    let failures: Vec<(String, String)> = rig
        .published()
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::SyncFailed { shop, reason, .. } => Some((shop, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "one event per broken shop: {failures:?}");
    assert!(failures.iter().any(|(s, r)| s == &shops[0] && r.contains("unexpected answer")), "{failures:?}");
    assert!(
        failures.iter().any(|(s, r)| s == &shops[1] && r.contains("10014") && r.contains("authorise")),
        "{failures:?}"
    );
    for (s, shop) in shops.iter().enumerate().take(2) {
        let after = rig.sync.checkpoint(Source::Pdd, &ShopId::parse(shop).unwrap(), Feed::Orders).await.unwrap();
        assert_eq!(
            after.through,
            before[s].as_ref().unwrap().through,
            "{shop}: not advanced past what was not enqueued"
        );
        assert!(after.backoff_until.is_some_and(|t| t > rig.gw.now()));
    }
    // Shop c next: the platform rate-limits it; it backs off alone.
    rig.gw.set_rate_limit(Platform::Pdd, Some(RateLimit { max: 0, per: Duration::minutes(5) }));
    rig.gw.advance(Duration::minutes(1));
    let answer = rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"], "shop": shops[2]}})).await;
    assert_eq!(answer["feeds"][0]["outcome"], "failed", "{answer}");
    assert!(answer["feeds"][0]["error"].as_str().unwrap_or_default().contains("rate limited"));
    rig.gw.set_rate_limit(Platform::Pdd, None);
    // The backed-off shops are left alone until their back-off ends; then they resume where they
    // stopped and catch up (shop b once authorised again).
    rig.gw.advance(Duration::minutes(2));
    rig.gw.clear_records();
    rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"]}})).await;
    let asked: std::collections::BTreeSet<String> = rig.gw.records().into_iter().filter_map(|r| r.shop).collect();
    assert!(!asked.contains(&shops[0]) && !asked.contains(&shops[1]), "backed-off shops are left alone: {asked:?}");
    assert!(asked.contains(&shops[3]));
    rig.gw.advance(Duration::minutes(10));
    let answer = rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"], "shop": shops[0]}})).await;
    assert_eq!(answer["feeds"][0]["outcome"], "caught_up", "{answer}");
    let (_, events) = rig.apply_queued().await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DomainEvent::OrderStatusChanged { key, .. } if key.order_id.as_str() == rig.order(9))),
        "shop a's order of the failed window arrived"
    );
}

#[tokio::test]
async fn tokens_live_in_their_own_parameters_and_are_refreshed_ahead_under_a_lease() {
    let rig = Rig::new("sync-tokens").await;
    let (soon, dying) = (rig.shop("soon"), rig.shop("dying"));
    rig.gw.set_token_lifetimes(Platform::Pdd, Duration::hours(1), Duration::days(30));
    rig.register(Source::Pdd, &soon).await;
    rig.gw.set_token_lifetimes(Platform::Pdd, Duration::days(2), Duration::days(3));
    rig.register(Source::Pdd, &dying).await;
    rig.gw.set_token_lifetimes(Platform::Pdd, Duration::days(1), Duration::days(30));
    let soon_id = ShopId::parse(&soon).unwrap();
    let webhook = rig.ssm.get(&parameter_name(&rig.stage, Source::Pdd, &soon_id)).await.unwrap();
    // Two token sweeps at once: the refresh token is spent by one refresh only.
    let (a, b) = futures::join!(rig.invoke(json!({"tokens": "sweep"})), rig.invoke(json!({"tokens": "sweep"})));
    let refreshes = rig.gw.records().iter().filter(|r| r.api == "pdd.pop.auth.token.refresh").count();
    assert_eq!(refreshes, 1, "{a} {b}");
    assert_eq!(a["refreshed"].as_u64().unwrap_or(0) + b["refreshed"].as_u64().unwrap_or(0), 1);
    let stored: ShopTokens =
        serde_json::from_str(&rig.ssm.get(&token_parameter(&rig.stage, Source::Pdd, &soon_id)).await.unwrap().unwrap())
            .unwrap();
    assert_eq!(stored.generation, 2);
    assert!(
        stored.access_token_expires_at.is_some_and(|t| t - rig.gw.now() > Duration::hours(20)),
        "{:?}",
        stored.access_token_expires_at
    );
    assert_eq!(
        rig.ssm.get(&parameter_name(&rig.stage, Source::Pdd, &soon_id)).await.unwrap(),
        webhook,
        "the webhook secret is never written"
    );
    let expiring: Vec<DomainEvent> =
        rig.published().into_iter().filter(|e| matches!(e, DomainEvent::TokenExpiring { .. })).collect();
    assert!(
        matches!(&expiring[..], [DomainEvent::TokenExpiring { shop, .. }] if *shop == dying),
        "{:?}",
        kinds(&rig.published())
    );
    // A refresh that fails raises TokenRefreshFailed and frees the lease for the next attempt.
    rig.gw.revoke(Platform::Pdd, stored.access_token.expose());
    rig.gw.advance(Duration::hours(23));
    rig.invoke(json!({"tokens": "sweep"})).await;
    assert!(rig.published().iter().any(|e| matches!(e, DomainEvent::TokenRefreshFailed { shop, .. } if *shop == soon)));
    let record = rig.sync.token(Source::Pdd, &soon_id).await.unwrap().unwrap();
    assert_eq!(record.lease, None);
}

#[tokio::test]
async fn a_new_waybill_is_subscribed_to_kuaidi100_once_and_again_after_an_abort() {
    let rig = Rig::new("sync-k100").await;
    let shop = rig.shop("pdd");
    rig.register(Source::Pdd, &shop).await;
    let shop_id = ShopId::parse(&shop).unwrap();
    rig.ssm
        .put(&parameter_name(&rig.stage, Source::Kuaidi100, &shop_id), r#"{"secret":"salt-of-the-shop"}"#)
        .await
        .unwrap();
    rig.ssm.put(&rig.tracking.key_parameter, fake_gateway::kuaidi100::DEFAULT_KEY).await.unwrap();
    let id = rig.order(1);
    let mut order = Order::new(&id, &shop, "2", rig.gw.now() - Duration::minutes(10));
    order.lines[0].line_id = format!("{id}-1");
    rig.gw.put_order(Platform::Pdd, order);
    // The fake's PDD rows carry no waybill: the pulled row is given one the way PDD lists it.
    rig.invoke(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"]}})).await;
    let bodies = stack::drain(&rig.clients, &rig.queue_url).await;
    let apply = ApplyMessage::new(ApplyChange::new(rig.tables.write_ports(&rig.gw), &rig.rules));
    for body in bodies {
        let mut message: InboundMessage = serde_json::from_str(&body).unwrap();
        let mut payload: Value = serde_json::from_str(message.payload.as_deref().unwrap()).unwrap();
        payload["row"]["tracking_number"] = json!("YT1234567890");
        payload["row"]["logistics_id"] = json!(85);
        message.payload = Some(payload.to_string());
        apply.handle(&message).await.unwrap();
    }
    rig.gw.kuaidi100_fail_next(1);
    let first = rig.invoke(json!({"subscribe": "sweep"})).await;
    assert_eq!(first["retrying"], 1, "Kuaidi100's 500 is retried later: {first}");
    rig.gw.advance(Duration::minutes(11));
    let second = rig.invoke(json!({"subscribe": "sweep"})).await;
    assert_eq!(second["subscribed"], 1, "{second}");
    let taken: Vec<_> = rig.gw.kuaidi100_subscriptions().into_iter().filter(|s| s.refused.is_none()).collect();
    let [sub] = &taken[..] else { panic!("{taken:?}") };
    assert_eq!(
        (sub.number.as_str(), sub.resultv2.as_str(), sub.auto_com.as_str(), sub.salt.as_str()),
        ("YT1234567890", "4", "1", "salt-of-the-shop")
    );
    assert_eq!(
        sub.callback_url,
        format!("https://hooks.example.com/webhooks/kuaidi100/{shop}?order=pdd%2F{shop}%2F{id}")
    );
    assert_eq!(rig.invoke(json!({"subscribe": "sweep"})).await["due"], 0, "exactly once per waybill");
    // Three days on, Kuaidi100 stops tracking (status=abort, 3天查询无记录): the rule brings
    // order-sync the event.
    rig.gw.advance(Duration::days(3));
    let key = OrderKey::parse(Source::Pdd, &shop, &id).unwrap();
    let stopped = DomainEvent::TrackingStopped {
        key,
        waybill: domain::model::source_event::Waybill { carrier: "85".into(), number: "YT1234567890".into() },
        reason: "3天查询无记录".into(),
        at: rig.gw.now(),
    };
    let event = json!({"version": "0", "id": "e1", "detail-type": stopped.detail_type(), "source": "orderhub", "detail": stopped.detail()});
    let answer = rig.invoke(event).await;
    assert!(answer["due_at"].is_string(), "{answer}");
    rig.gw.advance(Duration::minutes(29));
    assert_eq!(rig.invoke(json!({"subscribe": "sweep"})).await["due"], 0, "not before the half hour");
    rig.gw.advance(Duration::minutes(2));
    assert_eq!(rig.invoke(json!({"subscribe": "sweep"})).await["subscribed"], 1);
}

#[tokio::test]
async fn the_daily_reconciliation_finds_the_orders_the_pull_skipped_and_pulls_them_in() {
    let rig = Rig::new("sync-recon").await;
    let shop = rig.shop("tb");
    rig.register(Source::Taobao, &shop).await;
    let now = rig.gw.now();
    let day = domain::model::time::business_day(now) - chrono::Days::new(1);
    let start = domain::model::time::day_start(day);
    for n in 0..40 {
        rig.gw.put_order(
            Platform::Taobao,
            Order::new(&rig.order(n), &shop, "WAIT_SELLER_SEND_GOODS", start + Duration::minutes(30 * n as i64 + 1)),
        );
    }
    // The pull ran; then 12 orders of the afternoon are as if a window had been skipped (their
    // dedupe records are gone: the hub never took them in).
    rig.invoke(json!({"sync": {"platforms": ["taobao"], "feeds": ["orders"], "shop": shop, "from": start}})).await;
    assert_eq!(stack::drain_all(&rig.clients, &rig.queue_url).await.len(), 40);
    // Simulate the lost window: forget those orders' dedupe records as if never pulled.
    for n in 28..40 {
        let o = rig.gw.orders(Platform::Taobao).into_iter().find(|o| o.id == rig.order(n)).unwrap();
        let row = domain::model::sync::ChangedRow {
            order_id: domain::OrderId::parse(&o.id).unwrap(),
            refund_id: None,
            updated_at: o.updated_at,
            row: Value::Null,
        };
        let shop_id = ShopId::parse(&shop).unwrap();
        let pk = adapters::dynamo::keys::message_key(Source::Taobao, &shop_id, &row.message_id(Feed::Orders));
        rig.clients
            .dynamodb
            .delete_item()
            .table_name(&rig.inbox_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .send()
            .await
            .unwrap();
    }
    let answer = rig.invoke(json!({"reconcile": {"platforms": ["taobao"], "day": day}})).await;
    let count = &answer["shops"][format!("taobao/{shop}")];
    assert_eq!(
        (count["platform"].as_u64(), count["hub"].as_u64(), count["missing"].as_u64()),
        (Some(40), Some(28), Some(12)),
        "{answer}"
    );
    let missing: Vec<DomainEvent> =
        rig.published().into_iter().filter(|e| matches!(e, DomainEvent::OrdersMissing { .. })).collect();
    assert!(
        matches!(&missing[..], [DomainEvent::OrdersMissing { missing: 12, channel, .. }] if channel == "pull"),
        "{missing:?}"
    );
    assert_eq!(
        stack::drain_all(&rig.clients, &rig.queue_url).await.len(),
        12,
        "the missing ones are on their way to status-normalize"
    );
}

/// Sizes: `scripts/bench.sh sync` (`ORDERHUB_BENCH=1`) runs the README's figure — 10 000 orders
/// changed in a day on one PDD shop; CI runs 1 000.
fn bench_orders() -> usize {
    if std::env::var("ORDERHUB_BENCH").is_ok_and(|v| v == "1") { 10_000 } else { 1_000 }
}

#[tokio::test]
async fn a_cold_shop_with_a_busy_day_catches_up_within_the_targets() {
    let rig = Rig::new("sync-bench").await;
    let shop = rig.shop("pdd");
    rig.register(Source::Pdd, &shop).await;
    let count = bench_orders();
    let now = rig.gw.now();
    let span = (Duration::hours(24) - Duration::minutes(5)).num_seconds();
    for n in 0..count {
        let at = now - Duration::hours(24) + Duration::seconds(span * n as i64 / count as i64);
        rig.gw.put_order(Platform::Pdd, Order::new(&rig.order(n), &shop, "1", at));
    }
    rig.gw.clear_records();
    rig.clients.requests.take();
    let started = Instant::now();
    let answer = rig
        .with(async |h| {
            h.handle(json!({"sync": {"platforms": ["pdd"], "feeds": ["orders"]}}), StdDuration::from_secs(900), "bench")
                .await
        })
        .await;
    let took = started.elapsed();
    let answer = serde_json::to_value(answer).unwrap();
    let list_calls = rig.gw.records().len();
    let aws = rig.clients.requests.take();
    let aws_total: u64 = aws.values().sum();
    let enqueued = answer["feeds"][0]["enqueued"].as_u64().unwrap_or(0);
    eprintln!(
        "cold catch-up of {count} orders changed in a day: {took:?}, {list_calls} list calls ({:.4} per changed order), {aws_total} AWS requests ({:.2} per changed order) {aws:?}, {} windows",
        list_calls as f64 / count as f64,
        aws_total as f64 / count as f64,
        answer["feeds"][0]["windows"]
    );
    assert_eq!(enqueued, count as u64, "{answer}");
    assert!(list_calls as f64 / count as f64 <= 0.02 + 60.0 / count as f64, "{list_calls} list calls");
    assert!(aws_total as f64 / count as f64 <= 2.0, "{aws:?}");
    assert_eq!(stack::drain_all(&rig.clients, &rig.queue_url).await.len(), count);
}
