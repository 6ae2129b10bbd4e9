//! The domain's SMS port over the Aliyun and Tencent clients: whichever provider the SSM
//! parameter (`/orderhub/<stage>/notify/sms`, SecureString JSON) configures, with its approved
//! signature and templates; absent, "no provider configured" (the notice is kept).
//!
//! ```json
//! {"provider": "aliyun", "access_key_id": "LTAI…", "access_key_secret": "…", "sign_name": "某某旗舰店",
//!  "templates": {"parcel_at_station": {"code": "SMS_123456789", "params": [["station_text", "text"]]},
//!                "confirm_receipt": {"code": "SMS_987654321", "params": [["order", "order_id"]]}}}
//! {"provider": "tencent", "secret_id": "AKID…", "secret_key": "…", "sdk_app_id": "1400006666",
//!  "region": "ap-guangzhou", "sign_name": "某某旗舰店",
//!  "templates": {"parcel_at_station": {"code": "1234567", "params": [["1", "text"]]}}}
//! ```
//!
//! A template's `params` are `[name in the template, value]` pairs, the value one of the notice's
//! `order_id`, `channel`, `text`; Aliyun takes them by name (TemplateParam), Tencent by position
//! (TemplateParamSet, in this order).
//!
//! **What "not sent" means here** (at most once rests on it): a rate-limit answer and a
//! connection that never opened are certainly not sent ([`SmsOutcome::NotSent`]); a timeout, a 5xx
//! or an unreadable answer may have been sent — SendSms has no idempotence
//! (help.aliyun.com/document_detail/55284.html, 注意事项) — and is [`SmsOutcome::Unknown`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::RwLock;

use domain::model::alert::{MobileNumber, SmsNotice, SmsOutcome};
use domain::ports::Secrets;
use domain::ports::clock::Clock;
use domain::ports::notify::{SmsNotReady, SmsProvider};

use super::tencent_sms::TENCENT_SMS_DEFAULT_REGION;
use super::{AliyunSms, ChannelConfig, Phone, SendResult, SmsRequest, TencentSms};

/// The values a template may use.
pub const TEMPLATE_VALUES: [&str; 3] = ["order_id", "channel", "text"];

/// Where the SMS clients send (the providers' own origins in production, the fake in tests).
#[derive(Debug, Clone)]
pub struct SmsEndpoints {
    /// Aliyun SMS's origin.
    pub aliyun: ChannelConfig,
    /// Tencent Cloud SMS's origin.
    pub tencent: ChannelConfig,
}

fn default_region() -> String {
    TENCENT_SMS_DEFAULT_REGION.to_owned()
}

