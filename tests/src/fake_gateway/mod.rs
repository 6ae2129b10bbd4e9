//! An independent fake of the sales platforms' open-API gateways on loopback, for the pull
//! clients (`order-sync`) and the token lifecycle.
//!
//! One axum server on `127.0.0.1:0` plays six gateways under path prefixes: Pinduoduo
//! (`/pdd/api/router`), Taobao/Tmall TOP (`/taobao/router/rest`), JD JOS (`/jd/routerjson`,
//! `/jd/oauth2/refresh_token`), Douyin (`/douyin/<api path>`), Kuaishou (`/kuaishou/<api path>`,
//! `/kuaishou/oauth2/refresh_token`) and Youzan (`/youzan/api/<method>/<version>`,
//! `/youzan/auth/token`). [`FakeGateway::base_url`] gives what a client is configured with.
//!
//! Every platform file here carries its **own** signer, written from the platform's
//! documentation and checked in that file's unit tests against the public known-answer vectors
//! (see `docs/platform-apis.md` for each source): a signing bug in orderhub's clients cannot be
//! hidden by the fake agreeing with itself (the old `fake_platform` recomputed signatures with
//! orderhub's own signer; it is gone). Nothing from `domain::sources::*::sign` is used.
//!
//! What it serves, from an in-memory set of [`Order`]s per platform (each with its shop, status
//! codes, updated time, sku lines and refunds):
//! - incremental order and refund lists honouring the platform's time window (refused with the
//!   platform's error when longer than [`FakeGateway::set_max_window`] allows), page size limit,
//!   page numbering and `has_next`/`total` fields;
//! - single-order and single-refund queries, and the token refresh endpoints;
//! - rate limits per app and shop ([`FakeGateway::set_rate_limit`]), expiring and revoked
//!   tokens and tokens of another app (distinct codes), clock-skew rejections, retryable
//!   server errors on demand ([`FakeGateway::fail_next`]), garbage and bare HTTP errors
//!   ([`FakeGateway::break_next`]);
//! - orders that change while a client pages ([`FakeGateway::after_list_request`]);
//! - slow answers ([`FakeGateway::delay_next`]), for clients' timeouts;
//! - Kuaidi100's subscription endpoint (`/kuaidi100/poll`, [`kuaidi100`]).
//!
//! The gateway's clock is also a `domain` [`Clock`](domain::ports::clock::Clock), so a test can
//! run the use cases, the clients' timestamps and the platform on one time line.
//!
//! Time is injectable: the gateway's clock only moves when a test says so
//! ([`FakeGateway::set_now`], [`FakeGateway::advance`]). Every request is recorded, accepted or
//! not, with the error code it got ([`FakeGateway::records`]).

pub mod douyin;
pub mod jd;
pub mod kuaidi100;
pub mod kuaishou;
pub mod pdd;
pub mod taobao;
pub mod youzan;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// The platform a request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// 拼多多 POP router.
    Pdd,
    /// 淘宝/天猫 TOP router.
    Taobao,
    /// 京东 JOS router.
    Jd,
    /// 抖店 open API.
    Douyin,
    /// 快手小店 open API.
    Kuaishou,
    /// 有赞云 open API.
    Youzan,
}

impl Platform {
    /// All six, in a fixed order.
    pub const ALL: [Platform; 6] =
        [Platform::Pdd, Platform::Taobao, Platform::Jd, Platform::Douyin, Platform::Kuaishou, Platform::Youzan];

    fn prefix(self) -> &'static str {
        match self {
            Platform::Pdd => "pdd",
            Platform::Taobao => "taobao",
            Platform::Jd => "jd",
            Platform::Douyin => "douyin",
            Platform::Kuaishou => "kuaishou",
            Platform::Youzan => "youzan",
        }
    }
}

/// One sku line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuLine {
    /// The platform's sub-order / line id (Taobao `oid`, Douyin sku order id, Kuaishou `oid`).
    pub line_id: String,
    /// The platform's sku id.
    pub sku_id: String,
    /// The seller's own sku code (`outer_id` / `outer_sku_id` / `out_sku_id`).
    pub outer_sku_id: String,
    /// Units bought.
    pub quantity: u32,
}

/// One refund / after-sale of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The platform's refund / after-sale id.
    pub id: String,
    /// The platform's raw refund status code, exactly as the platform writes it (for example
    /// PDD `after_sales_status` `"10"`, Taobao `"SUCCESS"`, Douyin `aftersale_status` `"12"`).
    pub status: String,
    /// The line it refunds, if one.
    pub line_id: Option<String>,
    /// Amount refunded, in fen.
    pub amount_fen: i64,
    /// When the platform last changed it.
    pub updated_at: DateTime<Utc>,
}

