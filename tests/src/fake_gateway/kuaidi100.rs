//! Kuaidi100 (快递100) subscription endpoint: `POST {base}` (the real one is
//! `https://poll.kuaidi100.com/poll`) with the form `schema=json&param=<JSON>`.
//!
//! Checks each request as the documentation describes it (kuaidi100-api/php-demo
//! `src/subscribe.php`, java-demo `SubscribeParam.java` / `SubscribeParameters.java`):
//! `schema` is `json`; `param` is JSON with `company` (lower case), `number` (at most 32
//! characters) and `key` — the account's authorisation key, compared in constant time — and
//! `parameters{callbackurl, salt, resultv2, autoCom…}`. The subscription request carries no
//! signature of its own (the demos send only `schema` and `param`); `salt` is what Kuaidi100
//! later signs its pushes with, MD5(param + salt), which [`push_sign`] computes independently of
//! orderhub's signer (checked against the value in `tests` below, computed with Python).
//!
//! Answers `{"result":true,"returnCode":"200","message":"提交成功"}` (java-demo `Subscribe.java`).
//! The refusal codes are **unconfirmed** (no public source read lists them; see
//! docs/platform-apis.md): 501 for a waybill already subscribed, 600 for a wrong key, 700 for a
//! missing or malformed company or number, 500 for a fault injected with
//! [`FakeGateway::kuaidi100_fail_next`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::{FakeGateway, json as json_response, same};

/// The account key the fake accepts until told otherwise.
pub const DEFAULT_KEY: &str = "kuaidi100-account-key";

/// One subscription the fake took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `company`.
    pub company: String,
    /// `number`.
    pub number: String,
    /// `parameters.callbackurl`.
    pub callback_url: String,
    /// `parameters.salt`.
    pub salt: String,
    /// `parameters.resultv2`.
    pub resultv2: String,
    /// `parameters.autoCom`.
    pub auto_com: String,
    /// Whether it was refused, and with which return code.
    pub refused: Option<String>,
}

/// The fake's Kuaidi100 state.
#[derive(Debug, Default)]
pub(crate) struct State100 {
    pub(crate) key: Option<String>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) faults: u32,
}

/// UPPER hex MD5(param + salt): the signature of a push (java-demo `SignUtils.sign(param + salt)`).
pub fn push_sign(param: &str, salt: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(param.as_bytes());
    hasher.update(salt.as_bytes());
    hex::encode_upper(hasher.finalize())
}

fn answer(result: bool, code: &str, message: &str) -> Response {
    json_response(json!({"result": result, "returnCode": code, "message": message}))
}

pub(crate) async fn route(State(gateway): State<FakeGateway>, method: Method, body: Bytes) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let param: Value = field("param").and_then(|p| serde_json::from_str(&p).ok()).unwrap_or(Value::Null);
    let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let parameters = param.get("parameters").cloned().unwrap_or(Value::Null);
    let mut subscription = Subscription {
        company: text(&param, "company"),
        number: text(&param, "number"),
        callback_url: text(&parameters, "callbackurl"),
        salt: text(&parameters, "salt"),
        resultv2: text(&parameters, "resultv2"),
        auto_com: text(&parameters, "autoCom"),
        refused: None,
    };
    let mut inner = gateway.lock_kuaidi100();
    let key = inner.key.clone().unwrap_or_else(|| DEFAULT_KEY.to_owned());
    let refusal = if method != Method::POST || field("schema").as_deref() != Some("json") || param.is_null() {
        Some(("700", "请求参数错误"))
    } else if !same(&text(&param, "key"), &key) {
        Some(("600", "您不是合法的订阅者（即授权Key出错）"))
    } else if subscription.number.is_empty()
        || subscription.number.chars().count() > 32
        || subscription.company.is_empty()
        || subscription.company.chars().any(|c| c.is_ascii_uppercase())
    {
        Some(("700", "订阅方的订阅数据存在错误"))
    } else if inner.faults > 0 {
        inner.faults -= 1;
        Some(("500", "服务器错误"))
    } else if inner
        .subscriptions
        .iter()
        .any(|s| s.refused.is_none() && s.company == subscription.company && s.number == subscription.number)
    {
        Some(("501", "重复订阅"))
    } else {
        None
    };
    subscription.refused = refusal.map(|(code, _)| code.to_owned());
    inner.subscriptions.push(subscription);
    match refusal {
        None => answer(true, "200", "提交成功"),
        Some((code, message)) => answer(false, code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_sign_is_upper_md5_of_param_and_salt() {
        // Computed with Python: hashlib.md5(b'{"status":"polling"}' + b"salt-1").hexdigest().upper()
        assert_eq!(push_sign(r#"{"status":"polling"}"#, "salt-1"), "E2C569393041570C71ADB0889117CC97");
    }
}
