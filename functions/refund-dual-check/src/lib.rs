//! refund-dual-check: on its schedule, asks the platforms about refunds whose outcome never
//! arrived and confirms that refunded orders' stock was released; ops invoke it to release
//! stock for a list of orders (`{"release": {"orders": ["channel/shop/order_id", …]}}`) or to
//! re-check a list now (`{"recheck": {"orders": […]}}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use adapters::config::{self, ConfigError, Env, Resources};
use adapters::trigger::{ErrorAnswer, Invocation, Shape};
use domain::app::refund_check::{RefundCheck, RefundSweepReport, ReleaseAnswer};
use domain::model::ids::OrderRef;
use domain::ports::EventPublisher;
use domain::{OrderKey, Source};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables, stage, shards.
    pub resources: Resources,
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
    /// `SYNC_TABLE`: the token ledger (shared with order-sync).
    pub sync_table: String,
    /// `TOKEN_REFRESH_BEFORE_MINUTES` (default 30): an access token expiring within this is
    /// refreshed before the shop is asked about.
    pub token_refresh_before_minutes: i64,
    /// Each registered platform client's endpoint override (`DOUYIN_API_URL`, `PDD_API_URL`,
    /// `TAOBAO_API_URL`, … from `adapters::platform::CLIENTS`); absent: the real one.
    pub api_urls: BTreeMap<Source, String>,
    /// `PLATFORM_TIMEOUT_MS` (default 5000).
    pub platform_timeout_ms: u64,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: Resources::from_env(env)?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            pending_recheck_minutes: config::parsed(env, "PENDING_RECHECK_MINUTES", 120)?,
            shop_concurrency: config::parsed(env, "SHOP_CONCURRENCY", 4)?,
            release_concurrency: config::parsed(env, "OPS_RELEASE_CONCURRENCY", 16)?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 120)?,
            sync_table: config::required(env, "SYNC_TABLE")?,
            token_refresh_before_minutes: config::parsed(env, "TOKEN_REFRESH_BEFORE_MINUTES", 30)?,
            api_urls: adapters::platform::api_urls(env)?,
            platform_timeout_ms: config::parsed(env, "PLATFORM_TIMEOUT_MS", 5000)?,
        })
    }
}

/// The events refund-dual-check answers: all of them are ops events (its schedule sends the
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// `{"sweep": "refunds"}`: ask the platforms about the refunds that are due.
    Sweep(Sweep),
    /// `{"release": {"orders": ["channel/shop/order_id", …]}}`: release refunded orders' stock.
    Release(Orders),
    /// `{"recheck": {"orders": […]}}`: ask the platforms about these orders now.
    Recheck(Orders),
}

/// What a sweep looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// The refund-check due markers.
    Refunds,
}

/// A list of orders named `channel/shop/order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orders {
    /// The orders.
    pub orders: Vec<OrderRef>,
}

impl Orders {
    fn keys(&self) -> Vec<OrderKey> {
        self.orders.iter().map(|order| order.0.clone()).collect()
    }
}

/// How refund-dual-check names its events.
pub const SHAPE: Shape = Shape {
    trigger_marker: None,
    trigger_name: "schedule",
    expected: r#"{"sweep": "refunds"}, {"release": {"orders": […]}} or {"recheck": {"orders": […]}}"#,
};

/// What a sweep answers: its report and how many events did not go out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepAnswer {
    /// What the sweep did.
    #[serde(flatten)]
    pub report: RefundSweepReport,
    /// Events the bus did not take.
    pub unpublished_events: usize,
}

/// What refund-dual-check answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A sweep.
    Sweep(SweepAnswer),
    /// Per order, what the release did.
    Release(BTreeMap<String, ReleaseAnswer>),
    /// What a re-check did.
    Recheck(RefundSweepReport),
    /// An event that could not be decoded.
    Error(ErrorAnswer),
}

/// The function's dependencies.
pub struct Handler<'a> {
    /// The use case.
    pub checker: RefundCheck<'a>,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// Orders released at the same time by an ops call.
    pub release_concurrency: usize,
}

impl Handler<'_> {
    /// Handles one invocation.
    pub async fn handle(&self, event: Value) -> Answer {
        let ops = match adapters::trigger::decode::<Value, Ops>(event, SHAPE) {
            Ok(Invocation::Ops(ops)) => ops,
            Ok(Invocation::Trigger(_)) => return Answer::Error(ErrorAnswer::new("no trigger event")),
            Err(err) => return Answer::Error(ErrorAnswer::new(err)),
        };
        match ops {
            Ops::Sweep(Sweep::Refunds) => {
                let (events, report) = self.checker.sweep().await;
                let unpublished = adapters::lambda::publish(self.events, &events).await;
                Answer::Sweep(SweepAnswer { report, unpublished_events: unpublished.len() })
            }
            Ops::Release(orders) => {
                let keys = orders.keys();
                tracing::info!(orders = keys.len(), "ops: release stock");
                let (events, answers) = self.checker.release(&keys, self.release_concurrency).await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Release(answers)
            }
            Ops::Recheck(orders) => {
                let keys = orders.keys();
                tracing::info!(orders = keys.len(), "ops: re-check refunds now");
                let (events, report) = self.checker.recheck(&keys).await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Recheck(report)
            }
        }
    }
}
