//! Issue 13 through the write path: real-shaped payloads (`events/real/**`) are signed as their
//! sender signs them, opened (`sources::open`), parsed and applied (`ApplyMessage`) over the
//! in-memory ports, and what a seller, an ERP and ops see is checked: stock reserved per line
//! with the SKU an ERP acts on, refund cases named as the platform names them, Kuaidi100's
//! detailed codes and its abort, one `UnmappedStatus` per code per day.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use domain::app::apply::{ApplyChange, unmapped_marker};
use domain::app::apply_message::ApplyMessage;
use domain::app::order_lines::{LINES_PENDING, LinesRetry};
use domain::model::callback::{InboundMessage, RawCallback};
use domain::model::domain_event::DomainEvent;
use domain::model::geo::Precision;
use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::lifecycle::{Lifecycle, RefundState};
use domain::model::order::{Order, Provenance, RefundScope, StatusChange};
use domain::model::record::DueKind;
use domain::model::source_event::OrderFacts;
use domain::model::status::{RawStatus, StatusMapping, Target};
use domain::model::stock::OrderLine;
use domain::ports::clock::Clock;
use domain::ports::{InventoryStore, OrderStore, Stats};
use domain::rules::timing::Rules;
use domain::sources::youzan::sign::youzan_event_sign;
use domain::sources::{self, Opened};
use domain::testing::clock::FixedClock;
use domain::testing::fixtures;
use domain::testing::memory::{MemoryInbox, MemoryLines, MemoryStore};

const SHOP: &str = "shop-1001";
const SECRET: &str = "formats-secret";

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 6, 0, 0).single().unwrap()
}

fn real(path: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/real").join(path)).unwrap()
}

fn key(source: Source, id: &str) -> OrderKey {
    OrderKey::parse(source, SHOP, id).unwrap()
}

fn kinds(events: &[DomainEvent]) -> Vec<&'static str> {
    events.iter().map(DomainEvent::detail_type).collect()
}

fn line_triples(lines: &[OrderLine]) -> Vec<(String, String, u32)> {
    lines.iter().map(|l| (l.line.to_string(), l.sku.to_string(), l.qty)).collect()
}

struct World {
    store: MemoryStore,
    inbox: MemoryInbox,
    clock: FixedClock,
    rules: Rules,
    lines: MemoryLines,
    deliveries: std::sync::atomic::AtomicUsize,
}

impl World {
    fn new() -> Self {
        let world = World {
            store: MemoryStore::default(),
            inbox: MemoryInbox::default(),
            clock: FixedClock::new(at()),
            rules: Rules::default(),
            lines: MemoryLines::default(),
            deliveries: std::sync::atomic::AtomicUsize::new(0),
        };
        // `events/real/douyin/order-detail-response.json`, as the Douyin client reads it (the
        // adapter's test reads that file into exactly these lines).
        world.lines.set_simple(
            &key(Source::Douyin, "4987650000000000101"),
            &[("4987650000000000101", "TEA-LJ-250", 2), ("4987650000000000102", "CUP-GL-01", 1)],
        );
        world
    }

