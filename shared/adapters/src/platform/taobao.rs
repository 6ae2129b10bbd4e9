//! Taobao/Tmall TOP API: `taobao.trade.fullinfo.get` for an order's refund state and
//! `taobao.top.auth.token.refresh`.
//!
//! By order number (`tid`) the API is `taobao.trade.fullinfo.get`: the trade's `status` and each
//! sub-order's `refund_status` and `refund_id`. `taobao.refund.get` describes one refund and
//! needs its `refund_id`, which the port's order key does not have (cattles/taobao-sdk-java
//! `TradeFullinfoGetRequest.java`, `RefundGetRequest.java`, `domain/Order.java`).
//!
//! Request shape (`DefaultTaobaoClient.java`): `method, app_key, session, timestamp`
//! (`yyyy-MM-dd HH:mm:ss`, GMT+8), `format=json, v=2.0, sign_method`, the API's parameters and
//! `sign` (`domain::sources::taobao_sign`). The Java SDK puts the system parameters in the
//! query string; here every parameter goes in the form body, so the session never appears in
//! a URL. Errors come as `{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono_tz::Asia::Shanghai;
use serde_json::Value;

use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::status::RawStatus;
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::secrets::Secret;
use domain::sources::json::{parse_time, text};
use domain::sources::taobao::sign::{TaobaoSignMethod, taobao_sign};

use super::{BuildError, Call, ClientConfig, Http, PlatformError, TAOBAO_BASE_URL, refresh_token_of, token_expiry};

/// 27 Invalid session (expired, revoked or not this app's). TOP's system error table, with 26
/// Missing session (cattles/taobao-sdk-java `internal/cache/ErrorCode.java` has 26).
const INVALID_SESSION: &str = "27";

/// 7 App Call Limited; `sub_msg` says "This ban will last for N more seconds". Several public
/// clients agree on both (they parse N to wait).
const RATE_LIMITED: &str = "7";

/// The `sub_code` of a trade the shop does not have (trade API sub-task docs in the TOP SDKs:
/// `{"sub_code":"isv.trade-not-exist","sub_msg":"交易订单不存在"}`).
const TRADE_NOT_EXIST: &str = "isv.trade-not-exist";

/// The fields `taobao.trade.fullinfo.get` is asked for.
const FIELDS: &str = "tid,status,modified,orders.oid,orders.status,orders.refund_status,orders.refund_id";

/// A Taobao/Tmall TOP API client.
#[derive(Debug, Clone)]
pub struct TaobaoClient {
    config: ClientConfig,
    http: Http,
    sign_method: TaobaoSignMethod,
}

impl TaobaoClient {
    /// A client of TOP's real router with the default timeout, signing with HMAC-MD5 (the Java
    /// SDK's default, `sign_method=hmac`).
    pub fn production() -> Result<Self, BuildError> {
        Self::new(ClientConfig::new(TAOBAO_BASE_URL)?, TaobaoSignMethod::HmacMd5)
    }

    /// A client of the router at `config.base_url`, signing with `sign_method`.
    pub fn new(config: ClientConfig, sign_method: TaobaoSignMethod) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http, sign_method })
    }

    /// Calls `method` with `params` (and `session` when given); the answer's `response_key`
    /// object.
    async fn call(
        &self,
        method: &str,
        mut params: BTreeMap<String, String>,
        response_key: &str,
        credentials: &Credentials,
        call: Call,
    ) -> Result<Value, QueryError> {
        let timestamp = self.config.clock.now().with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string();
        params.insert("method".into(), method.into());
        params.insert("app_key".into(), credentials.app_key.clone());
        params.insert("timestamp".into(), timestamp);
        params.insert("format".into(), "json".into());
        params.insert("v".into(), "2.0".into());
        params.insert("sign_method".into(), self.sign_method.as_param().into());
        let sign = taobao_sign(credentials.app_secret.expose(), &params, self.sign_method);
        params.insert("sign".into(), sign);
        self.http
            .post_form(
                &self.config.base_url,
                "application/x-www-form-urlencoded;charset=utf-8",
                &params,
                response_key,
                ["code", "msg"],
            )
            .await?
            .map_err(|error| classify(error, call, credentials))
    }
}

