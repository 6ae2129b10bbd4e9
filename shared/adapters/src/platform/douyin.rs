//! Douyin (抖店) open API: the lists order-sync's hourly backstop pulls (`/order/searchList`,
//! `/afterSale/List`, by update time), `/order/orderDetail` for an order's lines and after-sale
//! state, and
//! `/token/refresh`.
//!
//! Request shape (zsmhub/doudian-sdk `core/doudian_op_api_client.go`): `POST {base}/{path}`
//! with `app_key, method, timestamp, v=2, sign_method=hmac-sha256, sign, access_token` in the
//! query string and `param_json` (keys sorted, compact) as the JSON body; the SDK also sends
//! `x-open-no-old-err-code: 1`, asking for the current error codes mapped below. The answer is
//! `{code, msg, sub_code, sub_msg, data}` with `code` 10000 for success.

use async_trait::async_trait;
use chrono::Duration;
use serde_json::{Value, json};

use domain::model::ids::{LineId, OrderKey, ShopId, Sku, Source};
use domain::model::status::RawStatus;
use domain::model::stock::OrderLine;
use domain::model::sync::{Feed, Window};
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::pull::{ChangeFeed, FeedLimits, ListPage, PageRequest, Paging, TokenRefresh};
use domain::ports::secrets::Secret;
use domain::sources::douyin::refund_kind;
use domain::sources::douyin::sign::{douyin_api_sign, douyin_param_json};
use domain::sources::json::{parse_time, text};

use super::{
    BuildError, Call, ClientConfig, DOUYIN_BASE_URL, Http, PlatformError, page_number, refresh_token_of, rows,
    token_expiry, total,
};

/// The success code of every Douyin answer.
const SUCCESS: &str = "10000";

/// `sub_code`s a refresh cures: `isv.access-token-expired` "access_token已过期" and
/// `isv.access-token-no-existed` "不存在，请使用最新的access_token" (both under code 40003).
/// Sources: the platform's error table as copied in tb07/jinritemai `src/Error/ErrorCode.php`;
/// the official Python SDK's `DoudianOpApiLight` refreshes on both.
const TOKEN_SUB_CODES: &[&str] = &["isv.access-token-expired", "isv.access-token-no-existed"];

/// `sub_code`s a refresh does not cure: `dop.authorization-no-existed` / `dop.authorization-closed`
/// (30001, "店铺授权已失效 / 已被关闭": the shop must authorise again) and `isv.access-token-invalid`
/// (40003, "app_key和access_token不匹配": not this app's token). Same table.
const REVOKED_SUB_CODES: &[&str] =
    &["dop.authorization-no-existed", "dop.authorization-closed", "isv.access-token-invalid"];

/// 60000 触发限流 (rate limited); no wait is given. Same table.
const RATE_LIMITED: &str = "60000";

/// 20001 内部服务超时 (the platform's own timeout: transient). Same table.
const PLATFORM_TIMEOUT: &str = "20001";

/// 20000 `isp.service-error:*` (the platform's fault): retry later. Same table.
const PLATFORM_FAULT: &str = "20000";

/// Rows per page: "单页大小，限制100以内" (`api/order_searchList/**`).
const PAGE_SIZE: u32 = 100;

/// `order.orderDetail`'s codes for an order it does not know: `isv.parameter-invalid:20014`
/// 查询订单不存在, `isv.parameter-invalid:20001` 订单不存在, `isv.business-failed:20015`
/// 订单不是该店铺下的订单 (not this shop's: for this shop, unknown). Source: the per-API return
/// codes of a C# Douyin SDK (`OrderOrderDetailReq`, namespace `ecommerce.sdk.douyin`).
const NOT_FOUND_SUB_CODES: &[&str] =
    &["isv.parameter-invalid:20014", "isv.parameter-invalid:20001", "isv.business-failed:20015"];

/// A Douyin open API client.
#[derive(Debug, Clone)]
pub struct DouyinClient {
    config: ClientConfig,
    http: Http,
}

