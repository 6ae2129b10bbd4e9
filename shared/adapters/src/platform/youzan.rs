//! Youzan (有赞云) open API: the lists order-sync's hourly backstop pulls
//! (`youzan.trades.sold.get` 4.0.x by update time; the refund search) and the token endpoint.
//!
//! Request shape ([agree], public clients): `POST {base}/api/{method}/{version}?access_token=…`
//! with the API's parameters as a JSON body; API calls are **not signed** (the access token
//! authenticates them); `POST {base}/auth/token` with `authorize_type=refresh_token`. The
//! envelope is `{success, code (200 = ok), message, data}`. The window parameter names, the
//! refund search and every error code are **unconfirmed** (docs/platform-apis.md "Youzan").

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};

use domain::model::ids::{ShopId, Source};
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, QueryError, RefreshedToken};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::json::{flag, text};

use super::{
    BuildError, Call, ClientConfig, Http, PlatformError, page_number, refresh_token_of, rows, token_expiry, total,
};

/// Youzan's open API.
pub const YOUZAN_BASE_URL: &str = "https://open.youzanyun.com";

/// Expired access token (unconfirmed).
const TOKEN_EXPIRED: &str = "4203";
/// Unknown or revoked authorisation (unconfirmed).
const REVOKED: &[&str] = &["4202", "4204"];
/// Rate limited (unconfirmed).
const RATE_LIMITED: &str = "4290";
/// Server busy (unconfirmed).
const BUSY: &str = "5000";

/// Rows per page (maximum unconfirmed).
const PAGE_SIZE: u32 = 100;

/// A Youzan open API client.
#[derive(Debug, Clone)]
pub struct YouzanClient {
    config: ClientConfig,
    http: Http,
}

impl YouzanClient {
    /// A client of the API at `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http })
    }

    fn url(&self, path: &[&str]) -> Result<reqwest::Url, QueryError> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| QueryError::Transport("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    async fn post(
        &self,
        url: reqwest::Url,
        body: &Value,
        credentials: &Credentials,
        call: Call,
    ) -> Result<Value, QueryError> {
        let request = self.http.client()?.post(url).header("content-type", "application/json").body(body.to_string());
        let reply = self.http.send(request).await?;
        let status_error = reply.status_error();
        let body = reply.into_body()?;
        if flag(&body, "success") || text(&body, "code").as_deref() == Some("200") {
            return body.get("data").cloned().ok_or_else(|| QueryError::Malformed("success without data".into()));
        }
        if body.get("code").is_none() {
            return Err(status_error.unwrap_or_else(|| QueryError::Malformed("no code in the answer".into())));
        }
        Err(classify(PlatformError::from_fields(&body, "code", "message", "sub_code", "sub_msg"), call, credentials))
    }

    async fn list(
        &self,
        feed: Feed,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let start = yz_time(window.start);
        let end = yz_time((window.end - Duration::seconds(1)).max(window.start));
        let page = page_number(page, 1);
        let (method, body) = match feed {
            Feed::Orders => (
                "youzan.trades.sold.get",
                json!({"start_update": start, "end_update": end, "page_no": page, "page_size": PAGE_SIZE}),
            ),
            Feed::Refunds => (
                "youzan.trade.refund.search",
                json!({"update_time_start": start, "update_time_end": end, "page_no": page, "page_size": PAGE_SIZE}),
            ),
        };
        let mut url = self.url(&["api", method, "4.0.0"])?;
        url.query_pairs_mut().append_pair("access_token", credentials.access_token.expose());
        let data = self.post(url, &body, credentials, Call::Query).await?;
        match feed {
            Feed::Orders => {
                let found =
                    data.get("full_order_info_list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                Ok(ListPage {
                    rows: rows(
                        found,
                        "full_order_info.order_info.tid",
                        &["full_order_info.order_info.update_time"],
                        None,
                    )?,
                    total: total(&data, "total_results"),
                    next: None,
                })
            }
            Feed::Refunds => {
                let found = data.get("refunds").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                Ok(ListPage {
                    rows: rows(found, "tid", &["modified"], Some("refund_id"))?,
                    total: total(&data, "total"),
                    next: None,
                })
            }
        }
    }
}

fn yz_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    let code = error.code.as_str();
    match code {
        TOKEN_EXPIRED if call == Call::Query => QueryError::TokenExpired,
        _ if call == Call::Query && REVOKED.contains(&code) => QueryError::Revoked { code: error.code },
        RATE_LIMITED => QueryError::RateLimited { retry_after_s: None },
        BUSY => QueryError::Unavailable { code: error.full_code() },
        _ => error.into_platform(credentials),
    }
}

#[async_trait]
impl TokenRefresh for YouzanClient {
    fn source(&self) -> Source {
        Source::Youzan
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let body = json!({"client_id": credentials.app_key, "client_secret": credentials.app_secret.expose(),
            "authorize_type": "refresh_token", "refresh_token": refresh_token_of(credentials)?});
        let data = self.post(self.url(&["auth", "token"])?, &body, credentials, Call::Refresh).await?;
        let access_token =
            text(&data, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let now = self.config.clock.now();
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            // `expires` in epoch milliseconds ([agree]).
            expires_at: token_expiry(now, data.get("expires"), data.get("expires_in"))
                .ok_or_else(|| QueryError::Malformed("no expires".into()))?,
            refresh_token: text(&data, "refresh_token").map(Secret::new),
            refresh_expires_at: None,
        })
    }
}

#[async_trait]
impl ChangeFeed for YouzanClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            max_window: Duration::hours(1),
            window: Duration::hours(1),
            page_size: PAGE_SIZE,
            paging: Paging::Numbered { first: 1 },
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "youzan.trades.sold.get",
            Feed::Refunds => "youzan.trade.refund.search",
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
