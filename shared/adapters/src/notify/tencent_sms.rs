//! Tencent Cloud SMS (腾讯云短信) SendSms, version 2021-01-11, signed with `TC3-HMAC-SHA256`.
//!
//! TC3 (签名方法 v3, cloud.tencent.com/document/api/362/4208; the same page for every product):
//! - `CanonicalRequest = method \n "/" \n query \n canonical_headers \n signed_headers \n
//!   hex(sha256(payload))`, headers `content-type` and `host` with lower-case names and values,
//!   each `name:value\n`, `signed_headers = "content-type;host"` (the page's example).
//! - `StringToSign = "TC3-HMAC-SHA256\n" + timestamp + "\n" + date/service/"tc3_request" + "\n"
//!   + hex(sha256(CanonicalRequest))`, `date` the UTC day of the timestamp.
//! - `SecretDate = HMAC("TC3" + SecretKey, date)`, `SecretService = HMAC(SecretDate, service)`,
//!   `SecretSigning = HMAC(SecretService, "tc3_request")`,
//!   `Signature = hex(HMAC(SecretSigning, StringToSign))`; `Authorization: TC3-HMAC-SHA256
//!   Credential=<SecretId>/<scope>, SignedHeaders=content-type;host, Signature=<hex>`.
//! - Headers `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp` (Unix seconds, within 5 minutes of
//!   Tencent's clock: `AuthFailure.SignatureExpire`, cloud.tencent.com/document/api/382/52075),
//!   `X-TC-Region`.
//! - The page's example (DescribeInstances on cvm, timestamp 1551113065, SecretKey
//!   `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`) gives `72e494ea…5168`; the older edition of the page,
//!   with the key printed as `Gu5t9xGARNpq86cd98joQYCN3*******`, gives `2230eefd…652c`. Both are
//!   the known-answer tests below.
//!
//! SendSms (cloud.tencent.com/document/api/382/55981): `sms.tencentcloudapi.com`, Region
//! required, PhoneNumberSet (E.164), SmsSdkAppId, TemplateId, SignName, TemplateParamSet,
//! SessionContext (echoed back, under 512 bytes); the answer's `SendStatusSet[]` has a `Code`
//! per number, `Ok` when sent, and a `SerialNo`; a failed call has `Response.Error {Code,
//! Message}` instead (382/52075). Per-number limits answer in `SendStatusSet[].Code`:
//! `LimitExceeded.PhoneNumberThirtySecondLimit`, `…OneHourLimit`, `…DailyLimit`,
//! `…SameContentDailyLimit` (TencentCloud/tencentcloud-sdk-go `tencentcloud/sms/v20210111/
//! errors.go`); the default policy is one message of the same content per number per 30 s and a
//! daily cap per number (tencentcloud.com/document/product/382/13303; the exact defaults vary by
//! edition and are configurable in the console).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use domain::model::time::{business_day, day_start};

use super::{ChannelConfig, Http, NotifyError, Secret, SendResult, SmsRequest, clean_message, hmac_sha256, sha256_hex};

/// Tencent Cloud SMS's endpoint.
pub const TENCENT_SMS_BASE_URL: &str = "https://sms.tencentcloudapi.com";
/// The SendSms API version.
pub const TENCENT_SMS_VERSION: &str = "2021-01-11";
/// The region used unless configured otherwise (the SendSms page's example region).
pub const TENCENT_SMS_DEFAULT_REGION: &str = "ap-guangzhou";
/// The TC3 algorithm name.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The content type sent and signed.
pub const TC3_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// How far `X-TC-Timestamp` may be from Tencent's clock.
pub const TC3_TIMESTAMP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The service name in the credential scope.
const SERVICE: &str = "sms";

/// What TC3 signing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    /// `hex(sha256(CanonicalRequest))`, the last line of the string to sign.
    pub hashed_canonical_request: String,
    /// `date/service/tc3_request`.
    pub credential_scope: String,
    /// The hex signature.
    pub signature: String,
}

impl Tc3Signature {
    /// The `Authorization` header.
    pub fn authorization(&self, secret_id: &str) -> String {
        format!(
            "{TC3_ALGORITHM} Credential={secret_id}/{}, SignedHeaders=content-type;host, Signature={}",
            self.credential_scope, self.signature
        )
    }
}

/// Signs a POST of `payload` to `host` for `service` at `timestamp` (Unix seconds) with TC3.
pub fn tc3_sign(
    secret_key: &str,
    service: &str,
    host: &str,
    content_type: &str,
    timestamp: i64,
    payload: &[u8],
) -> Tc3Signature {
    let canonical_headers =
        format!("content-type:{}\nhost:{}\n", content_type.trim().to_lowercase(), host.trim().to_lowercase());
    let canonical_request = format!("POST\n/\n\n{canonical_headers}\ncontent-type;host\n{}", sha256_hex(payload));
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let date = DateTime::<Utc>::from_timestamp(timestamp, 0).unwrap_or_default().format("%Y-%m-%d").to_string();
    let credential_scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!("{TC3_ALGORITHM}\n{timestamp}\n{credential_scope}\n{hashed_canonical_request}");
    let secret_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes()));
    Tc3Signature { hashed_canonical_request, credential_scope, signature }
}