impl DouyinClient {
    /// A client of Douyin's real gateway with the default timeout.
    pub fn production() -> Result<Self, BuildError> {
        Self::new(ClientConfig::new(DOUYIN_BASE_URL)?)
    }

    /// A client of the gateway at `config.base_url`.
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        let http = Http::new(config.timeout);
        Ok(Self { config, http })
    }

    /// Calls `method` (`order.orderDetail`) with `params`; the answer's `data`.
    async fn call(
        &self,
        method: &str,
        params: &Value,
        credentials: &Credentials,
        access_token: Option<&str>,
        call: Call,
    ) -> Result<Value, QueryError> {
        let param_json = douyin_param_json(params);
        let timestamp = self.config.clock.now().timestamp().to_string();
        let sign =
            douyin_api_sign(&credentials.app_key, credentials.app_secret.expose(), method, &param_json, &timestamp);
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| QueryError::Transport("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(method.split('.'));
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("app_key", &credentials.app_key)
                .append_pair("method", method)
                .append_pair("timestamp", &timestamp)
                .append_pair("v", "2")
                .append_pair("sign_method", "hmac-sha256")
                .append_pair("sign", &sign);
            if let Some(token) = access_token {
                query.append_pair("access_token", token);
            }
        }
        let request = self
            .http
            .client()?
            .post(url)
            .header("content-type", "application/json")
            .header("x-open-no-old-err-code", "1")
            .body(param_json);
        let reply = self.http.send(request).await?;
        let status_error = reply.status_error();
        let body = reply.into_body()?;
        if text(&body, "code").as_deref() == Some(SUCCESS) {
            return body.get("data").cloned().ok_or_else(|| QueryError::Malformed("success without data".into()));
        }
        if body.get("code").is_none() {
            return Err(status_error.unwrap_or_else(|| QueryError::Malformed("no code in the answer".into())));
        }
        Err(classify(PlatformError::from_fields(&body, "code", "msg", "sub_code", "sub_msg"), call, credentials))
    }
}

/// Maps a Douyin error to the port's error.
fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    let sub = error.sub_code.as_deref().unwrap_or_default();
    match error.code.as_str() {
        _ if call == Call::Query && TOKEN_SUB_CODES.contains(&sub) => QueryError::TokenExpired,
        _ if REVOKED_SUB_CODES.contains(&sub) => QueryError::Revoked { code: error.full_code() },
        RATE_LIMITED => QueryError::RateLimited { retry_after_s: None },
        PLATFORM_TIMEOUT => QueryError::Timeout,
        PLATFORM_FAULT => QueryError::Unavailable { code: error.full_code() },
        _ if call == Call::Query && NOT_FOUND_SUB_CODES.contains(&sub) => QueryError::NotFound,
        _ => error.into_platform(credentials),
    }
}

/// A code as text, `None` for the zero Douyin sends when there is nothing (no after-sale).
fn code(value: &Value, field: &str) -> Option<String> {
    text(value, field).filter(|c| c != "0")
}

/// The after-sale state of an `order.orderDetail` answer (`data`): the shop order's
/// `order_status` and `main_status` (about the whole order), and each sku order's
/// `after_sale_info` codes as a case of its own over that sku order (`order_id`, the sub-order id
/// a push's `s_id` names). The answer names no after-sale id (`/afterSale/Detail` would, but needs
/// that id): the caller names the case as the after-sale's callback did, by its sub-order.
fn refund_answer(data: &Value) -> Result<RefundAnswer, QueryError> {
    let order = data
        .get("shop_order_detail")
        .filter(|o| o.is_object())
        .ok_or_else(|| QueryError::Malformed("no shop_order_detail".into()))?;
    let mut answer = RefundAnswer::default();
    let order_time = order.get("update_time").and_then(parse_time);
    for field in ["order_status", "main_status"] {
        if let Some(c) = code(order, field) {
            answer.statuses.push((RawStatus::new(field, c), order_time));
        }
    }
    for sku in order.get("sku_order_list").and_then(Value::as_array).into_iter().flatten() {
        let Some(info) = sku.get("after_sale_info").filter(|i| i.is_object()) else { continue };
        let Some(after_sale) = code(info, "after_sale_status") else { continue };
        let at = sku.get("update_time").and_then(parse_time).or(order_time);
        let mut case = RefundAnswer {
            lines: text(sku, "order_id").into_iter().collect(),
            refund_kind: text(info, "after_sale_type").as_deref().and_then(refund_kind),
            ..RefundAnswer::default()
        };
        case.statuses.push((RawStatus::new("after_sale_status", after_sale), at));
        if let Some(refund) = code(info, "refund_status") {
            case.statuses.push((RawStatus::new("refund_status", refund), at));
        }
        answer.cases.push(case);
    }
    Ok(answer)
}

