//! Kuaidi100 (快递100) subscription: `POST https://poll.kuaidi100.com/poll`, form `schema=json`
//! and `param` (JSON: `company`, `number`, `key`, `parameters{callbackurl, salt, resultv2,
//! autoCom}`) — kuaidi100-api/php-demo `src/subscribe.php`, java-demo `SubscribeParam.java`,
//! `SubscribeParameters.java`. The request carries no signature: the account key inside `param`
//! authorises it; `salt` is what Kuaidi100 signs its pushes with (MD5(param + salt)).
//!
//! Answer `{result, returnCode, message}`; `{"result":true,"returnCode":"200","message":"提交成功"}`
//! on success (java-demo `Subscribe.java`). Other return codes are not in any source read
//! (docs/platform-apis.md): 501 (重复订阅, by common knowledge) is taken as already subscribed, a
//! 5xx-class code or HTTP failure as "try later", anything else as refused and named.

use async_trait::async_trait;
use serde_json::json;

use domain::model::secret::Secret;
use domain::ports::carrier::{SubscribeError, SubscribeRequest, TrackingSubscriptions};
use domain::ports::platform::QueryError;
use domain::sources::json::text;

use super::{BuildError, ClientConfig, Http, form_body};

/// Kuaidi100's subscription endpoint.
pub const KUAIDI100_POLL_URL: &str = "https://poll.kuaidi100.com/poll";

/// A Kuaidi100 subscription client.
#[derive(Debug, Clone)]
pub struct Kuaidi100Client {
    config: ClientConfig,
    http: Http,
}

impl Kuaidi100Client {
    /// A client of the endpoint at `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http })
    }
}

/// The `param` of a subscription.
pub fn subscribe_param(request: &SubscribeRequest, key: &Secret) -> String {
    json!({
        "company": request.company,
        "number": request.number,
        "key": key.expose(),
        "parameters": {
            "callbackurl": request.callback_url,
            "salt": request.salt.expose(),
            // 4: detailed state codes and sub-states in every push (SubscribeParameters.java).
            "resultv2": "4",
            "autoCom": if request.auto_company { "1" } else { "0" },
        }
    })
    .to_string()
}

#[async_trait]
impl TrackingSubscriptions for Kuaidi100Client {
    async fn subscribe(&self, request: &SubscribeRequest, key: &Secret) -> Result<(), SubscribeError> {
        let param = subscribe_param(request, key);
        let form = [("schema".to_owned(), "json".to_owned()), ("param".to_owned(), param)];
        let client = self.http.client().map_err(|e| SubscribeError::Unavailable(e.to_string()))?;
        let call = client
            .post(self.config.base_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form.iter().map(|(k, v)| (k, v))));
        let reply = self.http.send(call).await.map_err(|e| SubscribeError::Unavailable(e.to_string()))?;
        let body = match reply.into_body() {
            Ok(body) => body,
            Err(QueryError::Malformed(why)) => return Err(SubscribeError::Unavailable(why)),
            Err(err) => return Err(SubscribeError::Unavailable(err.to_string())),
        };
        let code = text(&body, "returnCode").unwrap_or_default();
        let message: String =
            text(&body, "message").unwrap_or_default().replace(key.expose(), "***").chars().take(200).collect();
        match code.as_str() {
            "200" | "501" => Ok(()),
            code if code.starts_with('5') => Err(SubscribeError::Unavailable(format!("{code} {message}"))),
            "" => Err(SubscribeError::Unavailable("no returnCode in the answer".into())),
            code => Err(SubscribeError::Refused { code: code.to_owned(), message }),
        }
    }
}
