//! Outbound notification channels: DingTalk custom robots ([`DingTalkRobot`]), WeCom group
//! robots ([`WeComRobot`]), Aliyun SMS ([`AliyunSms`]) and Tencent Cloud SMS ([`TencentSms`]).
//!
//! Each channel is one module with the same shape: a pure signing function (known-answer tests
//! beside it, from the provider's own documentation where one is published), the body it sends,
//! and a client over reqwest whose every answer becomes one [`SendResult`]:
//!
//! - [`SendResult::Sent`] — the provider took the message;
//! - [`SendResult::RateLimited`] — try again after `retry_after`, not before;
//! - [`SendResult::Rejected`] — permanent (bad key, bad signature, bad number, unapproved
//!   template): retrying cannot help, a person must act;
//! - [`SendResult::Unavailable`] — transient (timeout, connection refused, 5xx, provider "system
//!   busy"): retry with backoff.
//!
//! Personal data and credentials never reach a `Debug` line, an error or a result: phone numbers
//! are [`Phone`] (Debug prints `138****5678`), keys and webhook tokens are [`Secret`] (Debug prints
//! `***`), and a provider's message is scrubbed before it is kept (Aliyun echoes its string to
//! sign, phone number included, in `SignatureDoesNotMatch`: dromara/SMS4J issue 34).
//!
//! The domain's ports over these clients: [`robots::RobotDirectory`] (robots by name, from their
//! SSM parameters) and [`sms::SmsGateway`] (the configured SMS provider and its templates).
//!
//! Where every fact comes from is in `docs/notify-channels.md`.

pub mod aliyun_sms;
pub mod dingtalk;
pub mod robots;
pub mod sms;
pub mod tencent_sms;
pub mod wecom;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};

use domain::model::privacy::{mask_digit_runs, mask_phone};
use domain::ports::clock::{Clock, SystemClock};

pub use aliyun_sms::AliyunSms;
pub use dingtalk::DingTalkRobot;
pub use tencent_sms::TencentSms;
pub use wecom::WeComRobot;

/// The per-request timeout unless configured otherwise. Aliyun recommends at least 1 s for
/// SendSms (help.aliyun.com/document_detail/55284.html, 注意事项).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What replaces the end of a markdown text cut to a provider's length limit.
pub const TRUNCATION_MARKER: &str = "\n\n…（内容过长，已截断）";

/// The longest provider message kept in a [`SendResult`], in characters.
const MESSAGE_CHARS: usize = 200;

/// A credential (robot access token or key, signing secret, access key secret). `Debug` prints
/// `***`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the code that signs or sends with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A mobile number, parsed once at the boundary. `Debug` masks it (`138****5678`); there is no
/// `Display`, so it cannot end up in a log line by accident.
///
/// Accepted forms: a mainland number of 11 digits starting with `1`, bare or prefixed with
/// `+86`, `0086` or `86` (the forms Aliyun's SendSms accepts: help.aliyun.com/document_detail/
/// 55284.html, PhoneNumbers), or an E.164 number `+<country><number>` of 8 to 15 digits
/// (Tencent's PhoneNumberSet: cloud.tencent.com/document/api/382/55981). Spaces and dashes are
/// ignored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    /// E.164 digits without the `+`, e.g. `8613812345678`.
    digits: String,
}

