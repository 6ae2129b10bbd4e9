//! The domain's robot ports over the DingTalk and WeCom clients: robots by name, each built from
//! its own SSM parameter (`/orderhub/<stage>/notify/robots/<name>`, SecureString JSON) and cached.
//!
//! A robot's parameter:
//!
//! ```json
//! {"kind": "dingtalk", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=…",
//!  "secret": "SEC…", "at_mobiles": ["138…"], "at_user_ids": ["manager01"], "at_all": false}
//! {"kind": "wecom", "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
//!  "at_user_ids": ["zhangsan"]}
//! ```
//!
//! Whom a critical message `@`s lives here, beside the webhook, so staff numbers stay in the
//! parameter store and never reach a record or a log. A webhook, key or number that is not the
//! provider's is refused at load with what is wrong ([`RobotLookupError::Malformed`]), never the
//! value; the answer is cached like a good robot, so a broken key costs one parameter read per
//! TTL, not one per message.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::RwLock;

use domain::model::alert::{AlertMessage, RobotOutcome, Severity};
use domain::ports::Secrets;
use domain::ports::clock::Clock;
use domain::ports::notify::{Robot, RobotLookupError, Robots};
use domain::rules::alerting::valid_robot_name;

use super::{ChannelConfig, DingTalkRobot, Phone, RobotMessage, SendResult, WeComRobot};

/// Where the robot clients send (the providers' own origins in production, the fake in tests).
#[derive(Debug, Clone)]
pub struct RobotEndpoints {
    /// DingTalk's origin.
    pub dingtalk: ChannelConfig,
    /// WeCom's origin.
    pub wecom: ChannelConfig,
}

/// A robot's parameter. No `Debug`: it holds the webhook token and the signing secret.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RobotParameter {
    Dingtalk {
        webhook: String,
        secret: String,
        #[serde(default)]
        at_mobiles: Vec<String>,
        #[serde(default)]
        at_user_ids: Vec<String>,
        #[serde(default)]
        at_all: bool,
    },
    Wecom {
        webhook: String,
        #[serde(default)]
        at_user_ids: Vec<String>,
    },
}

#[derive(Debug)]
enum Client {
    DingTalk(DingTalkRobot),
    WeCom(WeComRobot),
}

/// A robot with whom it `@`s on critical messages.
#[derive(Debug)]
pub struct ConfiguredRobot {
    client: Client,
    at_mobiles: Vec<Phone>,
    at_user_ids: Vec<String>,
    at_all: bool,
}

/// A client's result in the domain's words.
pub fn robot_outcome(result: SendResult) -> RobotOutcome {
    match result {
        SendResult::Sent { .. } => RobotOutcome::Sent,
        SendResult::RateLimited { retry_after } => RobotOutcome::RateLimited {
            retry_after: chrono::Duration::from_std(retry_after).unwrap_or(chrono::Duration::minutes(10)),
        },
        SendResult::Rejected { code, message } => RobotOutcome::Rejected { code, message },
        SendResult::Unavailable(reason) => RobotOutcome::Unavailable(reason),
    }
}

#[async_trait]
impl Robot for ConfiguredRobot {
    async fn send(&self, message: &AlertMessage) -> RobotOutcome {
        let mut out = RobotMessage::new(message.title.clone(), message.markdown.clone());
        if message.severity == Severity::Critical {
            out.at_mobiles.clone_from(&self.at_mobiles);
            out.at_user_ids.clone_from(&self.at_user_ids);
            out.at_all = self.at_all;
        }
        let result = match &self.client {
            Client::DingTalk(robot) => robot.send(&out).await,
            Client::WeCom(robot) => robot.send(&out).await,
        };
        robot_outcome(result)
    }
}

/// What a parameter that did not parse says: the category and position, never the text (it
/// holds the webhook token).
fn json_problem(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "an unexpected field, kind or value",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("parameter is {what} (line {} column {})", error.line(), error.column())
}

fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// Builds a robot from its parameter's text.
pub fn build_robot(text: &str, endpoints: &RobotEndpoints) -> Result<ConfiguredRobot, RobotLookupError> {
    let parameter: RobotParameter =
        serde_json::from_str(text).map_err(|e| RobotLookupError::Malformed(json_problem(&e)))?;
    let malformed = |e: super::NotifyError| RobotLookupError::Malformed(e.to_string());
    let check_ids = |ids: &[String]| {
        if ids.iter().all(|id| valid_user_id(id)) {
            Ok(())
        } else {
            Err(RobotLookupError::Malformed("at_user_ids: a user id is not letters, digits or -_.@".into()))
        }
    };
    match parameter {
        RobotParameter::Dingtalk { webhook, secret, at_mobiles, at_user_ids, at_all } => {
            check_ids(&at_user_ids)?;
            let at_mobiles = at_mobiles
                .iter()
                .map(|m| Phone::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| RobotLookupError::Malformed("at_mobiles: a phone number is malformed".into()))?;
            let client = DingTalkRobot::new(endpoints.dingtalk.clone(), &webhook, &secret).map_err(malformed)?;
            Ok(ConfiguredRobot { client: Client::DingTalk(client), at_mobiles, at_user_ids, at_all })
        }
        RobotParameter::Wecom { webhook, at_user_ids } => {
            check_ids(&at_user_ids)?;
            let client = WeComRobot::new(endpoints.wecom.clone(), &webhook).map_err(malformed)?;
            Ok(ConfiguredRobot { client: Client::WeCom(client), at_mobiles: Vec::new(), at_user_ids, at_all: false })
        }
    }
}

