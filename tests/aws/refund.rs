//! refund-dual-check on the local stack, against the independent fake Douyin gateway (which
//! checks every request's signature with its own signer): the sweep confirms lost refunds
//! through the platform and releases their stock once; reads scale with the due orders, not the
//! table; the emergency release of 327 orders; ops answers; tokens read from and refreshed into
//! their own parameter under the ledger's lease — also by status-normalize's order-lines fetch.

use std::sync::Arc;
use std::time::Instant;

use adapters::platform::{ClientConfig, DouyinClient};
use adapters::{BusPublisher, Clients, DynamoSync, DynamoTables, SsmSecrets};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::app::apply::ApplyChange;
use domain::app::apply_message::ApplyMessage;
use domain::app::order_lines::{LINES_PENDING, PlatformLines};
use domain::app::refund_check::{RefundCheck, RefundRules};
use domain::app::tokens::{TokenKeeper, TokenPorts, TokenRules, token_parameter};
use domain::model::order::{Provenance, StatusChange};
use domain::model::source_event::OrderFacts;
use domain::model::status::{RawStatus, StatusMapping, Target};
use domain::model::sync::ShopTokens;
use domain::ports::platform::PlatformQuery;
use domain::ports::pull::TokenRefresh;
use domain::ports::secrets::{Secret, SecretCache, parameter_name};
use domain::ports::{InventoryStore, OrderStore, Secrets};
use domain::rules::timing::Rules;
use domain::testing::clock::FixedClock;
use domain::testing::fixtures::{self, DayCallback};
use domain::testing::memory::MemoryLines;
use domain::{MessageId, OrderKey, RefundState, ShopId, Source};
use refund_dual_check::Handler;
use serde_json::json;
use tests::fake_gateway::{Denial, FakeGateway, Order, Platform, Refund, SkuLine, default_app};
use tests::stack::{self, clients, namespace};

struct Rig {
    clients: Clients,
    tables: DynamoTables,
    bus: BusPublisher,
    ssm: SsmSecrets,
    clock: FixedClock,
    rules: Rules,
    refund_rules: RefundRules,
    stage: String,
    shop: String,
    fake: FakeGateway,
    douyin: DouyinClient,
    sync: DynamoSync,
    /// The order lines Douyin's order detail gives (the paid push names only sub-order ids).
    lines: MemoryLines,
}

