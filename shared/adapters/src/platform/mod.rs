//! Clients of the sales platforms' own APIs over HTTPS, one struct per platform, each signing
//! its requests exactly as the platform requires (`domain::sources::<platform>::sign`): the
//! incremental lists order-sync pulls ([`ChangeFeed`], every platform), the order queries
//! refund-dual-check asks ([`PlatformQuery`]: [`DouyinClient`], [`PddClient`], [`TaobaoClient`]),
//! token refresh ([`TokenRefresh`]), and Kuaidi100's subscription ([`Kuaidi100Client`]).
//!
//! A client holds its configuration and one HTTP client (a connection pool) and nothing else:
//! no token, no answer and no platform state is cached between calls. Errors are mapped to
//! [`QueryError`] here, at the edge; their texts never carry a token, a secret or a URL (the
//! Douyin URL carries the access token), and nothing here logs one.
//!
//! [`PlatformQuery`]: domain::ports::platform::PlatformQuery
//! [`ChangeFeed`]: domain::ports::pull::ChangeFeed
//! [`TokenRefresh`]: domain::ports::pull::TokenRefresh

mod douyin;
mod jd;
mod kuaidi100;
mod kuaishou;
mod pdd;
mod taobao;
mod youzan;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde_json::Value;

use domain::Source;
use domain::model::ids::OrderId;
use domain::model::sync::ChangedRow;
use domain::ports::clock::{Clock, SystemClock};
use domain::ports::platform::{Credentials, PlatformQuery, QueryError};
use domain::ports::pull::{ChangeFeed, PageRequest};
use domain::sources::json::{parse_time, text};

pub use domain::sources::taobao::sign::TaobaoSignMethod;
pub use douyin::DouyinClient;
pub use jd::{JD_BASE_URL, JD_OAUTH_URL, JdClient};
pub use kuaidi100::{KUAIDI100_POLL_URL, Kuaidi100Client, subscribe_param};
pub use kuaishou::{KUAISHOU_BASE_URL, KuaishouClient};
pub use pdd::PddClient;
pub use taobao::TaobaoClient;
pub use youzan::{YOUZAN_BASE_URL, YouzanClient};

/// Douyin (抖店) open API gateway.
pub const DOUYIN_BASE_URL: &str = "https://openapi-fxg.jinritemai.com";
/// Pinduoduo (拼多多) open API router.
pub const PDD_BASE_URL: &str = "https://gw-api.pinduoduo.com/api/router";
/// Taobao/Tmall TOP router.
pub const TAOBAO_BASE_URL: &str = "https://eco.taobao.com/router/rest";

/// A platform's clients: its change feed (every platform; also its token refresh) and, where
/// refund-dual-check asks it about single orders, its query client.
#[derive(Clone)]
pub struct PlatformClient {
    /// The platform.
    pub source: Source,
    /// Its incremental lists and token refresh.
    pub feed: Arc<dyn ChangeFeed>,
    /// Its order query, where orderhub has one.
    pub query: Option<Arc<dyn PlatformQuery>>,
}

/// One row of the client registry: a platform orderhub talks to, where its API is, and how its
/// clients are built. Adding a platform with an API is one client module and one row here.
pub struct ClientRow {
    /// The platform.
    pub source: Source,
    /// The variable that points its client elsewhere (tests, a proxy).
    pub url_var: &'static str,
    /// Its real gateway.
    pub default_url: &'static str,
    /// Builds its clients.
    pub build: fn(ClientConfig) -> Result<PlatformClient, BuildError>,
}

fn both<C: ChangeFeed + PlatformQuery + 'static>(source: Source, client: C) -> PlatformClient {
    let client = Arc::new(client);
    PlatformClient { source, feed: client.clone(), query: Some(client) }
}

fn feed_only<C: ChangeFeed + 'static>(source: Source, client: C) -> PlatformClient {
    PlatformClient { source, feed: Arc::new(client), query: None }
}

