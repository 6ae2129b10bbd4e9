//! order-sync: brings every channel's changes in by pulling them. On its schedules (EventBridge
//! Scheduler, Asia/Shanghai): every 5 minutes the incremental pull of Pinduoduo, Taobao/Tmall and
//! JD (their only way in), hourly the backstop pull of Douyin, Kuaishou and Youzan (what their
//! callbacks never delivered), daily the count reconciliation (全量比对), hourly the token
//! lifecycle of every registered shop, every 5 minutes the Kuaidi100 subscription of new
//! waybills. An EventBridge rule sends it `TrackingStopped` (a Kuaidi100 `abort`) to subscribe
//! the waybill again after the half hour Kuaidi100 asks for. Ops invoke it for one shop.
//!
//! Ops events (`events/order-sync/`):
//! - `{"sync": {"platforms": ["pdd", "taobao", "jd"], "feeds": ["orders", "refunds"]}}` (also
//!   `"settle_minutes"`, and for one shop `"shop"` and optionally `"from"`: restart there);
//! - `{"reconcile": {"platforms": […], "day": "2026-11-10"}}` (the day defaults to yesterday);
//! - `{"tokens": "sweep"}`, `{"tokens": {"refresh": {"platform": "pdd", "shop": "…"}}}`,
//!   `{"tokens": {"import": {"platform": "pdd", "shop": "…"}}}` (move a shop's tokens out of its
//!   webhook secret into their own parameter and register it for pulls);
//! - `{"subscribe": "sweep"}`.

use std::time::Duration as StdDuration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use adapters::config::{self, ConfigError, Env, Resources};
use adapters::trigger::{ErrorAnswer, Invocation, Shape};
use domain::app::subscribe_tracking::{SubscribeTracking, TrackingReport};
use domain::app::sync_channel::{Plan, ReconcileReport, SyncChannel, SyncReport, callback_summary};
use domain::app::tokens::{TokenKeeper, TokenReport};
use domain::model::domain_event::DomainEvent;
use domain::model::sync::Feed;
use domain::model::time::business_day;
use domain::ports::clock::Clock;
use domain::ports::sync::SummaryMarks;
use domain::ports::{EventPublisher, Stats};
use domain::{ShopId, Source};

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tables (orders: due markers; inbox: dedupe), stage, shards.
    pub resources: Resources,
    /// `SYNC_TABLE`: checkpoints, token ledger, subscriptions.
    pub sync_table: String,
    /// `INBOUND_QUEUE_URL`.
    pub inbound_queue: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// Platform endpoint overrides (`PDD_API_URL`, … from `adapters::platform::CLIENTS`).
    pub api_urls: std::collections::BTreeMap<Source, String>,
    /// `KUAIDI100_API_URL` (default Kuaidi100's `poll` endpoint).
    pub kuaidi100_url: String,
    /// `KUAIDI100_KEY_PARAMETER` (default `/orderhub/<stage>/kuaidi100/key`): the account key.
    pub kuaidi100_key_parameter: String,
    /// `WEBHOOK_BASE_URL`: the webhook API Kuaidi100 pushes to.
    pub webhook_base: String,
    /// `PLATFORM_TIMEOUT_MS` (default 5000).
    pub platform_timeout_ms: u64,
    /// `SECRET_TTL_SECONDS` (default 900): order-sync reads only the app key and secret from a
    /// shop's secret (never a webhook key), which change rarely; a 5-minute run on a warm
    /// instance then costs no parameter read.
    pub secret_ttl_s: i64,
    /// `SHOP_CONCURRENCY` (default 4): shops pulled at the same time.
    pub shop_concurrency: usize,
    /// `COLD_LOOKBACK_HOURS` (default 24): where a shop never pulled starts.
    pub cold_lookback_hours: i64,
    /// `OVERLAP_SECONDS` (default 120): how far each window reaches back before its checkpoint.
    pub overlap_s: i64,
    /// `TOKEN_REFRESH_BEFORE_MINUTES` (default 120).
    pub token_refresh_before_minutes: i64,
    /// `TOKEN_WARN_DAYS` (default 7): `TokenExpiring` this many days before the refresh token
    /// expires.
    pub token_warn_days: i64,
    /// `RESERVE_SECONDS` (default 10): no window is started with less of the invocation left.
    pub reserve_s: u64,
    /// `BUDGET_SECONDS`: a fixed time budget per invocation instead of the invocation's own
    /// deadline (local emulators that announce a short deadline); unset in AWS.
    pub budget_s: Option<u64>,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let resources = Resources::from_env(env)?;
        let kuaidi100_url = env
            .var("KUAIDI100_API_URL")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| adapters::platform::KUAIDI100_POLL_URL.to_owned());
        let key_parameter = env
            .var("KUAIDI100_KEY_PARAMETER")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| format!("/orderhub/{}/kuaidi100/key", resources.stage));
        let webhook_base = config::required(env, "WEBHOOK_BASE_URL")?;
        if !webhook_base.starts_with("https://") && !webhook_base.starts_with("http://") {
            return Err(ConfigError::Malformed { var: "WEBHOOK_BASE_URL", reason: "expected an http(s) URL".into() });
        }
        Ok(Self {
            sync_table: config::required(env, "SYNC_TABLE")?,
            inbound_queue: config::queue_url(env, "INBOUND_QUEUE_URL")?,
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            api_urls: adapters::platform::api_urls(env)?,
            kuaidi100_url,
            kuaidi100_key_parameter: key_parameter,
            webhook_base,
            platform_timeout_ms: config::parsed(env, "PLATFORM_TIMEOUT_MS", 5000)?,
            secret_ttl_s: config::parsed(env, "SECRET_TTL_SECONDS", 900)?,
            shop_concurrency: config::parsed(env, "SHOP_CONCURRENCY", 4)?,
            cold_lookback_hours: config::parsed(env, "COLD_LOOKBACK_HOURS", 24)?,
            overlap_s: config::parsed(env, "OVERLAP_SECONDS", 120)?,
            token_refresh_before_minutes: config::parsed(env, "TOKEN_REFRESH_BEFORE_MINUTES", 120)?,
            token_warn_days: config::parsed(env, "TOKEN_WARN_DAYS", 7)?,
            reserve_s: config::parsed(env, "RESERVE_SECONDS", 10)?,
            budget_s: match env.var("BUDGET_SECONDS").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(v) => Some(v.trim().parse().map_err(|e: std::num::ParseIntError| ConfigError::Malformed {
                    var: "BUDGET_SECONDS",
                    reason: e.to_string(),
                })?),
            },
            resources,
        })
    }
}

