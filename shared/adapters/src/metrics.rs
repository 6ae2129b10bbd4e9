//! Metrics in CloudWatch Embedded Metric Format (EMF): every function records through this one
//! API, and after each invocation [`flush`] writes one JSON document per dimension set to stdout,
//! which Lambda sends to CloudWatch Logs, where CloudWatch extracts the metrics (no PutMetricData
//! call, no IAM action). The writer is the `metrics_cloudwatch_embedded` crate behind the
//! `metrics` facade.
//!
//! Namespace [`NAMESPACE`]. Every metric carries the `Function` dimension (the Lambda function's
//! name); the others are low-cardinality: `Source` (the callback source or sales channel, one of
//! `Source::ALL`), `Target` (`robot`, `sms`), `Report` (`daily`, `monthly`, `range`), `Channel`
//! (`overall` or a sales channel). The one exception is [`names::PULL_LAG_SECONDS`], which also
//! carries `Shop`: the issue asks for pull lag *per shop*, a seller connects a bounded number of
//! shops (each is an SSM parameter), and only a dimension gives a per-shop graph or alarm (an EMF
//! property is searchable in Logs Insights but is not a metric). No other metric names a shop.
//!
//! What a function already has is what it records: webhook-verify the door's outcome
//! ([`callback`]), the write path's committed history entries through [`MeteredOrders`] (the
//! verdict of each change and the ingest lag), the events that went out through [`MeteredBus`]
//! (stock releases, downgrades, SLA and health breaches), notify its reports ([`alerts`]),
//! health-report its indicators ([`health_indicator`]). The domain knows nothing of metrics.

use std::io::Write;
use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metrics::Unit;
use metrics_cloudwatch_embedded::{Builder, Collector};

use domain::Source;
use domain::model::counters::CounterAdd;
use domain::model::domain_event::DomainEvent;
use domain::model::health::{Indicator, ReportKind};
use domain::model::ids::{MessageId, OrderKey};
use domain::model::lifecycle::Lifecycle;
use domain::model::order::{Provenance, Verdict};
use domain::model::record::{DueKind, DueMarker, HistoryEntry, OrderWrite, Unpublished};
use domain::ports::{EventPublisher, OrderStore, Page, PublishError, StoreError};

/// The CloudWatch namespace of every orderhub metric.
pub const NAMESPACE: &str = "orderhub";

/// Dimension names.
pub mod dims {
    /// The Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`), on every metric.
    pub const FUNCTION: &str = "Function";
    /// A callback source or sales channel (`douyin`, …, `kuaidi100`, `app`).
    pub const SOURCE: &str = "Source";
    /// Where an alert went: `robot` (DingTalk/WeCom group robots) or `sms` (customer notices).
    pub const TARGET: &str = "Target";
    /// A health report's kind: `daily`, `monthly`, `range`.
    pub const REPORT: &str = "Report";
    /// A health report's scope: `overall` or a sales channel.
    pub const CHANNEL: &str = "Channel";
    /// A shop id: on [`super::names::PULL_LAG_SECONDS`] only.
    pub const SHOP: &str = "Shop";
}