/// Every platform with a client.
pub const CLIENTS: [ClientRow; 6] = [
    ClientRow {
        source: Source::Douyin,
        url_var: "DOUYIN_API_URL",
        default_url: DOUYIN_BASE_URL,
        build: |config| Ok(both(Source::Douyin, DouyinClient::new(config)?)),
    },
    ClientRow {
        source: Source::Pdd,
        url_var: "PDD_API_URL",
        default_url: PDD_BASE_URL,
        build: |config| Ok(both(Source::Pdd, PddClient::new(config)?)),
    },
    ClientRow {
        source: Source::Taobao,
        url_var: "TAOBAO_API_URL",
        default_url: TAOBAO_BASE_URL,
        build: |config| Ok(both(Source::Taobao, TaobaoClient::new(config, TaobaoSignMethod::HmacMd5)?)),
    },
    ClientRow {
        source: Source::Jd,
        url_var: "JD_API_URL",
        default_url: JD_BASE_URL,
        build: |config| Ok(feed_only(Source::Jd, JdClient::new(config)?)),
    },
    ClientRow {
        source: Source::Kuaishou,
        url_var: "KUAISHOU_API_URL",
        default_url: KUAISHOU_BASE_URL,
        build: |config| Ok(feed_only(Source::Kuaishou, KuaishouClient::new(config)?)),
    },
    ClientRow {
        source: Source::Youzan,
        url_var: "YOUZAN_API_URL",
        default_url: YOUZAN_BASE_URL,
        build: |config| Ok(feed_only(Source::Youzan, YouzanClient::new(config)?)),
    },
];

/// Builds every registered platform's clients: each at its URL in `urls` (its real one when
/// absent), with `timeout` per request. The error names the platform whose URL is unusable.
pub fn build_clients(
    urls: &BTreeMap<Source, String>,
    timeout: Duration,
) -> Result<Vec<PlatformClient>, (Source, BuildError)> {
    CLIENTS
        .iter()
        .map(|row| {
            let url = urls.get(&row.source).map_or(row.default_url, String::as_str);
            let config = ClientConfig::new(url).map_err(|e| (row.source, e))?.with_timeout(timeout);
            (row.build)(config).map_err(|e| (row.source, e))
        })
        .collect()
}

/// Each registered client's endpoint override from the environment (`DOUYIN_API_URL`,
/// `PDD_API_URL`, …); absent or empty: the real one. An override that is not an http(s) URL is
/// named in the error.
pub fn api_urls(env: &dyn crate::config::Env) -> Result<BTreeMap<Source, String>, crate::config::ConfigError> {
    let mut urls = BTreeMap::new();
    for row in &CLIENTS {
        if let Some(url) = env.var(row.url_var).filter(|v| !v.trim().is_empty()) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(crate::config::ConfigError::Malformed {
                    var: row.url_var,
                    reason: "expected an http(s) URL".into(),
                });
            }
            urls.insert(row.source, url);
        }
    }
    Ok(urls)
}

/// The per-request timeout unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest platform message kept in a [`QueryError::Platform`], in characters.
const MESSAGE_CHARS: usize = 200;

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The base URL does not parse.
    #[error("base URL is not a URL")]
    BadUrl,
    /// Plain HTTP to anything but loopback would send tokens in clear text.
    #[error("base URL must be https (plain http only to loopback)")]
    NotHttps,
}

/// How a client reaches its platform.
#[derive(Clone)]
pub struct ClientConfig {
    /// The gateway URL (the platform's real one by default; the fake platform in tests).
    pub base_url: Url,
    /// Time allowed for each request, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// The source of "now" for timestamps and token expiry.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientConfig {
    /// A configuration for `base_url` with the default timeout and the system clock.
    ///
    /// `base_url` must be `https`, or `http` to a loopback host (the fake platform in tests).
    pub fn new(base_url: &str) -> Result<Self, BuildError> {
        let base_url = Url::parse(base_url).map_err(|_| BuildError::BadUrl)?;
        let loopback = matches!(base_url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match base_url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(BuildError::NotHttps),
        }
        Ok(Self { base_url, timeout: DEFAULT_TIMEOUT, clock: Arc::new(SystemClock) })
    }

