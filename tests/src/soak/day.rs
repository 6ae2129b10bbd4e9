//! A sales day, generated from a seed: orders on every push source (Douyin, Youzan, Kuaishou,
//! the seller's mini-program paid through WeChat Pay) with Kuaidi100 tracking pushes for what
//! ships, multi-line orders, partial refunds of single lines, refunds whose outcome the platform
//! never pushes (the refund dual-check finds them), unknown codes, heartbeats, the customer's
//! app signals around a sign, and late events that arrive after newer ones.
//!
//! Each callback is built as the platform builds it — the payload in the shape of
//! `events/real/**` (through the fixture builders of `domain::testing::fixtures`) — and signed
//! as the platform signs it ([`fixtures::sign`]), once per attempt, as senders whose scheme
//! carries a timestamp (Standard Webhooks, WeChat Pay) do.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use domain::app::intake::Incoming;
use domain::model::ids::{OrderKey, Source};
use domain::testing::faults::SeededRng;
use domain::testing::fixtures;

/// The sources that push callbacks, each with its shops.
pub const SHOPS: [(Source, &[&str]); 6] = [
    (Source::Douyin, &["dy-shop-1", "dy-shop-2"]),
    (Source::Youzan, &["yz-shop-1"]),
    (Source::Kuaishou, &["ks-shop-1"]),
    (Source::App, &["mp-shop-1"]),
    (Source::Wechatpay, &["mp-shop-1"]),
    (Source::Kuaidi100, &["dy-shop-1", "dy-shop-2", "yz-shop-1", "ks-shop-1", "mp-shop-1"]),
];

/// The stage the soak's secrets live under.
pub const STAGE: &str = "soak";

/// The webhook signing secret of a shop of a source (test values, ours).
pub fn shop_secret(source: Source, shop: &str) -> String {
    format!("soak-{source}-{shop}-s3cret")
}

