//! Kuaishou (快手小店) open API: the lists order-sync's hourly backstop pulls
//! (`open.order.cursor.list` with `queryType=2`, by update time; `open.seller.order.refund.pcursor.list`)
//! and the OAuth refresh.
//!
//! Request shape (westng/kwaishop-php-sdk `src/Client/Pipeline/RequestFactory.php`,
//! `src/Signing/HmacSha256Signer.php`): `GET {base}/{method with dots as slashes}` with `appkey,
//! method, version=1, param (JSON), access_token, timestamp (ms), signMethod, sign` in the query
//! (`domain::sources::kuaishou::sign::kuaishou_api_sign`). Refresh: `POST {base}/oauth2/refresh_token`
//! form `grant_type, refresh_token, app_id, app_secret` (`src/Auth/OAuthClient.php`). Answers
//! carry `result` (1 = success). The error classes follow the same SDK's `ResponseParser.php`
//! ([agree], one SDK); the cursor end marker `nomore` and the refund list's fields are
//! **unconfirmed** (docs/platform-apis.md "Kuaishou"). Real apps sign with a separate
//! `signSecret`; here the shop secret's app secret plays both parts.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Duration;
use serde_json::{Value, json};

use domain::model::ids::{ShopId, Source};
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, QueryError, RefreshedToken};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::json::text;
use domain::sources::kuaishou::sign::{KuaishouSignMethod, kuaishou_api_sign};

use super::{BuildError, Call, ClientConfig, Http, PlatformError, refresh_token_of, rows, token_expiry};

/// Kuaishou's open API gateway.
pub const KUAISHOU_BASE_URL: &str = "https://openapi.kwaixiaodian.com";

/// The cursor that says there is nothing more (unconfirmed; used by public callers).
const NO_MORE: &str = "nomore";

/// Authentication class: a refresh may cure it (ResponseParser.php: 21, 24).
const AUTHENTICATION: &[&str] = &["21", "24"];
/// Authorisation class: the shop must authorise again (22, 25, 26).
const AUTHORISATION: &[&str] = &["22", "25", "26"];
/// Rate-limit class (15, 16, 17, 1016, 1017, 802000).
const RATE_LIMITED: &[&str] = &["15", "16", "17", "1016", "1017", "802000"];

/// Rows per page (maximum unconfirmed).
const PAGE_SIZE: u32 = 100;

/// A Kuaishou open API client.
#[derive(Debug, Clone)]
pub struct KuaishouClient {
    config: ClientConfig,
    http: Http,
}

impl KuaishouClient {
    /// A client of the gateway at `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, QueryError> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| QueryError::Transport("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(path.split('/').filter(|p| !p.is_empty()));
        Ok(url)
    }

    async fn call(&self, method: &str, param: &Value, credentials: &Credentials) -> Result<Value, QueryError> {
        let mut params = BTreeMap::from([
            ("appkey".to_owned(), credentials.app_key.clone()),
            ("method".to_owned(), method.to_owned()),
            ("version".to_owned(), "1".to_owned()),
            ("param".to_owned(), param.to_string()),
            ("access_token".to_owned(), credentials.access_token.expose().to_owned()),
            ("timestamp".to_owned(), self.config.clock.now().timestamp_millis().to_string()),
            ("signMethod".to_owned(), KuaishouSignMethod::HmacSha256.as_param().to_owned()),
        ]);
        let sign = kuaishou_api_sign(credentials.app_secret.expose(), &params, KuaishouSignMethod::HmacSha256);
        params.insert("sign".into(), sign);
        let mut url = self.url(&method.replace('.', "/"))?;
        url.query_pairs_mut().extend_pairs(params.iter());
        let reply = self.http.send(self.http.client()?.get(url)).await?;
        let status_error = reply.status_error();
        let body = reply.into_body()?;
        match text(&body, "result").as_deref() {
            Some("1") => body.get("data").cloned().ok_or_else(|| QueryError::Malformed("success without data".into())),
            Some(_) => Err(classify(
                PlatformError::from_fields(&body, "result", "error_msg", "sub_code", "sub_msg"),
                Call::Query,
                credentials,
            )),
            None => Err(status_error.unwrap_or_else(|| QueryError::Malformed("no result in the answer".into()))),
        }
    }
}

fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    let code = error.code.as_str();
    if call == Call::Query && AUTHENTICATION.contains(&code) {
        return QueryError::TokenExpired;
    }
    if call == Call::Query && AUTHORISATION.contains(&code) {
        return QueryError::Revoked { code: error.code };
    }
    if RATE_LIMITED.contains(&code) {
        return QueryError::RateLimited { retry_after_s: None };
    }
    error.into_platform(credentials)
}

#[async_trait]
impl TokenRefresh for KuaishouClient {
    fn source(&self) -> Source {
        Source::Kuaishou
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let form = BTreeMap::from([
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token_of(credentials)?.to_owned()),
            ("app_id".to_owned(), credentials.app_key.clone()),
            ("app_secret".to_owned(), credentials.app_secret.expose().to_owned()),
        ]);
        let request = self
            .http
            .client()?
            .post(self.url("oauth2/refresh_token")?)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(super::form_body(&form));
        let body = self.http.send(request).await?.into_body()?;
        if text(&body, "result").as_deref() != Some("1") {
            return Err(classify(
                PlatformError::from_fields(&body, "result", "error_msg", "sub_code", "sub_msg"),
                Call::Refresh,
                credentials,
            ));
        }
        let access_token =
            text(&body, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let now = self.config.clock.now();
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            expires_at: token_expiry(now, None, body.get("expires_in"))
                .ok_or_else(|| QueryError::Malformed("no expires_in".into()))?,
            refresh_token: text(&body, "refresh_token").map(Secret::new),
            refresh_expires_at: token_expiry(now, None, body.get("refresh_token_expires_in")),
        })
    }
}

#[async_trait]
impl ChangeFeed for KuaishouClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            // No maximum window is documented ("只允许获取90天内的订单数据"): an hour.
            max_window: Duration::hours(1),
            window: Duration::hours(1),
            page_size: PAGE_SIZE,
            paging: Paging::Cursor,
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "open.order.cursor.list",
            Feed::Refunds => "open.seller.order.refund.pcursor.list",
        }
    }

    async fn list_orders(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let cursor = match page {
            PageRequest::Cursor(cursor) => cursor.clone().unwrap_or_default(),
            PageRequest::Number(_) => String::new(),
        };
        let param = json!({"queryType": 2, "orderViewStatus": 1, "beginTime": window.start.timestamp_millis(),
            "endTime": (window.end - Duration::milliseconds(1)).timestamp_millis(), "pageSize": PAGE_SIZE, "sort": 1, "cursor": cursor});
        let data = self.call("open.order.cursor.list", &param, credentials).await?;
        let found = data.get("orderList").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let next = text(&data, "cursor").filter(|c| c != NO_MORE);
        Ok(ListPage { rows: rows(found, "orderBaseInfo.oid", &["orderBaseInfo.updateTime"], None)?, total: None, next })
    }

    async fn list_refunds(
        &self,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let cursor = match page {
            PageRequest::Cursor(cursor) => cursor.clone().unwrap_or_default(),
            PageRequest::Number(_) => String::new(),
        };
        let param = json!({"beginTime": window.start.timestamp_millis(), "endTime": (window.end - Duration::milliseconds(1)).timestamp_millis(),
            "pageSize": PAGE_SIZE, "sort": 1, "pcursor": cursor});
        let data = self.call("open.seller.order.refund.pcursor.list", &param, credentials).await?;
        let found = data.get("refundOrderInfoList").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let next = text(&data, "pcursor").filter(|c| c != NO_MORE);
        Ok(ListPage { rows: rows(found, "oid", &["updateTime"], Some("refundId"))?, total: None, next })
    }
}