impl Phone {
    /// Parses a mobile number, or says it is malformed (without repeating it).
    pub fn parse(raw: &str) -> Result<Self, NotifyError> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let (plus, rest) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_str()),
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NotifyError::BadPhone);
        }
        let mainland = |national: &str| national.len() == 11 && national.starts_with('1');
        let national = rest.strip_prefix("0086").or_else(|| rest.strip_prefix("86")).unwrap_or(rest);
        if (!plus && mainland(rest)) || (national.len() == 11 && rest.len() > 11 && mainland(national)) {
            return Ok(Self { digits: format!("86{national}") });
        }
        if plus && (8..=15).contains(&rest.len()) && !rest.starts_with('0') && !rest.starts_with("86") {
            return Ok(Self { digits: rest.to_owned() });
        }
        Err(NotifyError::BadPhone)
    }

    /// A Chinese mainland number (`+86`).
    pub fn is_mainland(&self) -> bool {
        self.digits.starts_with("86")
    }

    /// The E.164 form, `+8613812345678` (what Tencent's PhoneNumberSet takes).
    pub fn e164(&self) -> String {
        format!("+{}", self.digits)
    }

    /// The form Aliyun's PhoneNumbers takes: the 11 national digits for the mainland, country
    /// code and number (no `+`) elsewhere.
    pub fn aliyun_form(&self) -> &str {
        if self.is_mainland() { &self.digits[2..] } else { &self.digits }
    }

    /// The number masked for logs and errors: first three and last four digits of the national
    /// number (`138****5678`), as ARCHITECTURE.md asks.
    pub fn masked(&self) -> String {
        mask_phone(if self.is_mainland() { &self.digits[2..] } else { &self.digits })
    }

    /// The number as the provider will see it in a message, for scrubbing echoes.
    fn forms(&self) -> [&str; 2] {
        [&self.digits, self.aliyun_form()]
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A message for a group robot (DingTalk or WeCom), sent as markdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RobotMessage {
    /// The title: DingTalk shows it in the conversation list; WeCom, which has no title field,
    /// gets it as a bold first line.
    pub title: String,
    /// The markdown body. Cut to the provider's limit with [`TRUNCATION_MARKER`] if longer.
    pub markdown: String,
    /// People to `@` by mobile number (DingTalk only: WeCom's markdown cannot `@` by number).
    pub at_mobiles: Vec<Phone>,
    /// People to `@` by user id (DingTalk `atUserIds`; WeCom `<@userid>` in the content).
    pub at_user_ids: Vec<String>,
    /// `@` everyone in the group (DingTalk only).
    pub at_all: bool,
}

impl RobotMessage {
    /// A message with a title and a markdown body, `@`-ing nobody.
    pub fn new(title: impl Into<String>, markdown: impl Into<String>) -> Self {
        Self { title: title.into(), markdown: markdown.into(), ..Self::default() }
    }
}

/// A templated SMS to one number (Aliyun SendSms, Tencent SendSms).
#[derive(Clone, PartialEq, Eq)]
pub struct SmsRequest {
    /// Who receives it.
    pub phone: Phone,
    /// The approved signature (签名), e.g. `阿里云` / `腾讯云`.
    pub sign_name: String,
    /// The approved template: Aliyun `TemplateCode` (`SMS_153055065`), Tencent `TemplateId`.
    pub template_code: String,
    /// The template's variables in template order. Aliyun takes them by name (a JSON object);
    /// Tencent by position (an array of the values, in this order).
    pub params: Vec<(String, String)>,
    /// The caller's own id, echoed back by the provider (Aliyun `OutId`, Tencent
    /// `SessionContext`): the notice id, so receipts can be matched.
    pub out_id: Option<String>,
}

impl fmt::Debug for SmsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Template values can be personal (a pickup code, a name): only their names are shown.
        let names: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SmsRequest")
            .field("phone", &self.phone)
            .field("sign_name", &self.sign_name)
            .field("template_code", &self.template_code)
            .field("params", &names)
            .field("out_id", &self.out_id)
            .finish()
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The provider accepted the message.
    Sent {
        /// The provider's id for it, where it gives one (Aliyun `BizId`, Tencent `SerialNo`),
        /// to match delivery receipts.
        receipt: Option<String>,
    },
    /// The provider's rate limit: send again after this long, not sooner.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Permanent: retrying the same request cannot succeed (bad key, bad signature, bad number,
    /// template not approved, robot removed). Never retried.
    Rejected {
        /// The provider's code (`310000`, `93000`, `isv.MOBILE_NUMBER_ILLEGAL`,
        /// `AuthFailure.SignatureFailure`, or `HTTP 404`).
        code: String,
        /// The provider's message, scrubbed of numbers and credentials and cut to 200 chars.
        message: String,
    },
    /// Transient: the provider could not be reached or said it is busy. Retry with backoff.
    Unavailable(String),
}