/// The SMS parameter. No `Debug`: it holds the provider's keys.
#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase", deny_unknown_fields)]
enum SmsParameter {
    Aliyun {
        access_key_id: String,
        access_key_secret: String,
        sign_name: String,
        templates: BTreeMap<String, TemplateParameter>,
    },
    Tencent {
        secret_id: String,
        secret_key: String,
        sdk_app_id: String,
        #[serde(default = "default_region")]
        region: String,
        sign_name: String,
        templates: BTreeMap<String, TemplateParameter>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateParameter {
    code: String,
    #[serde(default)]
    params: Vec<[String; 2]>,
}

#[derive(Debug)]
enum Client {
    Aliyun(AliyunSms),
    Tencent(TencentSms),
}

/// A configured provider.
#[derive(Debug)]
struct Loaded {
    client: Client,
    sign_name: String,
    templates: BTreeMap<String, TemplateParameter>,
}

/// A client's result in the domain's words, telling "certainly not sent" from "may have been".
pub fn sms_outcome(result: SendResult) -> SmsOutcome {
    match result {
        SendResult::Sent { receipt } => SmsOutcome::Sent { receipt },
        SendResult::RateLimited { retry_after } => SmsOutcome::NotSent {
            retry_after: chrono::Duration::from_std(retry_after).ok(),
            reason: "the provider's rate limit".to_owned(),
        },
        SendResult::Rejected { code, message } => SmsOutcome::Rejected { code, message },
        // The connection never opened (or no client could be built): nothing left this process.
        SendResult::Unavailable(reason) if reason.starts_with("connect") || reason.starts_with("http client") => {
            SmsOutcome::NotSent { retry_after: None, reason }
        }
        SendResult::Unavailable(reason) => SmsOutcome::Unknown(reason),
    }
}

fn json_problem(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "an unexpected field, provider or value",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("parameter is {what} (line {} column {})", error.line(), error.column())
}

fn load(text: &str, endpoints: &SmsEndpoints) -> Result<Loaded, SmsNotReady> {
    let parameter: SmsParameter = serde_json::from_str(text).map_err(|e| SmsNotReady::Malformed(json_problem(&e)))?;
    let malformed = |e: super::NotifyError| SmsNotReady::Malformed(e.to_string());
    let (client, sign_name, templates) = match parameter {
        SmsParameter::Aliyun { access_key_id, access_key_secret, sign_name, templates } => {
            let client =
                AliyunSms::new(endpoints.aliyun.clone(), &access_key_id, &access_key_secret).map_err(malformed)?;
            (Client::Aliyun(client), sign_name, templates)
        }
        SmsParameter::Tencent { secret_id, secret_key, sdk_app_id, region, sign_name, templates } => {
            let client = TencentSms::new(endpoints.tencent.clone(), &secret_id, &secret_key, &sdk_app_id, &region)
                .map_err(malformed)?;
            (Client::Tencent(client), sign_name, templates)
        }
    };
    if sign_name.trim().is_empty() {
        return Err(SmsNotReady::Malformed("sign_name is empty".into()));
    }
    for (name, template) in &templates {
        if template.code.trim().is_empty() {
            return Err(SmsNotReady::Malformed(format!("template `{name}` has no code")));
        }
        if let Some([_, value]) = template.params.iter().find(|[_, value]| !TEMPLATE_VALUES.contains(&value.as_str())) {
            return Err(SmsNotReady::Malformed(format!(
                "template `{name}`: `{}` is not one of order_id, channel, text",
                value.chars().take(32).collect::<String>()
            )));
        }
    }
    Ok(Loaded { client, sign_name, templates })
}

type Entry = (DateTime<Utc>, Result<Arc<Loaded>, SmsNotReady>);

/// The SMS provider the parameter store configures, through the [`Secrets`] port, cached for
/// `ttl`.
pub struct SmsGateway<'a> {
    secrets: &'a dyn Secrets,
    parameter: String,
    endpoints: SmsEndpoints,
    ttl: chrono::Duration,
    clock: &'a dyn Clock,
    cache: RwLock<Option<Entry>>,
}

impl<'a> SmsGateway<'a> {
    /// The provider configured in `parameter`, sending to `endpoints`.
    pub fn new(
        secrets: &'a dyn Secrets,
        parameter: impl Into<String>,
        endpoints: SmsEndpoints,
        ttl: chrono::Duration,
        clock: &'a dyn Clock,
    ) -> Self {
        Self { secrets, parameter: parameter.into(), endpoints, ttl, clock, cache: RwLock::new(None) }
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, SmsNotReady> {
        let now = self.clock.now();
        if let Some((fetched, value)) = self.cache.read().await.as_ref()
            && now - *fetched < self.ttl
        {
            return value.clone();
        }
        let value = match self.secrets.get(&self.parameter).await {
            Ok(Some(text)) => load(&text, &self.endpoints).map(Arc::new),
            Ok(None) => Err(SmsNotReady::NoProvider),
            Err(err) => return Err(SmsNotReady::Unavailable(err.to_string())),
        };
        *self.cache.write().await = Some((now, value.clone()));
        value
    }
}

#[async_trait]
impl SmsProvider for SmsGateway<'_> {
    async fn ready(&self, template: &str) -> Result<(), SmsNotReady> {
        let loaded = self.loaded().await?;
        if loaded.templates.contains_key(template) { Ok(()) } else { Err(SmsNotReady::NoTemplate(template.to_owned())) }
    }