/// The lines of an `order.orderDetail` answer (`data`): each sku order is one line, its id the
/// sub-order id (`order_id`, what a payment push's `s_ids` list), its SKU the seller's own code
/// (`code` 商家后台商品编码, else `out_sku_id` 外部Skuid) — the one an ERP keys on — else Douyin's
/// `sku_id`, its quantity `item_num` (订单商品数量). zsmhub/doudian-sdk
/// `api/order_orderDetail/response/order_orderDetail_response.go` L225-L387.
fn order_lines(data: &Value) -> Result<Vec<OrderLine>, QueryError> {
    let order = data
        .get("shop_order_detail")
        .filter(|o| o.is_object())
        .ok_or_else(|| QueryError::Malformed("no shop_order_detail".into()))?;
    let mut lines = Vec::new();
    for sku in order.get("sku_order_list").and_then(Value::as_array).into_iter().flatten() {
        let line = text(sku, "order_id").and_then(|id| LineId::parse(&id).ok());
        // The first candidate that is a usable SKU (a seller's code may hold characters a key
        // cannot; Douyin's numeric `sku_id` always can).
        let code = ["code", "out_sku_id", "sku_id"]
            .iter()
            .filter_map(|f| text(sku, f))
            .filter(|c| c != "0")
            .find_map(|c| Sku::parse(&c).ok());
        let qty = sku.get("item_num").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        match (line, code, qty) {
            (Some(line), Some(sku), Some(qty)) => lines.push(OrderLine { line, sku, qty }),
            _ => return Err(QueryError::Malformed("a sku order without its id, SKU or quantity".into())),
        }
    }
    if lines.is_empty() {
        return Err(QueryError::Malformed("no sku_order_list".into()));
    }
    Ok(lines)
}

#[async_trait]
impl PlatformQuery for DouyinClient {
    fn source(&self) -> Source {
        Source::Douyin
    }

    async fn refund_status(&self, key: &OrderKey, credentials: &Credentials) -> Result<RefundAnswer, QueryError> {
        let params = json!({ "shop_order_id": key.order_id.as_str() });
        let token = Some(credentials.access_token.expose());
        let data = self.call("order.orderDetail", &params, credentials, token, Call::Query).await?;
        refund_answer(&data)
    }

    async fn order_lines(&self, key: &OrderKey, credentials: &Credentials) -> Result<Vec<OrderLine>, QueryError> {
        let params = json!({ "shop_order_id": key.order_id.as_str() });
        let token = Some(credentials.access_token.expose());
        let data = self.call("order.orderDetail", &params, credentials, token, Call::Query).await?;
        order_lines(&data)
    }

    async fn refresh_token(&self, _shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        let params = json!({ "grant_type": "refresh_token", "refresh_token": refresh_token_of(credentials)? });
        // The SDK sends no access token with `token.refresh` (`RefreshAccessToken` passes nil).
        let data = self.call("token.refresh", &params, credentials, None, Call::Refresh).await?;
        let access_token =
            text(&data, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let expires_at = token_expiry(self.config.clock.now(), None, data.get("expires_in"))
            .ok_or_else(|| QueryError::Malformed("no expires_in".into()))?;
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            expires_at,
            refresh_token: text(&data, "refresh_token").map(Secret::new),
            // The refresh token "有效期：14 天" (api/token_refresh/response): not in the answer.
            refresh_expires_at: None,
        })
    }
}