/// Metric names. The dashboard and the alarms in `infra/template.yaml` name these (a test reads
/// them from [`names::ALL`]).
pub mod names {
    /// Callbacks verified, archived and enqueued (`Source`).
    pub const CALLBACKS_ACCEPTED: &str = "CallbacksAccepted";
    /// Callbacks seen before and acknowledged again (`Source`).
    pub const CALLBACKS_DUPLICATE: &str = "CallbacksDuplicate";
    /// Verified test pushes and heartbeats (`Source`).
    pub const CALLBACKS_PROBE: &str = "CallbacksProbe";
    /// Callbacks refused: method, unknown source or shop, too large, malformed, unverified
    /// (`Source`; `unknown` when the path named none).
    pub const CALLBACKS_REFUSED: &str = "CallbacksRefused";
    /// Refused callbacks kept in quarantine for replay (`Source`).
    pub const CALLBACKS_QUARANTINED: &str = "CallbacksQuarantined";
    /// Callbacks answered 503 (a dependency failed; the sender retries) (`Source`).
    pub const CALLBACKS_UNAVAILABLE: &str = "CallbacksUnavailable";
    /// Changes applied: a state moved (`Source`).
    pub const EVENTS_APPLIED: &str = "EventsApplied";
    /// Changes that only refreshed stamps (`Source`).
    pub const EVENTS_REFRESHED: &str = "EventsRefreshed";
    /// Changes already applied, and redelivered messages whose change was recorded (`Source`).
    pub const EVENTS_DUPLICATE: &str = "EventsDuplicate";
    /// Changes older than the applied state (`Source`).
    pub const EVENTS_STALE: &str = "EventsStale";
    /// Moves the state machine does not allow (`Source`).
    pub const EVENTS_REFUSED: &str = "EventsRefused";
    /// Known codes that move nothing (`Source`).
    pub const EVENTS_NOTED: &str = "EventsNoted";
    /// Unknown codes, kept and flagged (`Source`).
    pub const EVENTS_UNMAPPED: &str = "EventsUnmapped";
    /// A callback's event time to its change applied, seconds (`Source`, and `Function` alone).
    pub const INGEST_LAG_SECONDS: &str = "IngestLagSeconds";
    /// `InventoryReleased` events published (`Source`).
    pub const STOCK_RELEASES: &str = "StockReleases";
    /// Stock lines those released (`Source`).
    pub const STOCK_LINES_RELEASED: &str = "StockLinesReleased";
    /// Carrier signs downgraded: `SignInTrustAssessed` untrusted, or an order moved to
    /// `SignPendingConfirmation` (each order once per batch) (`Source`).
    pub const DOWNGRADES: &str = "Downgrades";
    /// `SlaBreached` events published (`Source`, and `Function` alone).
    pub const SLA_BREACHES: &str = "SlaBreaches";
    /// `HealthThresholdBreached` events published (`Report`).
    pub const HEALTH_BREACHES: &str = "HealthBreaches";
    /// Robot messages sent and SMS notices sent (`Target`).
    pub const ALERTS_SENT: &str = "AlertsSent";
    /// Findings folded into a window's summary instead of a message of their own (`Target`).
    pub const ALERTS_FOLDED: &str = "AlertsFolded";
    /// Robot messages, findings and notices dead-lettered or refused for good (`Target`).
    pub const ALERTS_FAILED: &str = "AlertsFailed";
    /// How far behind a shop's scheduled pull is: now − the newest change the pull has read,
    /// seconds (`Source`, `Shop`). Recorded by [`super::pull_lag`] (issue 14's order-sync).
    pub const PULL_LAG_SECONDS: &str = "PullLagSeconds";
    /// 状态同步延迟中位数, minutes (`Report`, `Channel`).
    pub const HEALTH_SYNC_DELAY_MINUTES: &str = "HealthSyncDelayMedianMinutes";
    /// 发货准时率, percent (`Report`, `Channel`).
    pub const HEALTH_ON_TIME_SHIPPING: &str = "HealthOnTimeShippingPercent";
    /// 物流信息可信度分, 0–100 (`Report`, `Channel`).
    pub const HEALTH_TRUST_SCORE: &str = "HealthTrustScore";
    /// 退款库存释放及时率, percent (`Report`, `Channel`).
    pub const HEALTH_REFUND_STOCK_RELEASE: &str = "HealthRefundStockReleasePercent";
    /// 客户自助查询解决率, percent (`Report`, `Channel`).
    pub const HEALTH_SELF_SERVICE: &str = "HealthSelfServicePercent";

