//! Pinduoduo (拼多多) open API: the incremental lists order-sync pulls
//! (`pdd.order.number.list.increment.get`, `pdd.refund.list.increment.get`), the order query
//! refund-dual-check asks (`pdd.order.information.get`), and `pdd.pop.auth.token.refresh`.
//!
//! By order number the refund-check API is `pdd.order.information.get` (`order_sn`): its
//! `order_info` carries `after_sales_status` and `refund_status`. `pdd.refund.information.get`
//! describes one after-sale and needs its `after_sales_id`, which the port's order key does not
//! have (lywzx/pdd-node-sdk `PddOrderInformationGet.ts`, `PddRefundInformationGet.ts`).
//!
//! Request shape: a form `POST` to the router with `type, client_id, timestamp` (epoch seconds),
//! `data_type=JSON, version=V1, access_token`, the API's parameters and `sign`
//! (`domain::sources::pdd::sign`). Errors come as
//! `{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}`; every
//! code of PDD's published table is mapped on purpose in [`classify`] (docs/platform-apis.md,
//! "PDD errors").

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Duration;
use serde_json::Value;

use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::status::RawStatus;
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::json::{parse_time, text};
use domain::sources::pdd::sign::pdd_sign;

use super::{
    BuildError, Call, ClientConfig, Http, PDD_BASE_URL, PlatformError, page_number, refresh_token_of, rows,
    token_expiry, total,
};

/// Access-token codes that a refresh cures: 10019 "access_token已过期" and 10035 "access_token已过期
/// (请刷新access_token或者重新授权)" (PDD's error table as captured in lywzx/pdd-node-sdk
/// `packages/scripts/test/util.spec.ts`; `pdd-response.exception.ts` `accessTokenNeedRefresh`).
const TOKEN_EXPIRED: &[&str] = &["10019", "10035"];

/// Codes a refresh does not cure: 10014 "授权已被取消" (the shop withdrew the authorisation) and
/// 20032 "access_token或client_id错误" (a token not of this app). Same table.
const REVOKED: &[&str] = &["10014", "20032"];

/// Rate limits: 52101 "当前接口被限流" (the SDK's `retryAble`), 70031/70032 "调用过于频繁，请调整
/// 调用频率". No wait is given. Same table.
const RATE_LIMITED: &[&str] = &["52101", "70031", "70032"];

/// Temporarily unavailable, retry later: 52102 "当前接口暂时不可用", 52103 "服务暂时不可用，请稍后重
/// 试" (the SDK's `retryAble`), 50000 "系统内部错误", 70033 "当前接口因系统维护，暂时下线". Same table.
const RETRYABLE: &[&str] = &["52102", "52103", "50000", "70033"];

/// The business-error envelope code whose `isv.*-service-error:*` sub codes mean "服务异常，重试
/// 处理". Same table.
const SERVICE_ERROR: &str = "4000000";

/// Rows per page: "返回数量，默认 100。最大 100" (`PddOrderNumberListIncrementGet.ts`).
const PAGE_SIZE: u32 = 100;

/// A Pinduoduo open API client.
#[derive(Debug, Clone)]
pub struct PddClient {
    config: ClientConfig,
    http: Http,
}

impl PddClient {
    /// A client of Pinduoduo's real router with the default timeout.
    pub fn production() -> Result<Self, BuildError> {
        Self::new(ClientConfig::new(PDD_BASE_URL)?)
    }