/// The SendSms JSON body for `sms` from the application `sdk_app_id`.
pub fn send_sms_body(sms: &SmsRequest, sdk_app_id: &str) -> Value {
    let values: Vec<&str> = sms.params.iter().map(|(_, value)| value.as_str()).collect();
    let mut body = json!({
        "PhoneNumberSet": [sms.phone.e164()],
        "SmsSdkAppId": sdk_app_id,
        "SignName": sms.sign_name,
        "TemplateId": sms.template_code,
        "TemplateParamSet": values,
    });
    if let (Some(out_id), Some(object)) = (&sms.out_id, body.as_object_mut()) {
        object.insert("SessionContext".to_owned(), Value::String(out_id.clone()));
    }
    body
}

/// A Tencent Cloud SMS client for one API key and one SMS application.
#[derive(Clone)]
pub struct TencentSms {
    config: ChannelConfig,
    http: Http,
    secret_id: String,
    secret_key: Secret,
    sdk_app_id: String,
    region: String,
}

impl std::fmt::Debug for TencentSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentSms")
            .field("config", &self.config)
            .field("secret_key", &self.secret_key)
            .field("sdk_app_id", &self.sdk_app_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl TencentSms {
    /// A client for the key `secret_id` / `secret_key`, sending from SMS application
    /// `sdk_app_id` (e.g. `1400006666`) in `region` (e.g. [`TENCENT_SMS_DEFAULT_REGION`]).
    pub fn new(
        config: ChannelConfig,
        secret_id: &str,
        secret_key: &str,
        sdk_app_id: &str,
        region: &str,
    ) -> Result<Self, NotifyError> {
        let id = secret_id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NotifyError::BadCredential("Tencent SecretId is missing or not alphanumeric"));
        }
        let key = secret_key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NotifyError::BadCredential("Tencent SecretKey is missing or malformed"));
        }
        let app = sdk_app_id.trim();
        if app.is_empty() || !app.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NotifyError::BadCredential("Tencent SmsSdkAppId must be digits"));
        }
        let region = region.trim();
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(NotifyError::BadCredential("Tencent region must look like ap-guangzhou"));
        }
        let http = Http::new(config.timeout);
        Ok(Self {
            config,
            http,
            secret_id: id.to_owned(),
            secret_key: Secret::new(key),
            sdk_app_id: app.to_owned(),
            region: region.to_owned(),
        })
    }

    /// Sends one templated SMS.
    pub async fn send(&self, sms: &SmsRequest) -> SendResult {
        // The bytes hashed into the signature are the bytes sent.
        let payload = send_sms_body(sms, &self.sdk_app_id).to_string().into_bytes();
        let timestamp = self.config.clock.now().timestamp();
        let signature =
            tc3_sign(self.secret_key.expose(), SERVICE, &self.config.host(), TC3_CONTENT_TYPE, timestamp, &payload);
        let authorization = signature.authorization(&self.secret_id);
        let url = self.config.url("/");
        let reply = self
            .http
            .send(|client| {
                client
                    .post(url)
                    .header("authorization", authorization)
                    .header("content-type", TC3_CONTENT_TYPE)
                    .header("x-tc-action", "SendSms")
                    .header("x-tc-timestamp", timestamp.to_string())
                    .header("x-tc-version", TENCENT_SMS_VERSION)
                    .header("x-tc-region", &self.region)
                    .body(payload)
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

    /// Tencent's `Response` as a [`SendResult`]: the call's `Error`, else the number's status.
    fn outcome(&self, answer: &Value, sms: &SmsRequest) -> SendResult {
        let response = &answer["Response"];
        let status = if response["Error"].is_object() { &response["Error"] } else { &response["SendStatusSet"][0] };
        let Some(code) = status["Code"].as_str() else {
            return SendResult::Unavailable("answer has neither Error nor SendStatusSet".to_owned());
        };
        let message = status["Message"].as_str().unwrap_or_default();
        let text = clean_message(message, &[&self.secret_id, self.secret_key.expose()], &[&sms.phone]);
        let until_midnight = || {
            let now = self.config.clock.now();
            let next = business_day(now).succ_opt().map(day_start);
            next.and_then(|next| (next - now).to_std().ok()).unwrap_or(Duration::from_secs(24 * 3600))
        };
        match code {
            "Ok" => SendResult::Sent { receipt: status["SerialNo"].as_str().map(str::to_owned) },
            "LimitExceeded.PhoneNumberThirtySecondLimit" => {
                SendResult::RateLimited { retry_after: Duration::from_secs(30) }
            }
            "LimitExceeded.PhoneNumberOneHourLimit" | "LimitExceeded.DeliveryFrequencyLimit" => {
                SendResult::RateLimited { retry_after: Duration::from_secs(3600) }
            }
            _ if code.starts_with("LimitExceeded.") && code.ends_with("DailyLimit") => {
                SendResult::RateLimited { retry_after: until_midnight() }
            }
            _ if code.starts_with("RequestLimitExceeded") => {
                SendResult::RateLimited { retry_after: Duration::from_secs(1) }
            }
            _ if code.starts_with("InternalError") => SendResult::Unavailable(format!("Tencent {code}: {text}")),
            _ => SendResult::Rejected { code: code.to_owned(), message: text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Phone;
    use chrono::TimeZone;
    use domain::testing::clock::FixedClock;
    use std::sync::Arc;

    const EXAMPLE_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    /// The 签名方法 v3 page's example (cloud.tencent.com/document/api/362/4208).
    #[test]
    fn tc3_matches_the_documented_example() {
        let signed = tc3_sign(
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            "cvm.tencentcloudapi.com",
            "application/json; charset=utf-8",
            1_551_113_065,
            EXAMPLE_PAYLOAD.as_bytes(),
        );
        assert_eq!(signed.hashed_canonical_request, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
        assert_eq!(signed.credential_scope, "2019-02-25/cvm/tc3_request");
        assert_eq!(signed.signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
        assert_eq!(
            signed.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    /// The older edition of the same page, whose key is printed with literal asterisks.
    #[test]
    fn tc3_matches_the_older_documented_example() {
        let signed = tc3_sign(
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "cvm",
            "cvm.tencentcloudapi.com",
            "application/json; charset=utf-8",
            1_551_113_065,
            EXAMPLE_PAYLOAD.as_bytes(),
        );
        assert_eq!(signed.signature, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
    }

    fn sms() -> SmsRequest {
        SmsRequest {
            phone: Phone::parse("13812345678").unwrap(),
            sign_name: "腾讯云".into(),
            template_code: "1110".into(),
            params: vec![("station".into(), "菜鸟驿站".into()), ("code".into(), "4370".into())],
            out_id: Some("notice-7".into()),
        }
    }

    #[test]
    fn send_sms_body_has_the_documented_fields() {
        assert_eq!(
            send_sms_body(&sms(), "1400006666"),
            json!({
                "PhoneNumberSet": ["+8613812345678"],
                "SmsSdkAppId": "1400006666",
                "SignName": "腾讯云",
                "TemplateId": "1110",
                "TemplateParamSet": ["菜鸟驿站", "4370"],
                "SessionContext": "notice-7",
            })
        );
    }

    #[test]
    fn codes_map_to_outcomes() {
        // 2026-03-01 20:00 in Beijing: four hours to the next Beijing midnight.
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap();
        let config = ChannelConfig::new(TENCENT_SMS_BASE_URL).unwrap().with_clock(Arc::new(FixedClock::new(now)));
        let client = TencentSms::new(config, "AKIDid", "key", "1400006666", "ap-guangzhou").unwrap();
        let status = |code: &str| {
            client.outcome(
                &json!({"Response": {"SendStatusSet": [{"Code": code, "Message": "m", "SerialNo": "2019:1"}]}}),
                &sms(),
            )
        };
        assert_eq!(status("Ok"), SendResult::Sent { receipt: Some("2019:1".into()) });
        let limited = |secs| SendResult::RateLimited { retry_after: Duration::from_secs(secs) };
        assert_eq!(status("LimitExceeded.PhoneNumberThirtySecondLimit"), limited(30));
        assert_eq!(status("LimitExceeded.PhoneNumberOneHourLimit"), limited(3600));
        assert_eq!(status("LimitExceeded.PhoneNumberDailyLimit"), limited(4 * 3600));
        assert!(matches!(status("InvalidParameterValue.IncorrectPhoneNumber"), SendResult::Rejected { .. }));
        assert!(matches!(status("InternalError.Timeout"), SendResult::Unavailable(_)));
        let error = client.outcome(
            &json!({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}}}),
            &sms(),
        );
        assert_eq!(error, SendResult::Rejected { code: "AuthFailure.SignatureFailure".into(), message: "bad".into() });
        assert!(matches!(client.outcome(&json!({}), &sms()), SendResult::Unavailable(_)));
    }

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let config = || ChannelConfig::new(TENCENT_SMS_BASE_URL).unwrap();
        assert!(TencentSms::new(config(), "", "k", "1400006666", "ap-guangzhou").is_err());
        assert!(TencentSms::new(config(), "AKID", "", "1400006666", "ap-guangzhou").is_err());
        assert!(TencentSms::new(config(), "AKID", "k", "app", "ap-guangzhou").is_err());
        assert!(TencentSms::new(config(), "AKID", "k", "1400006666", "Ap Guangzhou").is_err());
        let client = TencentSms::new(config(), "AKID", "topsecretvalue", "1400006666", "ap-guangzhou").unwrap();
        assert!(!format!("{client:?}").contains("topsecretvalue"));
    }
}
