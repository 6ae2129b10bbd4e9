//! Aliyun SMS (阿里云短信服务) SendSms, signed with the V3 scheme `ACS3-HMAC-SHA256`.
//!
//! Why V3: Aliyun's request-signing page says "If you use signature method V2, switch to V3"
//! (alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature; the same
//! in help.aliyun.com/document_detail/2593177.html: "如果您当前使用的是V2版本签名…可以直接替换为
//! V3版本签名"). The older RPC scheme (HMAC-SHA1 over `POST&%2F&…`) is not implemented.
//!
//! V3, as that page defines it:
//! - `CanonicalRequest = method \n uri \n canonical_query \n canonical_headers \n signed_headers
//!   \n hex(sha256(body))`; the query's names and values RFC 3986-encoded (space `%20`, `*`
//!   `%2A`, `~` kept), sorted by name, `k=v` joined by `&`; every common header but
//!   `Authorization` signed (`host`, `content-type` if sent, the `x-acs-*`), lower-case names,
//!   trimmed values, sorted, each `name:value\n`; `signed_headers` their names joined by `;`.
//! - `StringToSign = "ACS3-HMAC-SHA256\n" + hex(sha256(CanonicalRequest))`,
//!   `Signature = hex(HMAC-SHA256(AccessKeySecret, StringToSign))`, sent as
//!   `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=…,Signature=…`.
//! - Headers `x-acs-action`, `x-acs-version`, `x-acs-date` (ISO 8601 UTC, within 15 minutes of
//!   Aliyun's clock), `x-acs-signature-nonce` (unique per request), `x-acs-content-sha256`.
//! - The page's worked example (RunInstances on ecs.cn-shanghai, secret `YourAccessKeySecret`,
//!   date `2023-10-26T10:22:32Z`, nonce `3156853299f313e23d1673dc12e1703d`) gives
//!   `06563a9e…83c0`; its header table pairs nonce `d410180a…` and `09:01:01Z` with the same
//!   signature, which does not verify — the ROA page (help.aliyun.com/zh/model-studio/
//!   roa-style-request-body-signature-mechanism) pairs them with `e521358f…4804`, which does.
//!   Both are the known-answer tests below.
//!
//! SendSms (help.aliyun.com/document_detail/55284.html): endpoint `dysmsapi.aliyuncs.com`,
//! version `2017-05-25`, parameters PhoneNumbers, SignName, TemplateCode, TemplateParam (a JSON
//! object string), OutId; the answer `{"Code":"OK","Message":"OK","BizId","RequestId"}`. The
//! parameters are sent in the query string, as the V3 example sends RunInstances's (that
//! SendSms's metadata puts them `in: query` is **unconfirmed**). No idempotence: a timeout may
//! have sent the message (same page, 注意事项), so the caller keeps at-most-once by notice id.
//!
//! Codes (help.aliyun.com/document_detail/101346.html): `isv.BUSINESS_LIMIT_CONTROL` is the
//! per-number limit — for notices 50 a day per signature, template and number, for verification
//! codes 1 a minute, 5 an hour, 10 a day (help.aliyun.com/document_detail/2881383.html) — and its
//! message names the window (`触发分钟级流控Permits:1`, `触发小时级流控Permits:5`,
//! `触发天级流控Permits:10`: blog.csdn.net/weixin_38091174/article/details/85129475,
//! /weixin_39646711/article/details/104970198); `isv.DAY_LIMIT_CONTROL` the account's daily cap
//! (101346); `isv.OUT_OF_SERVICE`, `isp.RAM_PERMISSION_DENY` (101346) and
//! `isv.MOBILE_NUMBER_ILLEGAL`, `isv.SMS_SIGNATURE_ILLEGAL`, `isv.SMS_TEMPLATE_ILLEGAL` (public
//! clients' code tables agree) are permanent; `isp.SYSTEM_ERROR` 系统错误 (same tables) is
//! transient. Gateway errors come as `{"Code":"SignatureDoesNotMatch",
//! "Message","RequestId","HostId","Recommend"}` (dromara/SMS4J issue 34) with HTTP 400
//! (aliyun/aliyun-openapi-python-sdk issue 41 shows a 400 for a signing error).

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{
    ChannelConfig, Http, NotifyError, Secret, SendResult, SmsRequest, clean_message, hmac_sha256, percent_encode,
    sha256_hex,
};

