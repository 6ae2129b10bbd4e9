//! JD (京东) JOS: the order list order-sync pulls (`jingdong.pop.order.enSearch`, orders by the
//! time their state or waybill changed), the refund-application list, and the OAuth refresh.
//!
//! Request shape: `POST {router}` form with `method, app_key, access_token, timestamp`
//! (`yyyy-MM-dd HH:mm:ss.SSS+0800`), `v=2.0`, `360buy_param_json` (the API's parameters as one
//! JSON string) and `sign` (`domain::sources::jd::sign`; JD developer guide listId=2643, its
//! example asserted in `tests/src/fake_gateway/jd.rs`). Token refresh:
//! `GET https://open-oauth.jd.com/oauth2/refresh_token?app_key&app_secret&grant_type=refresh_token&refresh_token`
//! ([agree], public JD auth clients). The response keys, the error codes and the refund list
//! API are **unconfirmed** (docs/platform-apis.md "JD"): the mapping below follows the fake's
//! choices and names every other code as it is.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use reqwest::Url;
use serde_json::{Value, json};

use domain::model::ids::{ShopId, Source};
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, QueryError, RefreshedToken};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::jd::sign::jd_sign;
use domain::sources::json::text;

use super::{
    BuildError, Call, ClientConfig, Http, PlatformError, page_number, refresh_token_of, rows, token_expiry, total,
};

/// JD's router.
pub const JD_BASE_URL: &str = "https://api.jd.com/routerjson";
/// JD's OAuth refresh endpoint.
pub const JD_OAUTH_URL: &str = "https://open-oauth.jd.com/oauth2/refresh_token";

/// 19: invalid or expired access token (unconfirmed: JD's codes are not in any source read).
const TOKEN_INVALID: &str = "19";
/// 7: call frequency exceeded (unconfirmed).
const RATE_LIMITED: &str = "7";
/// 66: the platform's backend timed out (unconfirmed).
const BACKEND_TIMEOUT: &str = "66";

/// Rows per page (JD's limit unconfirmed; 100 is what the fake allows).
const PAGE_SIZE: u32 = 100;

/// A JD JOS client.
#[derive(Debug, Clone)]
pub struct JdClient {
    config: ClientConfig,
    http: Http,
    oauth: Url,
}