/// An order as the fake platform holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The platform's order id (`order_sn`, `tid`, `orderId`, …).
    pub id: String,
    /// The shop it belongs to (the shop a token is issued for).
    pub shop: String,
    /// The platform's raw order status code, as the platform writes it (PDD `order_status`
    /// `"1"`, Taobao `"WAIT_SELLER_SEND_GOODS"`, JD `"WAIT_SELLER_STOCK_OUT"`, …).
    pub status: String,
    /// The platform's order-level refund status where it has one (PDD `refund_status`
    /// `"1"`..`"4"`, Taobao line `refund_status`); empty when none.
    pub refund_status: String,
    /// Douyin's `main_status` where it differs from `status` (e.g. `"22"` after a refund);
    /// `None`: the same code as `status`.
    pub main_status: Option<String>,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// When the platform last changed it: what the incremental lists filter on.
    pub updated_at: DateTime<Utc>,
    /// Its sku lines.
    pub lines: Vec<SkuLine>,
    /// Its refunds.
    pub refunds: Vec<Refund>,
}

impl Order {
    /// An order of `shop` with one sku line, created and updated at `updated_at`.
    pub fn new(id: &str, shop: &str, status: &str, updated_at: DateTime<Utc>) -> Self {
        Self {
            id: id.to_owned(),
            shop: shop.to_owned(),
            status: status.to_owned(),
            refund_status: String::new(),
            main_status: None,
            created_at: updated_at,
            updated_at,
            lines: vec![SkuLine {
                line_id: format!("{id}-1"),
                sku_id: format!("sku-{id}"),
                outer_sku_id: format!("OUT-{id}"),
                quantity: 1,
            }],
            refunds: Vec::new(),
        }
    }
}

/// Why the fake refused a request. Each platform file maps a denial to its own documented
/// error code and envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A required system or business parameter is missing (its name).
    MissingParam(String),
    /// A parameter has a value the platform refuses (its name and why).
    BadParam(String, String),
    /// The app key / client id is not known.
    UnknownApp,
    /// The timestamp is malformed or too far from the gateway's clock.
    BadTimestamp,
    /// The signature does not match.
    BadSignature,
    /// No access token where the API needs one.
    MissingToken,
    /// The access token was never issued.
    UnknownToken,
    /// The access token was issued to another app.
    ForeignToken,
    /// The access token has expired.
    ExpiredToken,
    /// The shop revoked the authorisation.
    RevokedToken,
    /// The refresh token is unknown, already used, or issued to another app.
    InvalidRefreshToken,
    /// The refresh token has expired.
    ExpiredRefreshToken,
    /// Too many calls for this app and shop.
    RateLimited {
        /// Seconds until the window frees up.
        retry_after_s: i64,
    },
    /// A transient platform fault the platform documents as retryable.
    ServerError,
    /// The time window is longer than the platform allows.
    WindowTooLong,
    /// The page size is outside what the platform allows.
    BadPageSize,
    /// The API / method name is not one this fake serves.
    UnknownMethod,
    /// No such order or refund for this shop.
    NotFound,
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The gateway addressed.
    pub platform: Platform,
    /// The API called (`pdd.order.number.list.increment.get`, `/order/searchList`, …), or
    /// `"?"` when it could not be read.
    pub api: String,
    /// The shop the token (or refresh token) belongs to, once known.
    pub shop: Option<String>,
    /// The page asked for, for list APIs (as the platform numbers pages).
    pub page: Option<i64>,
    /// Why it was refused; `None` when it was answered normally.
    pub denial: Option<Denial>,
    /// The platform error code sent with the refusal.
    pub code: Option<String>,
    /// The gateway's clock when it arrived.
    pub at: DateTime<Utc>,
}

impl Record {
    /// Whether the request passed every check and got a normal answer.
    pub fn accepted(&self) -> bool {
        self.denial.is_none()
    }
}

/// A limit of `max` calls per `per` for each app and shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed in one window.
    pub max: usize,
    /// The sliding window.
    pub per: Duration,
}

/// A broken answer the gateway gives before reading the request at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFault {
    /// HTTP 200 with an HTML body, as a misconfigured proxy would send.
    Garbage,
    /// This HTTP status with an empty body (429 carries `Retry-After: 1`).
    Status(u16),
}