    /// A client of the router at `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http })
    }

    /// Calls API `kind` with `params` (signed with the system parameters); the answer's
    /// `response_key` object.
    async fn call(
        &self,
        kind: &str,
        mut params: BTreeMap<String, String>,
        response_key: &str,
        credentials: &Credentials,
        call: Call,
    ) -> Result<Value, QueryError> {
        params.insert("type".into(), kind.into());
        params.insert("client_id".into(), credentials.app_key.clone());
        params.insert("timestamp".into(), self.config.clock.now().timestamp().to_string());
        params.insert("data_type".into(), "JSON".into());
        params.insert("version".into(), "V1".into());
        let sign = pdd_sign(credentials.app_secret.expose(), &params);
        params.insert("sign".into(), sign);
        // Everything in the body: the token stays out of the URL.
        self.http
            .post_form(
                &self.config.base_url,
                "application/x-www-form-urlencoded",
                &params,
                response_key,
                ["error_code", "error_msg"],
            )
            .await?
            .map_err(|error| classify(error, call, credentials))
    }

    async fn refresh(&self, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let params = BTreeMap::from([("refresh_token".to_owned(), refresh_token_of(credentials)?.to_owned())]);
        let response = self
            .call("pdd.pop.auth.token.refresh", params, "pop_auth_token_refresh_response", credentials, Call::Refresh)
            .await?;
        let access_token =
            text(&response, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let now = self.config.clock.now();
        let expires_at = token_expiry(now, response.get("expires_at"), response.get("expires_in"))
            .ok_or_else(|| QueryError::Malformed("no expires_at".into()))?;
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            expires_at,
            refresh_token: text(&response, "refresh_token").map(Secret::new),
            refresh_expires_at: token_expiry(
                now,
                response.get("refresh_token_expires_at"),
                response.get("refresh_token_expires_in"),
            ),
        })
    }

    /// One page of an incremental list: the window in epoch seconds ("end_updated_at -
    /// start_updated_at<=30min"), status filters "5 全部" / "1 全部", page from 1.
    async fn list(
        &self,
        feed: Feed,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let mut params = BTreeMap::from([
            ("access_token".to_owned(), credentials.access_token.expose().to_owned()),
            ("start_updated_at".to_owned(), window.start.timestamp().to_string()),
            // The window is half-open; PDD's end is inclusive, so end a second earlier.
            (
                "end_updated_at".to_owned(),
                (window.end - Duration::seconds(1)).timestamp().max(window.start.timestamp()).to_string(),
            ),
            ("page".to_owned(), page_number(page, 1).to_string()),
            ("page_size".to_owned(), PAGE_SIZE.to_string()),
        ]);
        let (api, key, list, id, time, refund_id) = match feed {
            Feed::Orders => {
                // Not `use_has_next`: it drops `total_count`, which backward paging needs.
                params.insert("order_status".into(), "5".into());
                params.insert("refund_status".into(), "5".into());
                (
                    "pdd.order.number.list.increment.get",
                    "order_sn_increment_get_response",
                    "order_sn_list",
                    "order_sn",
                    "updated_at",
                    None,
                )
            }
            Feed::Refunds => {
                // "1：全部" for both (niltor/open-pdd-net-sdk `GetRefundListIncrementRequestModel.cs`).
                params.insert("after_sales_status".into(), "1".into());
                params.insert("after_sales_type".into(), "1".into());
                (
                    "pdd.refund.list.increment.get",
                    "refund_increment_get_response",
                    "refund_list",
                    "order_sn",
                    "updated_time",
                    Some("id"),
                )
            }
        };
        let response = self.call(api, params, key, credentials, Call::Query).await?;
        let found = response.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Ok(ListPage { rows: rows(found, id, &[time], refund_id)?, total: total(&response, "total_count"), next: None })
    }
}

/// Maps a Pinduoduo error to the port's error, every documented code on purpose: token codes
/// to a refresh (or, when a refresh cannot help, to a re-authorisation), rate limits to a
/// back-off, the retryable ones to a retry, the rest named as they are (a bad signature, an
/// unknown client id, a missing permission: people must look).
fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    let code = error.code.as_str();
    let sub = error.sub_code.as_deref().unwrap_or_default();
    if call == Call::Query && TOKEN_EXPIRED.contains(&code) {
        return QueryError::TokenExpired;
    }
    if REVOKED.contains(&code) {
        return QueryError::Revoked { code: error.code };
    }
    if RATE_LIMITED.contains(&code) {
        return QueryError::RateLimited { retry_after_s: None };
    }
    if RETRYABLE.contains(&code) || (code == SERVICE_ERROR && sub.starts_with("isv.") && sub.contains("service-error"))
    {
        return QueryError::Unavailable { code: error.full_code() };
    }
    error.into_platform(credentials)
}