/// What the platform says about an order's refund.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Succeeded,
    Pending,
    Closed,
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 6, 0, 0).single().unwrap()
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        let clients = clients().await;
        let ns = namespace(prefix);
        let fake = FakeGateway::start_at(at()).await.unwrap();
        let douyin = DouyinClient::new(
            ClientConfig::new(&fake.base_url(Platform::Douyin)).unwrap().with_clock(Arc::new(fake.clone())),
        )
        .unwrap();
        // Tables of its own: a sweep reads every due marker of its table.
        let orders = stack::private_table(&clients, "ORDERS_TABLE", &ns).await;
        let stats = stack::private_table(&clients, "STATS_TABLE", &ns).await;
        let rig = Rig {
            tables: DynamoTables::from_names(clients.dynamodb.clone(), &orders, &stats, &stack::var("INBOX_TABLE")),
            bus: BusPublisher::new(clients.eventbridge.clone(), stack::var("EVENT_BUS_NAME")),
            ssm: SsmSecrets::new(clients.ssm.clone()),
            clock: FixedClock::new(at() - Duration::hours(3)),
            rules: Rules::default(),
            refund_rules: RefundRules::default(),
            stage: ns.clone(),
            shop: format!("s{}", ns.replace('-', "")),
            fake,
            douyin,
            sync: DynamoSync::new(clients.dynamodb.clone(), stack::private_table(&clients, "SYNC_TABLE", &ns).await),
            lines: MemoryLines::default(),
            clients,
        };
        // The webhook secret holds the app's key and secret; the shop's tokens go to their own
        // parameter and the token ledger, as onboarding stores them.
        let (app_key, app_secret) = default_app(Platform::Douyin);
        let secret = json!({"app_key": app_key, "secret": app_secret});
        let shop = ShopId::parse(&rig.shop).unwrap();
        rig.ssm.put(&parameter_name(&rig.stage, Source::Douyin, &shop), &secret.to_string()).await.unwrap();
        let issued = rig.fake.issue_default_tokens(Platform::Douyin, &rig.shop);
        let tokens = ShopTokens {
            access_token: Secret::new(issued.access_token),
            access_token_expires_at: Some(issued.expires_at),
            refresh_token: Some(Secret::new(issued.refresh_token)),
            refresh_token_expires_at: Some(issued.refresh_expires_at),
            generation: 0,
        };
        rig.with(async |app| app.checker.tokens.install(Source::Douyin, &shop, tokens).await).await.unwrap();
        rig
    }

    /// The platform's state of an order's refund.
    fn script(&self, id: &str, reply: Reply) {
        // Douyin's codes: order_status 4 + main_status 22 after a refund before shipment,
        // after_sale_status 12 / 6 / 28 (succeeded / waiting for the seller / closed).
        let (status, main_status, refund_status, refund) = match reply {
            Reply::Succeeded => ("4", "22", "3", "12"),
            Reply::Pending => ("105", "", "1", "6"),
            Reply::Closed => ("105", "", "1", "28"),
        };
        let mut order = Order::new(id, &self.shop, status, at() - Duration::hours(1));
        order.refund_status = refund_status.into();
        order.main_status = Some(main_status.into());
        order.lines[0].line_id = format!("{id}1");
        order.refunds.push(Refund {
            id: format!("as-{id}"),
            status: refund.into(),
            line_id: Some(format!("{id}1")),
            amount_fen: 990,
            updated_at: at() - Duration::minutes(20),
        });
        self.fake.put_order(Platform::Douyin, order);
    }

    /// Runs `f` with refund-dual-check's handler over the rig.
    async fn with<R>(&self, f: impl AsyncFnOnce(&Handler<'_>) -> R) -> R {
        let n = self.normalizer();
        let cache = SecretCache::new(&self.ssm, &self.clock, &self.stage, Duration::minutes(2));
        let platforms: [&dyn PlatformQuery; 1] = [&self.douyin];
        let refreshers: [&dyn TokenRefresh; 1] = [&self.douyin];
        let tokens = TokenKeeper::new(
            TokenPorts {
                ledger: &self.sync,
                params: &self.ssm,
                secrets: &cache,
                refreshers: &refreshers,
                clock: &self.clock,
            },
            &self.stage,
            TokenRules { refresh_before: Duration::minutes(30), ..TokenRules::default() },
            "test",
        );
        let handler = Handler {
            checker: RefundCheck { write: n, platforms: &platforms, tokens: &tokens, rules: &self.refund_rules },
            events: &self.bus,
            release_concurrency: 16,
        };
        f(&handler).await
    }

    fn normalizer(&self) -> ApplyChange<'_> {
        ApplyChange::new(self.tables.write_ports(&self.clock), &self.rules)
    }

    /// A douyin order paid with two reserved lines, its refund asked for three hours ago.
    async fn refund_requested(&self, id: &str) -> OrderKey {
        let t = at() - Duration::hours(3);
        let key = OrderKey::parse(Source::Douyin, &self.shop, id).unwrap();
        self.lines.set_simple(
            &key,
            &[(&format!("{id}1"), &format!("SKU-{id}-1"), 1), (&format!("{id}2"), &format!("SKU-{id}-2"), 1)],
        );
        for (tag, data) in [
            (
                "101",
                json!({"p_id": id, "pay_time": (t - Duration::minutes(30)).timestamp(), "s_ids": [format!("{id}1"), format!("{id}2")]}),
            ),
            ("200", json!({"p_id": id, "apply_time": t.timestamp(), "aftersale_type": 2})),
        ] {
            let callback = DayCallback {
                source: Source::Douyin,
                shop: self.shop.clone(),
                payload: fixtures::douyin_push(tag, &format!("{id}-{tag}"), data),
                query: vec![],
                message_id: format!("{id}-{tag}"),
                sent_at: t,
            };
            ApplyMessage::new(self.normalizer()).with_lines(&self.lines).handle(&callback.inbound()).await.unwrap();
        }
        OrderKey::parse(Source::Douyin, &self.shop, id).unwrap()
    }

    /// The outage: the refund succeeded, our record knows it (set by hand or a late poll), but
    /// the reserved stock was never released.
    async fn refunded_with_stock_locked(&self, id: &str) -> OrderKey {
        let key = self.refund_requested(id).await;
        let change = StatusChange {
            key: key.clone(),
            message_id: MessageId::parse(&format!("{id}-outage")).unwrap(),
            event_time: at() - Duration::hours(1),
            received_at: at(),
            raw: RawStatus::new("refund_status", "3"),
            mapping: StatusMapping::Mapped(Target::refund(RefundState::Succeeded)),
            provenance: Provenance::Ops,
            refund_scope: domain::model::order::RefundScope::default(),
        };
        // The write without its side effects: the release that never happened.
        self.normalizer()
            .apply_change(&change, &OrderFacts::default(), &|_: &mut domain::Order| {}, &[])
            .await
            .unwrap();
        key
    }
}