/// Tokens issued by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
}

/// A change applied to a platform's orders between two list requests.
pub type Mutation = Box<dyn FnOnce(&mut Vec<Order>, DateTime<Utc>) + Send>;

#[derive(Debug, Clone)]
struct Token {
    app_key: String,
    shop: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

/// The state of one platform's gateway. Platform files read and change it under the lock.
pub(crate) struct PlatformState {
    pub(crate) apps: BTreeMap<String, String>,
    tokens: BTreeMap<String, Token>,
    refresh_tokens: BTreeMap<String, Token>,
    pub(crate) orders: Vec<Order>,
    rate: Option<RateLimit>,
    hits: HashMap<(String, String), Vec<DateTime<Utc>>>,
    faults: u32,
    raw_faults: std::collections::VecDeque<RawFault>,
    pub(crate) max_window: Option<Duration>,
    pub(crate) max_page_size: i64,
    pub(crate) timestamp_tolerance: Duration,
    hooks: Vec<(u64, Mutation)>,
    list_requests: u64,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
}

impl PlatformState {
    fn new(platform: Platform) -> Self {
        let (key, secret) = default_app(platform);
        let (max_window, access_lifetime, refresh_lifetime) = defaults(platform);
        Self {
            apps: BTreeMap::from([(key.to_owned(), secret.to_owned())]),
            tokens: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            orders: Vec::new(),
            rate: None,
            hits: HashMap::new(),
            faults: 0,
            raw_faults: std::collections::VecDeque::new(),
            max_window,
            max_page_size: 100,
            // TOP documents ±10 minutes; the others' tolerance is unconfirmed (docs/platform-apis.md).
            timestamp_tolerance: Duration::minutes(10),
            hooks: Vec::new(),
            list_requests: 0,
            access_lifetime,
            refresh_lifetime,
        }
    }

    /// The secret of `app_key`, or [`Denial::UnknownApp`].
    pub(crate) fn secret(&self, app_key: &str) -> Result<String, Denial> {
        self.apps.get(app_key).cloned().ok_or(Denial::UnknownApp)
    }