/// Aliyun SMS's endpoint.
pub const ALIYUN_SMS_BASE_URL: &str = "https://dysmsapi.aliyuncs.com";
/// The SendSms API version.
pub const ALIYUN_SMS_VERSION: &str = "2017-05-25";
/// The V3 signature algorithm.
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// How far `x-acs-date` may be from Aliyun's clock.
pub const ACS3_DATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What V3 signing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Signature {
    /// `hex(sha256(CanonicalRequest))`, the last line of the string to sign.
    pub hashed_canonical_request: String,
    /// The signed header names, `;`-joined.
    pub signed_headers: String,
    /// `hex(HMAC-SHA256(secret, StringToSign))`.
    pub signature: String,
}

impl Acs3Signature {
    /// The `Authorization` header.
    pub fn authorization(&self, access_key_id: &str) -> String {
        format!(
            "{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={}",
            self.signed_headers, self.signature
        )
    }
}

/// The canonical query string: names and values RFC 3986-encoded, sorted by encoded name.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(name, value)| (percent_encode(name), percent_encode(value))).collect();
    encoded.sort();
    encoded.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&")
}

/// Signs a request with V3. `headers` are the headers to sign (`host`, `x-acs-*`, and
/// `content-type` if sent), any case; `canonical_query` as [`canonical_query`] builds it.
pub fn acs3_sign(
    secret: &str,
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Acs3Signature {
    let mut headers: Vec<(String, &str)> =
        headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.trim())).collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let signed_headers = headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request =
        format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}", sha256_hex(body));
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!("{ACS3_ALGORITHM}\n{hashed_canonical_request}");
    let signature = hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()));
    Acs3Signature { hashed_canonical_request, signed_headers, signature }
}

/// The SendSms query parameters for `sms`.
pub fn send_sms_params(sms: &SmsRequest) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("PhoneNumbers", sms.phone.aliyun_form().to_owned()),
        ("SignName", sms.sign_name.clone()),
        ("TemplateCode", sms.template_code.clone()),
    ];
    if !sms.params.is_empty() {
        let object: Map<String, Value> =
            sms.params.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect();
        params.push(("TemplateParam", Value::Object(object).to_string()));
    }
    if let Some(out_id) = &sms.out_id {
        params.push(("OutId", out_id.clone()));
    }
    params
}

/// An Aliyun SMS client for one AccessKey.
#[derive(Clone)]
pub struct AliyunSms {
    config: ChannelConfig,
    http: Http,
    access_key_id: String,
    secret: Secret,
    nonces: Arc<AtomicU64>,
    random: RandomState,
}

impl std::fmt::Debug for AliyunSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliyunSms").field("config", &self.config).field("secret", &self.secret).finish_non_exhaustive()
    }
}

