//! WeCom (企业微信) group robots: a webhook keyed by the robot's `key`, markdown messages.
//!
//! Facts used (sources in `docs/notify-channels.md`, "WeCom"):
//! - Webhook `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`, HTTP POST of JSON, content
//!   in UTF-8; no request signature: the key in the URL is the credential, to be kept secret
//!   (群机器人配置说明, work.weixin.qq.com/api/doc/90000/90136/91770).
//! - Markdown body `{"msgtype":"markdown","markdown":{"content":…}}`, content at most 4096 bytes
//!   of UTF-8 (lyf571321556/chat-robot-api `qiye_wechat/markdown.go`, zhyhang/webhook-bridge
//!   `WxWorkRobotMdMsg.java`, both quoting 91770); `<@userid>` in the content `@`s a member
//!   (91770); `mentioned_mobile_list` exists for text messages only, so markdown cannot `@` by
//!   number (91770's field table).
//! - 20 messages a minute per robot (wangtengda0310/my-alert `wxEnterpriseRobot.clj`, quoting
//!   91770 消息发送频率限制). Errcodes (WeCom 全局错误码, work.weixin.qq.com/api/doc/90000/90139/
//!   90313, as generated into xen0n/go-workwx `errcodes/mod.go`): 93000
//!   机器人webhookurl不合法或者机器人已经被移除出群, 93004 机器人被停用, 93008 不在群里, -1 系统繁忙
//!   (retry, at most 3 times); 45009 接口调用超过限制 as public notifiers quoting 90313 handle it.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};

use super::{ChannelConfig, Http, NotifyError, RobotMessage, Secret, SendResult, clean_message, truncate_bytes};

/// WeCom's API origin.
pub const WECOM_BASE_URL: &str = "https://qyapi.weixin.qq.com";
/// The webhook path.
pub const WECOM_PATH: &str = "/cgi-bin/webhook/send";
/// Messages a robot may send per minute.
pub const WECOM_PER_MINUTE: usize = 20;
/// The markdown content limit, in bytes of UTF-8.
pub const WECOM_MARKDOWN_MAX_BYTES: usize = 4096;
/// Retry after `45009`: the limit is per minute, so the window has passed by then.
pub const WECOM_RETRY: Duration = Duration::from_secs(60);

/// The markdown content for `message`: the title in bold, the body, then `<@userid>` mentions,
/// cut to [`WECOM_MARKDOWN_MAX_BYTES`] with the mentions kept whole.
pub fn markdown_content(message: &RobotMessage) -> String {
    let mentions: String = message.at_user_ids.iter().map(|id| format!(" <@{id}>")).collect();
    let head = if message.title.is_empty() { String::new() } else { format!("**{}**\n", message.title) };
    let whole = format!("{head}{}", message.markdown);
    let room = WECOM_MARKDOWN_MAX_BYTES.saturating_sub(mentions.len());
    format!("{}{mentions}", truncate_bytes(&whole, room))
}

/// The JSON body for `message`.
pub fn markdown_body(message: &RobotMessage) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": markdown_content(message) } })
}

/// One WeCom group robot.
#[derive(Clone)]
pub struct WeComRobot {
    config: ChannelConfig,
    http: Http,
    key: Secret,
}

impl std::fmt::Debug for WeComRobot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeComRobot").field("config", &self.config).field("key", &self.key).finish()
    }
}

impl WeComRobot {
    /// A robot from its webhook URL as WeCom shows it
    /// (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`). Requests go to
    /// `config.base_url` (WeCom's own origin in production).
    pub fn new(config: ChannelConfig, webhook_url: &str) -> Result<Self, NotifyError> {
        let url = Url::parse(webhook_url.trim()).map_err(|_| NotifyError::BadWebhook("not a URL"))?;
        if url.scheme() != "https" || url.host_str() != Some("qyapi.weixin.qq.com") {
            return Err(NotifyError::BadWebhook("not https://qyapi.weixin.qq.com"));
        }
        if url.path() != WECOM_PATH {
            return Err(NotifyError::BadWebhook("path is not /cgi-bin/webhook/send"));
        }
        let key = url.query_pairs().find(|(name, _)| name == "key").map(|(_, value)| value.into_owned());
        Self::from_key(config, &key.unwrap_or_default())
    }