    /// The shop `access_token` was issued for, after checking it belongs to `app_key` and is
    /// neither revoked nor expired.
    pub(crate) fn shop_of(
        &self,
        app_key: &str,
        access_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, Denial> {
        let token = access_token.filter(|t| !t.is_empty()).ok_or(Denial::MissingToken)?;
        let found = self.tokens.get(token).ok_or(Denial::UnknownToken)?;
        if found.app_key != app_key {
            return Err(Denial::ForeignToken);
        }
        if found.revoked {
            return Err(Denial::RevokedToken);
        }
        if found.expires_at <= now {
            return Err(Denial::ExpiredToken);
        }
        Ok(found.shop.clone())
    }

    /// The app an access token was issued to (for gateways whose requests carry no app key).
    pub(crate) fn token_app(&self, access_token: &str) -> Option<String> {
        self.tokens.get(access_token).map(|t| t.app_key.clone())
    }

    /// Counts a call for `app_key` and `shop` against the rate limit.
    pub(crate) fn admit(&mut self, app_key: &str, shop: &str, now: DateTime<Utc>) -> Result<(), Denial> {
        if let Some(limit) = self.rate {
            let hits = self.hits.entry((app_key.to_owned(), shop.to_owned())).or_default();
            hits.retain(|at| *at > now - limit.per);
            if hits.len() >= limit.max {
                let oldest = hits.first().copied().unwrap_or(now);
                let retry_after_s = (oldest + limit.per - now).num_seconds().max(1);
                return Err(Denial::RateLimited { retry_after_s });
            }
            hits.push(now);
        }
        if self.faults > 0 {
            self.faults -= 1;
            return Err(Denial::ServerError);
        }
        Ok(())
    }

    /// Checks a time window's length.
    pub(crate) fn check_window(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), Denial> {
        if end < start {
            return Err(Denial::BadParam("end".into(), "end before start".into()));
        }
        match self.max_window {
            Some(max) if end - start > max => Err(Denial::WindowTooLong),
            _ => Ok(()),
        }
    }

    /// Checks a page size against `1..=max_page_size`.
    pub(crate) fn check_page_size(&self, size: i64) -> Result<(), Denial> {
        if (1..=self.max_page_size).contains(&size) { Ok(()) } else { Err(Denial::BadPageSize) }
    }

    /// The shop's orders updated in `[start, end]`, ascending by (updated time, id) or
    /// descending when `newest_first`.
    pub(crate) fn orders_in(
        &self,
        shop: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        newest_first: bool,
    ) -> Vec<Order> {
        let mut found: Vec<Order> = self
            .orders
            .iter()
            .filter(|o| o.shop == shop && o.updated_at >= start && o.updated_at <= end)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        if newest_first {
            found.reverse();
        }
        found
    }

    /// The shop's refunds updated in `[start, end]`, with their orders, ordered like
    /// [`PlatformState::orders_in`].
    pub(crate) fn refunds_in(
        &self,
        shop: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        newest_first: bool,
    ) -> Vec<(Order, Refund)> {
        let mut found: Vec<(Order, Refund)> = self
            .orders
            .iter()
            .filter(|o| o.shop == shop)
            .flat_map(|o| o.refunds.iter().map(move |r| (o.clone(), r.clone())))
            .filter(|(_, r)| r.updated_at >= start && r.updated_at <= end)
            .collect();
        found.sort_by(|a, b| (a.1.updated_at, &a.1.id).cmp(&(b.1.updated_at, &b.1.id)));
        if newest_first {
            found.reverse();
        }
        found
    }

    /// One of the shop's orders by id.
    pub(crate) fn order(&self, shop: &str, id: &str) -> Result<Order, Denial> {
        self.orders.iter().find(|o| o.shop == shop && o.id == id).cloned().ok_or(Denial::NotFound)
    }

    /// One of the shop's refunds by id, with its order.
    pub(crate) fn refund(&self, shop: &str, id: &str) -> Result<(Order, Refund), Denial> {
        self.orders
            .iter()
            .filter(|o| o.shop == shop)
            .find_map(|o| o.refunds.iter().find(|r| r.id == id).map(|r| (o.clone(), r.clone())))
            .ok_or(Denial::NotFound)
    }

    /// Marks a list page as served and applies the changes due after it.
    pub(crate) fn list_page_served(&mut self, now: DateTime<Utc>) {
        self.list_requests += 1;
        let due = self.list_requests;
        let (run, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.hooks).into_iter().partition(|(at, _)| *at == due);
        self.hooks = keep;
        for (_, mutation) in run {
            mutation(&mut self.orders, now);
        }
    }

    /// Exchanges a refresh token for new tokens (the old refresh token stops working).
    pub(crate) fn refresh(
        &mut self,
        app_key: &str,
        refresh_token: Option<&str>,
        now: DateTime<Utc>,
        serial: u64,
        platform: Platform,
    ) -> Result<(String, IssuedTokens), Denial> {
        let given =
            refresh_token.filter(|t| !t.is_empty()).ok_or_else(|| Denial::MissingParam("refresh_token".into()))?;
        let found = self.refresh_tokens.get(given).cloned().ok_or(Denial::InvalidRefreshToken)?;
        if found.app_key != app_key || found.revoked {
            return Err(Denial::InvalidRefreshToken);
        }
        if found.expires_at <= now {
            return Err(Denial::ExpiredRefreshToken);
        }
        self.refresh_tokens.remove(given);
        let tokens = self.issue(platform, app_key, &found.shop, now, serial);
        Ok((found.shop, tokens))
    }

    fn issue(
        &mut self,
        platform: Platform,
        app_key: &str,
        shop: &str,
        now: DateTime<Utc>,
        serial: u64,
    ) -> IssuedTokens {
        let prefix = platform.prefix();
        let tokens = IssuedTokens {
            access_token: format!("{prefix}-at-{serial}"),
            refresh_token: format!("{prefix}-rt-{serial}"),
            expires_at: now + self.access_lifetime,
            refresh_expires_at: now + self.refresh_lifetime,
        };
        let token =
            |expires_at| Token { app_key: app_key.to_owned(), shop: shop.to_owned(), expires_at, revoked: false };
        self.tokens.insert(tokens.access_token.clone(), token(tokens.expires_at));
        self.refresh_tokens.insert(tokens.refresh_token.clone(), token(tokens.refresh_expires_at));
        tokens
    }
}

/// The app key and secret each platform's gateway knows from the start.
pub fn default_app(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::Pdd => ("pdd-client-id", "pdd-client-secret"),
        Platform::Taobao => ("12345678", "taobao-app-secret"),
        Platform::Jd => ("jd-app-key", "jd-app-secret"),
        Platform::Douyin => ("7012345678901234567", "douyin-app-secret"),
        Platform::Kuaishou => ("ks-app-key", "ks-sign-secret"),
        Platform::Youzan => ("youzan-client-id", "youzan-client-secret"),
    }
}

/// Documented maximum window, access-token and refresh-token lifetimes (sources and the
/// unconfirmed ones in docs/platform-apis.md).
fn defaults(platform: Platform) -> (Option<Duration>, Duration, Duration) {
    match platform {
        // "end_updated_at - start_updated_at <= 30min" (lywzx/pdd-node-sdk PddOrderNumberListIncrementGet.ts).
        Platform::Pdd => (Some(Duration::minutes(30)), Duration::days(1), Duration::days(30)),
        // "end_modified - start_modified <= 1天" (bububa/opentaobao TaobaoTradesSoldIncrementGetAPIRequest.go).
        Platform::Taobao => (Some(Duration::days(1)), Duration::days(1), Duration::days(30)),
        // enSearch: start/end "不得相差超过1个月" (a public JOS request class); taken as 30 days.
        Platform::Jd => (Some(Duration::days(30)), Duration::hours(24), Duration::days(365)),
        // Douyin refresh token "有效期：14 天" (zsmhub/doudian-sdk token_refresh_response.go); window unconfirmed.
        Platform::Douyin => (None, Duration::days(7), Duration::days(14)),
        Platform::Kuaishou => (None, Duration::hours(48), Duration::days(180)),
        Platform::Youzan => (None, Duration::days(7), Duration::days(28)),
    }
}

struct Inner {
    now: DateTime<Utc>,
    platforms: BTreeMap<Platform, PlatformState>,
    records: Vec<Record>,
    issued: u64,
    delays: BTreeMap<Platform, std::collections::VecDeque<std::time::Duration>>,
}

impl Inner {
    fn state(&mut self, platform: Platform) -> &mut PlatformState {
        self.platforms.entry(platform).or_insert_with(|| PlatformState::new(platform))
    }
}

/// A request as it reached the gateway, before any platform reads it.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: Method,
    /// The path after the platform prefix (`/api/router`, `/order/searchList`, …).
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl RawRequest {
    /// Query string and form body together (the form wins), as routers that accept both do.
    pub(crate) fn params(&self) -> BTreeMap<String, String> {
        let mut all = self.query.clone();
        let form = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form || (!self.body.is_empty() && !self.body.starts_with(b"{")) {
            all.extend(form_urlencoded::parse(&self.body).into_owned());
        }
        all
    }
}

/// What a platform file returns for one request.
pub(crate) struct Served {
    pub(crate) api: String,
    pub(crate) shop: Option<String>,
    pub(crate) page: Option<i64>,
    pub(crate) result: Result<Response, Denial>,
}

impl Served {
    pub(crate) fn new(api: impl Into<String>) -> Self {
        Self { api: api.into(), shop: None, page: None, result: Err(Denial::UnknownMethod) }
    }
}

/// The context a platform file serves a request in.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a mut PlatformState,
    pub(crate) now: DateTime<Utc>,
    pub(crate) serial: u64,
}