impl AliyunSms {
    /// A client for the AccessKey `access_key_id` / `access_key_secret`.
    pub fn new(config: ChannelConfig, access_key_id: &str, access_key_secret: &str) -> Result<Self, NotifyError> {
        let id = access_key_id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NotifyError::BadCredential("Aliyun AccessKeyId is missing or not alphanumeric"));
        }
        let secret = access_key_secret.trim();
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NotifyError::BadCredential("Aliyun AccessKeySecret is missing or malformed"));
        }
        let http = Http::new(config.timeout);
        Ok(Self {
            config,
            http,
            access_key_id: id.to_owned(),
            secret: Secret::new(secret),
            nonces: Arc::default(),
            random: RandomState::new(),
        })
    }

    /// A nonce never used before by this process: a per-process random part and a counter.
    fn nonce(&self) -> String {
        let count = self.nonces.fetch_add(1, Ordering::Relaxed);
        let nanos = self.config.clock.now().timestamp_nanos_opt().unwrap_or_default();
        format!("{:016x}{:016x}", self.random.hash_one((count, nanos)), count)
    }

    /// Sends one templated SMS.
    pub async fn send(&self, sms: &SmsRequest) -> SendResult {
        let params = send_sms_params(sms);
        let pairs: Vec<(&str, &str)> = params.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let query = canonical_query(&pairs);
        let host = self.config.host();
        let date = self.config.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = self.nonce();
        let content_sha256 = sha256_hex(b"");
        let headers = [
            ("host", host.as_str()),
            ("x-acs-action", "SendSms"),
            ("x-acs-content-sha256", content_sha256.as_str()),
            ("x-acs-date", date.as_str()),
            ("x-acs-signature-nonce", nonce.as_str()),
            ("x-acs-version", ALIYUN_SMS_VERSION),
        ];
        let signature = acs3_sign(self.secret.expose(), "POST", "/", &query, &headers, b"");
        let mut url = self.config.url("/");
        url.set_query(Some(&query));
        let authorization = signature.authorization(&self.access_key_id);
        let reply = self
            .http
            .send(|client| {
                // `host` is set by the client from the URL, exactly as signed.
                let mut request = client.post(url).header("authorization", authorization);
                for (name, value) in headers.iter().filter(|(name, _)| *name != "host") {
                    request = request.header(*name, *value);
                }
                request
            })
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(outcome) => return outcome,
        };
        match reply.json() {
            Ok(answer) => self.outcome(&answer, sms),
            Err(outcome) => outcome,
        }
    }

    /// Aliyun's `{Code, Message, BizId}` as a [`SendResult`].
    fn outcome(&self, answer: &Value, sms: &SmsRequest) -> SendResult {
        let Some(code) = answer.get("Code").and_then(Value::as_str) else {
            return SendResult::Unavailable("answer has no Code".to_owned());
        };
        let message = answer.get("Message").and_then(Value::as_str).unwrap_or_default();
        let text = clean_message(message, &[&self.access_key_id, self.secret.expose()], &[&sms.phone]);
        match code {
            "OK" => SendResult::Sent { receipt: answer.get("BizId").and_then(Value::as_str).map(str::to_owned) },
            "isv.BUSINESS_LIMIT_CONTROL" => SendResult::RateLimited { retry_after: business_limit_window(message) },
            "isv.DAY_LIMIT_CONTROL" => SendResult::RateLimited { retry_after: Duration::from_secs(24 * 3600) },
            "isp.SYSTEM_ERROR" | "ServiceUnavailable" | "InternalError" => {
                SendResult::Unavailable(format!("Aliyun {code}: {text}"))
            }
            _ if code.starts_with("Throttling") => SendResult::RateLimited { retry_after: Duration::from_secs(1) },
            _ => SendResult::Rejected { code: code.to_owned(), message: text },
        }
    }
}