    /// Every metric name with its unit (`None`: CloudWatch's `None`, for minutes and scores,
    /// which have no CloudWatch unit).
    pub const ALL: [(&str, Option<super::Unit>); 28] = [
        (CALLBACKS_ACCEPTED, Some(super::Unit::Count)),
        (CALLBACKS_DUPLICATE, Some(super::Unit::Count)),
        (CALLBACKS_PROBE, Some(super::Unit::Count)),
        (CALLBACKS_REFUSED, Some(super::Unit::Count)),
        (CALLBACKS_QUARANTINED, Some(super::Unit::Count)),
        (CALLBACKS_UNAVAILABLE, Some(super::Unit::Count)),
        (EVENTS_APPLIED, Some(super::Unit::Count)),
        (EVENTS_REFRESHED, Some(super::Unit::Count)),
        (EVENTS_DUPLICATE, Some(super::Unit::Count)),
        (EVENTS_STALE, Some(super::Unit::Count)),
        (EVENTS_REFUSED, Some(super::Unit::Count)),
        (EVENTS_NOTED, Some(super::Unit::Count)),
        (EVENTS_UNMAPPED, Some(super::Unit::Count)),
        (INGEST_LAG_SECONDS, Some(super::Unit::Seconds)),
        (STOCK_RELEASES, Some(super::Unit::Count)),
        (STOCK_LINES_RELEASED, Some(super::Unit::Count)),
        (DOWNGRADES, Some(super::Unit::Count)),
        (SLA_BREACHES, Some(super::Unit::Count)),
        (HEALTH_BREACHES, Some(super::Unit::Count)),
        (ALERTS_SENT, Some(super::Unit::Count)),
        (ALERTS_FOLDED, Some(super::Unit::Count)),
        (ALERTS_FAILED, Some(super::Unit::Count)),
        (PULL_LAG_SECONDS, Some(super::Unit::Seconds)),
        (HEALTH_SYNC_DELAY_MINUTES, None),
        (HEALTH_ON_TIME_SHIPPING, Some(super::Unit::Percent)),
        (HEALTH_TRUST_SCORE, None),
        (HEALTH_REFUND_STOCK_RELEASE, Some(super::Unit::Percent)),
        (HEALTH_SELF_SERVICE, Some(super::Unit::Percent)),
    ];
}

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the crate's recorder as the process's `metrics` recorder (once per process: the
/// `metrics` facade has one global recorder) with the `Function` dimension `function`.
fn install(function: &str, timestamp: Option<u64>) -> Option<&'static Collector> {
    let mut builder =
        Builder::new().cloudwatch_namespace(NAMESPACE).with_dimension(dims::FUNCTION, function.to_owned());
    if let Some(timestamp) = timestamp {
        builder = builder.with_timestamp(timestamp);
    }
    match builder.init() {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
            describe();
            Some(collector)
        }
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed");
            None
        }
    }
}

fn describe() {
    for (name, unit) in names::ALL {
        if let Some(unit) = unit {
            metrics::describe_histogram!(name, unit, "");
        }
    }
}

/// Installs the EMF recorder once per process. The `Function` dimension is
/// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else `fallback` (the binary's name, locally).
/// Recording before this, or without it (unit tests), records nothing.
pub fn init(fallback: &str) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().filter(|f| !f.is_empty());
    install(function.as_deref().unwrap_or(fallback), None);
}

/// Writes what was recorded since the last flush as EMF documents, one JSON object per line,
/// to stdout in one write (so no log line lands inside a document). Call it once at the end of
/// every invocation.
pub fn flush() {
    let Some(collector) = COLLECTOR.get() else { return };
    let mut buffer = Vec::new();
    if let Err(err) = collector.flush(&mut buffer) {
        tracing::warn!(error = %err, "metrics not written");
        return;
    }
    if !buffer.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buffer).and_then(|()| out.flush());
    }
}

fn count(name: &'static str, key: &'static str, value: String, by: u64) {
    if by > 0 {
        metrics::counter!(name, key => value).increment(by);
    }
}

