//! A fake of the four outbound notification services on one loopback port: DingTalk custom
//! robots (`POST /robot/send`), WeCom group robots (`POST /cgi-bin/webhook/send`), Aliyun SMS
//! and Tencent Cloud SMS (both `POST /`, told apart by their `x-acs-action` / `X-TC-Action`
//! header).
//!
//! It checks every request as the provider documents it, with its own code — not the adapters'
//! (`adapters::notify`): the HMACs are recomputed here with the `hmac` crate, the canonical
//! requests rebuilt from what actually arrived on the wire, and compared in constant time. It
//! enforces the limits: DingTalk's 1-hour timestamp window and 20 messages a minute per robot
//! (then 10 minutes of `410100`), WeCom's 20 a minute per key (`45009`), Aliyun's per-number
//! `isv.BUSINESS_LIMIT_CONTROL` and Tencent's per-number `LimitExceeded.PhoneNumber*` limits
//! (configurable, [`SmsLimits`]), Aliyun's 15-minute date window and single-use nonces,
//! Tencent's 5-minute timestamp window. Its clock is a [`FixedClock`] the test moves.
//!
//! It records every message it received ([`FakeNotify::received`]; phone numbers masked) so a
//! test or the demo can show what each robot got, and can be told to fail the next requests
//! ([`FakeNotify::fail_next`]) with an HTTP status, a provider error code, or a delay.
//!
//! Codes and messages it answers, and where each comes from: see `docs/notify-channels.md`
//! ("The fake"). Codes no public source confirms are marked there as unconfirmed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use domain::model::time::business_day;
use domain::ports::clock::Clock;
use domain::testing::clock::FixedClock;

/// Which service a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// 钉钉 custom robot.
    DingTalk,
    /// 企业微信 group robot.
    WeCom,
    /// 阿里云短信 SendSms.
    Aliyun,
    /// 腾讯云短信 SendSms.
    Tencent,
}

/// How to fail a request on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP status with a non-JSON body (a gateway's error page).
    Status(u16),
    /// Answer the provider's own error envelope with this code (DingTalk/WeCom `errcode`,
    /// Aliyun `Code`, Tencent `Response.Error.Code`).
    Code(String),
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// Per-number limits of an SMS provider, each `None` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmsLimits {
    /// Per 30 seconds (Tencent's `PhoneNumberThirtySecondLimit`).
    pub per_30s: Option<usize>,
    /// Per minute (Aliyun's 分钟级).
    pub per_minute: Option<usize>,
    /// Per hour.
    pub per_hour: Option<usize>,
    /// Per day: Aliyun counts the last 24 hours, Tencent the Beijing calendar day.
    pub per_day: Option<usize>,
}

impl SmsLimits {
    /// Aliyun's default for notices: 50 a day per signature, template and number
    /// (help.aliyun.com/document_detail/2881383.html).
    pub const ALIYUN_NOTICE: Self = Self { per_30s: None, per_minute: None, per_hour: None, per_day: Some(50) };
    /// Aliyun's default for verification codes: 1 a minute, 5 an hour, 10 a day (same page).
    pub const ALIYUN_CODE: Self = Self { per_30s: None, per_minute: Some(1), per_hour: Some(5), per_day: Some(10) };
    /// Tencent: one message per number per 30 s (tencentcloud.com/document/product/382/13303);
    /// the hour and day caps are the console's to set, 5 and 10 here (unconfirmed defaults).
    pub const TENCENT_DEFAULT: Self = Self { per_30s: Some(1), per_minute: None, per_hour: Some(5), per_day: Some(10) };
}

/// One message as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The service.
    pub provider: Provider,
    /// The robot's name (as registered) or the masked phone number (`138****5678`).
    pub to: String,
    /// The robot message's title, or the SMS template code.
    pub title: String,
    /// The markdown text, or the SMS template values as `name=value` (Aliyun) / `value`
    /// (Tencent), comma-separated.
    pub text: String,
    /// Whom a robot message `@`s (DingTalk `atMobiles` masked, `atUserIds`, `all`).
    pub at: Vec<String>,
    /// Whether the provider accepted it.
    pub accepted: bool,
    /// The provider's answer code (`0`, `410100`, `OK`, `isv.BUSINESS_LIMIT_CONTROL`, `Ok`, …).
    pub outcome: String,
}

