//! DingTalk (钉钉) custom robots: a signed webhook that posts markdown to one group.
//!
//! Facts used (sources in `docs/notify-channels.md`, "DingTalk"):
//! - Webhook `https://oapi.dingtalk.com/robot/send?access_token=…`, HTTP POST of JSON in UTF-8
//!   (DingTalk 自定义机器人接入, mirrored at blog.csdn.net/lxw1844912514/article/details/125780346).
//! - 加签: `string_to_sign = timestamp + "\n" + secret`, HMAC-SHA256 keyed with the secret,
//!   Base64, then URL-encoded, sent as the `timestamp` and `sign` query parameters; the
//!   timestamp is in milliseconds and must be within one hour of DingTalk's clock; the secret is
//!   the string starting with `SEC` shown under 加签 (DingTalk 自定义机器人安全设置, mirrored at
//!   mihaoyun.com/wordpress/?p=391 and blog.csdn.net/weixin_43564241/article/details/139138811).
//! - Markdown body `{"msgtype":"markdown","markdown":{"title","text"},"at":{"atMobiles",
//!   "atUserIds","isAtAll"}}`; a number in `atMobiles` is `@`-ed when the text also contains
//!   `@<number>` (the documented example does both: npm `ding-bot-sdk` README).
//! - 20 messages a minute per robot; past that the robot is throttled for 10 minutes
//!   (violetpupil/gos `api/ding/ding.go`, quoting open.dingtalk.com/document/orgapp/
//!   custom-robots-send-group-messages). Errcodes: 410100 发送速度太快而限流 and the older
//!   130101 "send too fast, exceed 20 times per minute" (ccfos/nightingale issue 369);
//!   310000 sign not match / keywords / IP whitelist / timestamp (cloud.tencent.com/developer/
//!   article/1834468); 400013, 400101, 400102, 400105, 400106, 430101–430104 (a public Go
//!   client's errcode table quoting the same page); -1 系统繁忙 (DingTalk's global codes).
//!   90030 "webhook over limit" is a quota seen in one Q&A only: **unconfirmed**.
//! - The markdown length limit for robots is **unconfirmed**: 5 000 characters is the limit of
//!   DingTalk's older chat-message API (errcode 34016), used here as the bound.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use serde_json::{Value, json};

use super::{
    ChannelConfig, Http, NotifyError, RobotMessage, Secret, SendResult, clean_message, hmac_sha256, truncate_chars,
};

/// DingTalk's open API origin.
pub const DINGTALK_BASE_URL: &str = "https://oapi.dingtalk.com";
/// The webhook path.
pub const DINGTALK_PATH: &str = "/robot/send";
/// Messages a robot may send per minute.
pub const DINGTALK_PER_MINUTE: usize = 20;
/// How long a robot that sent too fast is throttled.
pub const DINGTALK_THROTTLE: Duration = Duration::from_secs(10 * 60);
/// How far the signed timestamp may be from DingTalk's clock.
pub const DINGTALK_TIMESTAMP_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The markdown text limit used (unconfirmed for robots, see the module docs).
pub const DINGTALK_MARKDOWN_MAX_CHARS: usize = 5_000;
/// The title limit used (34016's title bound; unconfirmed for robots).
const TITLE_MAX_CHARS: usize = 64;
/// Retry after a `90030` quota answer (unconfirmed code, so a cautious hour).
const QUOTA_RETRY: Duration = Duration::from_secs(60 * 60);

/// `sign` before URL-encoding: Base64 of HMAC-SHA256(key = secret, timestamp + "\n" + secret).
pub fn sign(timestamp_ms: i64, secret: &str) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{secret}");
    STANDARD.encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// The webhook's query string: `access_token`, `timestamp` and the URL-encoded `sign`.
pub fn signed_query(access_token: &str, timestamp_ms: i64, secret: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", access_token)
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(timestamp_ms, secret))
        .finish()
}

/// The markdown body for `message`: the text cut to [`DINGTALK_MARKDOWN_MAX_CHARS`] (the `@`
/// mentions kept whole at its end, where DingTalk needs them).
pub fn markdown_body(message: &RobotMessage) -> Value {
    let mentions: String = message.at_mobiles.iter().map(|phone| format!(" @{}", phone.aliyun_form())).collect();
    let room = DINGTALK_MARKDOWN_MAX_CHARS.saturating_sub(mentions.chars().count());
    let text = format!("{}{mentions}", truncate_chars(&message.markdown, room));
    let at_mobiles: Vec<&str> = message.at_mobiles.iter().map(|phone| phone.aliyun_form()).collect();
    json!({
        "msgtype": "markdown",
        "markdown": { "title": truncate_chars(&message.title, TITLE_MAX_CHARS), "text": text },
        "at": { "atMobiles": at_mobiles, "atUserIds": message.at_user_ids, "isAtAll": message.at_all },
    })
}

