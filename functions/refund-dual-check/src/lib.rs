//! refund-dual-check: on its schedule, asks the platforms about refunds whose outcome never
//! arrived and confirms that refunded orders' stock was released; ops invoke it to release
//! stock for a list of orders (`{"release": {"orders": ["channel/shop/order_id", …]}}`) or to
//! re-check a list now (`{"recheck": {"orders": […]}}`).

use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use domain::OrderKey;
use domain::ports::EventPublisher;
use domain::refundcheck::{RefundChecker, parse_order_ref};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables, stage, shards.
    pub resources: Resources,
    /// `INBOX_TABLE`.
    pub inbox_table: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `PENDING_RECHECK_MINUTES` (default 120): how soon a still-open refund is asked about again.
    pub pending_recheck_minutes: i64,
    /// `SHOP_CONCURRENCY` (default 4): shops asked at the same time.
    pub shop_concurrency: usize,
    /// `OPS_RELEASE_CONCURRENCY` (default 16): orders released at the same time by ops.
    pub release_concurrency: usize,
    /// `SECRET_TTL_SECONDS` (default 120).
    pub secret_ttl_s: i64,
    /// `DOUYIN_API_URL`, `PDD_API_URL`, `TAOBAO_API_URL`: the platforms' endpoints (defaults:
    /// the real ones).
    pub api_urls: ApiUrls,
    /// `PLATFORM_TIMEOUT_MS` (default 5000).
    pub platform_timeout_ms: u64,
}

/// The platforms' query endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrls {
    /// Douyin (抖店) open platform.
    pub douyin: String,
    /// Pinduoduo gateway router.
    pub pdd: String,
    /// Taobao TOP router.
    pub taobao: String,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = env.var(var).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned());
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(value)
            } else {
                Err(ConfigError::Malformed { var, reason: "expected an http(s) URL".into() })
            }
        };
        Ok(Self {
            resources: Resources::from_env(env)?,
            inbox_table: config::required(env, "INBOX_TABLE")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            pending_recheck_minutes: config::parsed(env, "PENDING_RECHECK_MINUTES", 120)?,
            shop_concurrency: config::parsed(env, "SHOP_CONCURRENCY", 4)?,
            release_concurrency: config::parsed(env, "OPS_RELEASE_CONCURRENCY", 16)?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 120)?,
            api_urls: ApiUrls {
                douyin: url("DOUYIN_API_URL", "https://openapi-fxg.jinritemai.com")?,
                pdd: url("PDD_API_URL", "https://gw-api.pinduoduo.com/api/router")?,
                taobao: url("TAOBAO_API_URL", "https://eco.taobao.com/router/rest")?,
            },
            platform_timeout_ms: config::parsed(env, "PLATFORM_TIMEOUT_MS", 5000)?,
        })
    }
}

/// The function's dependencies.
pub struct App<'a> {
    /// The domain service.
    pub checker: RefundChecker<'a>,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// Orders released at the same time by an ops call.
    pub release_concurrency: usize,
}

fn order_list(value: &Value) -> Result<Vec<OrderKey>, String> {
    let list = value.as_array().ok_or_else(|| "`orders` must be a list of \"channel/shop/order_id\"".to_owned())?;
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "every order is a string \"channel/shop/order_id\"".to_owned())
                .and_then(parse_order_ref)
        })
        .collect()
}

impl App<'_> {
    /// Handles one invocation.
    pub async fn handle(&self, event: Value) -> Value {
        if event.get("sweep").and_then(Value::as_str) == Some("refunds") {
            let (events, report) = self.checker.sweep().await;
            let unpublished = adapters::lambda::publish(self.events, &events).await;
            let mut answer = serde_json::to_value(report).unwrap_or(Value::Null);
            answer["unpublished_events"] = Value::from(unpublished.len());
            return answer;
        }
        if let Some(orders) = event.pointer("/release/orders") {
            return match order_list(orders) {
                Ok(keys) => {
                    tracing::info!(orders = keys.len(), "ops: release stock");
                    let (events, answers) = self.checker.release(&keys, self.release_concurrency).await;
                    adapters::lambda::publish(self.events, &events).await;
                    serde_json::to_value(answers).unwrap_or(Value::Null)
                }
                Err(reason) => serde_json::json!({ "error": reason }),
            };
        }
        if let Some(orders) = event.pointer("/recheck/orders") {
            return match order_list(orders) {
                Ok(keys) => {
                    tracing::info!(orders = keys.len(), "ops: re-check refunds now");
                    let (events, report) = self.checker.recheck(&keys).await;
                    adapters::lambda::publish(self.events, &events).await;
                    serde_json::to_value(report).unwrap_or(Value::Null)
                }
                Err(reason) => serde_json::json!({ "error": reason }),
            };
        }
        serde_json::json!({ "error": "unrecognised event: expected {\"sweep\":\"refunds\"}, {\"release\":{\"orders\":[…]}} or {\"recheck\":{\"orders\":[…]}}" })
    }
}