/// What the front door did with one callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Archived and enqueued.
    Accepted,
    /// Seen before.
    Duplicate,
    /// A test push or heartbeat.
    Probe,
    /// Refused; `quarantined` when a copy was kept.
    Refused {
        /// Whether a copy was kept for replay.
        quarantined: bool,
    },
    /// A dependency failed (503).
    Unavailable,
}

/// Counts one callback of `source` (`None`: the path named no known source).
pub fn callback(source: Option<Source>, outcome: CallbackOutcome) {
    let source = source.map_or("unknown", |s| s.as_str()).to_owned();
    let name = match outcome {
        CallbackOutcome::Accepted => names::CALLBACKS_ACCEPTED,
        CallbackOutcome::Duplicate => names::CALLBACKS_DUPLICATE,
        CallbackOutcome::Probe => names::CALLBACKS_PROBE,
        CallbackOutcome::Unavailable => names::CALLBACKS_UNAVAILABLE,
        CallbackOutcome::Refused { quarantined } => {
            if quarantined {
                count(names::CALLBACKS_QUARANTINED, dims::SOURCE, source.clone(), 1);
            }
            names::CALLBACKS_REFUSED
        }
    };
    count(name, dims::SOURCE, source, 1);
}

fn verdict_metric(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Applied => names::EVENTS_APPLIED,
        Verdict::Refreshed => names::EVENTS_REFRESHED,
        Verdict::Duplicate => names::EVENTS_DUPLICATE,
        Verdict::Stale => names::EVENTS_STALE,
        Verdict::Refused => names::EVENTS_REFUSED,
        Verdict::Noted => names::EVENTS_NOTED,
        Verdict::Unmapped => names::EVENTS_UNMAPPED,
    }
}

/// Records a committed history entry: its verdict, and for an applied callback the ingest lag
/// (its event time to applied, the same delay the day counters keep).
pub fn committed(entry: &HistoryEntry) {
    let source = entry.key.source.as_str();
    count(verdict_metric(entry.verdict), dims::SOURCE, source.to_owned(), 1);
    if entry.verdict == Verdict::Applied && entry.provenance == Provenance::Callback {
        ingest_lag(entry.key.source, entry.event_time, entry.applied_at);
    }
}

/// Records the ingest lag of one change of `source` (seconds, never negative: a source clock
/// ahead of ours reads 0), per source and for the function as a whole (what its alarm watches).
pub fn ingest_lag(source: Source, event_time: DateTime<Utc>, applied_at: DateTime<Utc>) {
    let seconds = (applied_at - event_time).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!(names::INGEST_LAG_SECONDS, dims::SOURCE => source.as_str().to_owned()).record(seconds);
    metrics::histogram!(names::INGEST_LAG_SECONDS).record(seconds);
}

/// Records the events that went out: stock releases, downgrades, SLA and health breaches.
pub fn published(events: &[DomainEvent]) {
    let mut downgraded: Vec<&OrderKey> = Vec::new();
    for event in events {
        match event {
            DomainEvent::InventoryReleased { key, lines, .. } => {
                count(names::STOCK_RELEASES, dims::SOURCE, key.source.as_str().to_owned(), 1);
                count(names::STOCK_LINES_RELEASED, dims::SOURCE, key.source.as_str().to_owned(), lines.len() as u64);
            }
            // A downgrade publishes both: the order counts once.
            DomainEvent::SignInTrustAssessed { key, trusted: false, .. }
            | DomainEvent::OrderStatusChanged { key, to: Lifecycle::SignPendingConfirmation, .. }
                if !downgraded.contains(&key) =>
            {
                downgraded.push(key);
                count(names::DOWNGRADES, dims::SOURCE, key.source.as_str().to_owned(), 1);
            }
            DomainEvent::SlaBreached { key, .. } => {
                count(names::SLA_BREACHES, dims::SOURCE, key.source.as_str().to_owned(), 1);
                metrics::counter!(names::SLA_BREACHES).increment(1);
            }
            DomainEvent::HealthThresholdBreached { kind, .. } => {
                count(names::HEALTH_BREACHES, dims::REPORT, kind.as_str().to_owned(), 1);
            }
            _ => {}
        }
    }
}

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertTarget {
    /// A DingTalk or WeCom group robot.
    Robot,
    /// A customer's SMS.
    Sms,
}