    fn write(&self) -> ApplyChange<'_> {
        ApplyChange::new(self.store.write_ports(&self.inbox, &self.clock), &self.rules)
    }

    fn messages(&self) -> ApplyMessage<'_> {
        ApplyMessage::new(self.write()).with_lines(&self.lines)
    }

    /// Opens a signed callback as webhook-verify does, then applies it as status-normalize does.
    async fn deliver(&self, cb: RawCallback, secret_json: &str) -> (InboundMessage, Vec<DomainEvent>) {
        let secret = sources::module(cb.source).load_secret(secret_json).unwrap();
        let Ok(Opened::Message { message_id, payload, .. }) = sources::open(&cb, &secret) else {
            panic!("{} callback did not open", cb.source)
        };
        let message = InboundMessage {
            source: cb.source,
            shop: cb.shop.clone(),
            message_id,
            received_at: cb.received_at,
            query: cb.query.clone(),
            payload: Some(String::from_utf8(payload).unwrap()),
            origin: "callback".into(),
        };
        let events = self.messages().handle(&message).await.unwrap_or_else(|e| panic!("{e}"));
        (message, events)
    }

    fn signed(&self, source: Source, payload: &[u8], secret: &str, query: &[(&str, &str)]) -> RawCallback {
        let n = self.deliveries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let signed = fixtures::sign(source, payload, secret, self.clock.now(), &format!("m{n}"));
        RawCallback {
            source,
            shop: ShopId::parse(SHOP).unwrap(),
            received_at: self.clock.now(),
            query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            headers: signed.headers,
            body: signed.body,
        }
    }

    async fn douyin(&self, payload: &[u8]) -> Vec<DomainEvent> {
        let cb = self.signed(Source::Douyin, payload, SECRET, &[]);
        self.deliver(cb, &fixtures::secret_json(Source::Douyin, SECRET, None)).await.1
    }

    async fn kuaidi100(&self, payload: &[u8], order: &str) -> Vec<DomainEvent> {
        let cb = self.signed(Source::Kuaidi100, payload, SECRET, &[("order", order)]);
        self.deliver(cb, &fixtures::secret_json(Source::Kuaidi100, SECRET, None)).await.1
    }

    /// A Youzan push signed with the real-shaped files' client (`yzfixtureclient01`), with no
    /// `Client-Id` header: the body's `client_id` names the shop.
    async fn youzan(&self, payload: &[u8]) -> Vec<DomainEvent> {
        let client = "yzfixtureclient01";
        let cb = RawCallback {
            source: Source::Youzan,
            shop: ShopId::parse(SHOP).unwrap(),
            received_at: self.clock.now(),
            query: vec![],
            headers: vec![("event-sign".into(), youzan_event_sign(client, payload, SECRET))],
            body: payload.to_vec(),
        };
        self.deliver(cb, &json!({"app_key": client, "secret": SECRET}).to_string()).await.1
    }

    async fn kuaishou(&self, plaintext: &[u8]) -> Vec<DomainEvent> {
        let cb = self.signed(Source::Kuaishou, plaintext, fixtures::KUAISHOU_MESSAGE_KEY, &[]);
        let secret = json!({"app_key": "ks-app-fixture", "message_key": fixtures::KUAISHOU_MESSAGE_KEY});
        self.deliver(cb, &secret.to_string()).await.1
    }

    async fn order(&self, key: &OrderKey) -> Order {
        self.store.get(key).await.unwrap().unwrap_or_else(|| panic!("{key} stored"))
    }

    async fn held_lines(&self, key: &OrderKey) -> Vec<(String, String, u32)> {
        let reserved = self.store.reservations(key).await.unwrap();
        let open: Vec<OrderLine> =
            reserved.iter().filter(|r| r.released_at.is_none()).map(|r| r.order_line()).collect();
        line_triples(&open)
    }
}

fn reserved_lines(events: &[DomainEvent]) -> Vec<(String, String, u32)> {
    events
        .iter()
        .find_map(|e| match e {
            DomainEvent::StockReserved { lines, .. } => Some(line_triples(lines)),
            _ => None,
        })
        .unwrap_or_default()
}

fn released_lines(events: &[DomainEvent]) -> Vec<(String, String, u32)> {
    events
        .iter()
        .find_map(|e| match e {
            DomainEvent::InventoryReleased { lines, .. } => Some(line_triples(lines)),
            _ => None,
        })
        .unwrap_or_default()
}

fn triple(line: &str, sku: &str, qty: u32) -> (String, String, u32) {
    (line.to_owned(), sku.to_owned(), qty)
}

// ------------------------------------------------------------------------------------ douyin

#[tokio::test]
async fn a_douyin_payment_reserves_each_sub_order_with_its_real_sku_and_quantity() {
    let world = World::new();
    let events = world.douyin(&real("douyin/tag-101-trade-paid.json")).await;
    let order_key = key(Source::Douyin, "4987650000000000101");
    let want = vec![triple("4987650000000000101", "TEA-LJ-250", 2), triple("4987650000000000102", "CUP-GL-01", 1)];
    assert_eq!(reserved_lines(&events), want, "StockReserved names the SKU an ERP acts on, never a sub-order id");
    assert_eq!(world.held_lines(&order_key).await, want);
    assert_eq!(world.lines.calls(), 1, "one order-detail call per paid order");
    let order = world.order(&order_key).await;
    assert_eq!(order.lifecycle, Some(Lifecycle::Paid));
    assert!(!order.flags.contains(LINES_PENDING));
}