#[derive(Default)]
struct Inner {
    dingtalk: HashMap<String, (String, String)>,
    wecom: HashMap<String, String>,
    aliyun: HashMap<String, String>,
    tencent: HashMap<String, (String, String)>,
    aliyun_limits: SmsLimits,
    tencent_limits: SmsLimits,
    sent: HashMap<String, Vec<DateTime<Utc>>>,
    throttled_until: HashMap<String, DateTime<Utc>>,
    nonces: HashSet<String>,
    faults: HashMap<Provider, VecDeque<Fault>>,
    received: Vec<Received>,
    serial: u64,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeNotify {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<FixedClock>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl FakeNotify {
    /// Starts the fake on a free loopback port, its clock at 2026-03-02 10:00 Beijing time.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).single().unwrap();
        let inner = Inner {
            aliyun_limits: SmsLimits::ALIYUN_NOTICE,
            tencent_limits: SmsLimits::TENCENT_DEFAULT,
            ..Inner::default()
        };
        let fake = FakeNotify { inner: Arc::new(Mutex::new(inner)), clock: Arc::new(FixedClock::new(start)), addr };
        let app = Router::new()
            .route("/robot/send", post(dingtalk))
            .route("/cgi-bin/webhook/send", post(wecom))
            .route("/", post(sms))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The base URL every client points at (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fake's clock; give it to the clients too, so both sides agree on "now".
    pub fn clock(&self) -> Arc<FixedClock> {
        self.clock.clone()
    }

    /// Moves the fake's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// Registers a DingTalk robot: its name (for [`Received::to`]), access token and secret.
    pub fn add_dingtalk_robot(&self, name: &str, access_token: &str, secret: &str) {
        self.lock().dingtalk.insert(access_token.to_owned(), (name.to_owned(), secret.to_owned()));
    }

    /// Registers a WeCom robot by name and key.
    pub fn add_wecom_robot(&self, name: &str, key: &str) {
        self.lock().wecom.insert(key.to_owned(), name.to_owned());
    }

    /// Registers an Aliyun AccessKey.
    pub fn add_aliyun_key(&self, access_key_id: &str, access_key_secret: &str) {
        self.lock().aliyun.insert(access_key_id.to_owned(), access_key_secret.to_owned());
    }

    /// Registers a Tencent API key and the SMS application it may send from.
    pub fn add_tencent_key(&self, secret_id: &str, secret_key: &str, sdk_app_id: &str) {
        self.lock().tencent.insert(secret_id.to_owned(), (secret_key.to_owned(), sdk_app_id.to_owned()));
    }

    /// Sets Aliyun's per-number limits ([`SmsLimits::ALIYUN_NOTICE`] at start).
    pub fn set_aliyun_limits(&self, limits: SmsLimits) {
        self.lock().aliyun_limits = limits;
    }

    /// Sets Tencent's per-number limits ([`SmsLimits::TENCENT_DEFAULT`] at start).
    pub fn set_tencent_limits(&self, limits: SmsLimits) {
        self.lock().tencent_limits = limits;
    }

    /// Fails the next `n` requests to `provider` with `fault`.
    pub fn fail_next(&self, provider: Provider, n: usize, fault: Fault) {
        let mut inner = self.lock();
        let queue = inner.faults.entry(provider).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// Every message received, in order, accepted or not.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The messages a robot (by name) or a masked number accepted, in order.
    pub fn delivered(&self, to: &str) -> Vec<Received> {
        self.lock().received.iter().filter(|r| r.accepted && r.to == to).cloned().collect()
    }

    /// What each robot and number accepted, one line per message, for a demo to print.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for r in self.lock().received.iter().filter(|r| r.accepted) {
            let at = if r.at.is_empty() { String::new() } else { format!(" (@ {})", r.at.join(", ")) };
            let text = r.text.replace('\n', " ⏎ ");
            out.push_str(&format!("[{:?} → {}] {}{at}: {text}\n", r.provider, r.to, r.title));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The next injected fault for `provider`, after waiting out any delay.
    async fn fault(&self, provider: Provider) -> Option<Fault> {
        let fault = self.lock().faults.get_mut(&provider).and_then(VecDeque::pop_front);
        match fault {
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                None
            }
            other => other,
        }
    }

    fn record(&self, received: Received) {
        self.lock().received.push(received);
    }

    fn next_serial(&self) -> u64 {
        let mut inner = self.lock();
        inner.serial += 1;
        inner.serial
    }

    /// Sends in the last `window` under `key`.
    fn count_since(&self, key: &str, window: chrono::Duration) -> usize {
        let since = self.now() - window;
        self.lock().sent.get(key).map_or(0, |times| times.iter().filter(|t| **t > since).count())
    }

    fn count_today(&self, key: &str) -> usize {
        let today = business_day(self.now());
        self.lock().sent.get(key).map_or(0, |times| times.iter().filter(|t| business_day(**t) == today).count())
    }

    fn note_sent(&self, key: &str) {
        let now = self.now();
        self.lock().sent.entry(key.to_owned()).or_default().push(now);
    }
}

// ---------------------------------------------------------------- shared crypto, written anew

fn hmac256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn fault_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, [("content-type", "text/html")], "<html><body>upstream unavailable</body></html>").into_response()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn query_value(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// `13812345678` → `138****5678`.
fn mask(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let national = digits.strip_prefix("86").filter(|n| n.len() == 11).unwrap_or(&digits);
    if national.len() < 8 {
        return "****".to_owned();
    }
    format!("{}****{}", &national[..3], &national[national.len() - 4..])
}

// ---------------------------------------------------------------- DingTalk

fn ding(errcode: i64, errmsg: &str) -> Response {
    json_response(StatusCode::OK, json!({ "errcode": errcode, "errmsg": errmsg }))
}

async fn dingtalk(State(fake): State<FakeNotify>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    match fake.fault(Provider::DingTalk).await {
        Some(Fault::Status(code)) => return fault_status(code),
        Some(Fault::Code(code)) => return ding(code.parse().unwrap_or(-1), "injected"),
        _ => {}
    }
    let pairs = query_pairs(query.as_deref());
    let token = query_value(&pairs, "access_token").unwrap_or_default();
    let Some((name, secret)) = fake.lock().dingtalk.get(&token).cloned() else {
        return ding(400_101, "access_token不存在");
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut received = Received {
        provider: Provider::DingTalk,
        to: name,
        title: body["markdown"]["title"].as_str().unwrap_or_default().to_owned(),
        text: body["markdown"]["text"].as_str().unwrap_or_default().to_owned(),
        at: dingtalk_at(&body),
        accepted: false,
        outcome: String::new(),
    };
    let verdict = dingtalk_verdict(&fake, &pairs, &token, &secret, &body);
    received.accepted = verdict.0 == 0;
    received.outcome = verdict.0.to_string();
    fake.record(received);
    ding(verdict.0, verdict.1)
}

fn dingtalk_at(body: &Value) -> Vec<String> {
    let list = |field: &str| body["at"][field].as_array().cloned().unwrap_or_default();
    let mut at: Vec<String> = list("atMobiles").iter().filter_map(Value::as_str).map(mask).collect();
    at.extend(list("atUserIds").iter().filter_map(Value::as_str).map(str::to_owned));
    if body["at"]["isAtAll"].as_bool() == Some(true) {
        at.push("all".to_owned());
    }
    at
}

/// DingTalk's checks, in its order: timestamp window, signature, rate, body.
fn dingtalk_verdict(
    fake: &FakeNotify,
    pairs: &[(String, String)],
    token: &str,
    secret: &str,
    body: &Value,
) -> (i64, &'static str) {
    let now = fake.now();
    let timestamp: Option<i64> = query_value(pairs, "timestamp").and_then(|t| t.parse().ok());
    let Some(timestamp) = timestamp.filter(|t| (now.timestamp_millis() - t).abs() <= 3_600_000) else {
        return (310_000, "invalid timestamp");
    };
    // form_urlencoded decoding, as a server would: a `sign` left un-URL-encoded has its `+`
    // turned into spaces here and fails, as it does against DingTalk.
    let sign = query_value(pairs, "sign").unwrap_or_default();
    let expected = STANDARD.encode(hmac256(secret.as_bytes(), format!("{timestamp}\n{secret}").as_bytes()));
    if !same(&sign, &expected) {
        return (310_000, "sign not match");
    }
    let key = format!("dingtalk:{token}");
    if fake.lock().throttled_until.get(&key).is_some_and(|until| *until > now) {
        return (410_100, "send too fast, exceed 20 times per minute");
    }
    if fake.count_since(&key, chrono::Duration::minutes(1)) >= 20 {
        fake.lock().throttled_until.insert(key, now + chrono::Duration::minutes(10));
        return (410_100, "send too fast, exceed 20 times per minute");
    }
    let markdown_ok = body["msgtype"] == "markdown"
        && body["markdown"]["title"].as_str().is_some_and(|t| !t.is_empty())
        && body["markdown"]["text"].as_str().is_some_and(|t| !t.is_empty());
    let text_ok = body["msgtype"] == "text" && body["text"]["content"].as_str().is_some_and(|t| !t.is_empty());
    if !markdown_ok && !text_ok {
        return (400_105, "不支持的消息类型");
    }
    fake.note_sent(&key);
    (0, "ok")
}

// ---------------------------------------------------------------- WeCom

fn wx(errcode: i64, errmsg: &str) -> Response {
    json_response(StatusCode::OK, json!({ "errcode": errcode, "errmsg": errmsg }))
}

async fn wecom(State(fake): State<FakeNotify>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    match fake.fault(Provider::WeCom).await {
        Some(Fault::Status(code)) => return fault_status(code),
        Some(Fault::Code(code)) => return wx(code.parse().unwrap_or(-1), "injected"),
        _ => {}
    }
    let key = query_value(&query_pairs(query.as_deref()), "key").unwrap_or_default();
    let Some(name) = fake.lock().wecom.get(&key).cloned() else {
        return wx(93_000, "invalid webhook url, hint: [fake]");
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let content = body["markdown"]["content"].as_str().unwrap_or_default().to_owned();
    let rate_key = format!("wecom:{key}");
    let (code, message) = if fake.count_since(&rate_key, chrono::Duration::minutes(1)) >= 20 {
        (45_009, "api freq out of limit")
    } else if body["msgtype"] != "markdown" || content.is_empty() {
        (40_008, "invalid message type")
    } else if content.len() > 4096 {
        (40_058, "markdown.content exceed max length 4096")
    } else {
        fake.note_sent(&rate_key);
        (0, "ok")
    };
    let (title, text) = match content.split_once('\n') {
        Some((first, rest)) if first.starts_with("**") => (first.trim_matches('*').to_owned(), rest.to_owned()),
        _ => (String::new(), content.clone()),
    };
    let at = content.split("<@").skip(1).filter_map(|part| part.split_once('>').map(|(id, _)| id.to_owned())).collect();
    fake.record(Received {
        provider: Provider::WeCom,
        to: name,
        title,
        text,
        at,
        accepted: code == 0,
        outcome: code.to_string(),
    });
    wx(code, message)
}

// ---------------------------------------------------------------- SMS (both providers on `/`)

async fn sms(State(fake): State<FakeNotify>, headers: HeaderMap, RawQuery(query): RawQuery, body: Bytes) -> Response {
    if headers.contains_key("x-acs-action") {
        aliyun(fake, headers, query, body).await
    } else if headers.contains_key("x-tc-action") {
        tencent(fake, headers, body).await
    } else {
        (StatusCode::NOT_FOUND, "no such API").into_response()
    }
}

fn acs(status: StatusCode, code: &str, message: &str, serial: u64) -> Response {
    json_response(
        status,
        json!({ "Code": code, "Message": message, "RequestId": format!("FAKE-{serial}"), "HostId": "dysmsapi.aliyuncs.com" }),
    )
}

/// RFC 3986 encoding, written again here from Aliyun's page (not the adapter's function).
fn rfc3986(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `%XY` decoding of a query component (Aliyun's encoding never uses `+` for space).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn aliyun(fake: FakeNotify, headers: HeaderMap, query: Option<String>, body: Bytes) -> Response {
    let serial = fake.next_serial();
    match fake.fault(Provider::Aliyun).await {
        Some(Fault::Status(code)) => return fault_status(code),
        Some(Fault::Code(code)) => return acs(StatusCode::OK, &code, "injected", serial),
        _ => {}
    }
    // The raw query, decoded pair by pair.
    let mut params: Vec<(String, String)> = Vec::new();
    for part in query.as_deref().unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match (percent_decode(name), percent_decode(value)) {
            (Some(name), Some(value)) => params.push((name, value)),
            _ => return acs(StatusCode::BAD_REQUEST, "InvalidParameter", "malformed query", serial),
        }
    }
    if let Err((status, code, message)) = aliyun_authenticate(&fake, &headers, &params, &body) {
        return acs(status, code, &message, serial);
    }
    if header(&headers, "x-acs-action") != "SendSms" || header(&headers, "x-acs-version") != "2017-05-25" {
        return acs(StatusCode::BAD_REQUEST, "InvalidAction.NotFound", "Specified api is not found", serial);
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (phone, sign_name, template) = (param("PhoneNumbers"), param("SignName"), param("TemplateCode"));
    let template_param = param("TemplateParam");
    let values: Option<Vec<String>> = if template_param.is_empty() {
        Some(Vec::new())
    } else {
        serde_json::from_str::<serde_json::Map<String, Value>>(&template_param)
            .ok()
            .map(|object| object.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?"))).collect())
    };
    let mut received = Received {
        provider: Provider::Aliyun,
        to: mask(&phone),
        title: template.clone(),
        text: values.clone().unwrap_or_default().join(", "),
        at: Vec::new(),
        accepted: false,
        outcome: String::new(),
    };
    let national = phone.strip_prefix("+86").or_else(|| phone.strip_prefix("0086")).unwrap_or(&phone);
    let national = if national.len() == 13 { national.strip_prefix("86").unwrap_or(national) } else { national };
    let (code, message) = if sign_name.is_empty() || template.is_empty() {
        ("isv.INVALID_PARAMETERS", "参数异常".to_owned())
    } else if !(national.len() == 11 && national.starts_with('1') && national.bytes().all(|b| b.is_ascii_digit())) {
        ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号".to_owned())
    } else if values.is_none() {
        ("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值".to_owned())
    } else {
        let limits = fake.lock().aliyun_limits;
        let key = format!("aliyun:{sign_name}:{template}:{national}");
        let windows = [
            (limits.per_minute, chrono::Duration::minutes(1), "分钟级"),
            (limits.per_hour, chrono::Duration::hours(1), "小时级"),
            (limits.per_day, chrono::Duration::hours(24), "天级"),
        ];
        let hit = windows.iter().find_map(|(limit, window, name)| {
            limit.filter(|l| fake.count_since(&key, *window) >= *l).map(|l| (name, l))
        });
        match hit {
            Some((name, permits)) => ("isv.BUSINESS_LIMIT_CONTROL", format!("触发{name}流控Permits:{permits}")),
            None => {
                fake.note_sent(&key);
                ("OK", "OK".to_owned())
            }
        }
    };
    received.accepted = code == "OK";
    received.outcome = code.to_owned();
    fake.record(received);
    if code == "OK" {
        return json_response(
            StatusCode::OK,
            json!({ "Code": "OK", "Message": "OK", "BizId": format!("{serial}^0"), "RequestId": format!("FAKE-{serial}") }),
        );
    }
    acs(StatusCode::OK, code, &message, serial)
}

/// Aliyun's V3 checks: known key, date window, single-use nonce, every `x-acs-*` header signed,
/// and the signature over the canonical request rebuilt from what arrived.
fn aliyun_authenticate(
    fake: &FakeNotify,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: &[u8],
) -> Result<(), (StatusCode, &'static str, String)> {
    let authorization = header(headers, "authorization");
    let Some(fields) = authorization.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return Err((StatusCode::BAD_REQUEST, "IncompleteSignature", "not ACS3-HMAC-SHA256".to_owned()));
    };
    let field = |name: &str| {
        fields.split(',').find_map(|f| f.trim().strip_prefix(name).and_then(|v| v.strip_prefix('='))).unwrap_or("")
    };
    let (key_id, signed_headers, signature) = (field("Credential"), field("SignedHeaders"), field("Signature"));
    let Some(secret) = fake.lock().aliyun.get(key_id).cloned() else {
        return Err((
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.".to_owned(),
        ));
    };
    let date = DateTime::parse_from_rfc3339(header(headers, "x-acs-date")).map(|d| d.with_timezone(&Utc));
    if !date.is_ok_and(|d| (fake.now() - d).num_seconds().abs() <= 15 * 60) {
        return Err((
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.".to_owned(),
        ));
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    let unsigned =
        headers.keys().map(|name| name.as_str()).any(|name| name.starts_with("x-acs-") && !signed.contains(&name));
    if unsigned || !signed.contains(&"host") {
        return Err((StatusCode::BAD_REQUEST, "SignatureDoesNotMatch", "a common header is not signed".to_owned()));
    }
    let nonce = header(headers, "x-acs-signature-nonce").to_owned();
    if nonce.is_empty() || !fake.lock().nonces.insert(nonce) {
        return Err((
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.".to_owned(),
        ));
    }
    let mut query: Vec<(String, String)> = params.iter().map(|(k, v)| (rfc3986(k), rfc3986(v))).collect();
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canonical_headers = String::new();
    for name in &signed {
        canonical_headers.push_str(&format!("{name}:{}\n", header(headers, name).trim()));
    }
    let canonical = format!("POST\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{}", sha256_hex(body));
    let string_to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
    let expected = hex::encode(hmac256(secret.as_bytes(), string_to_sign.as_bytes()));
    if !same(signature, &expected) {
        // Aliyun echoes what it signed; the real string to sign holds the request's values.
        let message = format!(
            "Specified signature is not matched with our calculation. server query is:{query} string to sign is:{string_to_sign}"
        );
        return Err((StatusCode::BAD_REQUEST, "SignatureDoesNotMatch", message));
    }
    Ok(())
}

fn tc_error(code: &str, message: &str, serial: u64) -> Response {
    json_response(
        StatusCode::OK,
        json!({ "Response": { "Error": { "Code": code, "Message": message }, "RequestId": format!("fake-{serial}") } }),
    )
}

async fn tencent(fake: FakeNotify, headers: HeaderMap, body: Bytes) -> Response {
    let serial = fake.next_serial();
    match fake.fault(Provider::Tencent).await {
        Some(Fault::Status(code)) => return fault_status(code),
        Some(Fault::Code(code)) => return tc_error(&code, "injected", serial),
        _ => {}
    }
    let app_id = match tencent_authenticate(&fake, &headers, &body) {
        Ok(app_id) => app_id,
        Err((code, message)) => return tc_error(code, message, serial),
    };
    if header(&headers, "x-tc-action") != "SendSms" || header(&headers, "x-tc-version") != "2021-01-11" {
        return tc_error("InvalidAction", "接口不存在。", serial);
    }
    if header(&headers, "x-tc-region").is_empty() {
        return tc_error("MissingParameter", "Region is required", serial);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tc_error("InvalidParameter", "body is not JSON", serial);
    };
    if body["SmsSdkAppId"].as_str() != Some(app_id.as_str()) {
        return tc_error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId不存在。", serial);
    }
    let template = body["TemplateId"].as_str().unwrap_or_default().to_owned();
    let values: Vec<String> = body["TemplateParamSet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let limits = fake.lock().tencent_limits;
    let mut statuses = Vec::new();
    for phone in body["PhoneNumberSet"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let national = phone.strip_prefix("+86").unwrap_or(phone);
        let key = format!("tencent:{national}");
        let (code, message) =
            if !(national.len() == 11 && national.starts_with('1') && national.bytes().all(|b| b.is_ascii_digit())) {
                ("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误。")
            } else if limits.per_30s.is_some_and(|l| fake.count_since(&key, chrono::Duration::seconds(30)) >= l) {
                ("LimitExceeded.PhoneNumberThirtySecondLimit", "单个手机号30秒内下发短信条数超过设定的上限")
            } else if limits.per_hour.is_some_and(|l| fake.count_since(&key, chrono::Duration::hours(1)) >= l) {
                ("LimitExceeded.PhoneNumberOneHourLimit", "单个手机号1小时内下发短信条数超过设定的上限")
            } else if limits.per_day.is_some_and(|l| fake.count_today(&key) >= l) {
                ("LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限")
            } else {
                fake.note_sent(&key);
                ("Ok", "send success")
            };
        fake.record(Received {
            provider: Provider::Tencent,
            to: mask(phone),
            title: template.clone(),
            text: values.join(", "),
            at: Vec::new(),
            accepted: code == "Ok",
            outcome: code.to_owned(),
        });
        statuses.push(json!({
            "SerialNo": format!("2433:{serial}"), "PhoneNumber": phone, "Fee": 1,
            "SessionContext": body["SessionContext"], "Code": code, "Message": message, "IsoCode": "CN",
        }));
    }
    json_response(
        StatusCode::OK,
        json!({ "Response": { "SendStatusSet": statuses, "RequestId": format!("fake-{serial}") } }),
    )
}

/// TC3 checks: known SecretId, 5-minute timestamp window, scope of that day and service `sms`,
/// and the signature over the canonical request rebuilt from what arrived. Returns the SMS
/// application the key may send from.
fn tencent_authenticate(
    fake: &FakeNotify,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, (&'static str, &'static str)> {
    let failure = ("AuthFailure.SignatureFailure", "The provided credentials could not be validated.");
    let authorization = header(headers, "authorization");
    let fields =
        authorization.strip_prefix("TC3-HMAC-SHA256 ").ok_or(("AuthFailure.InvalidAuthorization", "not TC3"))?;
    let field = |name: &str| {
        fields.split(',').find_map(|f| f.trim().strip_prefix(name).and_then(|v| v.strip_prefix('='))).unwrap_or("")
    };
    let credential: Vec<&str> = field("Credential").split('/').collect();
    let [secret_id, date, service, "tc3_request"] = credential[..] else {
        return Err(("AuthFailure.InvalidAuthorization", "malformed Credential"));
    };
    let Some((secret_key, app_id)) = fake.lock().tencent.get(secret_id).cloned() else {
        return Err(("AuthFailure.SecretIdNotFound", "密钥不存在。"));
    };
    let timestamp: i64 = header(headers, "x-tc-timestamp").parse().map_err(|_| failure)?;
    if (fake.now().timestamp() - timestamp).abs() > 300 {
        return Err(("AuthFailure.SignatureExpire", "签名过期。"));
    }
    let day = DateTime::<Utc>::from_timestamp(timestamp, 0).map(|t| t.format("%Y-%m-%d").to_string());
    if day.as_deref() != Some(date) || service != "sms" {
        return Err(failure);
    }
    let signed_headers = field("SignedHeaders");
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", header(headers, name).trim().to_lowercase()));
    }
    let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}", sha256_hex(body));
    let string_to_sign =
        format!("TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}", sha256_hex(canonical.as_bytes()));
    let key =
        hmac256(&hmac256(&hmac256(format!("TC3{secret_key}").as_bytes(), date.as_bytes()), b"sms"), b"tc3_request");
    let expected = hex::encode(hmac256(&key, string_to_sign.as_bytes()));
    if !signed_headers.split(';').any(|h| h == "host") || !same(field("Signature"), &expected) {
        return Err(failure);
    }
    Ok(app_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters::notify::{
        AliyunSms, ChannelConfig, DingTalkRobot, Phone, RobotMessage, SendResult, SmsRequest, TencentSms, WeComRobot,
    };

    const DING_TOKEN: &str = "0f3c9d2a7b1e4c8f9a6d5b2e1c7f3a9d";
    // At the fake's start time this secret's `sign` contains a `+` (see the last test).
    const DING_SECRET: &str = "SECfake0123456789abcdeh";
    const WX_KEY: &str = "693a91f6-7aaa-4bc4-97a0-0ec2a1fa5aaa";

    async fn fake() -> FakeNotify {
        let fake = FakeNotify::start().await;
        fake.add_dingtalk_robot("warehouse", DING_TOKEN, DING_SECRET);
        fake.add_wecom_robot("finance", WX_KEY);
        fake.add_aliyun_key("LTAIfake", "aliyun-secret");
        fake.add_tencent_key("AKIDfake", "tencent-secret", "1400006666");
        fake
    }

    fn config(fake: &FakeNotify) -> ChannelConfig {
        ChannelConfig::new(&fake.base_url()).unwrap().with_clock(fake.clock()).with_timeout(Duration::from_secs(5))
    }

    fn ding(fake: &FakeNotify, secret: &str) -> DingTalkRobot {
        DingTalkRobot::from_token(config(fake), DING_TOKEN, secret).unwrap()
    }

    fn wecom(fake: &FakeNotify) -> WeComRobot {
        WeComRobot::from_key(config(fake), WX_KEY).unwrap()
    }

    fn aliyun(fake: &FakeNotify, secret: &str) -> AliyunSms {
        AliyunSms::new(config(fake), "LTAIfake", secret).unwrap()
    }

    fn tencent(fake: &FakeNotify, key: &str) -> TencentSms {
        TencentSms::new(config(fake), "AKIDfake", key, "1400006666", "ap-guangzhou").unwrap()
    }

    fn notice(phone: &str) -> SmsRequest {
        SmsRequest {
            phone: Phone::parse(phone).unwrap(),
            sign_name: "某某旗舰店".into(),
            template_code: "SMS_465000123".into(),
            params: vec![("station".into(), "菜鸟驿站(科技园店)".into()), ("code".into(), "8-2-1103".into())],
            out_id: Some("notice-1".into()),
        }
    }

    fn message(n: usize) -> RobotMessage {
        RobotMessage::new(format!("SLA 告警 #{n}"), format!("### 第 {n} 条\n- 3 单超时未发货"))
    }

    fn is_limited(result: &SendResult) -> bool {
        matches!(result, SendResult::RateLimited { .. })
    }

    #[tokio::test]
    async fn dingtalk_sends_signed_markdown_and_is_throttled_after_20_a_minute() {
        let fake = fake().await;
        let robot = ding(&fake, DING_SECRET);
        let mut first = message(0);
        first.at_mobiles.push(Phone::parse("13812345678").unwrap());
        assert_eq!(robot.send(&first).await, SendResult::Sent { receipt: None });
        for n in 1..20 {
            assert_eq!(robot.send(&message(n)).await, SendResult::Sent { receipt: None }, "message {n}");
        }
        let over = robot.send(&message(20)).await;
        assert_eq!(over, SendResult::RateLimited { retry_after: Duration::from_secs(600) });
        // DingTalk keeps the robot throttled for 10 minutes, not just until the minute is over.
        fake.advance(chrono::Duration::minutes(2));
        assert!(is_limited(&robot.send(&message(21)).await));
        fake.advance(chrono::Duration::minutes(9));
        assert_eq!(robot.send(&message(22)).await, SendResult::Sent { receipt: None });

        let delivered = fake.delivered("warehouse");
        assert_eq!(delivered.len(), 21);
        assert_eq!(delivered[0].title, "SLA 告警 #0");
        assert_eq!(delivered[0].at, vec!["138****5678".to_owned()]);
        assert!(delivered[0].text.ends_with("@13812345678"), "{}", delivered[0].text);
        assert_eq!(fake.received().iter().filter(|r| r.outcome == "410100").count(), 2);
        assert!(fake.transcript().contains("[DingTalk → warehouse] SLA 告警 #0 (@ 138****5678)"));
    }

    #[tokio::test]
    async fn dingtalk_refuses_a_wrong_secret_and_a_stale_timestamp() {
        let fake = fake().await;
        let wrong = ding(&fake, "SECnot-the-right-one");
        let result = wrong.send(&message(1)).await;
        assert_eq!(result, SendResult::Rejected { code: "310000".into(), message: "sign not match".into() });
        assert!(!result.is_retryable());

        // A sender whose clock is two hours behind DingTalk's.
        let behind = Arc::new(FixedClock::new(fake.clock().now() - chrono::Duration::hours(2)));
        let late = DingTalkRobot::from_token(config(&fake).with_clock(behind), DING_TOKEN, DING_SECRET).unwrap();
        assert!(matches!(late.send(&message(2)).await, SendResult::Rejected { code, .. } if code == "310000"));
        assert!(fake.delivered("warehouse").is_empty());
    }

    #[tokio::test]
    async fn wecom_sends_markdown_is_limited_to_20_a_minute_and_refuses_an_unknown_key() {
        let fake = fake().await;
        let robot = wecom(&fake);
        let mut long = RobotMessage::new("月报", "驿站签收异常 ".repeat(1_000));
        long.at_user_ids.push("zhangsan".into());
        assert_eq!(robot.send(&long).await, SendResult::Sent { receipt: None });
        for n in 1..20 {
            assert_eq!(robot.send(&message(n)).await, SendResult::Sent { receipt: None });
        }
        assert_eq!(robot.send(&message(20)).await, SendResult::RateLimited { retry_after: Duration::from_secs(60) });
        fake.advance(chrono::Duration::seconds(61));
        assert_eq!(robot.send(&message(21)).await, SendResult::Sent { receipt: None });

        let first = &fake.delivered("finance")[0];
        assert_eq!(first.title, "月报");
        assert_eq!(first.at, vec!["zhangsan".to_owned()]);
        assert!(first.text.contains("已截断"));

        let unknown = WeComRobot::from_key(config(&fake), "00000000-0000-0000-0000-000000000000").unwrap();
        assert!(matches!(unknown.send(&message(1)).await, SendResult::Rejected { code, .. } if code == "93000"));
    }

    #[tokio::test]
    async fn aliyun_sends_with_v3_signature_and_limits_each_number() {
        let fake = fake().await;
        fake.set_aliyun_limits(SmsLimits::ALIYUN_CODE);
        let client = aliyun(&fake, "aliyun-secret");
        let sent = client.send(&notice("13812345678")).await;
        assert!(matches!(&sent, SendResult::Sent { receipt: Some(id) } if id.ends_with("^0")), "{sent:?}");
        let again = client.send(&notice("13812345678")).await;
        assert_eq!(again, SendResult::RateLimited { retry_after: Duration::from_secs(60) });
        // Another number is not held back by the first one's limit.
        assert!(matches!(client.send(&notice("+8613900001111")).await, SendResult::Sent { .. }));
        fake.advance(chrono::Duration::seconds(61));
        assert!(matches!(client.send(&notice("13812345678")).await, SendResult::Sent { .. }));

        let delivered = fake.delivered("138****5678");
        assert_eq!(delivered.len(), 2);
        assert_eq!(delivered[0].title, "SMS_465000123");
        assert!(delivered[0].text.contains("station=菜鸟驿站(科技园店)"), "{}", delivered[0].text);
    }

    #[tokio::test]
    async fn aliyun_refuses_a_wrong_secret_without_leaking_the_number() {
        let fake = fake().await;
        let result = aliyun(&fake, "not-the-secret").send(&notice("13812345678")).await;
        let SendResult::Rejected { code, message } = &result else { panic!("{result:?}") };
        assert_eq!(code, "SignatureDoesNotMatch");
        assert!(message.contains("138****5678") && !message.contains("13812345678"), "{message}");
        assert!(!format!("{result:?}").contains("not-the-secret"));
        assert!(fake.delivered("138****5678").is_empty());
    }

    #[tokio::test]
    async fn tencent_sends_with_tc3_signature_and_limits_each_number() {
        let fake = fake().await;
        let client = tencent(&fake, "tencent-secret");
        let sent = client.send(&notice("13812345678")).await;
        assert!(matches!(&sent, SendResult::Sent { receipt: Some(_) }), "{sent:?}");
        let again = client.send(&notice("13812345678")).await;
        assert_eq!(again, SendResult::RateLimited { retry_after: Duration::from_secs(30) });
        fake.advance(chrono::Duration::seconds(31));
        assert!(matches!(client.send(&notice("13812345678")).await, SendResult::Sent { .. }));

        let delivered = fake.delivered("138****5678");
        assert_eq!(delivered.len(), 2);
        assert_eq!(delivered[0].text, "菜鸟驿站(科技园店), 8-2-1103");
    }

    #[tokio::test]
    async fn tencent_refuses_a_wrong_key_and_a_stale_timestamp() {
        let fake = fake().await;
        let wrong = tencent(&fake, "not-the-key").send(&notice("13812345678")).await;
        assert!(
            matches!(&wrong, SendResult::Rejected { code, .. } if code == "AuthFailure.SignatureFailure"),
            "{wrong:?}"
        );
        let behind = Arc::new(FixedClock::new(fake.clock().now() - chrono::Duration::minutes(6)));
        let late = TencentSms::new(
            config(&fake).with_clock(behind),
            "AKIDfake",
            "tencent-secret",
            "1400006666",
            "ap-guangzhou",
        )
        .unwrap();
        let stale = late.send(&notice("13812345678")).await;
        assert!(
            matches!(&stale, SendResult::Rejected { code, .. } if code == "AuthFailure.SignatureExpire"),
            "{stale:?}"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_unavailable_and_the_next_request_goes_through() {
        let fake = fake().await;
        for provider in [Provider::DingTalk, Provider::WeCom, Provider::Aliyun, Provider::Tencent] {
            fake.fail_next(provider, 1, Fault::Status(503));
        }
        let unavailable = SendResult::Unavailable("HTTP 503".into());
        assert_eq!(ding(&fake, DING_SECRET).send(&message(1)).await, unavailable);
        assert_eq!(wecom(&fake).send(&message(1)).await, unavailable);
        assert_eq!(aliyun(&fake, "aliyun-secret").send(&notice("13812345678")).await, unavailable);
        assert_eq!(tencent(&fake, "tencent-secret").send(&notice("13812345678")).await, unavailable);
        assert!(unavailable.is_retryable());

        assert!(matches!(ding(&fake, DING_SECRET).send(&message(2)).await, SendResult::Sent { .. }));
        assert!(matches!(wecom(&fake).send(&message(2)).await, SendResult::Sent { .. }));
        assert!(matches!(aliyun(&fake, "aliyun-secret").send(&notice("13812345678")).await, SendResult::Sent { .. }));
        assert!(matches!(tencent(&fake, "tencent-secret").send(&notice("13812345678")).await, SendResult::Sent { .. }));
    }

    #[tokio::test]
    async fn injected_provider_codes_are_classified() {
        let fake = fake().await;
        fake.fail_next(Provider::DingTalk, 1, Fault::Code("-1".into()));
        fake.fail_next(Provider::WeCom, 1, Fault::Code("93004".into()));
        fake.fail_next(Provider::Aliyun, 1, Fault::Code("isv.MOBILE_NUMBER_ILLEGAL".into()));
        fake.fail_next(Provider::Aliyun, 1, Fault::Code("isp.SYSTEM_ERROR".into()));
        fake.fail_next(Provider::Tencent, 1, Fault::Code("InternalError.Timeout".into()));
        fake.fail_next(Provider::Tencent, 1, Fault::Code("FailedOperation.TemplateIncorrectOrUnapproved".into()));
        assert!(matches!(ding(&fake, DING_SECRET).send(&message(1)).await, SendResult::Unavailable(_)));
        assert!(matches!(wecom(&fake).send(&message(1)).await, SendResult::Rejected { code, .. } if code == "93004"));
        let client = aliyun(&fake, "aliyun-secret");
        let illegal = client.send(&notice("13812345678")).await;
        assert!(matches!(&illegal, SendResult::Rejected { code, .. } if code == "isv.MOBILE_NUMBER_ILLEGAL"));
        assert!(matches!(client.send(&notice("13812345678")).await, SendResult::Unavailable(_)));
        let client = tencent(&fake, "tencent-secret");
        assert!(matches!(client.send(&notice("13812345678")).await, SendResult::Unavailable(_)));
        let unapproved = client.send(&notice("13812345678")).await;
        assert!(matches!(&unapproved, SendResult::Rejected { code, .. } if code.starts_with("FailedOperation")));
    }

    #[tokio::test]
    async fn a_provider_slower_than_the_timeout_is_unavailable() {
        let fake = fake().await;
        fake.fail_next(Provider::WeCom, 1, Fault::Delay(Duration::from_secs(3)));
        let robot = WeComRobot::from_key(config(&fake).with_timeout(Duration::from_millis(200)), WX_KEY).unwrap();
        assert_eq!(robot.send(&message(1)).await, SendResult::Unavailable("timeout".into()));
    }

    #[tokio::test]
    async fn the_fake_refuses_a_replayed_aliyun_nonce_and_an_unsigned_sign() {
        // Independent of the adapters: a request signed by hand, sent twice.
        let fake = fake().await;
        let date = fake.clock().now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let host = fake.addr.to_string();
        let query = "PhoneNumbers=13812345678&SignName=s&TemplateCode=t";
        let empty = sha256_hex(b"");
        let headers = [
            ("host", host.as_str()),
            ("x-acs-action", "SendSms"),
            ("x-acs-content-sha256", empty.as_str()),
            ("x-acs-date", date.as_str()),
            ("x-acs-signature-nonce", "n-1"),
            ("x-acs-version", "2017-05-25"),
        ];
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
        let canonical = format!("POST\n/\n{query}\n{canonical_headers}\n{signed}\n{empty}");
        let sts = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
        let signature = hex::encode(hmac256(b"aliyun-secret", sts.as_bytes()));
        let auth = format!("ACS3-HMAC-SHA256 Credential=LTAIfake,SignedHeaders={signed},Signature={signature}");
        let client = reqwest::Client::new();
        let send = || {
            let mut request = client.post(format!("{}/?{query}", fake.base_url())).header("authorization", &auth);
            for (name, value) in headers.iter().skip(1) {
                request = request.header(*name, *value);
            }
            request.send()
        };
        let first: Value = send().await.unwrap().json().await.unwrap();
        assert_eq!(first["Code"], "OK");
        let replay: Value = send().await.unwrap().json().await.unwrap();
        assert_eq!(replay["Code"], "SignatureNonceUsed");

        // DingTalk: a `sign` sent without URL-encoding loses its `+` and fails.
        let ts = fake.clock().now().timestamp_millis();
        let sign = STANDARD.encode(hmac256(DING_SECRET.as_bytes(), format!("{ts}\n{DING_SECRET}").as_bytes()));
        assert!(sign.contains('+'), "{sign}");
        let url = format!("{}/robot/send?access_token={DING_TOKEN}&timestamp={ts}&sign={sign}", fake.base_url());
        let body = json!({"msgtype": "text", "text": {"content": "x"}});
        let raw: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(raw["errcode"], 310_000);
    }
}