    /// A robot from its key (a UUID such as `693a91f6-…`).
    pub fn from_key(config: ChannelConfig, key: &str) -> Result<Self, NotifyError> {
        let key = key.trim();
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NotifyError::BadWebhook("key is missing or not of letters, digits and dashes"));
        }
        let http = Http::new(config.timeout);
        Ok(Self { config, http, key: Secret::new(key) })
    }

    /// Posts `message` to the robot's group.
    pub async fn send(&self, message: &RobotMessage) -> SendResult {
        let mut url = self.config.url(WECOM_PATH);
        url.query_pairs_mut().append_pair("key", self.key.expose());
        let body = markdown_body(message);
        let reply = match self.http.send(|client| client.post(url).json(&body)).await {
            Ok(reply) => reply,
            Err(outcome) => return outcome,
        };
        match reply.json() {
            Ok(answer) => self.outcome(&answer),
            Err(outcome) => outcome,
        }
    }

    /// WeCom's `{errcode, errmsg}` as a [`SendResult`].
    fn outcome(&self, answer: &Value) -> SendResult {
        let Some(code) = answer.get("errcode").and_then(Value::as_i64) else {
            return SendResult::Unavailable("answer has no errcode".to_owned());
        };
        let errmsg = answer.get("errmsg").and_then(Value::as_str).unwrap_or_default();
        let text = clean_message(errmsg, &[self.key.expose()], &[]);
        match code {
            0 => SendResult::Sent { receipt: None },
            45_009 => SendResult::RateLimited { retry_after: WECOM_RETRY },
            -1 => SendResult::Unavailable(format!("WeCom busy (-1): {text}")),
            _ => SendResult::Rejected { code: code.to_string(), message: text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ChannelConfig {
        ChannelConfig::new(WECOM_BASE_URL).unwrap()
    }

    #[test]
    fn markdown_body_has_the_documented_shape() {
        let mut message = RobotMessage::new("退款未到账", "> 2 单退款超过 2 小时未确认");
        message.at_user_ids.push("zhangsan".into());
        assert_eq!(
            markdown_body(&message),
            json!({
                "msgtype": "markdown",
                "markdown": { "content": "**退款未到账**\n> 2 单退款超过 2 小时未确认 <@zhangsan>" },
            })
        );
    }

    #[test]
    fn long_markdown_fits_in_4096_bytes_with_mentions() {
        let mut message = RobotMessage::new("t", "驿站".repeat(2_000));
        message.at_user_ids.push("lisi".into());
        let content = markdown_content(&message);
        assert!(content.len() <= WECOM_MARKDOWN_MAX_BYTES, "{}", content.len());
        assert!(content.ends_with(" <@lisi>"));
        assert!(content.contains(crate::notify::TRUNCATION_MARKER));
    }

    #[test]
    fn malformed_webhooks_are_refused_without_echoing_them() {
        let good = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa";
        assert!(WeComRobot::new(config(), good).is_ok());
        for bad in [
            "nonsense",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
            "https://qyapi.weixin.qq.com/cgi-bin/other?key=693a91f6",
            "https://example.com/cgi-bin/webhook/send?key=693a91f6",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6%26x%3D1",
        ] {
            let text = WeComRobot::new(config(), bad).unwrap_err().to_string();
            assert!(!text.contains("693a91f6"), "{text}");
        }
        let printed = format!("{:?}", WeComRobot::new(config(), good).unwrap());
        assert!(!printed.contains("693a91f6"), "{printed}");
    }

    #[test]
    fn errcodes_map_to_outcomes() {
        let robot = WeComRobot::from_key(config(), "693a91f6-7aaa").unwrap();
        let outcome = |code: i64| robot.outcome(&json!({"errcode": code, "errmsg": "msg"}));
        assert_eq!(outcome(0), SendResult::Sent { receipt: None });
        assert_eq!(outcome(45_009), SendResult::RateLimited { retry_after: WECOM_RETRY });
        assert!(matches!(outcome(-1), SendResult::Unavailable(_)));
        assert_eq!(outcome(93_000), SendResult::Rejected { code: "93000".into(), message: "msg".into() });
    }
}
