//! webhook-verify: the front door for callbacks (`POST /webhooks/{source}/{shop}`), and the
//! ops event that replays quarantined callbacks after a key fix.
//!
//! The handler decodes the trigger into a [`Trigger`] (API Gateway HTTP API payload v2, or an
//! [`Ops`] event), calls [`domain::app::intake::Intake`], and encodes the [`Answer`] — including
//! the table from the door's outcome to the HTTP status ([`status_of`], [`reply`]).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env};
use adapters::metrics::CallbackOutcome;
use adapters::trigger::{DecodeError, ErrorAnswer, Invocation, Shape};
use domain::Source;
use domain::app::intake::{Handled, Incoming, Intake, ReplayReport, ReplayRequest};
use domain::model::callback::Rejection;
use domain::sources;

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ORDERHUB_STAGE`.
    pub stage: String,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `STATS_TABLE`: rejection counters.
    pub stats_table: String,
    /// `INBOUND_QUEUE_URL`.
    pub inbound_queue_url: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `SECRET_TTL_SECONDS` (default 120): how soon a rotated secret is seen.
    pub secret_ttl_s: i64,
    /// `QUARANTINE_QUOTA_PER_HOUR` (default 1000 per source and shop).
    pub quarantine_quota_per_hour: u32,
    /// `COUNTER_SHARDS` (default 16).
    pub shards: u16,
    /// `INBOX_LEASE_SECONDS` (default 60, above the function's 10 s timeout): how long a delivery
    /// holds its callback's dedupe record while it enqueues.
    pub lease_s: i64,
    /// `DOOR_BUDGET_MS` (default 4000: platforms wait about 5 s for the ack): the time one
    /// callback may take before the sender is asked to retry.
    pub budget_ms: u64,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stage: config::required(env, "ORDERHUB_STAGE")?,
            inbox_table: config::required(env, "INBOX_TABLE")?,
            stats_table: config::required(env, "STATS_TABLE")?,
            inbound_queue_url: config::queue_url(env, "INBOUND_QUEUE_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 120)?,
            quarantine_quota_per_hour: config::parsed(env, "QUARANTINE_QUOTA_PER_HOUR", 1000)?,
            shards: config::parsed(env, "COUNTER_SHARDS", domain::model::counters::DEFAULT_SHARDS)?,
            lease_s: config::parsed(env, "INBOX_LEASE_SECONDS", 60)?,
            budget_ms: config::parsed(env, "DOOR_BUDGET_MS", 4000)?,
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
        sender: request.request_context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
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

/// The HTTP answer to one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body (JSON, or empty).
    pub body: String,
}

impl Reply {
    fn error(status: u16, message: &str) -> Self {
        Self { status, body: serde_json::json!({ "error": message }).to_string() }
    }
}

/// The HTTP status of each outcome of the door. Success is the sender's own ack (its status and
/// body, from the source's module); nothing the caller controls is a 5xx, and a 503 asks the
/// sender to retry what could not be made durable.
pub fn status_of(rejection: Rejection) -> (u16, &'static str) {
    match rejection {
        Rejection::MethodNotAllowed => (405, "method not allowed"),
        Rejection::UnknownSource | Rejection::UnknownShop => (404, "not found"),
        Rejection::TooLarge => (413, "body too large"),
        Rejection::Malformed => (400, "malformed body"),
        Rejection::Unverified => (401, "verification failed"),
    }
}

/// The reply for an outcome of a callback from `source` (when the path named a known one).
pub fn reply(source: Option<Source>, handled: &Handled) -> Reply {
    match (handled, source) {
        (Handled::Enqueued | Handled::Duplicate | Handled::Probe, Some(source)) => {
            let ack = sources::ack(source);
            Reply { status: ack.status, body: ack.body.to_owned() }
        }
        (Handled::Rejected { rejection, .. }, _) => {
            let (status, message) = status_of(*rejection);
            Reply::error(status, message)
        }
        (Handled::Unavailable(_), _) | (_, None) => Reply::error(503, "temporarily unavailable, retry"),
    }
}

/// The door's outcome as the callback metrics count it.
pub fn outcome(handled: &Handled) -> CallbackOutcome {
    match handled {
        Handled::Enqueued => CallbackOutcome::Accepted,
        Handled::Duplicate => CallbackOutcome::Duplicate,
        Handled::Probe => CallbackOutcome::Probe,
        Handled::Rejected { quarantined, .. } => CallbackOutcome::Refused { quarantined: *quarantined },
        Handled::Unavailable(_) => CallbackOutcome::Unavailable,
    }
}

/// What webhook-verify is invoked with: a callback through the HTTP API, or an ops event.
pub type Trigger = Invocation<Box<ApiGatewayV2httpRequest>, Ops>;

/// The ops events (manual `aws lambda invoke` / `cargo lambda invoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// `{"replay": {"source", "shop", "from", "to"}}` (RFC 3339, `[from, to)`): replay the
    /// quarantined callbacks of a source and shop after a key or parser fix.
    Replay(ReplayRequest),
}

/// How webhook-verify tells its trigger from its ops events.
pub const SHAPE: Shape = Shape {
    trigger_marker: Some("requestContext"),
    trigger_name: "HTTP API",
    expected: r#"an HTTP API request or {"replay": {"source", "shop", "from", "to"}}"#,
};

/// What webhook-verify answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// The HTTP response to a callback.
    Http(Box<ApiGatewayV2httpResponse>),
    /// What a replay did.
    Replay(ReplayReport),
    /// An event that could not be decoded.
    Error(ErrorAnswer),
}

/// Decodes an invocation.
pub fn decode(event: Value) -> Result<Trigger, DecodeError> {
    adapters::trigger::decode(event, SHAPE)
}

/// Handles one invocation.
pub async fn handle(intake: &Intake<'_>, event: Value, now: DateTime<Utc>) -> Answer {
    match decode(event) {
        Ok(Invocation::Trigger(request)) => {
            let response = match incoming(&request, now) {
                Ok(incoming) => {
                    let source = incoming.source.parse::<Source>().ok();
                    let handled = intake.receive(incoming).await;
                    adapters::metrics::callback(source, outcome(&handled));
                    let reply = reply(source, &handled);
                    http_response(reply.status, reply.body)
                }
                Err(reason) => http_response(400, serde_json::json!({ "error": reason }).to_string()),
            };
            Answer::Http(Box::new(response))
        }
        Ok(Invocation::Ops(Ops::Replay(request))) => {
            tracing::info!(source = %request.source, shop = %request.shop, from = %request.from, to = %request.to, "ops: replay quarantined callbacks");
            Answer::Replay(intake.replay(&request).await)
        }
        // An HTTP event that does not decode is a broken gateway integration: answer 400 so
        // nothing the caller sent becomes a 500.
        Err(DecodeError::Trigger { .. }) => {
            Answer::Http(Box::new(http_response(400, r#"{"error":"unreadable request"}"#.to_owned())))
        }
        Err(err) => Answer::Error(ErrorAnswer::new(err)),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod route_tests {
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