/// What order-sync is invoked with: an EventBridge event (the `TrackingStopped` rule), or an
/// ops event (its schedules send ops events too).
pub type Trigger = Invocation<EventBridgeEvent<Value>, Ops>;

/// The ops events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ops {
    /// Pull platforms' changed orders and refunds since each shop's checkpoint.
    Sync(SyncOps),
    /// The daily count reconciliation of one Beijing day.
    Reconcile(ReconcileOps),
    /// The token lifecycle.
    Tokens(TokenOps),
    /// Subscribe due waybills to Kuaidi100.
    Subscribe(Sweep),
}

/// `{"sync": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncOps {
    /// The platforms.
    pub platforms: Vec<Source>,
    /// The feeds (default both).
    #[serde(default = "both_feeds")]
    pub feeds: Vec<Feed>,
    /// Windows end at least this long before now besides the platform's own margin (the push
    /// platforms' backstop leaves their callbacks time to arrive first).
    #[serde(default)]
    pub settle_minutes: i64,
    /// One shop only.
    #[serde(default)]
    pub shop: Option<ShopId>,
    /// With `shop`: restart its feeds from here.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
}

fn both_feeds() -> Vec<Feed> {
    Feed::ALL.to_vec()
}

/// `{"reconcile": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileOps {
    /// The platforms.
    pub platforms: Vec<Source>,
    /// The Beijing day (default: yesterday).
    #[serde(default)]
    pub day: Option<NaiveDate>,
    /// One shop only.
    #[serde(default)]
    pub shop: Option<ShopId>,
}

/// `{"tokens": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenOps {
    /// `"sweep"`: every registered shop (the schedule).
    #[serde(rename = "sweep")]
    Sweep,
    /// Refresh one shop's tokens now.
    Refresh(OneShop),
    /// Move one shop's tokens out of its webhook secret into their own parameter and register
    /// it for pulls.
    Import(OneShop),
}