impl AlertTarget {
    fn as_str(self) -> &'static str {
        match self {
            AlertTarget::Robot => "robot",
            AlertTarget::Sms => "sms",
        }
    }
}

/// What became of alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOutcome {
    /// Sent.
    Sent,
    /// Folded into a window's summary.
    Folded,
    /// Dead-lettered or refused for good.
    Failed,
}

/// Counts `count` alerts of `target` with `outcome`.
pub fn alerts(target: AlertTarget, outcome: AlertOutcome, count_of: u64) {
    let name = match outcome {
        AlertOutcome::Sent => names::ALERTS_SENT,
        AlertOutcome::Folded => names::ALERTS_FOLDED,
        AlertOutcome::Failed => names::ALERTS_FAILED,
    };
    count(name, dims::TARGET, target.as_str().to_owned(), count_of);
}

/// The hook for "pull lag per shop" (issue 14, order-sync): after each pull of a shop, record
/// how far behind it is — now minus the newest change time the pull has read — in seconds.
/// `shop` is a dimension of this metric only (see the module's note).
pub fn pull_lag(source: Source, shop: &str, seconds: f64) {
    metrics::histogram!(
        names::PULL_LAG_SECONDS,
        dims::SOURCE => source.as_str().to_owned(),
        dims::SHOP => shop.to_owned()
    )
    .record(seconds.max(0.0));
}

/// The metric of one health indicator, and the factor from its report value (rates are
/// fractions; the metric is a percentage).
pub fn indicator_metric(indicator: Indicator) -> (&'static str, f64) {
    match indicator {
        Indicator::SyncDelayMedian => (names::HEALTH_SYNC_DELAY_MINUTES, 1.0),
        Indicator::OnTimeShipping => (names::HEALTH_ON_TIME_SHIPPING, 100.0),
        Indicator::TrustScore => (names::HEALTH_TRUST_SCORE, 1.0),
        Indicator::RefundStockRelease => (names::HEALTH_REFUND_STOCK_RELEASE, 100.0),
        Indicator::SelfService => (names::HEALTH_SELF_SERVICE, 100.0),
    }
}

/// Records one health indicator's value of a report's scope (`overall` or a channel). Emitted
/// once per report (a histogram of one value, not a gauge that would repeat on every later
/// flush of the same instance).
pub fn health_indicator(kind: ReportKind, channel: &str, indicator: Indicator, value: f64) {
    let (name, factor) = indicator_metric(indicator);
    if value.is_finite() {
        metrics::histogram!(name, dims::REPORT => kind.as_str().to_owned(), dims::CHANNEL => channel.to_owned())
            .record(value * factor);
    }
}

/// An order store that records every committed history entry ([`committed`]) and every
/// redelivery found already recorded (as a duplicate). Wraps the function's store at wiring.
pub struct MeteredOrders<'a> {
    inner: &'a dyn OrderStore,
}