    /// The same with another per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same with another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The HTTP side shared by the three clients.
#[derive(Debug, Clone)]
struct Http {
    /// Built on first use: loading the TLS roots costs milliseconds of cold start that a run
    /// with nothing due never needs (refund-dual-check, `scripts/bench.sh coldstart`: 19 ms to
    /// the first event request with its three clients built at init, 11 ms without).
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    timeout: Duration,
}

/// What came back, before the platform's envelope is read.
struct Reply {
    status: StatusCode,
    retry_after_s: Option<u64>,
    body: Option<Value>,
}

impl Http {
    fn new(timeout: Duration) -> Self {
        Self { client: Arc::default(), timeout }
    }

    /// The client, built the first time a request is made.
    fn client(&self) -> Result<&reqwest::Client, QueryError> {
        let built = self.client.get_or_init(|| {
            reqwest::Client::builder()
                // A redirect would carry the query string (Douyin's token) to another host.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.timeout)
                .user_agent(concat!("orderhub/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("http client: {}", e.without_url()))
        });
        built.as_ref().map_err(|e| QueryError::Transport(e.clone()))
    }

    /// The TOP-style call Pinduoduo and Taobao share: `params` (signed) as a form POST to
    /// `url`; the answer is either `error_response` (read with the platform's own names for
    /// code and message), returned as the inner `Err` for the client to classify, or the object
    /// under `response_key`.
    async fn post_form(
        &self,
        url: &Url,
        content_type: &str,
        params: &BTreeMap<String, String>,
        response_key: &str,
        [code, msg]: [&str; 2],
    ) -> Result<Result<Value, PlatformError>, QueryError> {
        let request = self.client()?.post(url.clone()).header("content-type", content_type).body(form_body(params));
        let reply = self.send(request).await?;
        let status_error = reply.status_error();
        let mut body = reply.into_body()?;
        if let Some(error) = body.get("error_response").filter(|e| e.is_object()) {
            return Ok(Err(PlatformError::from_fields(error, code, msg, "sub_code", "sub_msg")));
        }
        match body.get_mut(response_key).map(Value::take) {
            Some(response) if response.is_object() => Ok(Ok(response)),
            _ => Err(status_error.unwrap_or_else(|| QueryError::Malformed(format!("no {response_key}")))),
        }
    }

    /// Sends a request and reads the whole answer within the timeout.
    async fn send(&self, request: RequestBuilder) -> Result<Reply, QueryError> {
        let response = request.timeout(self.timeout).send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after_s = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(transport_error)?;
        Ok(Reply { status, retry_after_s, body: serde_json::from_slice(&bytes).ok() })
    }
}

impl Reply {
    /// The JSON body of a 2xx answer, or the error its HTTP status says. A 429 is a rate
    /// limit whatever the body; another non-2xx answer is returned with its body when it has
    /// one, for the platform's envelope to explain.
    fn into_body(self) -> Result<Value, QueryError> {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(QueryError::RateLimited { retry_after_s: self.retry_after_s });
        }
        match self.body {
            Some(body) => Ok(body),
            None if self.status.is_success() => Err(QueryError::Malformed("body is not JSON".into())),
            None => Err(QueryError::Transport(format!("HTTP {}", self.status.as_u16()))),
        }
    }

    /// The error for a non-2xx answer whose body held no platform error.
    fn status_error(&self) -> Option<QueryError> {
        (!self.status.is_success()).then(|| QueryError::Transport(format!("HTTP {}", self.status.as_u16())))
    }
}

/// A transport failure, without the URL (which may carry a token).
fn transport_error(error: reqwest::Error) -> QueryError {
    if error.is_timeout() {
        return QueryError::Timeout;
    }
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "reading the answer"
    } else if error.is_request() {
        "sending the request"
    } else {
        "http"
    };
    QueryError::Transport(format!("{kind}: {}", error.without_url()))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these gateways).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// Which call an error answers: a token error on a refresh must not ask for another refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Query,
    Refresh,
}