/// One DingTalk custom robot with 加签 (signing) enabled.
#[derive(Clone)]
pub struct DingTalkRobot {
    config: ChannelConfig,
    http: Http,
    access_token: Secret,
    secret: Secret,
}

impl std::fmt::Debug for DingTalkRobot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DingTalkRobot")
            .field("config", &self.config)
            .field("access_token", &self.access_token)
            .field("secret", &self.secret)
            .finish()
    }
}

impl DingTalkRobot {
    /// A robot from its webhook URL as DingTalk shows it
    /// (`https://oapi.dingtalk.com/robot/send?access_token=…`) and its `SEC…` secret. Requests
    /// go to `config.base_url` (DingTalk's own origin in production).
    pub fn new(config: ChannelConfig, webhook_url: &str, secret: &str) -> Result<Self, NotifyError> {
        let url = Url::parse(webhook_url.trim()).map_err(|_| NotifyError::BadWebhook("not a URL"))?;
        if url.scheme() != "https" || url.host_str() != Some("oapi.dingtalk.com") {
            return Err(NotifyError::BadWebhook("not https://oapi.dingtalk.com"));
        }
        if url.path() != DINGTALK_PATH {
            return Err(NotifyError::BadWebhook("path is not /robot/send"));
        }
        let token = url.query_pairs().find(|(key, _)| key == "access_token").map(|(_, value)| value.into_owned());
        Self::from_token(config, &token.unwrap_or_default(), secret)
    }