/// A running fake gateway.
#[derive(Clone)]
pub struct FakeGateway {
    inner: Arc<Mutex<Inner>>,
    kuaidi100: Arc<Mutex<kuaidi100::State100>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The clock a new gateway starts at: 2026-11-11 10:00:00 Asia/Shanghai.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl FakeGateway {
    /// Starts the fake on a free loopback port, its clock at [`default_start`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_at(default_start()).await
    }

    /// Starts the fake on a free loopback port with its clock at `now`.
    pub async fn start_at(now: DateTime<Utc>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let platforms = Platform::ALL.into_iter().map(|p| (p, PlatformState::new(p))).collect();
        let gateway = FakeGateway {
            inner: Arc::new(Mutex::new(Inner {
                now,
                platforms,
                records: Vec::new(),
                issued: 0,
                delays: BTreeMap::new(),
            })),
            kuaidi100: Arc::default(),
            addr,
        };
        let mut app = Router::new();
        for platform in Platform::ALL {
            let prefix = platform.prefix();
            app = app.route(&format!("/{prefix}/{{*rest}}"), any(route));
        }
        let app = app.route("/kuaidi100/{*rest}", any(kuaidi100::route)).with_state(gateway.clone());
        tokio::spawn(async move {
            // The server ends with the test's runtime; an accept error has nowhere to go.
            let _ = axum::serve(listener, app).await;
        });
        Ok(gateway)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock_kuaidi100(&self) -> MutexGuard<'_, kuaidi100::State100> {
        self.kuaidi100.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL of the Kuaidi100 subscription endpoint (`poll`).
    pub fn kuaidi100_url(&self) -> String {
        format!("http://{}/kuaidi100/poll", self.addr)
    }

    /// Sets the Kuaidi100 account key the fake accepts ([`kuaidi100::DEFAULT_KEY`] until set).
    pub fn set_kuaidi100_key(&self, key: &str) {
        self.lock_kuaidi100().key = Some(key.to_owned());
    }

    /// The next `n` Kuaidi100 subscriptions answer 500 (unconfirmed code).
    pub fn kuaidi100_fail_next(&self, n: u32) {
        self.lock_kuaidi100().faults = n;
    }

    /// Every subscription request Kuaidi100 got, taken or refused.
    pub fn kuaidi100_subscriptions(&self) -> Vec<kuaidi100::Subscription> {
        self.lock_kuaidi100().subscriptions.clone()
    }

    /// The next `n` requests to `platform` are answered only after `delay` (for timeouts and
    /// for seeing that a client does not serialise its calls).
    pub fn delay_next(&self, platform: Platform, delay: std::time::Duration, n: usize) {
        self.lock().delays.entry(platform).or_default().extend(std::iter::repeat_n(delay, n));
    }

    fn take_delay(&self, platform: Platform) -> Option<std::time::Duration> {
        self.lock().delays.get_mut(&platform).and_then(std::collections::VecDeque::pop_front)
    }

    /// The URL a client of `platform` is configured with: the router for PDD, Taobao and JD,
    /// the API root for Douyin, Kuaishou and Youzan (the client appends the API path).
    pub fn base_url(&self, platform: Platform) -> String {
        let root = format!("http://{}/{}", self.addr, platform.prefix());
        match platform {
            Platform::Pdd => format!("{root}/api/router"),
            Platform::Taobao => format!("{root}/router/rest"),
            Platform::Jd => format!("{root}/routerjson"),
            Platform::Douyin | Platform::Kuaishou | Platform::Youzan => root,
        }
    }

    /// The gateway's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    /// Sets the gateway's clock.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    /// Moves the gateway's clock forward.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.lock();
        inner.now += by;
    }