#[tokio::test]
async fn the_sweep_confirms_lost_refunds_with_the_platform_and_releases_stock_once() {
    let rig = Rig::new("rf-sweep").await;
    let lost = rig.refund_requested("9100001").await;
    let open = rig.refund_requested("9100002").await;
    let closed = rig.refund_requested("9100003").await;
    rig.script("9100001", Reply::Succeeded);
    rig.script("9100002", Reply::Pending);
    rig.script("9100003", Reply::Closed);
    rig.clock.set(at());
    rig.with(async |app| {
        let report = serde_json::to_value(app.handle(json!({"sweep": "refunds"})).await).unwrap();
        assert!(report["checked"].as_u64().is_some_and(|c| c >= 3), "{report}");
        assert_eq!(report["outcomes"]["confirmed"], 1, "{report}");
        assert!(
            rig.fake.records().iter().all(|r| r.accepted()),
            "every request was signed as the platform checks: {:?}",
            rig.fake.records()
        );
        let order = rig.tables.orders.get(&lost).await.unwrap().unwrap();
        assert_eq!(order.refund, RefundState::Succeeded);
        let lines = rig.tables.inventory.reservations(&lost).await.unwrap();
        assert!(lines.iter().all(|l| l.released_at.is_some()), "released");
        assert_eq!(rig.tables.orders.get(&open).await.unwrap().unwrap().refund, RefundState::Requested);
        assert_eq!(rig.tables.orders.get(&closed).await.unwrap().unwrap().refund, RefundState::Closed);
        // The platform still says succeeded next run, and a late callback comes too: nothing moves twice.
        let again = serde_json::to_value(app.handle(json!({"recheck": {"orders": [lost.to_string()]}})).await).unwrap();
        assert_eq!(again["orders"][lost.to_string()], "released", "{again}");
        let released_at: Vec<_> =
            rig.tables.inventory.reservations(&lost).await.unwrap().into_iter().map(|l| l.released_at).collect();
        assert_eq!(
            released_at,
            lines.into_iter().map(|l| l.released_at).collect::<Vec<_>>(),
            "the first release's time is kept"
        );
    })
    .await;
}

/// Sizes: `scripts/bench.sh` (`ORDERHUB_BENCH=1`) runs the README's figures — 10 000 orders of
/// which 300 are due, an emergency release of 327 orders; CI runs the same shapes smaller.
fn sizes() -> (usize, usize, usize) {
    if std::env::var("ORDERHUB_BENCH").is_ok_and(|v| v == "1") { (9_700, 300, 327) } else { (1_000, 30, 40) }
}