/// A platform's error, as the three envelopes carry it.
#[derive(Debug, Clone, Default)]
struct PlatformError {
    code: String,
    sub_code: Option<String>,
    message: String,
}

impl PlatformError {
    fn from_fields(value: &Value, code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Self {
        let message = text(value, sub_msg).or_else(|| text(value, msg)).unwrap_or_default();
        Self { code: text(value, code).unwrap_or_default(), sub_code: text(value, sub_code), message }
    }

    /// `code` and `sub_code` as one string, e.g. `40003/isv.signature-invalid`.
    fn full_code(&self) -> String {
        match &self.sub_code {
            Some(sub) if *sub != self.code => format!("{}/{sub}", self.code),
            _ => self.code.clone(),
        }
    }

    /// The catch-all [`QueryError::Platform`], message trimmed and scrubbed of credentials.
    fn into_platform(self, credentials: &Credentials) -> QueryError {
        QueryError::Platform { code: self.full_code(), message: clean_message(&self.message, credentials) }
    }
}

/// A platform message made safe for errors and logs: credentials masked (a gateway may echo a
/// parameter back), control characters dropped, at most [`MESSAGE_CHARS`] characters.
fn clean_message(message: &str, credentials: &Credentials) -> String {
    let mut out = message.to_owned();
    let secrets = [Some(&credentials.access_token), Some(&credentials.app_secret), credentials.refresh_token.as_ref()];
    for secret in secrets.into_iter().flatten().map(|s| s.expose()).filter(|s| s.len() >= 4) {
        out = out.replace(secret, "***");
    }
    out.chars().filter(|c| !c.is_control()).take(MESSAGE_CHARS).collect::<String>().trim().to_owned()
}

/// When a token expires, from an absolute time (`expires_at`, epoch seconds or milliseconds)
/// or else a lifetime in seconds from now. Douyin documents `expires_in` as a lifetime in some
/// SDKs and as an epoch in others: a value that is itself a plausible epoch is read as one.
fn token_expiry(now: DateTime<Utc>, absolute: Option<&Value>, lifetime: Option<&Value>) -> Option<DateTime<Utc>> {
    if let Some(at) = absolute.and_then(parse_time) {
        return Some(at);
    }
    let seconds = match lifetime? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if seconds > 1_000_000_000 {
        return parse_time(&Value::from(seconds));
    }
    (seconds > 0).then(|| now + chrono::Duration::seconds(seconds))
}

/// The credentials' refresh token, or the error that says there is none.
fn refresh_token_of(credentials: &Credentials) -> Result<&str, QueryError> {
    credentials.refresh_token.as_ref().map(|t| t.expose()).filter(|t| !t.is_empty()).ok_or_else(|| {
        QueryError::Platform {
            code: "no_refresh_token".into(),
            message: "the shop has no refresh token: it must authorise the app again".into(),
        }
    })
}

/// A form body (`application/x-www-form-urlencoded`) of `params`.
fn form_body<'a>(params: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        form.append_pair(key, value);
    }
    form.finish()
}

/// A page's number in the platform's own numbering (`first` is its first page's number).
fn page_number(page: &PageRequest, first: u32) -> u32 {
    match page {
        PageRequest::Number(n) => *n,
        PageRequest::Cursor(_) => first,
    }
}

