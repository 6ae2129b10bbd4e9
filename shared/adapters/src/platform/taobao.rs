//! Taobao/Tmall TOP API: the incremental lists order-sync pulls
//! (`taobao.trades.sold.increment.get`, `taobao.refunds.receive.get`), `taobao.trade.fullinfo.get`
//! for an order's refund state, and `taobao.top.auth.token.refresh`.
//!
//! Why these lists and not TMC (`taobao.tmc.messages.consume`): docs/platform-apis.md, "Taobao:
//! increment.get or TMC over HTTP?" — per-shop checkpoints, leases and back-off, three months of
//! reach for catch-up, full rows instead of ids.
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
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;

use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::status::RawStatus;
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::json::{parse_time, text};
use domain::sources::taobao::sign::{TaobaoSignMethod, taobao_sign};

use super::{
    BuildError, Call, ClientConfig, Http, PlatformError, TAOBAO_BASE_URL, page_number, refresh_token_of, rows,
    token_expiry, total,
};

/// 27 Invalid session (expired, revoked or not this app's). TOP's system error table, with 26
/// Missing session (cattles/taobao-sdk-java `internal/cache/ErrorCode.java` has 26).
const INVALID_SESSION: &str = "27";

/// 7 App Call Limited (`sub_msg` "This ban will last for N more seconds"; several public
/// clients agree, they parse N to wait) and 8 App Call Exceeds Limited Frequency (TOP's table).
const RATE_LIMITED: &[&str] = &["7", "8"];

/// 10 Service Currently Unavailable (TOP's table): retry later.
const UNAVAILABLE: &str = "10";

/// 15 Remote service error: a sub code starting `isp.` is the platform's own fault, to retry
/// later ("子错误码(sub_code)是\"isp.\"开头的调用错误 … 隔一段时间再重试就可以解决"); `isv.` ones are
/// business errors (TOP's table as copied at blog.unvs.cn, docs/platform-apis.md).
const REMOTE_ERROR: &str = "15";

/// The fields the increment lists are asked for (`fields`, required).
const TRADE_FIELDS: &str = "tid,status,modified,created,orders.oid,orders.status,orders.refund_status,orders.refund_id,orders.sku_id,orders.outer_sku_id,orders.num";
const REFUND_FIELDS: &str = "refund_id,tid,oid,status,modified,refund_fee,order_status";

/// Rows per page: "每页条数。取值范围：1~100，默认值：40"; 40–50 advised for speed.
const PAGE_SIZE: u32 = 50;

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
        code if RATE_LIMITED.contains(&code) => QueryError::RateLimited { retry_after_s: ban_seconds(&error.message) },
        UNAVAILABLE => QueryError::Unavailable { code: error.full_code() },
        REMOTE_ERROR if error.sub_code.as_deref().is_some_and(|s| s.starts_with("isp.")) => {
            QueryError::Unavailable { code: error.full_code() }
        }
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
    // `re_expires_in` (seconds) or `refresh_token_valid_time` (epoch ms): field names unconfirmed.
    let refresh_expires_at = token_expiry(now, token.get("refresh_token_valid_time"), token.get("re_expires_in"));
    Ok(RefreshedToken {
        access_token: Secret::new(access_token),
        expires_at,
        refresh_token: text(&token, "refresh_token").map(Secret::new),
        refresh_expires_at,
    })
}

/// `yyyy-MM-dd HH:mm:ss` in GMT+8, TOP's time format ("时区为GMT+8").
fn top_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()
}

impl TaobaoClient {
    /// One page of an increment list: `start_modified`/`end_modified`, `page_no` from 1
    /// ("必须采用倒序的分页方式": the use case pages backwards), `fields` as the rows need.
    async fn list(
        &self,
        feed: Feed,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let (api, key, fields) = match feed {
            Feed::Orders => ("taobao.trades.sold.increment.get", "trades_sold_increment_get_response", TRADE_FIELDS),
            Feed::Refunds => ("taobao.refunds.receive.get", "refunds_receive_get_response", REFUND_FIELDS),
        };
        let params = BTreeMap::from([
            ("session".to_owned(), credentials.access_token.expose().to_owned()),
            ("fields".to_owned(), fields.to_owned()),
            ("start_modified".to_owned(), top_time(window.start)),
            ("end_modified".to_owned(), top_time((window.end - Duration::seconds(1)).max(window.start))),
            ("page_no".to_owned(), page_number(page, 1).to_string()),
            ("page_size".to_owned(), PAGE_SIZE.to_string()),
        ]);
        let response = self.call(api, params, key, credentials, Call::Query).await?;
        // Lists are wrapped without `simplify`: `"trades": {"trade": [...]}`.
        let (outer, inner, id, refund_id) = match feed {
            Feed::Orders => ("trades", "trade", "tid", None),
            Feed::Refunds => ("refunds", "refund", "tid", Some("refund_id")),
        };
        let list = response.get(outer).map(|o| o.get(inner).unwrap_or(o)).and_then(Value::as_array);
        let found = list.map(Vec::as_slice).unwrap_or_default();
        Ok(ListPage {
            rows: rows(found, id, &["modified"], refund_id)?,
            total: total(&response, "total_results"),
            next: None,
        })
    }
}

#[async_trait]
impl TokenRefresh for TaobaoClient {
    fn source(&self) -> Source {
        Source::Taobao
    }

    async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        PlatformQuery::refresh_token(self, shop, credentials).await
    }
}

#[async_trait]
impl ChangeFeed for TaobaoClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            // "一次请求只能查询时间跨度为一天的增量交易记录" … "建议使用30分钟以内的时间跨度".
            max_window: Duration::days(1),
            window: Duration::minutes(30),
            page_size: PAGE_SIZE,
            // "返回的数据结果是以订单的修改时间倒序排列的，通过从后往前翻页的方式可以避免漏单问题".
            paging: Paging::Numbered { first: 1 },
            // Not documented for TOP; the same margin as PDD's (unconfirmed).
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "taobao.trades.sold.increment.get",
            Feed::Refunds => "taobao.refunds.receive.get",
        }
    }

    async fn list_orders(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        self.list(Feed::Orders, window, page, credentials).await
    }

    async fn list_refunds(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        self.list(Feed::Refunds, window, page, credentials).await
    }
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
        assert!(matches!(
            classify(e("10", None, "Service Currently Unavailable"), q, &creds()),
            QueryError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(e("15", Some("isp.top-remote-connection-timeout"), "远程服务调用超时"), q, &creds()),
            QueryError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(e("15", Some("isv.invalid-parameter"), "x"), q, &creds()),
            QueryError::Platform { .. }
        ));
        assert_eq!(classify(e("8", None, "x"), q, &creds()), QueryError::RateLimited { retry_after_s: None });
        for code in [
            "9", "11", "12", "13", "21", "22", "23", "24", "26", "28", "29", "30", "31", "32", "33", "34", "40", "41",
            "42", "43",
        ] {
            assert!(
                matches!(classify(e(code, None, "x"), q, &creds()), QueryError::Platform { .. }),
                "{code} is named"
            );
        }
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