    /// Adds (or replaces) an app the gateway accepts.
    pub fn add_app(&self, platform: Platform, app_key: &str, secret: &str) {
        self.lock().state(platform).apps.insert(app_key.to_owned(), secret.to_owned());
    }

    /// Issues tokens of `app_key` for `shop`, with the platform's default lifetimes.
    pub fn issue_tokens(&self, platform: Platform, app_key: &str, shop: &str) -> IssuedTokens {
        let mut inner = self.lock();
        inner.issued += 1;
        let (now, serial) = (inner.now, inner.issued);
        inner.state(platform).issue(platform, app_key, shop, now, serial)
    }

    /// Issues tokens of the platform's default app for `shop`.
    pub fn issue_default_tokens(&self, platform: Platform, shop: &str) -> IssuedTokens {
        self.issue_tokens(platform, default_app(platform).0, shop)
    }

    /// Sets the lifetimes of tokens issued from now on.
    pub fn set_token_lifetimes(&self, platform: Platform, access: Duration, refresh: Duration) {
        let mut inner = self.lock();
        let state = inner.state(platform);
        state.access_lifetime = access;
        state.refresh_lifetime = refresh;
    }

    /// The shop revokes its authorisation: the access token and every refresh token of that
    /// shop stop working.
    pub fn revoke(&self, platform: Platform, access_token: &str) {
        let mut inner = self.lock();
        let state = inner.state(platform);
        let shop = state.tokens.get(access_token).map(|t| t.shop.clone());
        if let Some(shop) = shop {
            for token in state.tokens.values_mut().chain(state.refresh_tokens.values_mut()) {
                if token.shop == shop {
                    token.revoked = true;
                }
            }
        }
    }

    /// Puts (or replaces, by id) an order.
    pub fn put_order(&self, platform: Platform, order: Order) {
        let mut inner = self.lock();
        let orders = &mut inner.state(platform).orders;
        orders.retain(|o| o.id != order.id);
        orders.push(order);
    }