/// Maps a TOP error to the port's error.
fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    match error.code.as_str() {
        INVALID_SESSION if call == Call::Query => QueryError::TokenExpired,
        RATE_LIMITED => QueryError::RateLimited { retry_after_s: ban_seconds(&error.message) },
        _ if call == Call::Query && error.sub_code.as_deref() == Some(TRADE_NOT_EXIST) => QueryError::NotFound,
        _ => error.into_platform(credentials),
    }
}

/// N of "This ban will last for N more seconds".
fn ban_seconds(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    let rest = &lower[lower.find("last for")? + "last for".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The refund state of a `trade_fullinfo_get_response`.
fn refund_answer(response: &Value) -> Result<RefundAnswer, QueryError> {
    let trade =
        response.get("trade").filter(|t| t.is_object()).ok_or_else(|| QueryError::Malformed("no trade".into()))?;
    let at = trade.get("modified").and_then(parse_time);
    let mut answer = RefundAnswer::default();
    if let Some(status) = text(trade, "status") {
        answer.statuses.push((RawStatus::new("trade_status", status), at));
    }
    // `orders` is `{"order": [...]}` in TOP's JSON. Each sub-order with a refund is a case of its
    // own: its `refund_id`, over its `oid`; `NO_REFUND` sub-orders say nothing.
    let orders = trade.get("orders").and_then(|o| o.get("order")).and_then(Value::as_array);
    for order in orders.into_iter().flatten() {
        let Some(refund) = text(order, "refund_status").filter(|r| r != "NO_REFUND") else { continue };
        answer.cases.push(RefundAnswer {
            statuses: vec![(RawStatus::new("refund_status", refund), at)],
            refund_id: text(order, "refund_id"),
            lines: text(order, "oid").into_iter().collect(),
            ..RefundAnswer::default()
        });
    }
    Ok(answer)
}

/// The token of a `top_auth_token_refresh_response`, whose `token_result` is a JSON string
/// (bububa/opentaobao `TaobaoTopAuthTokenRefreshAPIResponseModel`) with `access_token`,
/// `refresh_token`, `expire_time` (epoch ms) and `expires_in` (s).
fn refreshed(response: &Value, now: chrono::DateTime<chrono::Utc>) -> Result<RefreshedToken, QueryError> {
    let token: Value = match response.get("token_result") {
        Some(Value::String(raw)) => {
            serde_json::from_str(raw).map_err(|_| QueryError::Malformed("token_result is not JSON".into()))?
        }
        Some(object @ Value::Object(_)) => object.clone(),
        _ => return Err(QueryError::Malformed("no token_result".into())),
    };
    let access_token = text(&token, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
    let expires_at = token_expiry(now, token.get("expire_time"), token.get("expires_in"))
        .ok_or_else(|| QueryError::Malformed("no expire_time".into()))?;
    Ok(RefreshedToken {
        access_token: Secret::new(access_token),
        expires_at,
        refresh_token: text(&token, "refresh_token").map(Secret::new),
    })
}

#[async_trait]
impl PlatformQuery for TaobaoClient {
    fn source(&self) -> Source {
        Source::Taobao
    }

    async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
        let params = BTreeMap::from([
            ("session".to_owned(), credentials.access_token.expose().to_owned()),
            ("fields".to_owned(), FIELDS.to_owned()),
            ("tid".to_owned(), key.order_id.as_str().to_owned()),
        ]);
        let response = self
            .call("taobao.trade.fullinfo.get", params, "trade_fullinfo_get_response", credentials, Call::Query)
            .await?;
        refund_answer(&response)
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let params = BTreeMap::from([("refresh_token".to_owned(), refresh_token_of(credentials)?.to_owned())]);
        let response = self
            .call(
                "taobao.top.auth.token.refresh",
                params,
                "top_auth_token_refresh_response",
                credentials,
                Call::Refresh,
            )
            .await?;
        refreshed(&response, self.config.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn creds() -> Credentials {
        Credentials {
            app_key: "12345678".into(),
            app_secret: Secret::new("tb-app-secret"),
            access_token: Secret::new("tb-session"),
            refresh_token: None,
        }
    }

    #[test]
    fn errors_map_to_the_port() {
        let e = |code: &str, sub: Option<&str>, msg: &str| PlatformError {
            code: code.into(),
            sub_code: sub.map(Into::into),
            message: msg.into(),
        };
        let q = Call::Query;
        assert_eq!(
            classify(e("27", Some("invalid-sessionkey"), "Invalid session"), q, &creds()),
            QueryError::TokenExpired
        );
        assert_eq!(
            classify(
                e("7", Some("accesscontrol.limited-by-app-access-count"), "This ban will last for 31 more seconds"),
                q,
                &creds()
            ),
            QueryError::RateLimited { retry_after_s: Some(31) }
        );
        assert_eq!(
            classify(e("7", None, "App Call Limited"), q, &creds()),
            QueryError::RateLimited { retry_after_s: None }
        );
        assert_eq!(classify(e("15", Some("isv.trade-not-exist"), "交易订单不存在"), q, &creds()), QueryError::NotFound);
        assert_eq!(
            classify(e("25", None, "Invalid signature"), q, &creds()),
            QueryError::Platform { code: "25".into(), message: "Invalid signature".into() }
        );
        assert!(matches!(
            classify(e("27", None, "Invalid session"), Call::Refresh, &creds()),
            QueryError::Platform { .. }
        ));
    }

    #[test]
    fn trade_gives_trade_and_refund_codes() {
        let answer = refund_answer(&json!({"trade": {
            "tid": 1234567890, "status": "TRADE_CLOSED", "modified": "2026-11-11 10:00:00",
            "orders": {"order": [
                {"oid": 1, "status": "TRADE_CLOSED", "refund_status": "SUCCESS", "refund_id": 555},
                {"oid": 2, "status": "TRADE_CLOSED", "refund_status": "SUCCESS", "refund_id": 556},
                {"oid": 3, "status": "TRADE_CLOSED", "refund_status": "NO_REFUND"}
            ]}
        }}))
        .unwrap();
        let codes: Vec<String> = answer.all_statuses().iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(codes, ["trade_status=TRADE_CLOSED", "refund_status=SUCCESS", "refund_status=SUCCESS"]);
        let cases: Vec<(Option<&str>, Vec<String>)> =
            answer.cases.iter().map(|c| (c.refund_id.as_deref(), c.lines.clone())).collect();
        assert_eq!(cases, [(Some("555"), vec!["1".to_owned()]), (Some("556"), vec!["2".to_owned()])]);
        assert_eq!(answer.refund_id, None, "the trade's own code is about the whole order");
        assert_eq!(answer.statuses[0].1, Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single());
    }

    #[test]
    fn token_result_is_a_json_string() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let raw = r#"{"access_token":"new","refresh_token":"r2","expire_time":1767830400000,"expires_in":604800}"#;
        let token = refreshed(&json!({ "token_result": raw }), now).unwrap();
        assert_eq!(token.access_token.expose(), "new");
        assert_eq!(token.expires_at, Utc.with_ymd_and_hms(2026, 1, 8, 0, 0, 0).single().unwrap());
        assert_eq!(token.refresh_token.map(|t| t.expose().to_owned()).as_deref(), Some("r2"));
        assert!(refreshed(&json!({"token_result": "nope"}), now).is_err());
    }
}
