//! A fake of the Douyin, Pinduoduo and Taobao query gateways on loopback, for the platform
//! clients' tests.
//!
//! It checks each request as the platform would: the app key and timestamp are present (and
//! the timestamp within 10 minutes of now), the signature recomputed with the app secret the
//! fake was configured with matches, and the access token is the one it issued. A request
//! failing a check gets the platform's own error envelope and is recorded in
//! [`FakePlatform::rejections`]. A request that passes is answered from a per-order script of
//! recorded response shapes ([`Reply`]); an order with no script is unknown to the platform.
//! It serves the token refresh endpoints too (rotating both tokens) and can be told to fail
//! them. It counts the requests about each order that passed its checks, and how many were in flight
//! at once.
//!
//! Error codes the fake sends (see `shared/adapters/src/platform/` for where each came from):
//! Douyin 40001/40003 `isv.*` (missing or invalid app key, timestamp, sign, access token),
//! 60000 rate limit, 40004 `isv.parameter-invalid:20014` unknown order, 50001
//! `dop.token-generate-failed:*` refresh failure; Pinduoduo 20004 bad sign, 10019 token, 70031
//! rate limit, 10000 for a missing parameter (its real code is not in our sources); Taobao 21,
//! 24, 25, 26, 27, 28, 29, 30, 31 (TOP system errors), 7 rate limit, 15 `isv.trade-not-exist`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};

use domain::sources::douyin::sign::{douyin_api_sign, douyin_param_json};
use domain::sources::pdd::sign::pdd_sign;
use domain::sources::taobao::sign::{TaobaoSignMethod, taobao_sign};

/// Which platform the fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// 抖店: `/order/orderDetail`, `/token/refresh`.
    Douyin,
    /// 拼多多: the router, `pdd.order.information.get`, `pdd.pop.auth.token.refresh`.
    Pdd,
    /// 淘宝: the TOP router, `taobao.trade.fullinfo.get`, `taobao.top.auth.token.refresh`.
    Taobao,
}

/// What the fake answers for one order (once the request passed its checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The refund succeeded (Douyin `after_sale_status=12`, `refund_status=3`; PDD
    /// `after_sales_status=10`, `refund_status=4`; Taobao `TRADE_CLOSED` / `SUCCESS`).
    RefundSucceeded,
    /// A refund requested, waiting for the seller (Douyin 6/1, PDD 2/2, Taobao
    /// `WAIT_SELLER_AGREE`).
    RefundPending,
    /// The buyer withdrew or the refund was closed (Douyin 28/1, PDD 11/1, Taobao `CLOSED`).
    RefundClosed,
    /// A platform error with this code (Douyin `code`, PDD `error_code`, Taobao `code`).
    Error {
        /// The main code.
        code: String,
        /// The sub code, if any.
        sub_code: Option<String>,
        /// The message.
        message: String,
    },
    /// The platform's "access token expired" error.
    TokenExpired,
    /// The platform's rate-limit error (Taobao states the ban in seconds; the others do not).
    RateLimited {
        /// Seconds of the ban, where the platform says.
        ban_s: Option<u64>,
    },
    /// HTTP 429 from the gateway.
    TooManyRequests {
        /// The `Retry-After` header.
        retry_after_s: Option<u64>,
    },
    /// The platform does not know the order (also the answer for an unscripted order).
    NotFound,
    /// Paid, awaiting shipment, no after-sale (Douyin `order_status` 2 备货中 with two sku orders
    /// `{order}1` ×2 and `{order}2` ×1; the refund platforms answer as for a pending order).
    Paid,
    /// A 200 with a body that is not JSON.
    Garbage,
}

/// The credentials the fake platform accepts.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The platform played.
    pub platform: Platform,
    /// The app key (client id).
    pub app_key: String,
    /// The app secret signatures are recomputed with.
    pub app_secret: String,
    /// The access token it accepts (until it issues another by refresh).
    pub access_token: String,
    /// The refresh token it accepts (until it issues another).
    pub refresh_token: String,
}