    /// Changes an order in place; false when there is none with that id.
    pub fn update_order(&self, platform: Platform, id: &str, change: impl FnOnce(&mut Order)) -> bool {
        let mut inner = self.lock();
        match inner.state(platform).orders.iter_mut().find(|o| o.id == id) {
            Some(order) => {
                change(order);
                true
            }
            None => false,
        }
    }

    /// A copy of the platform's orders.
    pub fn orders(&self, platform: Platform) -> Vec<Order> {
        self.lock().state(platform).orders.clone()
    }

    /// Limits calls per app and shop (`None` lifts the limit).
    pub fn set_rate_limit(&self, platform: Platform, limit: Option<RateLimit>) {
        let mut inner = self.lock();
        let state = inner.state(platform);
        state.rate = limit;
        state.hits.clear();
    }

    /// The next `n` requests that pass the authentication checks get the platform's
    /// retryable server error.
    pub fn fail_next(&self, platform: Platform, n: u32) {
        self.lock().state(platform).faults = n;
    }

    /// The next `n` requests to `platform`, whatever they are, get `fault` instead of an answer
    /// (recorded with [`Denial::ServerError`] and the code `garbage` or `http-<status>`).
    pub fn break_next(&self, platform: Platform, fault: RawFault, n: usize) {
        let mut inner = self.lock();
        inner.state(platform).raw_faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Sets the longest time window list APIs accept (`None`: no limit).
    pub fn set_max_window(&self, platform: Platform, max: Option<Duration>) {
        self.lock().state(platform).max_window = max;
    }

    /// The longest time window list APIs accept.
    pub fn max_window(&self, platform: Platform) -> Option<Duration> {
        self.lock().state(platform).max_window
    }

    /// Sets how far a request's timestamp may be from the gateway's clock.
    pub fn set_timestamp_tolerance(&self, platform: Platform, tolerance: Duration) {
        self.lock().state(platform).timestamp_tolerance = tolerance;
    }

    /// Applies `mutation` to the platform's orders right after the `n`-th list page served
    /// from now on (1 = the next list page), i.e. between two page requests of a client.
    pub fn after_list_request(&self, platform: Platform, n: u64, mutation: Mutation) {
        let mut inner = self.lock();
        let state = inner.state(platform);
        let due = state.list_requests + n;
        state.hooks.push((due, mutation));
    }

    /// Every request so far, in arrival order.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// The requests to `platform` so far.
    pub fn records_of(&self, platform: Platform) -> Vec<Record> {
        self.lock().records.iter().filter(|r| r.platform == platform).cloned().collect()
    }

    /// Forgets the records.
    pub fn clear_records(&self) {
        self.lock().records.clear();
    }

    fn serve(&self, platform: Platform, raw: RawRequest) -> Response {
        let mut inner = self.lock();
        inner.issued += 1;
        let (now, serial) = (inner.now, inner.issued);
        if let Some(fault) = inner.state(platform).raw_faults.pop_front() {
            let (code, response) = match fault {
                RawFault::Garbage => {
                    ("garbage".to_owned(), (StatusCode::OK, "<html>502 Bad Gateway</html>").into_response())
                }
                RawFault::Status(status) => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let response = if status == StatusCode::TOO_MANY_REQUESTS {
                        (status, [("retry-after", "1")]).into_response()
                    } else {
                        status.into_response()
                    };
                    (format!("http-{}", status.as_u16()), response)
                }
            };
            let denial = Some(Denial::ServerError);
            inner.records.push(Record {
                platform,
                api: raw.path.clone(),
                shop: None,
                page: None,
                denial,
                code: Some(code),
                at: now,
            });
            return response;
        }
        let served = {
            let state = inner.state(platform);
            let mut ctx = Ctx { state, now, serial };
            match platform {
                Platform::Pdd => pdd::serve(&mut ctx, &raw),
                Platform::Taobao => taobao::serve(&mut ctx, &raw),
                Platform::Jd => jd::serve(&mut ctx, &raw),
                Platform::Douyin => douyin::serve(&mut ctx, &raw),
                Platform::Kuaishou => kuaishou::serve(&mut ctx, &raw),
                Platform::Youzan => youzan::serve(&mut ctx, &raw),
            }
        };
        let (response, denial, code) = match served.result {
            Ok(response) => (response, None, None),
            Err(denial) => {
                let (code, response) = match platform {
                    Platform::Pdd => pdd::deny(&denial),
                    Platform::Taobao => taobao::deny(&denial),
                    Platform::Jd => jd::deny(&denial),
                    Platform::Douyin => douyin::deny(&denial),
                    Platform::Kuaishou => kuaishou::deny(&denial),
                    Platform::Youzan => youzan::deny(&denial),
                };
                (response, Some(denial), Some(code))
            }
        };
        inner.records.push(Record {
            platform,
            api: served.api,
            shop: served.shop,
            page: served.page,
            denial,
            code,
            at: now,
        });
        response
    }
}