type Entry = (DateTime<Utc>, Result<Arc<dyn Robot>, RobotLookupError>);

/// The robots, by name, from the parameter store through the [`Secrets`] port, cached for `ttl`.
pub struct RobotDirectory<'a> {
    secrets: &'a dyn Secrets,
    prefix: String,
    endpoints: RobotEndpoints,
    ttl: chrono::Duration,
    clock: &'a dyn Clock,
    cache: RwLock<HashMap<String, Entry>>,
}

impl<'a> RobotDirectory<'a> {
    /// Robots whose parameters are `{prefix}{name}`, sending to `endpoints`.
    pub fn new(
        secrets: &'a dyn Secrets,
        prefix: impl Into<String>,
        endpoints: RobotEndpoints,
        ttl: chrono::Duration,
        clock: &'a dyn Clock,
    ) -> Self {
        Self { secrets, prefix: prefix.into(), endpoints, ttl, clock, cache: RwLock::new(HashMap::new()) }
    }
}

#[async_trait]
impl Robots for RobotDirectory<'_> {
    async fn robot(&self, name: &str) -> Result<Arc<dyn Robot>, RobotLookupError> {
        if !valid_robot_name(name) {
            return Err(RobotLookupError::NotConfigured);
        }
        let now = self.clock.now();
        if let Some((fetched, value)) = self.cache.read().await.get(name)
            && now - *fetched < self.ttl
        {
            return value.clone();
        }
        let value: Result<Arc<dyn Robot>, RobotLookupError> =
            match self.secrets.get(&format!("{}{name}", self.prefix)).await {
                Ok(Some(text)) => build_robot(&text, &self.endpoints).map(|r| Arc::new(r) as Arc<dyn Robot>),
                Ok(None) => Err(RobotLookupError::NotConfigured),
                // Not cached: the next message asks again.
                Err(err) => return Err(RobotLookupError::Unavailable(err.to_string())),
            };
        self.cache.write().await.insert(name.to_owned(), (now, value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> RobotEndpoints {
        RobotEndpoints {
            dingtalk: ChannelConfig::new("https://oapi.dingtalk.com").unwrap(),
            wecom: ChannelConfig::new("https://qyapi.weixin.qq.com").unwrap(),
        }
    }

    #[test]
    fn robots_are_built_from_their_parameters_and_bad_ones_are_named_without_their_values() {
        let ding = r#"{"kind":"dingtalk","webhook":"https://oapi.dingtalk.com/robot/send?access_token=tok123",
                       "secret":"SECsecret0001","at_mobiles":["13812345678"],"at_user_ids":["manager01"]}"#;
        let robot = build_robot(ding, &endpoints()).unwrap();
        let printed = format!("{robot:?}");
        assert!(!printed.contains("tok123") && !printed.contains("SECsecret0001") && !printed.contains("13812345678"));
        let wecom =
            r#"{"kind":"wecom","webhook":"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"}"#;
        assert!(build_robot(wecom, &endpoints()).is_ok());
        for (text, says) in [
            (
                r#"{"kind":"dingtalk","webhook":"https://evil.example/robot/send?access_token=tok123","secret":"SECsecret0001"}"#,
                "not https://oapi.dingtalk.com",
            ),
            (
                r#"{"kind":"dingtalk","webhook":"https://oapi.dingtalk.com/robot/send?access_token=tok123","secret":"tok-secret"}"#,
                "SEC",
            ),
            (
                r#"{"kind":"dingtalk","webhook":"https://oapi.dingtalk.com/robot/send?access_token=tok123","secret":"SECsecret0001","at_mobiles":["12"]}"#,
                "at_mobiles",
            ),
            (r#"{"kind":"slack","webhook":"https://hooks.example/tok123"}"#, "unexpected"),
            (r#"{"kind":"wecom","webhook":"tok123"}"#, "not a URL"),
            ("tok123", "not JSON"),
        ] {
            let error = build_robot(text, &endpoints()).err().unwrap();
            let text = error.to_string();
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("tok123") && !text.contains("secret0001"), "{text}");
        }
    }
}
