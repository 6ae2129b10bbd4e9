//! Pinduoduo (拼多多) open API: `pdd.order.information.get` for an order's after-sale state and
//! `pdd.pop.auth.token.refresh`.
//!
//! By order number the API is `pdd.order.information.get` (`order_sn`): its `order_info`
//! carries `after_sales_status` and `refund_status`. `pdd.refund.information.get` describes one
//! after-sale and needs its `after_sales_id`, which the port's order key does not have
//! (lywzx/pdd-node-sdk `PddOrderInformationGet.ts`, `PddRefundInformationGet.ts`).
//!
//! Request shape: a form `POST` to the router with `type, client_id, timestamp` (epoch seconds),
//! `data_type=JSON, version=V1, access_token`, the API's parameters and `sign`
//! (`domain::sources::pdd_sign`). Errors come as
//! `{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use domain::model::ids::{OrderKey, ShopId, Source};
use domain::model::status::RawStatus;
use domain::ports::platform::{Credentials, PlatformQuery, QueryError, RefreshedToken, RefundAnswer};
use domain::ports::secrets::Secret;
use domain::sources::json::{parse_time, text};
use domain::sources::pdd::sign::pdd_sign;

use super::{BuildError, Call, ClientConfig, Http, PDD_BASE_URL, PlatformError, refresh_token_of, token_expiry};

/// 10019 access_token已过期. Source: lywzx/pdd-node-sdk `pdd-response.exception.ts`
/// (`accessTokenNeedRefresh`).
const TOKEN_EXPIRED: &str = "10019";

/// 52101 当前接口被限流 and 70031 调用过于频繁. Same source (`retryAble`); no wait is given.
const RATE_LIMITED: &[&str] = &["52101", "70031"];

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
}

/// Maps a Pinduoduo error to the port's error. No error code for an unknown order is
/// documented in our sources, so none is mapped to `NotFound` here (see `refund_answer`).
fn classify(error: PlatformError, call: Call, credentials: &Credentials) -> QueryError {
    match error.code.as_str() {
        TOKEN_EXPIRED if call == Call::Query => QueryError::TokenExpired,
        code if RATE_LIMITED.contains(&code) => QueryError::RateLimited { retry_after_s: None },
        _ => error.into_platform(credentials),
    }
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
        let params = BTreeMap::from([("refresh_token".to_owned(), refresh_token_of(credentials)?.to_owned())]);
        let response = self
            .call("pdd.pop.auth.token.refresh", params, "pop_auth_token_refresh_response", credentials, Call::Refresh)
            .await?;
        let access_token =
            text(&response, "access_token").ok_or_else(|| QueryError::Malformed("no access_token".into()))?;
        let expires_at = token_expiry(self.config.clock.now(), response.get("expires_at"), response.get("expires_in"))
            .ok_or_else(|| QueryError::Malformed("no expires_at".into()))?;
        Ok(RefreshedToken {
            access_token: Secret::new(access_token),
            expires_at,
            refresh_token: text(&response, "refresh_token").map(Secret::new),
        })
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
    fn errors_map_to_the_port() {
        let e = |code: &str| PlatformError { code: code.into(), sub_code: Some(code.into()), message: "m".into() };
        assert_eq!(classify(e("10019"), Call::Query, &creds()), QueryError::TokenExpired);
        assert_eq!(classify(e("70031"), Call::Query, &creds()), QueryError::RateLimited { retry_after_s: None });
        assert_eq!(classify(e("52101"), Call::Refresh, &creds()), QueryError::RateLimited { retry_after_s: None });
        assert_eq!(
            classify(e("20004"), Call::Query, &creds()),
            QueryError::Platform { code: "20004".into(), message: "m".into() }
        );
        assert!(matches!(classify(e("10019"), Call::Refresh, &creds()), QueryError::Platform { .. }));
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