impl DouyinClient {
    /// One page of `/order/searchList` (`update_time_start/end`, newest first by update time) or
    /// `/afterSale/List` (`update_start_time/end_time`), pages from 0.
    async fn list(
        &self,
        feed: Feed,
        window: &Window,
        page: &PageRequest,
        credentials: &Credentials,
    ) -> Result<ListPage, QueryError> {
        let start = window.start.timestamp();
        let end = (window.end - Duration::seconds(1)).timestamp().max(start);
        let page = page_number(page, 0);
        let token = Some(credentials.access_token.expose());
        let data = match feed {
            Feed::Orders => {
                let params = json!({"update_time_start": start, "update_time_end": end, "page": page,
                    "size": PAGE_SIZE, "order_by": "update_time", "order_asc": false});
                self.call("order.searchList", &params, credentials, token, Call::Query).await?
            }
            Feed::Refunds => {
                let params = json!({"update_start_time": start, "update_end_time": end, "page": page,
                    "size": PAGE_SIZE, "order_by": ["update_time desc"]});
                self.call("afterSale.List", &params, credentials, token, Call::Query).await?
            }
        };
        let (list, id, time, refund_id) = match feed {
            Feed::Orders => ("shop_order_list", "order_id", "update_time", None),
            Feed::Refunds => {
                ("items", "order_info.shop_order_id", "aftersale_info.update_time", Some("aftersale_info.aftersale_id"))
            }
        };
        let found = data.get(list).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Ok(ListPage { rows: rows(found, id, &[time], refund_id)?, total: total(&data, "total"), next: None })
    }
}

#[async_trait]
impl TokenRefresh for DouyinClient {
    fn source(&self) -> Source {
        Source::Douyin
    }

    async fn refresh_token(&self, shop: &ShopId, credentials: &Credentials) -> Result<RefreshedToken, QueryError> {
        PlatformQuery::refresh_token(self, shop, credentials).await
    }
}

#[async_trait]
impl ChangeFeed for DouyinClient {
    fn limits(&self) -> FeedLimits {
        FeedLimits {
            // No maximum window is documented (unconfirmed): an hour, the backstop's cadence.
            max_window: Duration::hours(1),
            window: Duration::hours(1),
            page_size: PAGE_SIZE,
            // "页码，0页开始"; total in `data.total`.
            paging: Paging::Numbered { first: 0 },
            settle: Duration::minutes(3),
        }
    }