impl<'a> MeteredOrders<'a> {
    /// Over `inner`.
    pub fn new(inner: &'a dyn OrderStore) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl OrderStore for MeteredOrders<'_> {
    async fn get(&self, key: &OrderKey) -> Result<Option<domain::model::order::Order>, StoreError> {
        self.inner.get(key).await
    }

    async fn commit(&self, write: &OrderWrite) -> Result<(), StoreError> {
        let result = self.inner.commit(write).await;
        match &result {
            Ok(()) => committed(&write.history),
            Err(StoreError::Duplicate) => {
                count(names::EVENTS_DUPLICATE, dims::SOURCE, write.key.source.as_str().to_owned(), 1);
            }
            Err(_) => {}
        }
        result
    }

    async fn history_entry(
        &self,
        key: &OrderKey,
        event_time: DateTime<Utc>,
        message_id: &MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        self.inner.history_entry(key, event_time, message_id).await
    }

    async fn clear_due(
        &self,
        key: &OrderKey,
        kind: DueKind,
        due_at: DateTime<Utc>,
        counters: &[CounterAdd],
    ) -> Result<bool, StoreError> {
        self.inner.clear_due(key, kind, due_at, counters).await
    }

    async fn set_due(&self, marker: &DueMarker) -> Result<(), StoreError> {
        self.inner.set_due(marker).await
    }

    async fn history(
        &self,
        key: &OrderKey,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        self.inner.history(key, cursor, limit).await
    }

    async fn keep(
        &self,
        key: &OrderKey,
        shard: u16,
        events: &[DomainEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.keep(key, shard, events, at).await
    }

    async fn published(&self, entries: &[(OrderKey, String)]) -> Result<(), StoreError> {
        self.inner.published(entries).await
    }

    async fn unpublished(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Unpublished>, StoreError> {
        self.inner.unpublished(shard, until, cursor, limit).await
    }

    async fn due(
        &self,
        kind: DueKind,
        shard: u16,
        until: DateTime<Utc>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<DueMarker>, StoreError> {
        self.inner.due(kind, shard, until, cursor, limit).await
    }
}

/// An event publisher that records the events the bus took ([`published`]). Wraps the
/// function's bus at wiring.
pub struct MeteredBus<'a> {
    inner: &'a dyn EventPublisher,
}

impl<'a> MeteredBus<'a> {
    /// Over `inner`.
    pub fn new(inner: &'a dyn EventPublisher) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl EventPublisher for MeteredBus<'_> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<usize>, PublishError> {
        let failed = self.inner.publish(events).await?;
        let went: Vec<DomainEvent> =
            events.iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, event)| event.clone()).collect();
        published(&went);
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::model::health::Scope;
    use domain::model::ids::OrderKey;
    use serde_json::Value;

    const FUNCTION: &str = "orderhub-test-webhook-verify";

    /// Records with `record` and returns the EMF documents a flush writes (what Lambda's stdout
    /// carries). The recorder is the process's one global recorder: the tests take turns.
    fn emitted(record: impl FnOnce()) -> Vec<Value> {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let collector = match COLLECTOR.get() {
            Some(collector) => *collector,
            None => install(FUNCTION, Some(1_767_225_600_000)).unwrap_or_else(|| panic!("recorder installed")),
        };
        collector.flush(std::io::sink()).unwrap_or_else(|e| panic!("{e}"));
        record();
        let mut out = Vec::new();
        collector.flush(&mut out).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out)
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
            .collect()
    }

    /// The document whose dimension values include every `(name, value)` and which carries
    /// `metric`.
    fn document<'a>(docs: &'a [Value], metric: &str, dims: &[(&str, &str)]) -> &'a Value {
        docs.iter()
            .find(|doc| {
                doc.get(metric).is_some()
                    && dims.iter().all(|(k, v)| doc[*k].as_str() == Some(*v))
                    && doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0].as_array().map(Vec::len) == Some(dims.len())
            })
            .unwrap_or_else(|| panic!("no document with {metric} and {dims:?} in {docs:#?}"))
    }