#[tokio::test]
async fn a_failed_detail_call_holds_the_order_and_the_retry_reserves_the_real_skus() {
    let world = World::new();
    world.lines.fail(true);
    let events = world.douyin(&real("douyin/tag-101-trade-paid.json")).await;
    let order_key = key(Source::Douyin, "4987650000000000101");
    assert_eq!(kinds(&events), ["OrderStatusChanged"], "paid, but nothing reserved against sub-order ids");
    assert!(world.store.reservations(&order_key).await.unwrap().is_empty());
    let order = world.order(&order_key).await;
    assert!(order.flags.contains(LINES_PENDING), "{:?}", order.flags);
    assert_eq!(order.lifecycle, Some(Lifecycle::Paid));
    let shard = order_key.shard(world.rules.shards);
    let until = at() + Duration::hours(1);
    let due = world.store.due(DueKind::Lines, shard, until, None, 10).await.unwrap().items;
    assert_eq!(due.len(), 1, "a due marker asks again");

    // Still failing: held, asked again later.
    world.clock.advance(Duration::minutes(6));
    let retry = LinesRetry { write: world.write(), lines: &world.lines, retry_after: Duration::minutes(10) };
    let (events, report) = retry.sweep().await;
    assert!(events.is_empty());
    assert_eq!(report.still_pending, 1);

    // The platform answers: reserved with the real SKUs, flag and marker gone.
    world.lines.fail(false);
    world.clock.advance(Duration::minutes(11));
    let (events, report) = retry.sweep().await;
    assert_eq!(report.reserved, 1, "{report:?}");
    assert_eq!(
        reserved_lines(&events),
        [triple("4987650000000000101", "TEA-LJ-250", 2), triple("4987650000000000102", "CUP-GL-01", 1)]
    );
    let order = world.order(&order_key).await;
    assert!(!order.flags.contains(LINES_PENDING) && order.pending_lines.is_empty());
    let due = world.store.due(DueKind::Lines, shard, at() + Duration::days(1), None, 10).await.unwrap().items;
    assert!(due.is_empty());
}

#[tokio::test]
async fn a_refund_of_one_sub_order_is_its_own_case_and_releases_that_line_with_its_sku() {
    let world = World::new();
    world.douyin(&real("douyin/tag-101-trade-paid.json")).await;
    let events = world.douyin(&real("douyin/tag-200-refund-created.json")).await;
    assert!(
        matches!(&events[..], [DomainEvent::RefundStatusChanged { refund_id: Some(id), to: RefundState::Requested, .. }]
            if id.as_str() == "7300000000000000201"),
        "{events:?}"
    );
    let events = world.douyin(&real("douyin/tag-206-refund-success.json")).await;
    assert_eq!(kinds(&events), ["RefundStatusChanged", "RefundConfirmed", "InventoryReleased"]);
    assert_eq!(released_lines(&events), [triple("4987650000000000102", "CUP-GL-01", 1)]);
    let order_key = key(Source::Douyin, "4987650000000000101");
    assert_eq!(world.held_lines(&order_key).await, [triple("4987650000000000101", "TEA-LJ-250", 2)]);
}