    fn api(&self, feed: Feed) -> &'static str {
        match feed {
            Feed::Orders => "/order/searchList",
            Feed::Refunds => "/afterSale/List",
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
    use domain::model::lifecycle::RefundKind;

    fn creds() -> Credentials {
        Credentials {
            app_key: "7012345678901234567".into(),
            app_secret: Secret::new("dd-app-secret"),
            access_token: Secret::new("dd-access-token"),
            refresh_token: None,
        }
    }

    #[test]
    fn errors_map_to_the_port() {
        let e = |code: &str, sub: Option<&str>| PlatformError {
            code: code.into(),
            sub_code: sub.map(Into::into),
            message: "m".into(),
        };
        let q = Call::Query;
        assert_eq!(classify(e("40003", Some("isv.access-token-expired")), q, &creds()), QueryError::TokenExpired);
        assert_eq!(classify(e("40003", Some("isv.access-token-no-existed")), q, &creds()), QueryError::TokenExpired);
        assert!(matches!(
            classify(e("30001", Some("dop.authorization-no-existed")), q, &creds()),
            QueryError::Revoked { .. }
        ));
        assert!(matches!(
            classify(e("30001", Some("dop.authorization-closed")), q, &creds()),
            QueryError::Revoked { .. }
        ));
        assert!(matches!(
            classify(e("40003", Some("isv.access-token-invalid")), q, &creds()),
            QueryError::Revoked { .. }
        ));
        assert!(matches!(
            classify(e("20000", Some("isp.service-error:1")), q, &creds()),
            QueryError::Unavailable { .. }
        ));
        assert_eq!(classify(e("60000", None), q, &creds()), QueryError::RateLimited { retry_after_s: None });
        assert_eq!(classify(e("20001", None), q, &creds()), QueryError::Timeout);
        assert_eq!(classify(e("40004", Some("isv.parameter-invalid:20014")), q, &creds()), QueryError::NotFound);
        assert_eq!(classify(e("50002", Some("isv.business-failed:20015")), q, &creds()), QueryError::NotFound);
        assert_eq!(
            classify(e("40003", Some("isv.signature-invalid")), q, &creds()),
            QueryError::Platform { code: "40003/isv.signature-invalid".into(), message: "m".into() }
        );
        // A token error while refreshing is the refresh failing, not a reason to refresh.
        assert!(matches!(
            classify(e("40003", Some("isv.access-token-expired")), Call::Refresh, &creds()),
            QueryError::Platform { .. }
        ));
    }

    #[test]
    fn order_detail_gives_raw_after_sale_codes_per_sku_order() {
        let data = json!({"shop_order_detail": {
        "order_id": "4781320682406083640", "order_status": 4, "main_status": 22, "update_time": 1_794_362_400,
        "sku_order_list": [
            {"order_id": "1", "update_time": 1_794_366_000,
             "after_sale_info": {"after_sale_status": 12, "after_sale_type": 1, "refund_status": 3}},
            {"order_id": "2", "update_time": 1_794_366_000,
             "after_sale_info": {"after_sale_status": 12, "after_sale_type": 6, "refund_status": 3}},
            {"order_id": "3", "after_sale_info": {"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0}}
        ]}});
        let answer = refund_answer(&data).unwrap();
        let codes: Vec<String> = answer.statuses.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(codes, ["order_status=4", "main_status=22"], "the order's own codes");
        let cases: Vec<(Vec<String>, Vec<String>, Option<RefundKind>)> = answer
            .cases
            .iter()
            .map(|c| (c.lines.clone(), c.statuses.iter().map(|(s, _)| s.to_string()).collect(), c.refund_kind))
            .collect();
        assert_eq!(
            cases,
            [
                (
                    vec!["1".into()],
                    vec!["after_sale_status=12".into(), "refund_status=3".into()],
                    Some(RefundKind::RefundOnly)
                ),
                (
                    vec!["2".into()],
                    vec!["after_sale_status=12".into(), "refund_status=3".into()],
                    Some(RefundKind::PriceProtection)
                ),
            ],
            "one case per sku order with an after-sale, named by its sub-order"
        );
        assert_eq!(answer.cases[0].statuses[0].1, parse_time(&json!(1_794_366_000)));
        assert_eq!(answer.any_kind(), Some(RefundKind::RefundOnly));
        assert!(refund_answer(&json!({})).is_err());
    }

    #[test]
    fn the_real_shaped_order_detail_gives_each_sub_order_its_sku_and_quantity() {
        let answer: Value =
            serde_json::from_str(include_str!("../../../../events/real/douyin/order-detail-response.json")).unwrap();
        let lines = order_lines(&answer["data"]).unwrap();
        let got: Vec<(&str, &str, u32)> = lines.iter().map(|l| (l.line.as_str(), l.sku.as_str(), l.qty)).collect();
        assert_eq!(got, [("4987650000000000101", "TEA-LJ-250", 2), ("4987650000000000102", "CUP-GL-01", 1)]);
        // Without the seller's code, Douyin's sku_id; without a quantity, no line at all.
        let bare = json!({"shop_order_detail": {"sku_order_list": [{"order_id": "9", "sku_id": 1790000000000009_u64, "item_num": 3}]}});
        assert_eq!(order_lines(&bare).unwrap()[0].sku.as_str(), "1790000000000009");
        let no_qty = json!({"shop_order_detail": {"sku_order_list": [{"order_id": "9", "sku_id": 1}]}});
        assert!(order_lines(&no_qty).is_err(), "never a line with a made-up quantity");
    }
}