    async fn send(&self, to: &MobileNumber, notice: &SmsNotice) -> SmsOutcome {
        let loaded = match self.loaded().await {
            Ok(loaded) => loaded,
            Err(err) => return SmsOutcome::NotSent { retry_after: None, reason: err.to_string() },
        };
        let Some(template) = loaded.templates.get(&notice.template) else {
            return SmsOutcome::NotSent { retry_after: None, reason: format!("no template `{}`", notice.template) };
        };
        let Ok(phone) = Phone::parse(to.expose()) else {
            return SmsOutcome::Rejected {
                code: "bad_number".into(),
                message: "the customer's mobile number is not a number the provider takes".into(),
            };
        };
        let value = |name: &str| notice.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let request = SmsRequest {
            phone,
            sign_name: loaded.sign_name.clone(),
            template_code: template.code.clone(),
            params: template
                .params
                .iter()
                .map(|[name, from]| (name.clone(), value(from).unwrap_or_default()))
                .collect(),
            out_id: Some(notice.notice_id.clone()),
        };
        let result = match &loaded.client {
            Client::Aliyun(client) => client.send(&request).await,
            Client::Tencent(client) => client.send(&request).await,
        };
        sms_outcome(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> SmsEndpoints {
        SmsEndpoints {
            aliyun: ChannelConfig::new("https://dysmsapi.aliyuncs.com").unwrap(),
            tencent: ChannelConfig::new("https://sms.tencentcloudapi.com").unwrap(),
        }
    }

    #[test]
    fn ambiguous_failures_are_unknown_and_only_unopened_connections_are_not_sent() {
        assert!(matches!(sms_outcome(SendResult::Unavailable("timeout".into())), SmsOutcome::Unknown(_)));
        assert!(matches!(sms_outcome(SendResult::Unavailable("HTTP 503".into())), SmsOutcome::Unknown(_)));
        assert!(matches!(
            sms_outcome(SendResult::Unavailable("reading the answer: eof".into())),
            SmsOutcome::Unknown(_)
        ));
        assert!(matches!(sms_outcome(SendResult::Unavailable("connect: refused".into())), SmsOutcome::NotSent { .. }));
        assert!(matches!(
            sms_outcome(SendResult::RateLimited { retry_after: std::time::Duration::from_secs(30) }),
            SmsOutcome::NotSent { retry_after: Some(d), .. } if d == chrono::Duration::seconds(30)
        ));
    }

    #[test]
    fn parameters_load_and_bad_ones_say_what_is_wrong_without_the_keys() {
        let aliyun = r#"{"provider":"aliyun","access_key_id":"LTAIkey","access_key_secret":"s3cr3t-value",
            "sign_name":"旗舰店","templates":{"parcel_at_station":{"code":"SMS_1","params":[["t","text"]]}}}"#;
        assert!(load(aliyun, &endpoints()).is_ok());
        let tencent = r#"{"provider":"tencent","secret_id":"AKIDkey","secret_key":"s3cr3t-value","sdk_app_id":"1400006666",
            "sign_name":"旗舰店","templates":{}}"#;
        assert!(load(tencent, &endpoints()).is_ok());
        for (text, says) in [
            (r#"{"provider":"twilio","sid":"s3cr3t-value"}"#, "unexpected"),
            (
                r#"{"provider":"aliyun","access_key_id":"LT AI","access_key_secret":"s3cr3t-value","sign_name":"x","templates":{}}"#,
                "AccessKeyId",
            ),
            (
                r#"{"provider":"aliyun","access_key_id":"LTAI","access_key_secret":"s3cr3t-value","sign_name":"x",
                    "templates":{"a":{"code":"SMS_1","params":[["p","phone"]]}}}"#,
                "not one of",
            ),
            ("s3cr3t-value", "not JSON"),
        ] {
            let error = load(text, &endpoints()).err().unwrap().to_string();
            assert!(error.contains(says), "{error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
    }
}