impl SendResult {
    /// Whether sending the same message again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

/// Why a channel could not be configured. The texts never repeat the value that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The base URL does not parse.
    #[error("base URL is not a URL")]
    BadUrl,
    /// Plain HTTP to anything but loopback would send credentials in clear text.
    #[error("base URL must be https (plain http only to loopback)")]
    NotHttps,
    /// The robot's webhook URL is not the provider's (what is wrong is said, not the URL).
    #[error("robot webhook URL is malformed: {0}")]
    BadWebhook(&'static str),
    /// A credential is missing or cannot be the provider's.
    #[error("credential is malformed: {0}")]
    BadCredential(&'static str),
    /// A phone number is not a mainland 11-digit number nor E.164.
    #[error("phone number is malformed")]
    BadPhone,
}

/// How a channel reaches its provider.
#[derive(Clone)]
pub struct ChannelConfig {
    /// The provider's origin (its real one by default; the loopback fake in tests).
    pub base_url: Url,
    /// Time allowed for each request, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// The source of "now" for timestamps.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ChannelConfig {
    /// A configuration for `base_url` (`https`, or `http` to a loopback host) with the default
    /// timeout and the system clock.
    pub fn new(base_url: &str) -> Result<Self, NotifyError> {
        let base_url = Url::parse(base_url).map_err(|_| NotifyError::BadUrl)?;
        let loopback = matches!(base_url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match base_url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(NotifyError::NotHttps),
        }
        if base_url.host_str().is_none() {
            return Err(NotifyError::BadUrl);
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

    /// `host` or `host:port` as the HTTP `Host` header will carry it (signed by Aliyun and
    /// Tencent).
    fn host(&self) -> String {
        let host = self.base_url.host_str().unwrap_or_default();
        match self.base_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// `path` on the base URL (the base's own path is replaced).
    fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        url.set_path(path);
        url.set_query(None);
        url
    }
}

/// The HTTP side shared by the four clients.
#[derive(Clone)]
struct Http {
    /// Built on first use: loading the TLS roots costs cold-start time a run that sends nothing
    /// never needs (the same choice as `platform::Http`).
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    timeout: Duration,
}

/// What came back, before the provider's envelope is read.
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Http {
    fn new(timeout: Duration) -> Self {
        Self { client: Arc::default(), timeout }
    }

    fn client(&self) -> Result<&reqwest::Client, SendResult> {
        let built = self.client.get_or_init(|| {
            reqwest::Client::builder()
                // A redirect would carry the robot's token (in the query) to another host.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.timeout)
                .user_agent(concat!("orderhub/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("http client: {}", e.without_url()))
        });
        built.as_ref().map_err(|e| SendResult::Unavailable(e.clone()))
    }

    /// Sends a request and reads the whole answer within the timeout.
    async fn send(&self, request: impl FnOnce(&reqwest::Client) -> RequestBuilder) -> Result<Reply, SendResult> {
        let request = request(self.client()?);
        let response = request.timeout(self.timeout).send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(Reply { status, retry_after, body })
    }
}

impl Reply {
    /// The outcome the HTTP status alone decides: 429 is a rate limit, 5xx is transient, other
    /// non-2xx answers are permanent unless the provider's body says more (`None` then).
    fn status_outcome(&self) -> Option<SendResult> {
        let status = self.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Some(SendResult::RateLimited { retry_after: self.retry_after.unwrap_or(Duration::from_secs(60)) });
        }
        if status.is_server_error() {
            return Some(SendResult::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        None
    }

    /// The body as JSON, or the outcome of an answer that is not JSON.
    fn json(&self) -> Result<serde_json::Value, SendResult> {
        if let Some(outcome) = self.status_outcome() {
            return Err(outcome);
        }
        serde_json::from_slice(&self.body).map_err(|_| {
            if self.status.is_success() {
                // A 200 that is not the provider's JSON: a proxy or captive portal, not a verdict.
                SendResult::Unavailable("answer is not JSON".to_owned())
            } else {
                SendResult::Rejected { code: format!("HTTP {}", self.status.as_u16()), message: String::new() }
            }
        })
    }
}

/// A transport failure, without the URL (the robot URLs carry their token).
fn transport_error(error: reqwest::Error) -> SendResult {
    if error.is_timeout() {
        return SendResult::Unavailable("timeout".to_owned());
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
    SendResult::Unavailable(format!("{kind}: {}", error.without_url()))
}

/// `Retry-After` in seconds (no provider here sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok().map(Duration::from_secs)
}

/// A provider's message made safe to keep: the given credentials and numbers replaced, any
/// other run of 7 or more digits masked (a phone number echoed in another form), control
/// characters dropped, at most [`MESSAGE_CHARS`] characters.
fn clean_message(message: &str, secrets: &[&str], phones: &[&Phone]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "***");
    }
    for phone in phones {
        for form in phone.forms() {
            out = out.replace(form, &phone.masked());
        }
    }
    let masked = mask_digit_runs(&out);
    masked.chars().filter(|c| !c.is_control()).take(MESSAGE_CHARS).collect::<String>().trim().to_owned()
}

/// `text` cut so that, with [`TRUNCATION_MARKER`] appended, it fits in `max_bytes` of UTF-8;
/// unchanged if it already fits. The cut is on a char boundary.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let room = max_bytes.saturating_sub(TRUNCATION_MARKER.len());
    let mut cut = room.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + TRUNCATION_MARKER.len());
    out.push_str(&text[..cut]);
    if TRUNCATION_MARKER.len() <= max_bytes {
        out.push_str(TRUNCATION_MARKER);
    }
    Cow::Owned(out)
}

/// `text` cut so that, with [`TRUNCATION_MARKER`] appended, it has at most `max_chars`
/// characters; unchanged if it already fits.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    if text.chars().count() <= max_chars {
        return Cow::Borrowed(text);
    }
    let marker_chars = TRUNCATION_MARKER.chars().count();
    let keep = max_chars.saturating_sub(marker_chars);
    let mut out: String = text.chars().take(keep).collect();
    if marker_chars <= max_chars {
        out.push_str(TRUNCATION_MARKER);
    }
    Cow::Owned(out)
}

/// Percent-encoding as RFC 3986 (what Aliyun's V3 canonical query and Tencent's canonical
/// query use): `A-Z a-z 0-9 - _ . ~` kept, every other byte of the UTF-8 as `%XY` (upper-case
/// hex), space as `%20`, never `+` (help.aliyun.com/document_detail/2593177.html).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// HMAC-SHA256 under `key` of `message`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (long ones are hashed), so this never happens.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_parse_in_every_documented_form_and_never_print() {
        let forms = ["13812345678", "+8613812345678", "008613812345678", "8613812345678", "138 1234 5678"];
        for raw in forms {
            let phone = Phone::parse(raw).unwrap();
            assert_eq!(phone.e164(), "+8613812345678", "{raw}");
            assert_eq!(phone.aliyun_form(), "13812345678");
            assert_eq!(format!("{phone:?}"), "138****5678");
        }
        let hk = Phone::parse("+85261234567").unwrap();
        assert!(!hk.is_mainland());
        assert_eq!(hk.aliyun_form(), "85261234567");
        assert_eq!(format!("{hk:?}"), "852****4567");
        for bad in ["", "12345", "23812345678", "+86 2381234567", "138123456789", "abc", "+0123456789"] {
            assert_eq!(Phone::parse(bad), Err(NotifyError::BadPhone), "{bad}");
        }
    }

    #[test]
    fn secrets_and_sms_params_never_print() {
        assert_eq!(format!("{:?}", Secret::new("SECabc")), "***");
        let sms = SmsRequest {
            phone: Phone::parse("13812345678").unwrap(),
            sign_name: "阿里云".into(),
            template_code: "SMS_1".into(),
            params: vec![("code".into(), "8837".into())],
            out_id: Some("notice-1".into()),
        };
        let printed = format!("{sms:?}");
        assert!(printed.contains("138****5678") && printed.contains("code"), "{printed}");
        assert!(!printed.contains("13812345678") && !printed.contains("8837"), "{printed}");
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_the_limit() {
        let text = "驿".repeat(3000); // 9000 bytes
        let cut = truncate_bytes(&text, 4096);
        assert!(cut.len() <= 4096, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert_eq!(truncate_bytes("short", 4096), "short");
        let cut = truncate_chars(&text, 100);
        assert_eq!(cut.chars().count(), 100);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert_eq!(truncate_chars("short", 100), "short");
        // A limit smaller than the marker still never panics nor overflows.
        assert!(truncate_bytes(&text, 5).len() <= 5);
        assert!(truncate_chars(&text, 3).chars().count() <= 3);
    }

    #[test]
    fn provider_messages_are_scrubbed() {
        let phone = Phone::parse("13812345678").unwrap();
        let echoed = "sign not match for LTAIkey123 PhoneNumbers%3D13812345678 or +8613812345678, other 15912345678\n";
        let clean = clean_message(echoed, &["LTAIkey123"], &[&phone]);
        assert_eq!(clean, "sign not match for *** PhoneNumbers%3D138****5678 or +138****5678, other 159****5678");
        assert_eq!(clean_message(&"长".repeat(500), &[], &[]).chars().count(), MESSAGE_CHARS);
    }

    #[test]
    fn percent_encoding_is_rfc_3986() {
        assert_eq!(percent_encode("a b*c~d+é/"), "a%20b%2Ac~d%2B%C3%A9%2F");
        assert_eq!(percent_encode("{\"code\":\"1\"}"), "%7B%22code%22%3A%221%22%7D");
    }

    #[test]
    fn base_urls_must_be_https_or_loopback() {
        assert!(ChannelConfig::new("https://oapi.dingtalk.com").is_ok());
        assert!(ChannelConfig::new("http://127.0.0.1:9").is_ok());
        assert_eq!(ChannelConfig::new("http://oapi.dingtalk.com").err(), Some(NotifyError::NotHttps));
        assert_eq!(ChannelConfig::new("nonsense").err(), Some(NotifyError::BadUrl));
        let config = ChannelConfig::new("http://127.0.0.1:8080/ignored").unwrap();
        assert_eq!(config.host(), "127.0.0.1:8080");
        assert_eq!(config.url("/robot/send").as_str(), "http://127.0.0.1:8080/robot/send");
        assert_eq!(ChannelConfig::new("https://sms.tencentcloudapi.com").unwrap().host(), "sms.tencentcloudapi.com");
    }
}