/// The after-sale state of an `order_info_get_response`. An answer without `order_info` is
/// read as "no such order" (which code, if any, Pinduoduo sends instead is not documented in
/// our sources).
fn refund_answer(response: &Value) -> Result<RefundAnswer, QueryError> {
    let order = response.get("order_info").filter(|o| o.is_object()).ok_or(QueryError::NotFound)?;
    let at = order.get("updated_at").and_then(parse_time);
    let statuses = ["after_sales_status", "refund_status"]
        .into_iter()
        .filter_map(|field| text(order, field).map(|code| (RawStatus::new(field, code), at)))
        .collect();
    Ok(RefundAnswer { statuses, ..RefundAnswer::default() })
}

#[async_trait]
impl PlatformQuery for PddClient {
    fn source(&self) -> Source {
        Source::Pdd
    }

    async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
        let params = BTreeMap::from([
            ("access_token".to_owned(), credentials.access_token.expose().to_owned()),
            ("order_sn".to_owned(), key.order_id.as_str().to_owned()),
        ]);
        let response =
            self.call("pdd.order.information.get", params, "order_info_get_response", credentials, Call::Query).await?;
        refund_answer(&response)
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        self.refresh(credentials).await
    }
}

#[async_trait]
impl TokenRefresh for PddClient {
    fn source(&self) -> Source {
        Source::Pdd
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        self.refresh(credentials).await
    }
}

#[async_trait]
impl ChangeFeed for PddClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            // "一次请求只能查询时间跨度为30分钟的增量交易记录".
            max_window: Duration::minutes(30),
            window: Duration::minutes(30),
            page_size: PAGE_SIZE,
            // "必须采用倒序的分页方式（从最后一页往回取）才能避免漏单问题".
            paging: Paging::Numbered { first: 1 },
            // "结束时间不小于拼多多系统时间前3min可以避免漏单问题" (read as: end at least 3 min ago).
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "pdd.order.number.list.increment.get",
            Feed::Refunds => "pdd.refund.list.increment.get",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn creds() -> Credentials {
        Credentials {
            app_key: "client".into(),
            app_secret: Secret::new("secret"),
            access_token: Secret::new("token"),
            refresh_token: None,
        }
    }

    #[test]
    fn every_documented_code_maps_on_purpose() {
        let e = |code: &str, sub: &str| PlatformError {
            code: code.into(),
            sub_code: Some(sub.into()),
            message: "m".into(),
        };
        let q = Call::Query;
        for code in ["10019", "10035"] {
            assert_eq!(classify(e(code, code), q, &creds()), QueryError::TokenExpired, "{code}");
        }
        for code in ["10014", "20032"] {
            assert_eq!(classify(e(code, code), q, &creds()), QueryError::Revoked { code: code.into() }, "{code}");
        }
        for code in ["52101", "70031", "70032"] {
            assert_eq!(classify(e(code, code), q, &creds()), QueryError::RateLimited { retry_after_s: None }, "{code}");
        }
        for code in ["52102", "52103", "50000", "70033"] {
            assert!(matches!(classify(e(code, code), q, &creds()), QueryError::Unavailable { .. }), "{code}");
        }
        assert!(matches!(
            classify(e("4000000", "isv.order-service-error:500"), q, &creds()),
            QueryError::Unavailable { .. }
        ));
        for code in [
            "10000", "10001", "10002", "10010", "10011", "10016", "20004", "20005", "20007", "20031", "50001", "50012",
            "70034",
        ] {
            assert!(matches!(classify(e(code, code), q, &creds()), QueryError::Platform { .. }), "{code} is named");
        }
        // A token error while refreshing is the refresh failing, not a reason to refresh.
        assert!(matches!(classify(e("10019", "10019"), Call::Refresh, &creds()), QueryError::Platform { .. }));
    }

    #[test]
    fn order_info_gives_raw_after_sale_codes() {
        let answer = refund_answer(&json!({"order_info": {
            "order_sn": "240101-1", "after_sales_status": 10, "refund_status": 4, "updated_at": "2026-11-11 10:00:00"
        }}))
        .unwrap();
        let codes: Vec<String> = answer.statuses.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(codes, ["after_sales_status=10", "refund_status=4"]);
        assert_eq!(answer.statuses[0].1, parse_time(&json!("2026-11-11 10:00:00")));
        assert_eq!(refund_answer(&json!({"order_info": null})), Err(QueryError::NotFound));
    }
}