#[tokio::test]
async fn reads_scale_with_due_orders_not_with_the_table() {
    let rig = Rig::new("rf-scale").await;
    // Orders that are not due, written directly (the sweep must never read them)…
    let (filler_count, due_count, _) = sizes();
    let table = rig.tables.orders.orders_table().to_owned();
    let filler: Vec<WriteRequest> = (0..filler_count)
        .map(|n| {
            let put = PutRequest::builder()
                .item("pk", AttributeValue::S(format!("O#douyin#{}#8{n:07}", rig.shop)))
                .item("sk", AttributeValue::S("#".into()))
                .item("version", AttributeValue::N("1".into()))
                .item("lifecycle", AttributeValue::S("Completed".into()))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in filler.chunks(25) {
        rig.clients.dynamodb.batch_write_item().request_items(&table, chunk.to_vec()).send().await.unwrap();
    }
    // …and some whose refund callback never came.
    let mut due = Vec::new();
    for n in 0..due_count {
        let id = format!("93{n:05}");
        due.push(rig.refund_requested(&id).await);
        rig.script(&id, Reply::Succeeded);
    }
    rig.clock.set(at());
    rig.with(async |app| {
    rig.clients.requests.take();
    let started = Instant::now();
    let report = serde_json::to_value(app.handle(json!({"sweep": "refunds"})).await).unwrap();
    let elapsed = started.elapsed();
    let requests = rig.clients.requests.take();
    tests::policy::assert_granted("RefundDualCheckFunction", &requests);
    let reads: u64 =
        ["DynamoDB.GetItem", "DynamoDB.Query"].iter().map(|op| requests.get(*op).copied().unwrap_or(0)).sum();
    let scans = requests.get("DynamoDB.Scan").copied().unwrap_or(0);
    eprintln!(
        "sweep over {} orders, {due_count} due: {elapsed:?}, {reads} reads ({:.1} per due order), requests {requests:?}, outcomes {}",
        filler_count + due_count,
        reads as f64 / due_count as f64,
        report["outcomes"]
    );
    assert_eq!(scans, 0, "no scans");
    assert_eq!(report["outcomes"]["confirmed"].as_u64(), Some(due_count as u64), "{report}");
    // Per due order: the order before each of the platform's codes is applied (Douyin answers
    // four), after, its reservations; plus one index query per shard. Nothing per other order.
    let per_due = (reads - 8) as f64 / due_count as f64;
    assert!(per_due <= 10.0, "reads follow the due orders, not the {filler_count} others: {per_due:.1} per due order");
    for key in due.iter().take(5) {
        assert_eq!(rig.tables.orders.get(key).await.unwrap().unwrap().refund, RefundState::Succeeded);
    }
    }).await;
}

#[tokio::test]
async fn the_emergency_release_of_327_orders() {
    let rig = Rig::new("rf-327").await;
    let (_, _, count) = sizes();
    let mut orders = Vec::new();
    for n in 0..count {
        orders.push(rig.refunded_with_stock_locked(&format!("95{n:05}")).await);
    }
    let not_refunded = rig.refund_requested("9600001").await;
    let missing = OrderKey::parse(Source::Douyin, &rig.shop, "404404").unwrap();
    rig.clock.set(at());
    rig.with(async |app| {
        let list: Vec<String> = orders.iter().map(ToString::to_string).collect();
        rig.clients.requests.take();
        let started = Instant::now();
        let answers = serde_json::to_value(app.handle(json!({"release": {"orders": list}})).await).unwrap();
        let elapsed = started.elapsed();
        let requests = rig.clients.requests.take();
        tests::policy::assert_granted("RefundDualCheckFunction", &requests);
        let total: u64 = requests.values().sum();
        eprintln!(
            "ops release of {count} orders: {elapsed:?}, {:.1} AWS requests per order ({requests:?})",
            total as f64 / count as f64
        );
        assert_eq!(
            answers.as_object().map(|m| m.values().filter(|v| *v == "released").count()),
            Some(count),
            "{answers}"
        );
        for key in &orders {
            assert!(rig.tables.inventory.reservations(key).await.unwrap().iter().all(|l| l.released_at.is_some()));
        }
        // Run again (the operator double-clicked), with the odd ones out.
        let mut again: Vec<String> = orders.iter().take(3).map(ToString::to_string).collect();
        again.push(not_refunded.to_string());
        again.push(missing.to_string());
        again.push("douyin/not a key".into());
        let answers = serde_json::to_value(app.handle(json!({"release": {"orders": again}})).await).unwrap();
        assert!(answers["error"].is_string(), "a malformed order reference is named, nothing released: {answers}");
        again.pop();
        let answers = serde_json::to_value(app.handle(json!({"release": {"orders": again}})).await).unwrap();
        assert_eq!(answers[orders[0].to_string()], "already_released", "{answers}");
        assert_eq!(answers[not_refunded.to_string()], "not_refunded");
        assert_eq!(answers[missing.to_string()], "not_found");
    })
    .await;
}

/// status-normalize's order-lines fetch on the local stack, wired as its main.rs wires it: a
/// paid Douyin order whose access token the platform no longer honours (expired by Douyin's
/// clock, not yet by its stored expiry) gets its lines after one refresh through the token
/// keeper — the new tokens in the shop's own parameter, the ledger's lease — and is reserved,
/// not held; status-normalize's policy grants every request it made.
#[tokio::test]
async fn status_normalize_refreshes_an_expired_token_to_fetch_a_paid_orders_lines() {
    let rig = Rig::new("rf-lines").await;
    let shop = ShopId::parse(&rig.shop).unwrap();
    let before = rig.ssm.get(&token_parameter(&rig.stage, Source::Douyin, &shop)).await.unwrap().unwrap();
    // Eight days on at Douyin (access tokens live 7, refresh tokens 14); our clock still trusts
    // the stored expiry, so the first call is made with the old token.
    rig.fake.advance(Duration::days(8));
    let id = "6931001";
    let mut paid = Order::new(id, &rig.shop, "2", rig.fake.now() - Duration::minutes(5));
    paid.lines = (1..=2)
        .map(|k| SkuLine {
            line_id: format!("{id}{k}"),
            sku_id: format!("17900000000000{k:02}"),
            outer_sku_id: format!("SKU-{id}-{k}"),
            quantity: if k == 1 { 2 } else { 1 },
        })
        .collect();
    rig.fake.put_order(Platform::Douyin, paid);
    let callback = DayCallback {
        source: Source::Douyin,
        shop: rig.shop.clone(),
        payload: fixtures::douyin_push(
            "101",
            &format!("{id}-101"),
            json!({"p_id": id, "pay_time": (at() - Duration::hours(4)).timestamp(), "s_ids": [format!("{id}1"), format!("{id}2")]}),
        ),
        query: vec![],
        message_id: format!("{id}-101"),
        sent_at: at() - Duration::hours(4),
    };
    let cache = SecretCache::new(&rig.ssm, &rig.clock, &rig.stage, Duration::minutes(2));
    let platforms: [&dyn PlatformQuery; 1] = [&rig.douyin];
    let refreshers: [&dyn TokenRefresh; 1] = [&rig.douyin];
    let tokens = TokenKeeper::new(
        TokenPorts { ledger: &rig.sync, params: &rig.ssm, secrets: &cache, refreshers: &refreshers, clock: &rig.clock },
        &rig.stage,
        TokenRules { refresh_before: Duration::minutes(30), ..TokenRules::default() },
        "status-normalize-test",
    );
    let lines = PlatformLines { platforms: &platforms, tokens: &tokens };
    rig.clients.requests.take();
    let events = ApplyMessage::new(rig.normalizer()).with_lines(&lines).handle(&callback.inbound()).await.unwrap();
    tests::policy::assert_granted("StatusNormalizeFunction", &rig.clients.requests.take());
    assert!(events.iter().any(|e| e.detail_type() == "StockReserved"), "{events:?}");
    let key = OrderKey::parse(Source::Douyin, &rig.shop, id).unwrap();
    let order = rig.tables.orders.get(&key).await.unwrap().unwrap();
    assert!(!order.flags.contains(LINES_PENDING), "not held: {:?}", order.flags);
    let mut reserved: Vec<(String, u32)> =
        rig.tables.inventory.reservations(&key).await.unwrap().iter().map(|r| (r.sku.to_string(), r.qty)).collect();
    reserved.sort();
    assert_eq!(reserved, [(format!("SKU-{id}-1"), 2), (format!("SKU-{id}-2"), 1)]);
    let denials: Vec<Denial> = rig.fake.records_of(Platform::Douyin).into_iter().filter_map(|r| r.denial).collect();
    assert_eq!(denials, [Denial::ExpiredToken], "one call with the expired token, then the refreshed one");
    let after = rig.ssm.get(&token_parameter(&rig.stage, Source::Douyin, &shop)).await.unwrap().unwrap();
    assert_ne!(after, before, "the refreshed tokens are in the shop's own parameter");
}