/// Stores every shop's secret parameter (as `fixtures::secret_json` writes them) in `secrets`;
/// Douyin's also carries the open API's tokens (`tok-1`, expiring 30 hours after `start`), which
/// the refund dual-check uses.
pub async fn install_secrets(secrets: &dyn domain::ports::Secrets, start: DateTime<Utc>) {
    for (source, shops) in SHOPS {
        for shop in shops {
            let mut value: Value =
                serde_json::from_str(&fixtures::secret_json(source, &shop_secret(source, shop), None))
                    .unwrap_or_else(|e| panic!("{e}"));
            if source == Source::Douyin {
                value["access_token"] = json!("tok-1");
                value["access_token_expires_at"] = json!((start + Duration::hours(30)).to_rfc3339());
                value["refresh_token"] = json!("refresh-1");
            }
            let shop = domain::ShopId::parse(shop).unwrap_or_else(|e| panic!("{e}"));
            let name = domain::ports::secrets::parameter_name(STAGE, source, &shop);
            secrets.put(&name, &value.to_string()).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// How the day is laid out.
#[derive(Debug, Clone)]
pub struct DayPlan {
    /// Seed of every choice.
    pub seed: u64,
    /// At least this many callbacks (orders are added until there are).
    pub callbacks: usize,
    /// When the day starts (00:00 Beijing on 11.11 in process; now on the local stack).
    pub start: DateTime<Utc>,
    /// One step of an order's pace: a minute in process, a second on the local stack.
    pub unit: Duration,
    /// How long the day's orders keep being created, in units.
    pub span_units: i64,
    /// The range of an order's pace (units between its steps).
    pub pace: (i64, i64),
    /// The longest tail in units: a completion after the sign, a late delivery, an app signal.
    pub tail_units: i64,
}

impl DayPlan {
    /// A day of at least `callbacks` callbacks from 00:00 Beijing on 11.11 2026 (`start`), a
    /// minute a unit: orders created over 14 hours, paced 3–25 minutes, tails up to 10 hours.
    pub fn sales_day(seed: u64, callbacks: usize, start: DateTime<Utc>) -> Self {
        Self { seed, callbacks, start, unit: Duration::minutes(1), span_units: 14 * 60, pace: (3, 25), tail_units: 600 }
    }
}

/// One callback of the day, as its sender knows it.
#[derive(Debug, Clone)]
pub struct Callback {
    /// Its index in the day.
    pub n: usize,
    /// The sender.
    pub source: Source,
    /// The shop in the URL.
    pub shop: String,
    /// The payload before signing (for WeChat Pay: the resource before encryption).
    pub payload: Vec<u8>,
    /// Query parameters of the callback URL (Kuaidi100: `order`).
    pub query: Vec<(String, String)>,
    /// The id the signing scheme carries (Standard Webhooks `webhook-id`, WeChat Pay notice id).
    pub message_id: String,
    /// The event's own time at the source.
    pub source_time: DateTime<Utc>,
    /// When the sender first sends it (late events long after `source_time`).
    pub send_at: DateTime<Utc>,
    /// What it is, for reports.
    pub what: &'static str,
}

impl Callback {
    /// The HTTP request of one attempt at `at`, signed as the sender signs it.
    pub fn request(&self, at: DateTime<Utc>) -> Incoming {
        let secret = fixtures::signing_key(self.source, &shop_secret(self.source, &self.shop));
        let signed = fixtures::sign(self.source, &self.payload, &secret, at, &self.message_id);
        let mut query = signed.query;
        query.extend(self.query.iter().cloned());
        Incoming {
            method: "POST".into(),
            source: self.source.to_string(),
            shop: self.shop.clone(),
            query,
            headers: signed.headers,
            body: signed.body,
            received_at: at,
            // The platform's push servers (documentation range).
            sender: Some(std::net::IpAddr::from([203, 0, 113, 10])),
        }
    }
}

/// A refund as the platform knows it: its states in time, and the lines it covers.
#[derive(Debug, Clone, Default)]
pub struct PlatformRefund {
    /// (time, Douyin `after_sale_status` code) in time order.
    pub timeline: Vec<(DateTime<Utc>, &'static str)>,
}

/// What the platforms and the customer know about the day: for the fake platform query API and
/// the oracle's truth checks.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Douyin after-sales per order, as the platform's query API shows them.
    pub douyin_refunds: BTreeMap<OrderKey, PlatformRefund>,
    /// Per order, the lines the platforms said it has (line id → sku).
    pub lines: BTreeMap<OrderKey, BTreeMap<String, String>>,
    /// Per order, the lines refunds of it succeeded for before it shipped ("*" = every line).
    pub refunded_before_shipment: BTreeMap<OrderKey, Vec<String>>,
    /// Orders whose refund outcome the platform never pushes.
    pub silent_refunds: Vec<OrderKey>,
    /// Every order of the day.
    pub orders: Vec<OrderKey>,
}

/// A generated day.
#[derive(Debug, Clone)]
pub struct Day {
    /// Every callback, in the order they are first sent.
    pub callbacks: Vec<Callback>,
    /// What the platforms know.
    pub truth: Truth,
}

struct Builder {
    plan: DayPlan,
    rng: SeededRng,
    out: Vec<Callback>,
    truth: Truth,
    next_id: u64,
    rush: bool,
}

impl Builder {
    fn at(&self, t0: DateTime<Utc>, units: f64) -> DateTime<Utc> {
        let ms = (self.plan.unit.num_milliseconds() as f64 * units) as i64;
        // Whole seconds: the platforms' own times are seconds.
        let at = t0 + Duration::milliseconds(ms);
        DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// When a callback is first sent: within a second of the event (within milliseconds in the
    /// midnight rush, when every platform pushes at once), or — one in twelve — late.
    fn send_delay(&mut self) -> Duration {
        if self.rng.chance(1.0 / 12.0) {
            let units = self.rng.between(10, 180.min(self.plan.tail_units));
            return self.plan.unit * i32::try_from(units).unwrap_or(10);
        }
        let max_ms = if self.rush { 20 } else { 1_000 };
        // Scaled with the unit (a minute in process): a second on a 60× faster day is 1/60 s.
        let ms = self.rng.between(0, max_ms) * self.plan.unit.num_milliseconds().clamp(1, 60_000) / 60_000;
        Duration::milliseconds(ms)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        source: Source,
        shop: &str,
        payload: Vec<u8>,
        query: Vec<(String, String)>,
        message_id: String,
        source_time: DateTime<Utc>,
        what: &'static str,
    ) {
        let delay = self.send_delay();
        self.out.push(Callback {
            n: self.out.len(),
            source,
            shop: shop.to_owned(),
            payload,
            query,
            message_id,
            source_time,
            send_at: source_time + delay,
            what,
        });
    }

    fn beijing(t: DateTime<Utc>) -> String {
        t.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// The carrier's trail of a parcel from pick-up to sign (or refusal), and the customer's
    /// app signals around the sign. Returns when it was signed, and whether it was refused.
    fn parcel(
        &mut self,
        key: &OrderKey,
        waybill: &str,
        shipped: DateTime<Utc>,
        pace: f64,
        customer: Option<&str>,
    ) -> (DateTime<Utc>, bool) {
        let shop = key.shop.as_str().to_owned();
        let order = vec![("order".to_owned(), format!("{}/{}/{}", key.source, key.shop, key.order_id))];
        let trail: [(&str, &str, &str, f64); 3] = [
            ("1", "101", "顺丰速运 已收取快件", 0.5),
            ("0", "1002", "快件到达【杭州转运中心】", pace),
            ("5", "501", "快件交给派件员，正在派送途中", pace * 2.0),
        ];
        for (state, sub, text, after) in trail {
            let at = self.at(shipped, after);
            let param =
                fixtures::kuaidi100_param("shunfeng", waybill, state, sub, text, &Self::beijing(at), "120.21,30.25");
            self.push(Source::Kuaidi100, &shop, param, order.clone(), String::new(), at, "kuaidi100 trail");
        }
        let signed = self.at(shipped, pace * 3.0);
        let roll = self.rng.below(20);
        let (state, sub, text, area) = match roll {
            0 => ("14", "14", "收件人拒签，快件退回", "120.1551,30.2741"),
            1..=7 => ("3", "301", "已签收，签收人是本人，感谢使用顺丰", "120.1551,30.2741"),
            8..=13 => ("3", "304", "快件已被丰巢智能柜【幸福里2号柜】签收，请凭取件码取件", "120.1600,30.2800"),
            _ => ("3", "302", "已签收，他人代收：门卫", "120.1700,30.2900"),
        };
        let param = fixtures::kuaidi100_param("shunfeng", waybill, state, sub, text, &Self::beijing(signed), area);
        self.push(Source::Kuaidi100, &shop, param, order, String::new(), signed, "kuaidi100 sign");
        if let Some(customer) = customer {
            let reference = format!("{}/{}/{}", key.source, key.shop, key.order_id);
            let after = self.rng.between(5, 150.min(self.plan.tail_units)) as f64;
            let at = self.at(signed, after);
            let kind = match self.rng.below(10) {
                0 => Some("sign.not_received"),
                1..=5 => Some("sign.confirmed"),
                6 => Some("logistics.viewed"),
                _ => None,
            };
            if let Some(kind) = kind {
                let id = format!("msg_sig{}", self.id());
                let payload = fixtures::app_event(
                    kind,
                    at,
                    json!({"customer": customer, "order": reference, "at": at.to_rfc3339(), "lat": 30.2741, "lng": 120.1551, "accuracy_m": 25.0}),
                );
                self.push(Source::App, "mp-shop-1", payload, vec![], id, at, "app signal");
            }
        }
        (signed, roll == 0)
    }

    /// The customer's address for an order (the seller's geocoding), sent when it is paid.
    fn address(&mut self, key: &OrderKey, at: DateTime<Utc>, customer: &str) {
        let id = format!("msg_addr{}", self.id());
        let reference = format!("{}/{}/{}", key.source, key.shop, key.order_id);
        let payload = fixtures::app_event(
            "order.address",
            at,
            json!({"order": reference, "addr_key": format!("addr-{}", key.order_id), "district": "西湖区",
                "customer": customer, "lat": 30.2741, "lng": 120.1551}),
        );
        self.push(Source::App, "mp-shop-1", payload, vec![], id, at, "app address");
    }

    fn douyin(&mut self, t0: DateTime<Utc>, pace: f64) {
        let shop = if self.rng.chance(0.5) { "dy-shop-1" } else { "dy-shop-2" };
        let n = self.id();
        let order_id = format!("69{n:014}");
        let Ok(key) = OrderKey::parse(Source::Douyin, shop, &order_id) else { return };
        self.truth.orders.push(key.clone());
        let msg = |b: &mut Builder| format!("7{:018}", b.id());
        let skus: Vec<String> = (0..self.rng.between(1, 3)).map(|i| format!("{order_id}{i}")).collect();
        self.truth.lines.insert(key.clone(), skus.iter().map(|s| (s.clone(), s.clone())).collect());
        let created = t0;
        let m = msg(self);
        self.push(
            Source::Douyin,
            shop,
            fixtures::douyin_push("100", &m, json!({"p_id": order_id, "create_time": created.timestamp()})),
            vec![],
            m,
            created,
            "douyin created",
        );
        let roll = self.rng.below(100);
        if roll < 5 {
            // Never paid: cancelled.
            let at = self.at(t0, pace);
            let m = msg(self);
            self.push(
                Source::Douyin,
                shop,
                fixtures::douyin_push("106", &m, json!({"p_id": order_id, "cancel_time": at.timestamp()})),
                vec![],
                m,
                at,
                "douyin cancelled",
            );
            return;
        }
        let paid = self.at(t0, 1.0);
        let s_ids: Vec<Value> = skus.iter().map(|s| json!(s.parse::<i64>().unwrap_or(0))).collect();
        let m = msg(self);
        self.push(
            Source::Douyin,
            shop,
            fixtures::douyin_push("101", &m, json!({"p_id": order_id, "pay_time": paid.timestamp(), "s_ids": s_ids})),
            vec![],
            m,
            paid,
            "douyin paid",
        );
        if roll < 8 {
            // A code no mapping row knows yet: kept and flagged, never a failure.
            let at = self.at(paid, pace / 2.0);
            let m = msg(self);
            self.push(
                Source::Douyin,
                shop,
                fixtures::douyin_push("111", &m, json!({"p_id": order_id, "update_time": at.timestamp()})),
                vec![],
                m,
                at,
                "douyin unknown code",
            );
        }
        if roll < 28 {
            // Refunded before it ships: asked, then succeeded (or refused, or closed).
            let asked = self.at(paid, pace);
            let m = msg(self);
            self.push(
                Source::Douyin,
                shop,
                fixtures::douyin_push(
                    "200",
                    &m,
                    json!({"p_id": order_id, "aftersale_id": format!("AS{order_id}"), "apply_time": asked.timestamp(), "aftersale_type": 2}),
                ),
                vec![],
                m,
                asked,
                "douyin refund asked",
            );
            let units = self.rng.between(5, 60.min(self.plan.tail_units)) as f64;
            let done = self.at(asked, units);
            let outcome = self.rng.below(10);
            let (tag, code, time_field, what) = match outcome {
                0 => ("204", "27", "update_time", "douyin refund refused"),
                1 => ("207", "28", "update_time", "douyin refund closed"),
                _ => ("206", "12", "success_time", "douyin refund succeeded"),
            };
            self.truth
                .douyin_refunds
                .insert(key.clone(), PlatformRefund { timeline: vec![(asked, "6"), (done, code)] });
            if code == "12" {
                self.truth.refunded_before_shipment.insert(key.clone(), vec!["*".into()]);
            }
            if outcome >= 7 {
                // The platform never pushes this outcome: only the dual-check's poll finds it.
                self.truth.silent_refunds.push(key);
                return;
            }
            let m = msg(self);
            self.push(
                Source::Douyin,
                shop,
                fixtures::douyin_push(
                    tag,
                    &m,
                    json!({"p_id": order_id, "aftersale_id": format!("AS{order_id}"), time_field: done.timestamp(), "aftersale_type": 2}),
                ),
                vec![],
                m,
                done,
                what,
            );
            if code == "12" {
                return;
            }
        }
        let shipped = self.at(paid, pace * 2.0);
        let waybill = format!("SF{:010}", self.id());
        let m = msg(self);
        self.push(
            Source::Douyin,
            shop,
            fixtures::douyin_push(
                "102",
                &m,
                json!({"p_id": order_id, "update_time": shipped.timestamp(), "order_status": 3,
                    "logistics_msg": {"express_company_id": "shunfeng", "logistics_code": waybill}}),
            ),
            vec![],
            m,
            shipped,
            "douyin shipped",
        );
        let (signed, _) = self.parcel(&key, &waybill, shipped, pace, None);
        if self.rng.chance(0.5) {
            let units = self.rng.between(30.min(self.plan.tail_units), 600.min(self.plan.tail_units)) as f64;
            let done = self.at(signed, units);
            let m = msg(self);
            self.push(
                Source::Douyin,
                shop,
                fixtures::douyin_push("103", &m, json!({"p_id": order_id, "complete_time": done.timestamp()})),
                vec![],
                m,
                done,
                "douyin completed",
            );
        }
    }

    fn youzan(&mut self, t0: DateTime<Utc>, pace: f64) {
        let shop = "yz-shop-1";
        let n = self.id();
        let tid = format!("E2026{n:014}");
        let Ok(key) = OrderKey::parse(Source::Youzan, shop, &tid) else { return };
        self.truth.orders.push(key.clone());
        let created = t0;
        self.push(
            Source::Youzan,
            shop,
            fixtures::youzan_push("trade_TradeCreate", &tid, "WAIT_BUYER_PAY", created.timestamp()),
            vec![],
            String::new(),
            created,
            "youzan created",
        );
        let paid = self.at(t0, 1.0);
        self.push(
            Source::Youzan,
            shop,
            fixtures::youzan_push("trade_TradePaid", &tid, "WAIT_SELLER_SEND_GOODS", paid.timestamp()),
            vec![],
            String::new(),
            paid,
            "youzan paid",
        );
        let roll = self.rng.below(100);
        if roll < 10 {
            let at = self.at(paid, pace);
            self.push(
                Source::Youzan,
                shop,
                fixtures::youzan_push("trade_TradeClose", &tid, "TRADE_CLOSED", at.timestamp()),
                vec![],
                String::new(),
                at,
                "youzan closed",
            );
            return;
        }
        if roll < 16 {
            // Youzan's refund codes have no mapping rows yet: kept as unmapped.
            let at = self.at(paid, pace / 2.0);
            self.push(
                Source::Youzan,
                shop,
                fixtures::youzan_push("trade_refund_BuyerCreated", &tid, "WAIT_SELLER_AGREE", at.timestamp()),
                vec![],
                String::new(),
                at,
                "youzan refund (unmapped)",
            );
        }
        let shipped = self.at(paid, pace * 2.0);
        self.push(
            Source::Youzan,
            shop,
            fixtures::youzan_push("trade_TradeSellerShip", &tid, "WAIT_BUYER_CONFIRM_GOODS", shipped.timestamp()),
            vec![],
            String::new(),
            shipped,
            "youzan shipped",
        );
        let waybill = format!("SF{:010}", self.id());
        let (signed, _) = self.parcel(&key, &waybill, shipped, pace, None);
        if self.rng.chance(0.6) {
            let units = self.rng.between(30.min(self.plan.tail_units), 600.min(self.plan.tail_units)) as f64;
            let done = self.at(signed, units);
            self.push(
                Source::Youzan,
                shop,
                fixtures::youzan_push("trade_TradeSuccess", &tid, "TRADE_SUCCESS", done.timestamp()),
                vec![],
                String::new(),
                done,
                "youzan completed",
            );
        }
    }

    fn kuaishou(&mut self, t0: DateTime<Utc>, pace: f64) {
        let shop = "ks-shop-1";
        let n = self.id();
        let oid = format!("2026{n:012}");
        let Ok(key) = OrderKey::parse(Source::Kuaishou, shop, &oid) else { return };
        self.truth.orders.push(key.clone());
        let status = |b: &mut Builder, code: i64, at: DateTime<Utc>, what: &'static str| {
            let id = format!("ks-{}", b.id());
            let payload = fixtures::kuaishou_message(
                &id,
                "KWAISHOP_ORDER_STATUS_CHANGE",
                &oid,
                code,
                at.timestamp_millis(),
                false,
            );
            b.push(Source::Kuaishou, shop, payload, vec![], id, at, what);
        };
        status(self, 10, t0, "kuaishou created");
        let paid = self.at(t0, 1.0);
        status(self, 30, paid, "kuaishou paid");
        if self.rng.chance(0.1) {
            let at = self.at(paid, pace);
            status(self, 80, at, "kuaishou cancelled");
            return;
        }
        let shipped = self.at(paid, pace * 2.0);
        status(self, 40, shipped, "kuaishou shipped");
        let waybill = format!("SF{:010}", self.id());
        let (signed, refused) = self.parcel(&key, &waybill, shipped, pace, None);
        if !refused {
            let platform_signed = self.at(signed, 1.0);
            status(self, 50, platform_signed, "kuaishou signed");
        }
        if self.rng.chance(0.5) {
            let units = self.rng.between(30.min(self.plan.tail_units), 600.min(self.plan.tail_units)) as f64;
            let done = self.at(signed, units);
            status(self, 70, done, "kuaishou completed");
        }
        if self.rng.chance(0.2) {
            // A heartbeat (`test: true`): acknowledged and ignored.
            let id = format!("ks-hb-{}", self.id());
            let payload = fixtures::kuaishou_message(
                &id,
                "KWAISHOP_ORDER_STATUS_CHANGE",
                &oid,
                30,
                paid.timestamp_millis(),
                true,
            );
            self.push(Source::Kuaishou, shop, payload, vec![], id, paid, "kuaishou heartbeat");
        }
    }

    /// A mini-program order, paid through WeChat Pay.
    fn app(&mut self, t0: DateTime<Utc>, pace: f64) {
        let shop = "mp-shop-1";
        let n = self.id();
        let order_id = format!("mp-{n:08}");
        let Ok(key) = OrderKey::parse(Source::App, shop, &order_id) else { return };
        self.truth.orders.push(key.clone());
        let customer = format!("cust-{n}");
        let status = |b: &mut Builder, kind: &str, data: Value, at: DateTime<Utc>, what: &'static str| {
            let id = format!("msg_{}", b.id());
            b.push(Source::App, shop, fixtures::app_event(kind, at, data), vec![], id, at, what);
        };
        status(
            self,
            "order.status",
            json!({"order_id": order_id, "status": "PendingPayment", "at": t0.to_rfc3339()}),
            t0,
            "app created",
        );
        let paid = self.at(t0, 1.0);
        let lines: Vec<(String, String, u64)> = (1..=self.rng.between(1, 3))
            .map(|i| (format!("L{i}"), format!("SKU-{}", 100 + self.rng.below(40)), 1 + self.rng.below(3)))
            .collect();
        self.truth.lines.insert(key.clone(), lines.iter().map(|(l, s, _)| (l.clone(), s.clone())).collect());
        // WeChat Pay's payment notice (trade_state SUCCESS) and the mini-program's own Paid with
        // the lines, a moment later.
        let notice = format!("EV-{}", self.id());
        let resource = json!({"out_trade_no": order_id, "transaction_id": format!("42000{n:010}"),
            "trade_state": "SUCCESS", "success_time": paid.to_rfc3339()});
        self.push(Source::Wechatpay, shop, resource.to_string().into_bytes(), vec![], notice, paid, "wechatpay paid");
        let app_paid = paid + Duration::seconds(2);
        let line_json: Vec<Value> = lines.iter().map(|(l, s, q)| json!({"line": l, "sku": s, "qty": q})).collect();
        status(
            self,
            "order.status",
            json!({"order_id": order_id, "status": "Paid", "at": app_paid.to_rfc3339(), "lines": line_json,
                "promised_ship_at": (paid + Duration::hours(24)).to_rfc3339()}),
            app_paid,
            "app paid",
        );
        self.address(&key, app_paid, &customer);
        let roll = self.rng.below(100);
        let mut refunded_until = paid;
        if roll < 20 && lines.len() > 1 {
            // A partial refund of one line before shipment; the other lines still ship.
            let asked = self.at(paid, pace / 2.0);
            let refund = format!("R{n}");
            status(
                self,
                "order.refund",
                json!({"order_id": order_id, "refund_status": "Requested", "refund_id": refund, "refund_lines": ["L1"],
                    "kind": "refund_only", "at": asked.to_rfc3339()}),
                asked,
                "app partial refund asked",
            );
            let units = self.rng.between(2, 20.min(self.plan.tail_units)) as f64;
            let done = self.at(asked, units);
            status(
                self,
                "order.refund",
                json!({"order_id": order_id, "refund_status": "Succeeded", "refund_id": refund, "refund_lines": ["L1"],
                    "kind": "refund_only", "at": done.to_rfc3339()}),
                done,
                "app partial refund succeeded",
            );
            self.truth.refunded_before_shipment.insert(key.clone(), vec!["L1".into()]);
            refunded_until = done;
        } else if roll < 30 {
            // The whole order refunded and cancelled before shipment.
            let done = self.at(paid, pace / 2.0);
            status(
                self,
                "order.refund",
                json!({"order_id": order_id, "refund_status": "Succeeded", "kind": "refund_only", "at": done.to_rfc3339()}),
                done,
                "app refund succeeded",
            );
            let refund_notice = format!("EV-{}", self.id());
            let resource = json!({"out_trade_no": order_id, "out_refund_no": format!("RF{n}"), "refund_status": "SUCCESS",
                "success_time": done.to_rfc3339()});
            self.push(
                Source::Wechatpay,
                shop,
                resource.to_string().into_bytes(),
                vec![],
                refund_notice,
                done,
                "wechatpay refund",
            );
            let cancelled = done + Duration::seconds(1);
            status(
                self,
                "order.status",
                json!({"order_id": order_id, "status": "Cancelled", "at": cancelled.to_rfc3339()}),
                cancelled,
                "app cancelled",
            );
            self.truth.refunded_before_shipment.insert(key.clone(), vec!["*".into()]);
            return;
        }
        // A partial refund succeeds before the rest ships.
        let shipped = self.at(paid, pace * 2.0).max(refunded_until + self.plan.unit);
        let waybill = format!("SF{:010}", self.id());
        status(
            self,
            "order.status",
            json!({"order_id": order_id, "status": "Shipped", "at": shipped.to_rfc3339(),
                "waybill": {"carrier": "shunfeng", "number": waybill}}),
            shipped,
            "app shipped",
        );
        let (signed, _) = self.parcel(&key, &waybill, shipped, pace, Some(&customer));
        if self.rng.chance(0.4) {
            let units = self.rng.between(30.min(self.plan.tail_units), 600.min(self.plan.tail_units)) as f64;
            let done = self.at(signed, units);
            status(
                self,
                "order.status",
                json!({"order_id": order_id, "status": "Completed", "at": done.to_rfc3339()}),
                done,
                "app completed",
            );
        }
    }
}

/// Generates a day of at least `plan.callbacks` callbacks.
pub fn generate(plan: &DayPlan) -> Day {
    let mut b = Builder {
        plan: plan.clone(),
        rng: SeededRng::new(plan.seed),
        out: Vec::new(),
        truth: Truth::default(),
        next_id: 0,
        rush: false,
    };
    let mut order = 0u64;
    while b.out.len() < plan.callbacks {
        // The 双十一 rush: one order in four is created at midnight on the dot and paid a minute
        // later, every platform pushing at once.
        b.rush = b.rng.chance(0.25);
        let t0 = if b.rush {
            plan.start
        } else {
            let units = b.rng.between(1, plan.span_units.max(2)) as f64;
            b.at(plan.start, units)
        };
        let pace = b.rng.between(plan.pace.0, plan.pace.1) as f64;
        match order % 4 {
            0 => b.douyin(t0, pace),
            1 => b.youzan(t0, pace),
            2 => b.kuaishou(t0, pace),
            _ => b.app(t0, pace),
        }
        order += 1;
    }
    let mut callbacks = b.out;
    callbacks.sort_by_key(|c| (c.send_at, c.n));
    for (n, callback) in callbacks.iter_mut().enumerate() {
        callback.n = n;
    }
    Day { callbacks, truth: b.truth }
}