#[tokio::test]
async fn a_price_protection_refund_releases_no_stock() {
    let world = World::new();
    world.douyin(&real("douyin/tag-101-trade-paid.json")).await;
    let price_protection = String::from_utf8(real("douyin/tag-206-refund-success.json"))
        .unwrap()
        .replace(r#"\"aftersale_type\":2"#, r#"\"aftersale_type\":6"#);
    let events = world.douyin(price_protection.as_bytes()).await;
    assert_eq!(kinds(&events), ["RefundStatusChanged", "RefundConfirmed"], "money back, the goods still ship");
    let order_key = key(Source::Douyin, "4987650000000000101");
    assert_eq!(world.held_lines(&order_key).await.len(), 2);
    let order = world.order(&order_key).await;
    assert_eq!(order.refund, RefundState::Succeeded);
    assert_eq!(order.refunded_lines(), None, "no line came back to stock");
}

#[tokio::test]
async fn the_sellers_ship_declaration_is_held_until_the_carrier_scans_it() {
    let world = World::new();
    world.douyin(&real("douyin/tag-101-trade-paid.json")).await;
    world.douyin(&real("douyin/tag-102-seller-ship.json")).await;
    let order_key = key(Source::Douyin, "4987650000000000101");
    let order = world.order(&order_key).await;
    assert_eq!(order.lifecycle, Some(Lifecycle::Packing), "卖家发货 is no scan-out");
    assert!(order.flags.contains("awaiting_scan_out") && !order.scanned_out, "{:?}", order.flags);
    assert_eq!(order.waybill.as_ref().map(|w| w.number.as_str()), Some("78912345678901"));
    let scan = fixtures::kuaidi100_param("zhongtong", "78912345678901", "1", "1", "已揽收", "2026-11-11 13:00:00", "");
    world.kuaidi100(&scan, "douyin/shop-1001/4987650000000000101").await;
    let order = world.order(&order_key).await;
    assert_eq!(order.lifecycle, Some(Lifecycle::Shipped));
    assert!(order.scanned_out && order.flags.is_empty(), "{:?}", order.flags);
}

#[tokio::test]
async fn a_paid_pending_tag_110_is_paid() {
    let world = World::new();
    world.douyin(&real("douyin/tag-110-trade-pending.json")).await;
    let order = world.order(&key(Source::Douyin, "4987650000000000101")).await;
    assert_eq!(order.lifecycle, Some(Lifecycle::Paid), "订单已支付待处理 is not PendingPayment");
}

// ------------------------------------------------------------------------------------ kuaidi100

/// An app order paid and picked up by the carrier, then one real-shaped Kuaidi100 file.
async fn tracked(world: &World, id: &str, file: &str) -> (Order, Vec<DomainEvent>) {
    let order_ref = format!("app/shop-1001/{id}");
    let paid = fixtures::app_event(
        "order.status",
        at(),
        json!({"order_id": id, "status": "Paid", "at": "2026-11-09T08:00:00Z"}),
    );
    let cb = world.signed(Source::App, &paid, fixtures::APP_SECRET, &[]);
    world.deliver(cb, &fixtures::secret_json(Source::App, fixtures::APP_SECRET, None)).await;
    let pickup =
        fixtures::kuaidi100_param("zhongtong", "78912345678901", "1", "1", "已揽收", "2026-11-09 18:03:21", "");
    world.kuaidi100(&pickup, &order_ref).await;
    let events = world.kuaidi100(&real(&format!("kuaidi100/{file}")), &order_ref).await;
    (world.order(&key(Source::App, id)).await, events)
}

#[tokio::test]
async fn kuaidi100_detailed_codes_move_the_order_as_the_table_says() {
    let world = World::new();
    let cases: &[(&str, Lifecycle, &str, bool)] = &[
        ("signed-301-recipient.json", Lifecycle::Signed, "已签收", false),
        ("signed-304-station.json", Lifecycle::Signed, "已签收", false),
        ("locker-501-not-signed.json", Lifecycle::OutForDelivery, "已发货", false),
        // 205 moves nothing: still the pick-up's Shipped.
        ("station-205-waiting-too-long.json", Lifecycle::Shipped, "已发货", false),
        ("refused-203.json", Lifecycle::SignException, "签收异常", true),
        ("refused-14.json", Lifecycle::SignException, "签收异常", true),
        ("returned-6.json", Lifecycle::SignException, "签收异常", true),
    ];
    for (n, (file, lifecycle, stage, returned)) in cases.iter().enumerate() {
        let (order, _) = tracked(&world, &format!("k-{n}"), file).await;
        assert_eq!(order.lifecycle, Some(*lifecycle), "{file}");
        assert_eq!(lifecycle.stage().label(), *stage, "{file}");
        assert_eq!(order.unmapped, None, "{file}: a real detailed code is in the table");
        assert_eq!(order.flags.contains("returned_to_sender"), *returned, "{file}: {:?}", order.flags);
    }
    // The station sign's location is the 派件 line's district, at district precision.
    let (order, events) = tracked(&world, "k-station", "signed-304-station.json").await;
    let sign = order.sign.unwrap();
    assert_eq!((sign.state.as_str(), sign.sub_state.as_deref()), ("304", Some("304")));
    assert_eq!(sign.location.map(|l| l.precision), Some(Precision::District));
    assert!(matches!(events.first(), Some(DomainEvent::OrderStatusChanged { to: Lifecycle::Signed, .. })));
}

#[tokio::test]
async fn an_abort_flags_the_order_and_publishes_tracking_stopped_until_tracking_resumes() {
    let world = World::new();
    let (order, events) = tracked(&world, "k-abort", "abort-no-trace-3-days.json").await;
    assert!(order.flags.contains("tracking_stopped"), "{:?}", order.flags);
    assert_eq!(order.lifecycle, Some(Lifecycle::Shipped), "an abort moves nothing");
    let stopped: Vec<&DomainEvent> = events.iter().filter(|e| e.detail_type() == "TrackingStopped").collect();
    assert!(
        matches!(stopped[..], [DomainEvent::TrackingStopped { waybill, reason, .. }]
            if waybill.number == "78912345670000" && waybill.carrier == "zhongtong" && reason == "3天查询无记录"),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.detail_type() == "UnmappedStatus"), "abort is a known status");
    // A later tracking push (re-subscribed) clears the flag.
    let again =
        fixtures::kuaidi100_param("zhongtong", "78912345678901", "0", "1002", "运输中", "2026-11-11 14:00:00", "");
    world.kuaidi100(&again, "app/shop-1001/k-abort").await;
    let order = world.order(&key(Source::App, "k-abort")).await;
    assert!(!order.flags.contains("tracking_stopped"));
}