impl JdClient {
    /// A client of the router at `config.base_url`; token refreshes go to JD's OAuth host, or,
    /// for any other router (a fake, a proxy), to `oauth2/refresh_token` beside it.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let oauth = if config.base_url.host_str() == Some("api.jd.com") {
            Url::parse(JD_OAUTH_URL).map_err(|_| BuildError::BadUrl)?
        } else {
            config.base_url.join("oauth2/refresh_token").map_err(|_| BuildError::BadUrl)?
        };
        let http = Http::new(config.timeout);
        Ok(Self { config, http, oauth })
    }

    async fn call(
        &self,
        method: &str,
        business: &Value,
        response_key: &str,
        credentials: &Credentials,
    ) -> Result<Value, QueryError> {
        let timestamp = self.config.clock.now().with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S%.3f%z").to_string();
        let mut params = BTreeMap::from([
            ("method".to_owned(), method.to_owned()),
            ("app_key".to_owned(), credentials.app_key.clone()),
            ("access_token".to_owned(), credentials.access_token.expose().to_owned()),
            ("timestamp".to_owned(), timestamp),
            ("v".to_owned(), "2.0".to_owned()),
            ("360buy_param_json".to_owned(), business.to_string()),
        ]);
        let sign = jd_sign(credentials.app_secret.expose(), &params);
        params.insert("sign".into(), sign);
        self.http
            .post_form(
                &self.config.base_url,
                "application/x-www-form-urlencoded;charset=utf-8",
                &params,
                response_key,
                ["code", "zh_desc"],
            )
            .await?
            .map_err(|error| classify(error, Call::Query, credentials))
    }

    async fn list(
        &self,
        feed: Feed,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let start = jd_time(window.start);
        let end = jd_time((window.end - Duration::seconds(1)).max(window.start));
        let page = page_number(page, 1);
        match feed {
            Feed::Orders => {
                let business = json!({"start_date": start, "end_date": end, "page": page.to_string(),
                    "page_size": PAGE_SIZE.to_string(), "dateType": 0, "sortType": 1,
                    "optional_fields": "orderId,orderState,modified,itemInfoList"});
                let response = self
                    .call("jingdong.pop.order.enSearch", &business, "jingdong_pop_order_enSearch_responce", credentials)
                    .await?;
                let result = response
                    .get("searchorderinfo_result")
                    .ok_or_else(|| QueryError::Malformed("no searchorderinfo_result".into()))?;
                let found =
                    result.get("orderInfoList").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                Ok(ListPage {
                    rows: rows(found, "orderId", &["modified"], None)?,
                    total: total(result, "orderTotal"),
                    next: None,
                })
            }
            Feed::Refunds => {
                let business =
                    json!({"applyTimeStart": start, "applyTimeEnd": end, "pageIndex": page, "pageSize": PAGE_SIZE});
                let response = self
                    .call(
                        "jingdong.pop.afs.soa.refundapply.queryPageList",
                        &business,
                        "jingdong_pop_afs_soa_refundapply_queryPageList_responce",
                        credentials,
                    )
                    .await?;
                let result =
                    response.get("queryResult").ok_or_else(|| QueryError::Malformed("no queryResult".into()))?;
                let found = result.get("result").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                Ok(ListPage {
                    rows: rows(found, "orderId", &["checkTime", "applyTime"], Some("id"))?,
                    total: total(result, "totalCount"),
                    next: None,
                })
            }
        }
    }
}

/// JD's time format (Beijing time).
fn jd_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    match error.code.as_str() {
        TOKEN_INVALID if call == Call::Query => QueryError::TokenExpired,
        RATE_LIMITED => QueryError::RateLimited { retry_after_s: None },
        BACKEND_TIMEOUT => QueryError::Unavailable { code: error.full_code() },
        _ => error.into_platform(credentials),
    }
}

#[async_trait]
impl TokenRefresh for JdClient {
    fn source(&self) -> Source {
        Source::Jd
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let mut url = self.oauth.clone();
        url.query_pairs_mut()
            .append_pair("app_key", &credentials.app_key)
            .append_pair("app_secret", credentials.app_secret.expose())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token_of(credentials)?);
        let reply = self.http.send(self.http.client()?.get(url)).await?;
        let body = reply.into_body()?;
        if let Some(error) = body.get("error_response").filter(|e| e.is_object()) {
            return Err(classify(
                PlatformError::from_fields(error, "code", "zh_desc", "sub_code", "sub_msg"),
                Call::Refresh,
                credentials,
            ));
        }
        let access_token =
            text(&body, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let now = self.config.clock.now();
        let expires_at = token_expiry(now, None, body.get("expires_in"))
            .ok_or_else(|| QueryError::Malformed("no expires_in".into()))?;
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            expires_at,
            refresh_token: text(&body, "refresh_token").map(Secret::new),
            // `refresh_token_expires` in epoch milliseconds (cdrcool/op-alliance JdTokenResponse.java).
            refresh_expires_at: token_expiry(now, body.get("refresh_token_expires"), None),
        })
    }
}

#[async_trait]
impl ChangeFeed for JdClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            // "开始时间和结束时间，不得相差超过1个月" (taken as 30 days).
            max_window: Duration::days(30),
            window: Duration::hours(1),
            page_size: PAGE_SIZE,
            paging: Paging::Numbered { first: 1 },
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "jingdong.pop.order.enSearch",
            Feed::Refunds => "jingdong.pop.afs.soa.refundapply.queryPageList",
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