/// A field of a JSON object by a dotted path (`order_info.shop_order_id`).
fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// A list's total, where the answer has one.
fn total(value: &Value, field: &str) -> Option<u64> {
    match value.get(field)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The changed rows of a list page: each row's order id (`id`, a dotted path), its update time
/// (the first of `times` present), and its refund id (`refund_id`) for refund lists. A row
/// without an order id or a readable time makes the page malformed: the pull stops there rather
/// than skip it silently.
fn rows(found: &[Value], id: &str, times: &[&str], refund_id: Option<&str>) -> Result<Vec<ChangedRow>, QueryError> {
    found
        .iter()
        .map(|row| {
            let order = at_path(row, id)
                .and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .ok_or_else(|| QueryError::Malformed(format!("a row without `{id}`")))?;
            let order_id = OrderId::parse(&order).map_err(|e| QueryError::Malformed(format!("`{id}`: {e}")))?;
            let updated_at = times
                .iter()
                .find_map(|t| at_path(row, t).and_then(parse_time))
                .ok_or_else(|| QueryError::Malformed(format!("a row without a readable `{}`", times.join("`/`"))))?;
            let refund_id = refund_id.and_then(|f| at_path(row, f)).and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            Ok(ChangedRow { order_id, refund_id, updated_at, row: row.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use domain::ports::secrets::Secret;
    use serde_json::json;

    fn credentials() -> Credentials {
        Credentials {
            app_key: "key".into(),
            app_secret: Secret::new("app-secret-value"),
            access_token: Secret::new("access-token-value"),
            refresh_token: Some(Secret::new("refresh-token-value")),
        }
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(ClientConfig::new("https://gw-api.pinduoduo.com/api/router").is_ok());
        assert!(ClientConfig::new("http://127.0.0.1:8080/api/router").is_ok());
        assert!(ClientConfig::new("http://localhost:1").is_ok());
        assert_eq!(ClientConfig::new("http://gw-api.pinduoduo.com").err(), Some(BuildError::NotHttps));
        assert_eq!(ClientConfig::new("ftp://127.0.0.1").err(), Some(BuildError::NotHttps));
        assert_eq!(ClientConfig::new("not a url").err(), Some(BuildError::BadUrl));
    }

    #[test]
    fn messages_are_trimmed_and_never_carry_credentials() {
        let c = credentials();
        let echoed = "bad token access-token-value, secret app-secret-value, refresh refresh-token-value\n";
        let clean = clean_message(echoed, &c);
        assert_eq!(clean, "bad token ***, secret ***, refresh ***");
        let long = "长".repeat(500);
        assert_eq!(clean_message(&long, &c).chars().count(), MESSAGE_CHARS);
    }

    #[test]
    fn full_codes_join_code_and_sub_code() {
        let e = PlatformError::from_fields(
            &json!({"code": 40003, "msg": "非法的参数", "sub_code": "isv.signature-invalid", "sub_msg": "签名校验失败"}),
            "code",
            "msg",
            "sub_code",
            "sub_msg",
        );
        assert_eq!(e.full_code(), "40003/isv.signature-invalid");
        assert_eq!(e.message, "签名校验失败");
        let same = PlatformError::from_fields(
            &json!({"error_code": 20004, "sub_code": "20004", "error_msg": "签名验证失败"}),
            "error_code",
            "error_msg",
            "sub_code",
            "sub_msg",
        );
        assert_eq!(same.full_code(), "20004");
        assert_eq!(same.message, "签名验证失败");
    }

    #[test]
    fn token_expiry_reads_absolute_times_then_lifetimes() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 8, 0, 0, 0).single().unwrap();
        let epoch = at.timestamp();
        assert_eq!(token_expiry(now, Some(&json!(epoch)), None), Some(at));
        assert_eq!(token_expiry(now, Some(&json!(epoch * 1000)), Some(&json!(5))), Some(at), "ms epoch wins");
        assert_eq!(token_expiry(now, None, Some(&json!(604_800))), Some(at));
        assert_eq!(token_expiry(now, None, Some(&json!("604800"))), Some(at));
        assert_eq!(token_expiry(now, None, Some(&json!(epoch))), Some(at), "an epoch in expires_in");
        assert_eq!(token_expiry(now, None, Some(&json!(0))), None);
        assert_eq!(token_expiry(now, None, None), None);
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(7));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_missing_refresh_token_is_an_error() {
        let mut c = credentials();
        assert_eq!(refresh_token_of(&c).ok(), Some("refresh-token-value"));
        c.refresh_token = None;
        assert!(matches!(refresh_token_of(&c), Err(QueryError::Platform { code, .. }) if code == "no_refresh_token"));
    }
}