// ------------------------------------------------------------------------------------ youzan, kuaishou

#[tokio::test]
async fn youzan_refund_pushes_map_by_type_and_release_the_refunded_line() {
    let world = World::new();
    let events = world.youzan(&real("youzan/trade-buyer-pay-trade-paid.json")).await;
    assert_eq!(reserved_lines(&events), [triple("2792000000000000001", "TEA-LJ-250", 2)]);
    let events = world.youzan(&real("youzan/refund-buyer-created.json")).await;
    assert!(
        matches!(&events[..], [DomainEvent::RefundStatusChanged { refund_id: Some(id), to: RefundState::Requested, .. }]
            if id.as_str() == "201611111000000001"),
        "{events:?}"
    );
    let events = world.youzan(&real("youzan/refund-success.json")).await;
    assert_eq!(kinds(&events), ["RefundStatusChanged", "RefundConfirmed", "InventoryReleased"]);
    assert_eq!(released_lines(&events), [triple("2792000000000000001", "TEA-LJ-250", 2)]);
    // The same push again (Youzan retries with the same msg_id): deduped at the door.
    let order = world.order(&key(Source::Youzan, "E20261111100000000000001")).await;
    assert_eq!(order.refund, RefundState::Succeeded);
}

#[tokio::test]
async fn a_youzan_close_after_a_full_refund_is_a_refund_outcome_as_taobaos_is() {
    let world = World::new();
    world.youzan(&real("youzan/trade-buyer-pay-trade-paid.json")).await;
    let closed = String::from_utf8(real("youzan/trade-buyer-pay-trade-paid.json"))
        .unwrap()
        .replace(r#""status": "TRADE_PAID""#, r#""status": "TRADE_CLOSED""#)
        .replace(r#""type": "trade_TradeBuyerPay""#, r#""type": "trade_TradeClose""#)
        .replace(r#""version": 1794363302"#, r#""version": 1794370000"#)
        .replace(r#""msg_id": "5b6c1e0a-0000-4000-8000-000000000101""#, r#""msg_id": "5b6c1e0a-close""#)
        .replace("%22refund_state%22%3A0", "%22refund_state%22%3A12");
    let events = world.youzan(closed.as_bytes()).await;
    let order = world.order(&key(Source::Youzan, "E20261111100000000000001")).await;
    assert_eq!((order.lifecycle, order.refund), (Some(Lifecycle::Cancelled), RefundState::Succeeded), "{events:?}");
    assert_eq!(released_lines(&events), [triple("2792000000000000001", "TEA-LJ-250", 2)]);
    // Taobao's TRADE_CLOSED says the same in its own words (polled, so applied as a poll).
    let write = world.write();
    let taobao = key(Source::Taobao, "3000000000000001");
    let change = |code: &str, minute: i64, lines: Vec<OrderLine>| {
        (
            StatusChange {
                key: taobao.clone(),
                message_id: domain::model::ids::MessageId::parse(&format!("tb-{code}")).unwrap(),
                event_time: at() + Duration::minutes(minute),
                received_at: at(),
                raw: RawStatus::new("trade_status", code),
                mapping: sources::map_status(Source::Taobao, "trade_status", code),
                provenance: Provenance::Poll,
                refund_scope: RefundScope::default(),
            },
            OrderFacts { lines, ..OrderFacts::default() },
        )
    };
    let line = OrderLine { line: "tb-1".parse_line(), sku: "SKU-TB".parse_sku(), qty: 1 };
    let (paid, facts) = change("WAIT_SELLER_SEND_GOODS", 1, vec![line]);
    write.apply_status(&paid, &facts).await.unwrap();
    let (closed, facts) = change("TRADE_CLOSED", 2, vec![]);
    let (_, events) = write.apply_status(&closed, &facts).await.unwrap();
    let order = world.order(&taobao).await;
    assert_eq!((order.lifecycle, order.refund), (Some(Lifecycle::Cancelled), RefundState::Succeeded));
    assert_eq!(released_lines(&events), [triple("tb-1", "SKU-TB", 1)]);
}

#[tokio::test]
async fn kuaishou_refunds_map_to_refund_states_and_release_stock() {
    let world = World::new();
    // Kuaishou's pushes carry no lines: an order's lines come from its poll, applied as such.
    let order_key = key(Source::Kuaishou, "2611110000000001");
    let paid = StatusChange {
        key: order_key.clone(),
        message_id: domain::model::ids::MessageId::parse("ks-paid").unwrap(),
        event_time: at() - Duration::hours(2),
        received_at: at(),
        raw: RawStatus::new("status", "30"),
        mapping: sources::map_status(Source::Kuaishou, "status", "30"),
        provenance: Provenance::Poll,
        refund_scope: RefundScope::default(),
    };
    let line = OrderLine { line: "2611110000000001".parse_line(), sku: "KS-SKU-1".parse_sku(), qty: 1 };
    world.write().apply_status(&paid, &OrderFacts { lines: vec![line], ..OrderFacts::default() }).await.unwrap();
    let added = real("kuaishou/refund-add-plaintext.json");
    let events = world.kuaishou(&added).await;
    assert!(
        matches!(&events[..], [DomainEvent::RefundStatusChanged { refund_id: Some(id), to: RefundState::Requested, .. }]
            if id.as_str() == "2611110000009001"),
        "{events:?}"
    );
    let mut success: Value = serde_json::from_slice(&added).unwrap();
    success["eventId"] = json!("ks-evt-20261111-000000000002");
    success["event"] = json!("kwaishop_aftersales_updateRefund");
    success["info"] = json!(
        r#"{"orderId":2611110000000001,"refundId":2611110000009001,"handlingWay":10,"specialRefundType":0,"status":60,"updateTime":1794369600000}"#
    );
    let events = world.kuaishou(success.to_string().as_bytes()).await;
    assert_eq!(kinds(&events), ["RefundStatusChanged", "RefundConfirmed", "InventoryReleased"]);
    assert_eq!(released_lines(&events), [triple("2611110000000001", "KS-SKU-1", 1)]);
}

// ------------------------------------------------------------------------------------ bad input

fn unmapped(events: &[DomainEvent]) -> usize {
    events.iter().filter(|e| e.detail_type() == "UnmappedStatus").count()
}

#[tokio::test]
async fn an_unknown_code_alerts_once_per_source_field_and_code_per_day_not_per_order() {
    let world = World::new();
    let push = |order: &str, msg: &str| {
        fixtures::douyin_push("999", msg, json!({"p_id": order, "update_time": at().timestamp()}))
    };
    // Two orders with the same unknown tag on one day: one alert; both orders flagged.
    let first = world.douyin(&push("6921000001", "u1")).await;
    let second = world.douyin(&push("6921000002", "u2")).await;
    assert_eq!((unmapped(&first), unmapped(&second)), (1, 0));
    for id in ["6921000001", "6921000002"] {
        assert_eq!(world.order(&key(Source::Douyin, id)).await.unmapped.map(|r| r.code), Some("999".to_owned()));
    }
    // The first delivery's publish is confirmed: nobody alerts again today, even after the lease.
    let (marker, claimant) = unmapped_marker(&first[0]).unwrap();
    world.store.confirm_daily(&marker, &claimant).await.unwrap();
    world.clock.advance(Duration::hours(1));
    assert_eq!(unmapped(&world.douyin(&push("6921000003", "u3")).await), 0);
    // Another code, or the next Beijing day: alerted again.
    let other = fixtures::douyin_push("998", "u4", json!({"p_id": "6921000004", "update_time": at().timestamp()}));
    assert_eq!(unmapped(&world.douyin(&other).await), 1);
    world.clock.set(Utc.with_ymd_and_hms(2026, 11, 11, 16, 30, 0).single().unwrap()); // 00:30 in Beijing
    assert_eq!(unmapped(&world.douyin(&push("6921000005", "u5")).await), 1);
}

#[tokio::test]
async fn an_alert_whose_publish_failed_goes_out_with_the_redelivery_or_the_next_occurrence() {
    let world = World::new();
    let push = fixtures::douyin_push("997", "p1", json!({"p_id": "6921000010", "update_time": at().timestamp()}));
    let cb = world.signed(Source::Douyin, &push, SECRET, &[]);
    let (message, events) = world.deliver(cb, &fixtures::secret_json(Source::Douyin, SECRET, None)).await;
    assert_eq!(unmapped(&events), 1);
    // The bus refused it (not confirmed): SQS redelivers the message, which alerts again.
    let again = world.messages().handle(&message).await.unwrap();
    assert_eq!(unmapped(&again), 1, "the claimant's redelivery re-claims and publishes");
    // Within the lease another order's occurrence waits for the claimant...
    let other = fixtures::douyin_push("997", "p2", json!({"p_id": "6921000011", "update_time": at().timestamp()}));
    assert_eq!(unmapped(&world.douyin(&other).await), 0);
    // ...after it, the claimant's publish is taken to have failed: the next occurrence alerts.
    world.clock.advance(Duration::minutes(16));
    let late = fixtures::douyin_push("997", "p3", json!({"p_id": "6921000012", "update_time": at().timestamp()}));
    assert_eq!(unmapped(&world.douyin(&late).await), 1);
}

#[tokio::test]
async fn an_overlong_code_is_kept_cut_flagged_and_alerted() {
    let world = World::new();
    let long = "9".repeat(10_000);
    let push = fixtures::douyin_push(&long, "long", json!({"p_id": "6921000020", "update_time": at().timestamp()}));
    let events = world.douyin(&push).await;
    assert_eq!(unmapped(&events), 1);
    let order = world.order(&key(Source::Douyin, "6921000020")).await;
    let raw = order.unmapped.unwrap();
    assert!(raw.is_cut() && raw.code.chars().count() == RawStatus::MAX_CODE_CHARS + 1, "{}", raw.code.len());
    let markers = world.store.daily_markers();
    assert_eq!(markers.len(), 1);
    assert!(markers[0].name.len() < 400, "the marker's key is bounded too: {} bytes", markers[0].name.len());
}

trait Parse {
    fn parse_line(&self) -> domain::model::ids::LineId;
    fn parse_sku(&self) -> domain::model::ids::Sku;
}

impl Parse for &str {
    fn parse_line(&self) -> domain::model::ids::LineId {
        domain::model::ids::LineId::parse(self).unwrap()
    }
    fn parse_sku(&self) -> domain::model::ids::Sku {
        domain::model::ids::Sku::parse(self).unwrap()
    }
}

#[test]
fn a_mapping_with_the_after_sales_own_kind_keeps_the_rest() {
    let mapped = StatusMapping::Mapped(Target::refund(RefundState::Succeeded));
    let kind = Some(domain::model::lifecycle::RefundKind::PriceProtection);
    assert_eq!(
        mapped.with_refund_kind(kind),
        StatusMapping::Mapped(Target { refund_kind: kind, ..Target::refund(RefundState::Succeeded) })
    );
    let lifecycle_only = StatusMapping::Mapped(Target::lifecycle(Lifecycle::Paid));
    assert_eq!(lifecycle_only.with_refund_kind(kind), lifecycle_only, "no refund, no kind");
}