impl FakeConfig {
    /// Test credentials for `platform`.
    pub fn new(platform: Platform) -> Self {
        let app_key = match platform {
            Platform::Douyin => "7012345678901234567",
            Platform::Pdd => "pdd-client-id",
            Platform::Taobao => "12345678",
        };
        Self {
            platform,
            app_key: app_key.to_owned(),
            app_secret: format!("{platform:?}-app-secret").to_lowercase(),
            access_token: format!("{platform:?}-access-token-1").to_lowercase(),
            refresh_token: format!("{platform:?}-refresh-token-1").to_lowercase(),
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    requests: usize,
    in_flight: usize,
    max_in_flight: usize,
}

struct Inner {
    config: FakeConfig,
    script: HashMap<String, Reply>,
    delays: HashMap<String, Duration>,
    refresh_fails: bool,
    counters: HashMap<String, Counter>,
    refreshes: usize,
    issued: usize,
    rejections: Vec<String>,
}

/// A running fake platform gateway.
#[derive(Clone)]
pub struct FakePlatform {
    inner: Arc<Mutex<Inner>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The key refresh requests are counted under.
const REFRESH: &str = "#refresh";

impl FakePlatform {
    /// Starts a fake on a free loopback port.
    pub async fn start(config: FakeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = FakePlatform {
            inner: Arc::new(Mutex::new(Inner {
                config,
                script: HashMap::new(),
                delays: HashMap::new(),
                refresh_fails: false,
                counters: HashMap::new(),
                refreshes: 0,
                issued: 1,
                rejections: Vec::new(),
            })),
            addr,
        };
        let app = Router::new()
            .route("/order/orderDetail", post(douyin))
            .route("/token/refresh", post(douyin))
            .route("/api/router", post(pdd))
            .route("/router/rest", post(taobao))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The base URL a client of this platform is configured with.
    pub fn base_url(&self) -> String {
        let path = match self.config().platform {
            Platform::Douyin => "",
            Platform::Pdd => "/api/router",
            Platform::Taobao => "/router/rest",
        };
        format!("http://{}{path}", self.addr)
    }

    /// The configuration (with the tokens currently accepted).
    pub fn config(&self) -> FakeConfig {
        self.inner.lock().unwrap().config.clone()
    }

    /// Answers `reply` for `order_id` from now on.
    pub fn script(&self, order_id: &str, reply: Reply) {
        self.inner.lock().unwrap().script.insert(order_id.to_owned(), reply);
    }

    /// Waits `delay` before answering about `order_id`.
    pub fn delay(&self, order_id: &str, delay: Duration) {
        self.inner.lock().unwrap().delays.insert(order_id.to_owned(), delay);
    }

    /// Makes token refreshes fail (with the platform's error) or succeed again.
    pub fn fail_refresh(&self, fail: bool) {
        self.inner.lock().unwrap().refresh_fails = fail;
    }

    /// Requests about `order_id` that passed the checks (counted when they arrive, before any
    /// delay).
    pub fn requests(&self, order_id: &str) -> usize {
        self.inner.lock().unwrap().counters.get(order_id).map_or(0, |c| c.requests)
    }

    /// The most requests about `order_id` in flight at the same time.
    pub fn max_concurrent(&self, order_id: &str) -> usize {
        self.inner.lock().unwrap().counters.get(order_id).map_or(0, |c| c.max_in_flight)
    }

    /// Token refresh requests that passed the signature checks.
    pub fn refresh_requests(&self) -> usize {
        self.inner.lock().unwrap().counters.get(REFRESH).map_or(0, |c| c.requests)
    }

    /// Token refreshes that succeeded.
    pub fn refreshes(&self) -> usize {
        self.inner.lock().unwrap().refreshes
    }

    /// Why requests were refused, in order (`signature`, `missing app_key`, `access token`…).
    pub fn rejections(&self) -> Vec<String> {
        self.inner.lock().unwrap().rejections.clone()
    }

    fn reject(&self, why: impl Into<String>) {
        self.inner.lock().unwrap().rejections.push(why.into());
    }

    fn enter(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap();
        let counter = inner.counters.entry(key.to_owned()).or_default();
        counter.requests += 1;
        counter.in_flight += 1;
        counter.max_in_flight = counter.max_in_flight.max(counter.in_flight);
    }

    fn leave(&self, key: &str) {
        if let Some(counter) = self.inner.lock().unwrap().counters.get_mut(key) {
            counter.in_flight -= 1;
        }
    }

    /// Counts the request, waits its delay, then answers what `answer` says.
    async fn about(&self, key: &str, answer: impl FnOnce(&Self) -> Response) -> Response {
        self.enter(key);
        let delay = self.inner.lock().unwrap().delays.get(key).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let response = answer(self);
        self.leave(key);
        response
    }

    fn reply_for(&self, order_id: &str) -> Reply {
        self.inner.lock().unwrap().script.get(order_id).cloned().unwrap_or(Reply::NotFound)
    }

    /// Checks a refresh token; on success issues (and from then on accepts only) new tokens.
    fn refresh(&self, refresh_token: Option<&str>) -> Result<(String, String), RefreshRefusal> {
        let mut inner = self.inner.lock().unwrap();
        if inner.refresh_fails {
            inner.rejections.push("refresh disabled".into());
            return Err(RefreshRefusal::Expired);
        }
        if refresh_token != Some(inner.config.refresh_token.as_str()) {
            inner.rejections.push("refresh token".into());
            return Err(RefreshRefusal::Invalid);
        }
        inner.issued += 1;
        inner.refreshes += 1;
        let platform = format!("{:?}", inner.config.platform).to_lowercase();
        inner.config.access_token = format!("{platform}-access-token-{}", inner.issued);
        inner.config.refresh_token = format!("{platform}-refresh-token-{}", inner.issued);
        Ok((inner.config.access_token.clone(), inner.config.refresh_token.clone()))
    }
}

enum RefreshRefusal {
    Expired,
    Invalid,
}

/// The lifetime of issued access tokens.
const TOKEN_LIFETIME_S: i64 = 604_800;

/// How far a request's timestamp may be from now.
const TIMESTAMP_WINDOW_S: i64 = 600;

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn too_many(retry_after_s: Option<u64>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(s) = retry_after_s {
        headers.insert("retry-after", HeaderValue::from_str(&s.to_string()).unwrap());
    }
    (StatusCode::TOO_MANY_REQUESTS, headers, "Too Many Requests").into_response()
}

fn garbage() -> Response {
    (StatusCode::OK, "<html>gateway</html>").into_response()
}

fn pairs(raw: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn fresh(epoch_s: Option<i64>) -> bool {
    epoch_s.is_some_and(|at| (Utc::now().timestamp() - at).abs() <= TIMESTAMP_WINDOW_S)
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------
// Douyin
// ---------------------------------------------------------------------------------------

fn douyin_error(code: i64, msg: &str, sub_code: &str, sub_msg: &str) -> Response {
    ok(json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, "log_id": "fake", "data": {}}))
}

fn douyin_ok(data: Value) -> Response {
    ok(json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "fake", "data": data}))
}

async fn douyin(State(fake): State<FakePlatform>, uri: Uri, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let config = fake.config();
    let q = pairs(query.unwrap_or_default().as_bytes());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let method = uri.path().trim_start_matches('/').replace('/', ".");
    let param_json = String::from_utf8_lossy(&body).into_owned();

    let Some(app_key) = get("app_key") else {
        fake.reject("missing app_key");
        return douyin_error(40001, "缺少必选参数", "isv.app-id-missing", "认证失败，app_key不存在");
    };
    if app_key != config.app_key {
        fake.reject("app_key");
        return douyin_error(40003, "非法的参数", "isv.app-id-invalid", "认证失败，app_key格式不正确");
    }
    let Some(timestamp) = get("timestamp") else {
        fake.reject("missing timestamp");
        return douyin_error(40003, "非法的参数", "isv.timestamp-invalid", "时间戳不合法");
    };
    if !fresh(timestamp.parse().ok()) {
        fake.reject("timestamp");
        return douyin_error(40003, "非法的参数", "isv.timestamp-invalid", "时间戳不合法");
    }
    if get("method") != Some(method.as_str()) || get("v") != Some("2") || get("sign_method") != Some("hmac-sha256") {
        fake.reject("method, v or sign_method");
        return douyin_error(40003, "非法的参数", "isv.parameter-invalid", "method、v、sign_method 不正确");
    }
    let Some(sign) = get("sign") else {
        fake.reject("missing sign");
        return douyin_error(40001, "缺少必选参数", "isv.signature-missing", "获取签名失败");
    };
    let expected = douyin_api_sign(app_key, &config.app_secret, &method, &param_json, timestamp);
    if !equal(sign, &expected) {
        fake.reject("signature");
        return douyin_error(40003, "非法的参数", "isv.signature-invalid", "签名校验失败");
    }
    let Ok(params) = serde_json::from_str::<Value>(&param_json) else {
        fake.reject("param_json");
        return douyin_error(40003, "非法的参数", "isv.parameter-format-invalid", "业务参数json解析失败");
    };
    if douyin_param_json(&params) != param_json {
        fake.reject("param_json not sorted and compact");
        return douyin_error(40003, "非法的参数", "isv.parameter-format-invalid", "业务参数json解析失败");
    }

    if method == "token.refresh" {
        let refresh_token = params.get("refresh_token").and_then(Value::as_str).map(str::to_owned);
        return fake
            .about(REFRESH, |fake| {
                if params.get("grant_type").and_then(Value::as_str) != Some("refresh_token") {
                    fake.reject("grant_type");
                    return douyin_error(
                        50001,
                        "平台处理失败",
                        "dop.token-generate-failed:grant-type-invalid",
                        "生成token失败，grant_type参数取值不正确",
                    );
                }
                match fake.refresh(refresh_token.as_deref()) {
                    Ok((access, refresh)) => douyin_ok(json!({
                        "access_token": access, "expires_in": TOKEN_LIFETIME_S, "refresh_token": refresh,
                        "scope": "SCOPE", "shop_id": 4463798, "shop_name": "fake shop",
                        "authority_id": "4463798", "auth_subject_type": "MiniApp"
                    })),
                    Err(RefreshRefusal::Expired) => douyin_error(
                        50001,
                        "平台处理失败",
                        "dop.token-generate-failed:token-expired",
                        "生成token失败，token已过期",
                    ),
                    Err(RefreshRefusal::Invalid) => douyin_error(
                        50001,
                        "平台处理失败",
                        "dop.token-generate-failed:token-invalid",
                        "生成token失败，token不存在",
                    ),
                }
            })
            .await;
    }

    let Some(token) = get("access_token") else {
        fake.reject("missing access token");
        return douyin_error(40001, "缺少必选参数", "isv.access-token-missing", "认证失败，access_token不能为空");
    };
    if token != config.access_token {
        fake.reject("access token");
        return douyin_error(
            40003,
            "非法的参数",
            "isv.access-token-no-existed",
            "access_token不存在，请使用最新的access_token访问",
        );
    }
    let Some(order_id) = params.get("shop_order_id").and_then(Value::as_str).map(str::to_owned) else {
        return douyin_error(40002, "缺少必选参数", "isv.missing-parameter:20000", "请输入查询订单号");
    };
    fake.about(&order_id, |fake| douyin_reply(&order_id, &fake.reply_for(&order_id))).await
}

fn douyin_order(order_id: &str, order_status: u32, main_status: u32, after_sale: Option<(u32, u32, u32)>) -> Value {
    let now = Utc::now().timestamp();
    let info = after_sale.map_or(
        json!({"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0}),
        |a| json!({"after_sale_status": a.0, "after_sale_type": a.1, "refund_status": a.2}),
    );
    // Each sku order: its sub-order id, the SKU (Douyin's `sku_id`, the seller's `code`) and the
    // quantity (zsmhub/doudian-sdk `order_orderDetail_response.go` L225-L387).
    json!({"shop_order_detail": {
        "order_id": order_id, "order_status": order_status, "main_status": main_status,
        "create_time": now - 86_400, "update_time": now,
        "sku_order_list": [{
            "order_id": format!("{order_id}1"), "parent_order_id": order_id, "order_status": order_status,
            "main_status": main_status, "update_time": now, "after_sale_info": info,
            "sku_id": 1_790_000_000_000_001_i64, "code": format!("SKU-{order_id}-1"), "out_sku_id": "", "item_num": 2
        }, {
            "order_id": format!("{order_id}2"), "parent_order_id": order_id, "order_status": order_status,
            "main_status": main_status, "update_time": now,
            "after_sale_info": {"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0},
            "sku_id": 1_790_000_000_000_002_i64, "code": format!("SKU-{order_id}-2"), "out_sku_id": "", "item_num": 1
        }]
    }})
}

fn douyin_reply(order_id: &str, reply: &Reply) -> Response {
    match reply {
        // Shipped, refund only after shipment, refund done (发货后退款完结).
        Reply::RefundSucceeded => douyin_ok(douyin_order(order_id, 4, 22, Some((12, 1, 3)))),
        Reply::RefundPending => douyin_ok(douyin_order(order_id, 3, 3, Some((6, 1, 1)))),
        Reply::Paid => douyin_ok(douyin_order(order_id, 2, 2, None)),
        // The buyer withdrew: after-sale 28 while refund_status stays at 1.
        Reply::RefundClosed => douyin_ok(douyin_order(order_id, 3, 3, Some((28, 1, 1)))),
        Reply::Error { code, sub_code, message } => ok(json!({
            "code": code.parse::<i64>().unwrap_or(90000), "msg": message,
            "sub_code": sub_code.clone().unwrap_or_default(), "sub_msg": message, "log_id": "fake", "data": {}
        })),
        Reply::TokenExpired => douyin_error(40003, "非法的参数", "isv.access-token-expired", "access_token已过期"),
        Reply::RateLimited { .. } => douyin_error(60000, "触发限流，请稍后重试", "", ""),
        Reply::TooManyRequests { retry_after_s } => too_many(*retry_after_s),
        Reply::NotFound => douyin_error(40004, "非法的参数", "isv.parameter-invalid:20014", "查询订单不存在"),
        Reply::Garbage => garbage(),
    }
}

// ---------------------------------------------------------------------------------------
// Pinduoduo
// ---------------------------------------------------------------------------------------

fn pdd_error(code: i64, msg: &str) -> Response {
    ok(json!({"error_response": {
        "error_code": code, "error_msg": msg, "sub_code": code.to_string(), "sub_msg": msg, "request_id": "fake"
    }}))
}

async fn pdd(State(fake): State<FakePlatform>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let config = fake.config();
    // The gateway reads parameters from the query string and the form body alike.
    let mut p = pairs(query.unwrap_or_default().as_bytes());
    p.extend(pairs(&body));
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());

    let Some(client_id) = get("client_id") else {
        fake.reject("missing client_id");
        return pdd_error(10000, "参数错误: client_id");
    };
    if client_id != config.app_key {
        fake.reject("client_id");
        return pdd_error(10000, "参数错误: client_id");
    }
    if !fresh(get("timestamp").and_then(|t| t.parse().ok())) {
        fake.reject("timestamp");
        return pdd_error(10000, "参数错误: timestamp");
    }
    let Some(kind) = get("type") else {
        fake.reject("missing type");
        return pdd_error(10000, "参数错误: type");
    };
    let Some(sign) = get("sign") else {
        fake.reject("missing sign");
        return pdd_error(20004, "签名验证失败");
    };
    if !equal(sign, &pdd_sign(&config.app_secret, &p)) {
        fake.reject("signature");
        return pdd_error(20004, "签名验证失败");
    }

    match kind {
        "pdd.pop.auth.token.refresh" => {
            let refresh_token = get("refresh_token").map(str::to_owned);
            fake.about(REFRESH, |fake| match fake.refresh(refresh_token.as_deref()) {
                Ok((access, refresh)) => {
                    let now = Utc::now().timestamp();
                    ok(json!({"pop_auth_token_refresh_response": {
                        "access_token": access, "expires_at": now + TOKEN_LIFETIME_S, "expires_in": TOKEN_LIFETIME_S,
                        "owner_id": "9527", "owner_name": "fake shop", "refresh_token": refresh,
                        "refresh_token_expires_at": now + 2 * TOKEN_LIFETIME_S,
                        "refresh_token_expires_in": 2 * TOKEN_LIFETIME_S, "scope": ["pdd.order.information.get"]
                    }}))
                }
                Err(_) => pdd_error(10000, "refresh_token已过期或不存在"),
            })
            .await
        }
        "pdd.order.information.get" => {
            if get("access_token") != Some(config.access_token.as_str()) {
                fake.reject("access token");
                return pdd_error(10019, "access_token已过期");
            }
            let Some(order_sn) = get("order_sn").map(str::to_owned) else {
                return pdd_error(10000, "参数错误: order_sn");
            };
            fake.about(&order_sn, |fake| pdd_reply(&order_sn, &fake.reply_for(&order_sn))).await
        }
        _ => {
            fake.reject("type");
            pdd_error(10000, "参数错误: type")
        }
    }
}

fn pdd_order(order_sn: &str, order_status: u32, after_sales_status: u32, refund_status: u32) -> Value {
    let updated = Utc::now().with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string();
    json!({"order_info_get_response": {"request_id": "fake", "order_info": {
        "order_sn": order_sn, "order_status": order_status, "confirm_status": 1, "group_status": 1,
        "after_sales_status": after_sales_status, "refund_status": refund_status, "updated_at": updated
    }}})
}

fn pdd_reply(order_sn: &str, reply: &Reply) -> Response {
    match reply {
        Reply::RefundSucceeded => ok(pdd_order(order_sn, 2, 10, 4)),
        Reply::RefundPending | Reply::Paid => ok(pdd_order(order_sn, 2, 2, 2)),
        Reply::RefundClosed => ok(pdd_order(order_sn, 2, 11, 1)),
        Reply::Error { code, sub_code, message } => ok(json!({"error_response": {
            "error_code": code.parse::<i64>().unwrap_or(50000), "error_msg": message,
            "sub_code": sub_code.clone().unwrap_or_else(|| code.clone()), "sub_msg": message, "request_id": "fake"
        }})),
        Reply::TokenExpired => pdd_error(10019, "access_token已过期"),
        Reply::RateLimited { .. } => pdd_error(70031, "调用过于频繁，请调整调用频率"),
        Reply::TooManyRequests { retry_after_s } => too_many(*retry_after_s),
        // Which error (if any) PDD sends for an unknown order is not in our sources: the fake
        // answers without `order_info`, which the client reads as not found.
        Reply::NotFound => ok(json!({"order_info_get_response": {"request_id": "fake", "order_info": null}})),
        Reply::Garbage => garbage(),
    }
}

// ---------------------------------------------------------------------------------------
// Taobao
// ---------------------------------------------------------------------------------------

fn taobao_error(code: i64, msg: &str, sub: Option<(&str, &str)>) -> Response {
    let mut error = json!({"code": code, "msg": msg, "request_id": "fake"});
    if let Some((sub_code, sub_msg)) = sub {
        error["sub_code"] = json!(sub_code);
        error["sub_msg"] = json!(sub_msg);
    }
    ok(json!({ "error_response": error }))
}

fn taobao_time(raw: &str) -> Option<i64> {
    let local = NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").ok()?;
    Shanghai.from_local_datetime(&local).earliest().map(|at| at.timestamp())
}

async fn taobao(State(fake): State<FakePlatform>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let config = fake.config();
    let mut p = pairs(query.unwrap_or_default().as_bytes());
    p.extend(pairs(&body));
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());

    let Some(app_key) = get("app_key") else {
        fake.reject("missing app_key");
        return taobao_error(28, "Missing App Key", None);
    };
    if app_key != config.app_key {
        fake.reject("app_key");
        return taobao_error(29, "Invalid App Key", None);
    }
    let Some(method) = get("method") else {
        fake.reject("missing method");
        return taobao_error(21, "Missing Method", None);
    };
    let Some(timestamp) = get("timestamp") else {
        fake.reject("missing timestamp");
        return taobao_error(30, "Missing Timestamp", None);
    };
    if !fresh(taobao_time(timestamp)) {
        fake.reject("timestamp");
        return taobao_error(31, "Invalid Timestamp", None);
    }
    let sign_method = match get("sign_method") {
        None | Some("md5") => TaobaoSignMethod::Md5,
        Some("hmac") => TaobaoSignMethod::HmacMd5,
        Some("hmac-sha256") => TaobaoSignMethod::HmacSha256,
        Some(_) => {
            fake.reject("sign_method");
            return taobao_error(25, "Invalid Signature", None);
        }
    };
    let Some(sign) = get("sign") else {
        fake.reject("missing sign");
        return taobao_error(24, "Missing Signature", None);
    };
    if !equal(sign, &taobao_sign(&config.app_secret, &p, sign_method)) {
        fake.reject("signature");
        return taobao_error(25, "Invalid Signature", None);
    }

    match method {
        "taobao.top.auth.token.refresh" => {
            let refresh_token = get("refresh_token").map(str::to_owned);
            fake.about(REFRESH, |fake| match fake.refresh(refresh_token.as_deref()) {
                Ok((access, refresh)) => {
                    let now = Utc::now().timestamp();
                    let token = json!({
                        "access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                        "expires_in": TOKEN_LIFETIME_S, "expire_time": (now + TOKEN_LIFETIME_S) * 1000,
                        "re_expires_in": 2 * TOKEN_LIFETIME_S, "taobao_user_nick": "fake%20shop"
                    });
                    ok(json!({"top_auth_token_refresh_response": {"token_result": token.to_string(), "request_id": "fake"}}))
                }
                Err(_) => taobao_error(15, "Remote service error", Some(("isv.invalid-parameter", "refresh_token非法或已过期"))),
            })
            .await
        }
        "taobao.trade.fullinfo.get" => {
            let Some(session) = get("session") else {
                fake.reject("missing session");
                return taobao_error(26, "Missing Session", None);
            };
            if session != config.access_token {
                fake.reject("access token");
                return taobao_error(27, "Invalid session", Some(("invalid-sessionkey", "SessionKey非法")));
            }
            let Some(tid) = get("tid").map(str::to_owned) else {
                return taobao_error(40, "Missing required arguments:tid", None);
            };
            fake.about(&tid, |fake| taobao_reply(&tid, &fake.reply_for(&tid))).await
        }
        _ => {
            fake.reject("method");
            taobao_error(22, "Invalid Method", None)
        }
    }
}

fn taobao_trade(tid: &str, trade_status: &str, refund_status: &str) -> Value {
    let modified = Utc::now().with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string();
    json!({"trade_fullinfo_get_response": {"request_id": "fake", "trade": {
        "tid": tid.parse::<i64>().unwrap_or_default(), "status": trade_status, "modified": modified,
        "orders": {"order": [{
            "oid": 1, "status": trade_status, "refund_status": refund_status, "refund_id": 200_001
        }]}
    }}})
}

fn taobao_reply(tid: &str, reply: &Reply) -> Response {
    match reply {
        Reply::RefundSucceeded => ok(taobao_trade(tid, "TRADE_CLOSED", "SUCCESS")),
        Reply::RefundPending | Reply::Paid => ok(taobao_trade(tid, "WAIT_BUYER_CONFIRM_GOODS", "WAIT_SELLER_AGREE")),
        Reply::RefundClosed => ok(taobao_trade(tid, "WAIT_BUYER_CONFIRM_GOODS", "CLOSED")),
        Reply::Error { code, sub_code, message } => {
            taobao_error(code.parse().unwrap_or(15), message, sub_code.as_deref().map(|s| (s, message.as_str())))
        }
        Reply::TokenExpired => taobao_error(27, "Invalid session", Some(("session-expired", "SessionKey已过期"))),
        Reply::RateLimited { ban_s } => {
            let ban = format!("This ban will last for {} more seconds", ban_s.unwrap_or(1));
            taobao_error(7, "App Call Limited", Some(("accesscontrol.limited-by-app-access-count", &ban)))
        }
        Reply::TooManyRequests { retry_after_s } => too_many(*retry_after_s),
        Reply::NotFound => taobao_error(15, "Remote service error", Some(("isv.trade-not-exist", "交易订单不存在"))),
        Reply::Garbage => garbage(),
    }
}