/// One shop of one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneShop {
    /// The platform.
    pub platform: Source,
    /// The shop.
    pub shop: ShopId,
}

/// `"sweep"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sweep {
    /// Every due item.
    Sweep,
}

/// How order-sync tells its trigger from its ops events.
pub const SHAPE: Shape = Shape {
    trigger_marker: Some("detail-type"),
    trigger_name: "EventBridge",
    expected: r#"{"sync": {"platforms": […]}}, {"reconcile": {"platforms": […]}}, {"tokens": "sweep"|{"refresh"|"import": {"platform", "shop"}}}, {"subscribe": "sweep"} or a TrackingStopped event"#,
};

/// What a pull run answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncAnswer {
    /// The run.
    #[serde(flatten)]
    pub report: SyncReport,
    /// Events published (failures, outage summaries).
    pub events: usize,
    /// Events the bus did not take.
    pub unpublished_events: usize,
}

/// What order-sync answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A pull run.
    Sync(SyncAnswer),
    /// A reconciliation.
    Reconcile(ReconcileReport),
    /// A token sweep.
    Tokens(TokenReport),
    /// One shop's tokens, refreshed or imported.
    Token {
        /// `source/shop`.
        shop: String,
        /// The token ledger's version after an import.
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// When the access token expires.
        access_expires_at: Option<DateTime<Utc>>,
    },
    /// A subscription sweep.
    Subscribe(TrackingReport),
    /// A `TrackingStopped` event: when the waybill is subscribed again.
    Resubscribe {
        /// The order.
        order: String,
        /// When.
        due_at: DateTime<Utc>,
    },
    /// An event that could not be decoded, or an ops call that failed.
    Error(ErrorAnswer),
}

/// The function's dependencies.
pub struct Handler<'a> {
    /// Pulls and reconciliation.
    pub sync: SyncChannel<'a>,
    /// Tokens.
    pub tokens: &'a TokenKeeper<'a>,
    /// Kuaidi100 subscriptions.
    pub tracking: SubscribeTracking<'a>,
    /// Day counters (callback-outage summaries, missing orders).
    pub stats: &'a dyn Stats,
    /// The summaries' marks.
    pub marks: &'a dyn SummaryMarks,
    /// The event bus.
    pub events: &'a dyn EventPublisher,
    /// Now.
    pub clock: &'a dyn Clock,
}