    fn key(source: Source) -> OrderKey {
        OrderKey::parse(source, "shop-1", "6921").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn callbacks_are_emf_documents_in_the_orderhub_namespace_per_function_and_source() {
        let docs = emitted(|| {
            callback(Some(Source::Douyin), CallbackOutcome::Accepted);
            callback(Some(Source::Douyin), CallbackOutcome::Accepted);
            callback(Some(Source::Douyin), CallbackOutcome::Refused { quarantined: true });
            callback(Some(Source::Youzan), CallbackOutcome::Refused { quarantined: false });
            callback(None, CallbackOutcome::Refused { quarantined: false });
        });
        let douyin = document(&docs, names::CALLBACKS_ACCEPTED, &[("Function", FUNCTION), ("Source", "douyin")]);
        let aws = &douyin["_aws"];
        assert_eq!(aws["Timestamp"], 1_767_225_600_000u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function", "Source"]]));
        let metrics: Vec<(&str, &str)> = directive["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| (m["Name"].as_str().unwrap_or_default(), m["Unit"].as_str().unwrap_or_default()))
            .collect();
        for metric in [names::CALLBACKS_ACCEPTED, names::CALLBACKS_REFUSED, names::CALLBACKS_QUARANTINED] {
            assert!(metrics.contains(&(metric, "Count")), "{metric} in {metrics:?}");
        }
        // Values are the counts since the last flush, as top-level members named like the metric.
        assert_eq!(douyin[names::CALLBACKS_ACCEPTED], 2);
        assert_eq!(douyin[names::CALLBACKS_REFUSED], 1);
        assert_eq!(douyin[names::CALLBACKS_QUARANTINED], 1);
        let youzan = document(&docs, names::CALLBACKS_REFUSED, &[("Function", FUNCTION), ("Source", "youzan")]);
        assert_eq!(youzan[names::CALLBACKS_REFUSED], 1);
        assert!(youzan.get(names::CALLBACKS_QUARANTINED).is_none(), "a metric with no count is left out");
        let unknown = document(&docs, names::CALLBACKS_REFUSED, &[("Function", FUNCTION), ("Source", "unknown")]);
        assert_eq!(unknown[names::CALLBACKS_REFUSED], 1);
        // Every document: the directive's dimension names are members with string values.
        for doc in &docs {
            for name in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                assert!(doc[name].is_string(), "dimension {name} has a value in {doc}");
            }
        }
    }

    #[test]
    fn verdicts_lag_and_published_events_become_metrics() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let entry = |verdict: Verdict, provenance: Provenance, lag_s: i64| HistoryEntry {
            key: key(Source::Pdd),
            event_time: now - chrono::Duration::seconds(lag_s),
            message_id: MessageId::parse("m-1").unwrap_or_else(|e| panic!("{e}")),
            received_at: now,
            applied_at: now,
            raw: domain::model::status::RawStatus::new("status", "1"),
            provenance,
            verdict,
            lifecycle: None,
            refund: None,
            refund_id: None,
        };
        let line = |id: &str| domain::model::stock::OrderLine {
            line: domain::model::ids::LineId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            sku: domain::model::ids::Sku::parse("sku-1").unwrap_or_else(|e| panic!("{e}")),
            qty: 1,
        };
        let docs = emitted(|| {
            committed(&entry(Verdict::Applied, Provenance::Callback, 30));
            committed(&entry(Verdict::Applied, Provenance::Callback, 90));
            // A poll's find is not a callback's lag.
            committed(&entry(Verdict::Applied, Provenance::Poll, 7_200));
            committed(&entry(Verdict::Stale, Provenance::Callback, 10));
            committed(&entry(Verdict::Unmapped, Provenance::Callback, 10));
            published(&[
                DomainEvent::InventoryReleased {
                    key: key(Source::Pdd),
                    lines: vec![line("l1"), line("l2")],
                    reason: "refund".into(),
                },
                DomainEvent::OrderStatusChanged {
                    key: key(Source::Jd),
                    from: Some(Lifecycle::Signed),
                    to: Lifecycle::SignPendingConfirmation,
                    stage: Lifecycle::SignPendingConfirmation.stage(),
                    event_time: now,
                    applied_at: now,
                    provenance: Provenance::Rule,
                },
                DomainEvent::HealthThresholdBreached {
                    indicator: Indicator::TrustScore,
                    channel: Scope::Overall,
                    value: 80.0,
                    threshold: 92.0,
                    period: "2026-11-11".into(),
                    kind: ReportKind::Daily,
                },
            ]);
            health_indicator(ReportKind::Daily, "douyin", Indicator::OnTimeShipping, 0.985);
        });
        let pdd = document(&docs, names::EVENTS_APPLIED, &[("Function", FUNCTION), ("Source", "pdd")]);
        assert_eq!(pdd[names::EVENTS_APPLIED], 3);
        assert_eq!(pdd[names::EVENTS_STALE], 1);
        assert_eq!(pdd[names::EVENTS_UNMAPPED], 1);
        assert_eq!(pdd[names::STOCK_RELEASES], 1);
        assert_eq!(pdd[names::STOCK_LINES_RELEASED], 2);
        // The lag: one value per applied callback, in seconds, per source and for the function.
        let lag = document(&docs, names::INGEST_LAG_SECONDS, &[("Function", FUNCTION), ("Source", "pdd")]);
        assert_eq!(lag[names::INGEST_LAG_SECONDS], serde_json::json!([30.0, 90.0]));
        let unit = lag["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["Name"] == names::INGEST_LAG_SECONDS)
            .map(|m| m["Unit"].clone());
        assert_eq!(unit, Some(Value::from("Seconds")));
        let rollup = document(&docs, names::INGEST_LAG_SECONDS, &[("Function", FUNCTION)]);
        assert_eq!(rollup[names::INGEST_LAG_SECONDS], serde_json::json!([30.0, 90.0]));
        let downgrade = document(&docs, names::DOWNGRADES, &[("Function", FUNCTION), ("Source", "jd")]);
        assert_eq!(downgrade[names::DOWNGRADES], 1);
        let breach = document(&docs, names::HEALTH_BREACHES, &[("Function", FUNCTION), ("Report", "daily")]);
        assert_eq!(breach[names::HEALTH_BREACHES], 1);
        let shipping = document(
            &docs,
            names::HEALTH_ON_TIME_SHIPPING,
            &[("Function", FUNCTION), ("Report", "daily"), ("Channel", "douyin")],
        );
        assert_eq!(shipping[names::HEALTH_ON_TIME_SHIPPING], serde_json::json!([98.5]));
    }

    #[test]
    fn pull_lag_is_the_one_metric_with_a_shop_and_alerts_count_per_target() {
        let docs = emitted(|| {
            pull_lag(Source::Taobao, "shop-7", 420.0);
            alerts(AlertTarget::Robot, AlertOutcome::Sent, 3);
            alerts(AlertTarget::Robot, AlertOutcome::Folded, 12);
            alerts(AlertTarget::Sms, AlertOutcome::Failed, 1);
            alerts(AlertTarget::Sms, AlertOutcome::Sent, 0);
        });
        let lag = document(
            &docs,
            names::PULL_LAG_SECONDS,
            &[("Function", FUNCTION), ("Shop", "shop-7"), ("Source", "taobao")],
        );
        assert_eq!(lag[names::PULL_LAG_SECONDS], serde_json::json!([420.0]));
        let robot = document(&docs, names::ALERTS_SENT, &[("Function", FUNCTION), ("Target", "robot")]);
        assert_eq!((robot[names::ALERTS_SENT].as_u64(), robot[names::ALERTS_FOLDED].as_u64()), (Some(3), Some(12)));
        let sms = document(&docs, names::ALERTS_FAILED, &[("Function", FUNCTION), ("Target", "sms")]);
        assert!(sms.get(names::ALERTS_SENT).is_none(), "zero is not emitted");
        for doc in &docs {
            let shop = doc.get("Shop").is_some();
            assert_eq!(shop, doc.get(names::PULL_LAG_SECONDS).is_some(), "only pull lag names a shop: {doc}");
        }
    }
}
