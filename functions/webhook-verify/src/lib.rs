//! webhook-verify: the front door for callbacks (`POST /webhooks/{source}/{shop}`), and the
//! ops event that replays quarantined callbacks after a key fix.
//!
//! The handler decodes the trigger (API Gateway HTTP API payload v2, or an ops event), calls
//! [`domain::webhook::Front`], and encodes the answer.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env};
use domain::webhook::{Front, Incoming, ReplayRequest};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ORDERHUB_STAGE`.
    pub stage: String,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `STATS_TABLE`.
    pub stats_table: String,
    /// `ORDERS_TABLE` (unused here, required so every function sees the same stack).
    pub orders_table: String,
    /// `INBOUND_QUEUE_URL`.
    pub inbound_queue_url: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `SECRET_TTL_SECONDS` (default 120): how soon a rotated secret is seen.
    pub secret_ttl_s: i64,
    /// `QUARANTINE_QUOTA_PER_HOUR` (default 1000 per source and shop).
    pub quarantine_quota_per_hour: u32,
    /// `COUNTER_SHARDS` (default 8).
    pub shards: u16,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stage: config::required(env, "ORDERHUB_STAGE")?,
            inbox_table: config::required(env, "INBOX_TABLE")?,
            stats_table: config::required(env, "STATS_TABLE")?,
            orders_table: config::required(env, "ORDERS_TABLE")?,
            inbound_queue_url: config::queue_url(env, "INBOUND_QUEUE_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 120)?,
            quarantine_quota_per_hour: config::parsed(env, "QUARANTINE_QUOTA_PER_HOUR", 1000)?,
            shards: config::parsed(env, "COUNTER_SHARDS", 8)?,
        })
    }
}

/// `{source}` and `{shop}` from the path: `/webhooks/{source}/{shop}` (API Gateway, or a
/// function URL under `cargo lambda watch`, which prefixes the path).
pub fn route(path: &str) -> Option<(String, String)> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments.by_ref().find(|s| *s == "webhooks")?;
    let source = segments.next()?;
    let shop = segments.next()?;
    if segments.next().is_some() {
        return None;
    }
    Some((source.to_owned(), shop.to_owned()))
}

/// Turns an HTTP API request into what the door looks at. `None` when the body is not valid
/// base64 although flagged so (the door answers 400 for that).
pub fn incoming(request: &ApiGatewayV2httpRequest, received_at: DateTime<Utc>) -> Result<Incoming, &'static str> {
    let path = request.raw_path.clone().or_else(|| request.request_context.http.path.clone()).unwrap_or_default();
    let (source, shop) = match (request.path_parameters.get("source"), request.path_parameters.get("shop")) {
        (Some(source), Some(shop)) => (source.clone(), shop.clone()),
        _ => route(&path).unwrap_or_default(),
    };
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_ascii_lowercase(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    let query = form_urlencoded::parse(request.raw_query_string.as_deref().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let raw = request.body.as_deref().unwrap_or_default();
    let body = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(raw.trim()).map_err(|_| "body is not valid base64")?
    } else {
        raw.as_bytes().to_vec()
    };
    Ok(Incoming {
        method: request.request_context.http.method.to_string(),
        source,
        shop,
        query,
        headers,
        body,
        received_at,
    })
}

fn http_response(status: u16, body: String) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    if !body.is_empty() {
        response.headers.insert("content-type", aws_lambda_events::http::HeaderValue::from_static("application/json"));
        response.body = Some(Body::Text(body));
    }
    response
}

/// Handles one invocation: an HTTP callback, or an ops event
/// (`{"replay": {"source", "shop", "from", "to"}}`).
pub async fn handle(front: &Front<'_>, event: Value, now: DateTime<Utc>) -> Value {
    if event.get("requestContext").is_some() {
        let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
            Ok(request) => match incoming(&request, now) {
                Ok(incoming) => {
                    let (reply, _) = front.receive(incoming).await;
                    http_response(reply.status, reply.body)
                }
                Err(reason) => http_response(400, serde_json::json!({ "error": reason }).to_string()),
            },
            Err(_) => http_response(400, r#"{"error":"unreadable request"}"#.to_owned()),
        };
        return serde_json::to_value(response).unwrap_or(Value::Null);
    }
    if let Some(replay) = event.get("replay") {
        return match serde_json::from_value::<ReplayRequest>(replay.clone()) {
            Ok(request) => {
                tracing::info!(source = %request.source, shop = %request.shop, from = %request.from, to = %request.to, "ops: replay quarantined callbacks");
                serde_json::to_value(front.replay(&request).await).unwrap_or(Value::Null)
            }
            Err(err) => {
                serde_json::json!({ "error": format!("replay needs source, shop, from, to (RFC 3339): {err}") })
            }
        };
    }
    serde_json::json!({ "error": "unrecognised event: expected an HTTP API request or {\"replay\": {...}}" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_api_gateway_and_function_urls() {
        assert_eq!(route("/webhooks/douyin/shop-1"), Some(("douyin".into(), "shop-1".into())));
        assert_eq!(route("/lambda-url/webhook-verify/webhooks/app/s"), Some(("app".into(), "s".into())));
        assert_eq!(route("/webhooks/douyin"), None);
        assert_eq!(route("/webhooks/douyin/shop/extra"), None);
        assert_eq!(route("/other/douyin/shop"), None);
    }
}