impl Handler<'_> {
    /// Handles one invocation; `budget` is the time it may take (the Lambda's remaining time
    /// less a margin), `run` its name in leases (the request id).
    pub async fn handle(&self, event: Value, budget: StdDuration, run: &str) -> Answer {
        let deadline = Instant::now() + budget;
        let ops = match adapters::trigger::decode::<EventBridgeEvent<Value>, Ops>(event, SHAPE) {
            Ok(Invocation::Ops(ops)) => ops,
            Ok(Invocation::Trigger(event)) => return self.bus_event(event).await,
            Err(err) => return Answer::Error(ErrorAnswer::new(err)),
        };
        match ops {
            Ops::Sync(ops) => {
                if ops.from.is_some() && ops.shop.is_none() {
                    return Answer::Error(ErrorAnswer::new("`from` restarts one shop: give `shop` too"));
                }
                let plan = Plan {
                    sources: ops.platforms.clone(),
                    feeds: ops.feeds,
                    shop: ops.shop,
                    from: ops.from,
                    settle: Duration::minutes(ops.settle_minutes.max(0)),
                    run: run.to_owned(),
                    deadline,
                };
                // What earlier backstop pulls found, applied by now: one summary per channel.
                let mut events = callback_summary(&ops.platforms, self.stats, self.marks, self.clock.now()).await;
                let (failures, report) = self.sync.run(&plan).await;
                // Pull lag per shop (the observability hook): how far behind each shop's pull
                // has read.
                for (source, shop, seconds) in pull_lags(&report, self.clock.now()) {
                    adapters::metrics::pull_lag(source, &shop, seconds);
                }
                events.extend(failures);
                let unpublished = adapters::lambda::publish(self.events, &events).await;
                Answer::Sync(SyncAnswer { report, events: events.len(), unpublished_events: unpublished.len() })
            }
            Ops::Reconcile(ops) => {
                let day = ops.day.unwrap_or_else(|| business_day(self.clock.now()) - chrono::Days::new(1));
                let plan = Plan {
                    sources: ops.platforms,
                    feeds: vec![Feed::Orders],
                    shop: ops.shop,
                    from: None,
                    settle: Duration::zero(),
                    run: run.to_owned(),
                    deadline,
                };
                let (events, report) = self.sync.reconcile(&plan, day, self.stats).await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Reconcile(report)
            }
            Ops::Tokens(TokenOps::Sweep) => {
                let (events, report) = self.tokens.sweep(&Source::CHANNELS).await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Tokens(report)
            }
            Ops::Tokens(TokenOps::Refresh(one)) => match self.tokens.refresh(one.platform, &one.shop).await {
                Ok(_) => self.token_answer(&one).await,
                Err(err) => {
                    if !err.is_transient() {
                        let event = DomainEvent::TokenRefreshFailed {
                            source: one.platform,
                            shop: one.shop.to_string(),
                            reason: err.to_string(),
                        };
                        adapters::lambda::publish(self.events, std::slice::from_ref(&event)).await;
                    }
                    Answer::Error(ErrorAnswer::new(err))
                }
            },
            Ops::Tokens(TokenOps::Import(one)) => match self.tokens.import(one.platform, &one.shop).await {
                Ok(record) => Answer::Token {
                    shop: format!("{}/{}", one.platform, one.shop),
                    version: Some(record.version),
                    access_expires_at: record.access_expires_at,
                },
                Err(err) => Answer::Error(ErrorAnswer::new(err)),
            },
            Ops::Subscribe(Sweep::Sweep) => {
                let (events, report) = self.tracking.sweep().await;
                adapters::lambda::publish(self.events, &events).await;
                Answer::Subscribe(report)
            }
        }
    }

    async fn token_answer(&self, one: &OneShop) -> Answer {
        match self.tokens.credentials(one.platform, &one.shop, None).await {
            Ok((_, expires_at)) => Answer::Token {
                shop: format!("{}/{}", one.platform, one.shop),
                version: None,
                access_expires_at: expires_at,
            },
            Err(err) => Answer::Error(ErrorAnswer::new(err)),
        }
    }

    /// An event of the bus rule: `TrackingStopped` subscribes the waybill again later.
    async fn bus_event(&self, event: EventBridgeEvent<Value>) -> Answer {
        match DomainEvent::from_parts(&event.detail_type, event.detail) {
            Ok(DomainEvent::TrackingStopped { key, waybill, reason, at }) => {
                tracing::info!(order_id = %key.order_id, %reason, "Kuaidi100 stopped tracking a waybill");
                match self.tracking.tracking_stopped(&key, &waybill, at).await {
                    Ok(marker) => Answer::Resubscribe { order: key.to_string(), due_at: marker.due_at },
                    Err(err) => Answer::Error(ErrorAnswer::new(err)),
                }
            }
            Ok(other) => Answer::Error(ErrorAnswer::new(format!("order-sync takes no {} events", other.detail_type()))),
            Err(err) => Answer::Error(ErrorAnswer::new(format!("unreadable {} event: {err}", event.detail_type))),
        }
    }
}

#[cfg(test)]
mod tests;

/// Each pulled shop's lag after a run, in seconds: now minus where its furthest-behind feed's
/// checkpoint stands (what the pull has read through), for `adapters::metrics::pull_lag`.
/// Shops without a checkpoint yet are left out.
pub fn pull_lags(report: &SyncReport, now: DateTime<Utc>) -> Vec<(Source, String, f64)> {
    let mut oldest: std::collections::BTreeMap<(Source, String), DateTime<Utc>> = std::collections::BTreeMap::new();
    for feed in &report.feeds {
        if let Some(through) = feed.through {
            oldest.entry((feed.source, feed.shop.clone())).and_modify(|at| *at = (*at).min(through)).or_insert(through);
        }
    }
    oldest
        .into_iter()
        .map(|((source, shop), through)| {
            #[allow(clippy::cast_precision_loss)]
            let seconds = (now - through).num_milliseconds() as f64 / 1000.0;
            (source, shop, seconds.max(0.0))
        })
        .collect()
}