/// The window `isv.BUSINESS_LIMIT_CONTROL`'s message names: a minute, an hour, or (rolling) a
/// day; an hour when it names none.
fn business_limit_window(message: &str) -> Duration {
    if message.contains("分钟级") {
        Duration::from_secs(60)
    } else if message.contains("天级") {
        Duration::from_secs(24 * 3600)
    } else {
        Duration::from_secs(3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Phone;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn run_instances(date: &str, nonce: &str) -> Acs3Signature {
        let query = canonical_query(&[
            ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-version", "2014-05-26"),
        ];
        acs3_sign("YourAccessKeySecret", "POST", "/", &query, &headers, b"")
    }

    /// The V3 page's worked example (alibabacloud.com/help/en/sdk/product-overview/
    /// v3-request-structure-and-signature, "Signature example").
    #[test]
    fn v3_matches_the_documented_example() {
        let signed = run_instances("2023-10-26T10:22:32Z", "3156853299f313e23d1673dc12e1703d");
        assert_eq!(signed.hashed_canonical_request, "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259");
        assert_eq!(signed.signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
        assert_eq!(
            signed.authorization("YourAccessKeyId"),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;\
             x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    /// The ROA-style page's header example (help.aliyun.com/zh/model-studio/
    /// roa-style-request-body-signature-mechanism): same request, nonce `d410180a…`, 09:01:01Z.
    #[test]
    fn v3_matches_the_second_documented_example() {
        let signed = run_instances("2023-10-26T09:01:01Z", "d410180a5abf7fe235dd9b74aca91fc0");
        assert_eq!(signed.signature, "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804");
    }

    #[test]
    fn header_names_are_lowercased_trimmed_and_sorted() {
        let a = acs3_sign("k", "POST", "/", "", &[("X-Acs-Version", " v "), ("Host", "h")], b"");
        let b = acs3_sign("k", "POST", "/", "", &[("host", "h"), ("x-acs-version", "v")], b"");
        assert_eq!(a, b);
        assert_eq!(a.signed_headers, "host;x-acs-version");
    }

    #[test]
    fn send_sms_params_carry_the_template_as_json() {
        let sms = SmsRequest {
            phone: Phone::parse("+86 138-1234-5678").unwrap(),
            sign_name: "阿里云短信测试".into(),
            template_code: "SMS_154950909".into(),
            params: vec![("station".into(), "菜鸟驿站".into()), ("code".into(), "8-2-1103".into())],
            out_id: Some("notice-42".into()),
        };
        let params = send_sms_params(&sms);
        assert_eq!(params[0], ("PhoneNumbers", "13812345678".to_owned()));
        let template: Value = serde_json::from_str(&params[3].1).unwrap();
        assert_eq!(template, serde_json::json!({"station": "菜鸟驿站", "code": "8-2-1103"}));
        assert_eq!(params[4], ("OutId", "notice-42".to_owned()));
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let query = canonical_query(&pairs);
        assert!(query.starts_with("OutId=notice-42&PhoneNumbers=13812345678&SignName=%E9%98%BF"), "{query}");
    }

    #[test]
    fn codes_map_to_outcomes() {
        let client = AliyunSms::new(ChannelConfig::new(ALIYUN_SMS_BASE_URL).unwrap(), "LTAIid", "secret").unwrap();
        let sms = SmsRequest {
            phone: Phone::parse("13812345678").unwrap(),
            sign_name: "s".into(),
            template_code: "t".into(),
            params: vec![],
            out_id: None,
        };
        let outcome = |code: &str, message: &str| {
            client.outcome(&serde_json::json!({"Code": code, "Message": message, "BizId": "900^0"}), &sms)
        };
        assert_eq!(outcome("OK", "OK"), SendResult::Sent { receipt: Some("900^0".into()) });
        let limited = |secs| SendResult::RateLimited { retry_after: Duration::from_secs(secs) };
        assert_eq!(outcome("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"), limited(60));
        assert_eq!(outcome("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5"), limited(3600));
        assert_eq!(outcome("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"), limited(86_400));
        assert!(matches!(outcome("isp.SYSTEM_ERROR", "busy"), SendResult::Unavailable(_)));
        let rejected = outcome("SignatureDoesNotMatch", "server string to sign is:PhoneNumbers%3D13812345678 LTAIid");
        assert_eq!(
            rejected,
            SendResult::Rejected {
                code: "SignatureDoesNotMatch".into(),
                message: "server string to sign is:PhoneNumbers%3D138****5678 ***".into()
            }
        );
        assert!(matches!(outcome("isv.MOBILE_NUMBER_ILLEGAL", "x"), SendResult::Rejected { .. }));
    }

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let config = || ChannelConfig::new(ALIYUN_SMS_BASE_URL).unwrap();
        assert!(AliyunSms::new(config(), "", "s").is_err());
        assert!(AliyunSms::new(config(), "LTAI id", "s").is_err());
        assert!(AliyunSms::new(config(), "LTAIid", "").is_err());
        let printed = format!("{:?}", AliyunSms::new(config(), "LTAIid", "topsecretvalue").unwrap());
        assert!(!printed.contains("topsecretvalue"), "{printed}");
    }

    #[test]
    fn nonces_do_not_repeat() {
        let client = AliyunSms::new(ChannelConfig::new(ALIYUN_SMS_BASE_URL).unwrap(), "LTAIid", "secret").unwrap();
        let nonces: std::collections::HashSet<String> = (0..1000).map(|_| client.nonce()).collect();
        assert_eq!(nonces.len(), 1000);
    }
}