    /// A robot from its access token and `SEC…` secret.
    pub fn from_token(config: ChannelConfig, access_token: &str, secret: &str) -> Result<Self, NotifyError> {
        let token = access_token.trim();
        if token.is_empty() || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NotifyError::BadWebhook("access_token is missing or not alphanumeric"));
        }
        let secret = secret.trim();
        if !secret.starts_with("SEC") || secret.len() < 8 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NotifyError::BadCredential("DingTalk secret must be the SEC… string shown under 加签"));
        }
        let http = Http::new(config.timeout);
        Ok(Self { config, http, access_token: Secret::new(token), secret: Secret::new(secret) })
    }

    /// Posts `message` to the robot's group.
    pub async fn send(&self, message: &RobotMessage) -> SendResult {
        let timestamp = self.config.clock.now().timestamp_millis();
        let mut url = self.config.url(DINGTALK_PATH);
        url.set_query(Some(&signed_query(self.access_token.expose(), timestamp, self.secret.expose())));
        let body = markdown_body(message);
        let reply = match self
            .http
            .send(|client| client.post(url).header("content-type", "application/json; charset=utf-8").json(&body))
            .await
        {
            Ok(reply) => reply,
            Err(outcome) => return outcome,
        };
        match reply.json() {
            Ok(answer) => self.outcome(&answer, message),
            Err(outcome) => outcome,
        }
    }

    /// DingTalk's `{errcode, errmsg}` as a [`SendResult`].
    fn outcome(&self, answer: &Value, message: &RobotMessage) -> SendResult {
        let Some(code) = answer.get("errcode").and_then(Value::as_i64) else {
            return SendResult::Unavailable("answer has no errcode".to_owned());
        };
        let errmsg = answer.get("errmsg").and_then(Value::as_str).unwrap_or_default();
        let phones: Vec<_> = message.at_mobiles.iter().collect();
        let text = clean_message(errmsg, &[self.access_token.expose(), self.secret.expose()], &phones);
        match code {
            0 => SendResult::Sent { receipt: None },
            410_100 | 130_101 => SendResult::RateLimited { retry_after: DINGTALK_THROTTLE },
            90_030 => SendResult::RateLimited { retry_after: QUOTA_RETRY },
            -1 => SendResult::Unavailable(format!("DingTalk busy (-1): {text}")),
            _ => SendResult::Rejected { code: code.to_string(), message: text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Phone;

    // No public vector with fixed inputs exists: DingTalk's page gives code, not outputs. These
    // were computed with the page's own Python sample (hmac, base64, urllib.parse.quote_plus)
    // run outside this crate, on the page's example secret "this is secret" and on a test one.
    #[test]
    fn sign_matches_the_documented_algorithm() {
        assert_eq!(sign(1_577_836_800_000, "this is secret"), "fFV9t5lBS7KH4+5B0JjR99ab+AJkXFauQXycgTkS/tc=");
        assert_eq!(
            sign(1_700_000_000_000, "SECorderhub-test-secret-0001"),
            "zkPcvneENdu4uiDmG+AgXdXHnL/KmVB329jGLCE3lyQ="
        );
        assert_eq!(
            signed_query("tok123", 1_700_000_000_000, "SECorderhub-test-secret-0001"),
            "access_token=tok123&timestamp=1700000000000&sign=zkPcvneENdu4uiDmG%2BAgXdXHnL%2FKmVB329jGLCE3lyQ%3D"
        );
    }

    #[test]
    fn markdown_body_has_the_documented_shape() {
        let mut message = RobotMessage::new("SLA 告警", "### 3 单超时未发货");
        message.at_mobiles.push(Phone::parse("+8613812345678").unwrap());
        message.at_user_ids.push("manager01".into());
        let body = markdown_body(&message);
        assert_eq!(
            body,
            json!({
                "msgtype": "markdown",
                "markdown": { "title": "SLA 告警", "text": "### 3 单超时未发货 @13812345678" },
                "at": { "atMobiles": ["13812345678"], "atUserIds": ["manager01"], "isAtAll": false },
            })
        );
    }

    #[test]
    fn long_markdown_is_cut_but_mentions_survive() {
        let mut message = RobotMessage::new("t", "订单".repeat(4_000));
        message.at_mobiles.push(Phone::parse("13812345678").unwrap());
        let body = markdown_body(&message);
        let text = body["markdown"]["text"].as_str().unwrap();
        assert_eq!(text.chars().count(), DINGTALK_MARKDOWN_MAX_CHARS);
        assert!(text.ends_with(" @13812345678"));
        assert!(text.contains(crate::notify::TRUNCATION_MARKER));
    }

    #[test]
    fn malformed_webhooks_and_secrets_are_refused_without_echoing_them() {
        let config = || ChannelConfig::new(DINGTALK_BASE_URL).unwrap();
        let good = "https://oapi.dingtalk.com/robot/send?access_token=abc123";
        assert!(DingTalkRobot::new(config(), good, "SEC0123456789").is_ok());
        let cases = [
            ("not a url", "SEC0123456789"),
            ("http://oapi.dingtalk.com/robot/send?access_token=abc123", "SEC0123456789"),
            ("https://evil.example/robot/send?access_token=abc123", "SEC0123456789"),
            ("https://oapi.dingtalk.com/robot/other?access_token=abc123", "SEC0123456789"),
            ("https://oapi.dingtalk.com/robot/send", "SEC0123456789"),
            ("https://oapi.dingtalk.com/robot/send?access_token=a%20b", "SEC0123456789"),
            (good, "0123456789"),
            (good, ""),
        ];
        for (url, secret) in cases {
            let error = DingTalkRobot::new(config(), url, secret).unwrap_err();
            let text = error.to_string();
            assert!(!text.contains("abc123") && !text.contains("0123456789"), "{text}");
        }
        let robot = DingTalkRobot::new(config(), good, "SEC0123456789").unwrap();
        let printed = format!("{robot:?}");
        assert!(!printed.contains("abc123") && !printed.contains("SEC0123456789"), "{printed}");
    }

    #[test]
    fn errcodes_map_to_outcomes() {
        let robot =
            DingTalkRobot::from_token(ChannelConfig::new(DINGTALK_BASE_URL).unwrap(), "tok", "SEC0123456789").unwrap();
        let message = RobotMessage::new("t", "x");
        let outcome = |code: i64, msg: &str| robot.outcome(&json!({"errcode": code, "errmsg": msg}), &message);
        assert_eq!(outcome(0, "ok"), SendResult::Sent { receipt: None });
        assert_eq!(outcome(410_100, "send too fast"), SendResult::RateLimited { retry_after: DINGTALK_THROTTLE });
        assert_eq!(outcome(130_101, "send too fast"), SendResult::RateLimited { retry_after: DINGTALK_THROTTLE });
        assert!(matches!(outcome(-1, "busy"), SendResult::Unavailable(_)));
        assert_eq!(
            outcome(310_000, "sign not match"),
            SendResult::Rejected { code: "310000".into(), message: "sign not match".into() }
        );
        assert!(matches!(outcome(400_102, "机器人已停用"), SendResult::Rejected { .. }));
        assert!(matches!(robot.outcome(&json!({"errmsg": "?"}), &message), SendResult::Unavailable(_)));
    }
}