async fn route(
    State(gateway): State<FakeGateway>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = uri.path();
    let Some(platform) = Platform::ALL.into_iter().find(|p| full.starts_with(&format!("/{}/", p.prefix()))) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = full[platform.prefix().len() + 1..].to_owned();
    let query = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    if let Some(delay) = gateway.take_delay(platform) {
        tokio::time::sleep(delay).await;
    }
    gateway.serve(platform, RawRequest { method, path, query, headers, body })
}

// ---------------------------------------------------------------------------------------
// Helpers the platform files share
// ---------------------------------------------------------------------------------------

impl domain::ports::clock::Clock for FakeGateway {
    fn now(&self) -> DateTime<Utc> {
        FakeGateway::now(self)
    }
}

/// A JSON answer with HTTP 200 (every platform here reports errors in the body).
pub(crate) fn json(body: Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json;charset=UTF-8")], body.to_string()).into_response()
}

/// Constant-time string equality for signatures.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai (GMT+8), the TOP/JD/Youzan time format.
pub fn fmt_cn(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Reads `yyyy-MM-dd HH:mm:ss` (optionally with `.SSS` and a `+0800` offset) as Asia/Shanghai.
pub fn parse_cn(raw: &str) -> Option<DateTime<Utc>> {
    let trimmed = raw.trim();
    if let Ok(with_offset) = DateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f%z") {
        return Some(with_offset.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Shanghai.from_local_datetime(&local).earliest().map(|at| at.with_timezone(&Utc))
}

/// Epoch seconds as a time.
pub(crate) fn from_epoch_s(raw: &str) -> Option<DateTime<Utc>> {
    raw.trim().parse::<i64>().ok().and_then(|s| DateTime::from_timestamp(s, 0))
}

/// Epoch milliseconds as a time.
pub(crate) fn from_epoch_ms(raw: &str) -> Option<DateTime<Utc>> {
    raw.trim().parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)
}

/// Whether `at` is within the platform's tolerance of the gateway's clock.
pub(crate) fn fresh(ctx: &Ctx<'_>, at: Option<DateTime<Utc>>) -> bool {
    at.is_some_and(|at| (ctx.now - at).abs() <= ctx.state.timestamp_tolerance)
}

/// A required parameter, or [`Denial::MissingParam`].
pub(crate) fn required<'a>(params: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Denial> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| Denial::MissingParam(name.into()))
}

/// A required time parameter read with `parse`, or the right denial.
pub(crate) fn time_param(
    params: &BTreeMap<String, String>,
    name: &str,
    parse: fn(&str) -> Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, Denial> {
    let raw = required(params, name)?;
    parse(raw).ok_or_else(|| Denial::BadParam(name.into(), format!("not a time: {raw}")))
}

/// An optional integer parameter with a default.
pub(crate) fn int_param(params: &BTreeMap<String, String>, name: &str, default: i64) -> Result<i64, Denial> {
    match params.get(name).map(String::as_str).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| Denial::BadParam(name.into(), format!("not an integer: {raw}"))),
    }
}

/// The same from a JSON object (numbers or numeric strings).
pub(crate) fn int_field(params: &Value, name: &str, default: i64) -> Result<i64, Denial> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| Denial::BadParam(name.into(), "not an integer".into())),
        Some(Value::String(s)) if s.is_empty() => Ok(default),
        Some(Value::String(s)) => {
            s.trim().parse().map_err(|_| Denial::BadParam(name.into(), format!("not an integer: {s}")))
        }
        Some(_) => Err(Denial::BadParam(name.into(), "not an integer".into())),
    }
}

/// A string field of a JSON object (numbers are read as their text).
pub(crate) fn text_field(params: &Value, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The slice of `items` on page `index` (0-based) of `size`.
pub(crate) fn page_of<T: Clone>(items: &[T], index: i64, size: i64) -> Vec<T> {
    let (Ok(index), Ok(size)) = (usize::try_from(index), usize::try_from(size)) else { return Vec::new() };
    items.iter().skip(index.saturating_mul(size)).take(size).cloned().collect()
}

#[cfg(test)]
mod tests;
