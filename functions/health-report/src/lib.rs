//! health-report: the order-health report of a Beijing day, month or ops range, per channel and
//! overall, from the pre-aggregated daily counters (one `Stats::month` query per channel and
//! month touched, whatever the order volume); stored with its Markdown page and published as
//! `HealthThresholdBreached` events; its HTML page goes to the report bucket (`REPORT_BUCKET`)
//! with a presigned link, and daily and monthly reports are announced (`HealthReportReady`) for
//! notify to post to the report robots. Each report's indicators are emitted as metrics (EMF,
//! per report kind and channel) for the dashboard. Every 5 minutes it also runs the channel-silence watch,
//! which raises `ChannelSilent` once per quiet spell and `ChannelRecovered` when callbacks
//! return.
//!
//! The events it answers are in [`request`]; the use case is
//! [`domain::app::health_report::HealthReporting`]; `main.rs` only wires the AWS ports into it.

pub mod request;

use serde_json::Value;

use adapters::config::{self, ConfigError, Env};
use domain::app::health_report::{HealthReporting, ReportFailure, ReportSummary};
use domain::rules::health::{HealthThresholds, Indicator, SilenceRules};

use request::Request;

/// What the function reads at init.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ORDERHUB_STAGE`.
    pub stage: String,
    /// `STATS_TABLE`: the day counters it reads, the reports and silence state it stores.
    pub stats_table: String,
    /// `EVENT_BUS_NAME`.
    pub event_bus: String,
    /// `HEALTH_THRESHOLDS`: JSON over the defaults; any subset of fields, nested ones too
    /// (`{"trust_score":{"limit":90}}`).
    pub thresholds: HealthThresholds,
    /// `SILENCE_MINUTES` (default 10, 1..=1440) over the default silence rules.
    pub silence: SilenceRules,
    /// `COUNTER_SHARDS` (default 16): the counter shards a report reads.
    pub shards: u16,
    /// `REPORT_BUCKET`: where the HTML pages go (absent: no page, nothing announced).
    pub report_bucket: Option<String>,
    /// `REPORT_LINK_DAYS` (default 7, 1..=7: SigV4's longest): how long a page's link works.
    pub link_days: u64,
}

impl Config {
    /// Reads the configuration; a missing or malformed variable is named in the error.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let event_bus = config::required(env, "EVENT_BUS_NAME")?;
        let thresholds = match env.var("HEALTH_THRESHOLDS").filter(|v| !v.trim().is_empty()) {
            Some(json) => thresholds_from_json(&json)
                .map_err(|reason| ConfigError::Malformed { var: "HEALTH_THRESHOLDS", reason })?,
            None => HealthThresholds::default(),
        };
        let silence_minutes: u32 = config::parsed(env, "SILENCE_MINUTES", SilenceRules::default().silence_minutes)?;
        if !(1..=24 * 60).contains(&silence_minutes) {
            return Err(ConfigError::Malformed { var: "SILENCE_MINUTES", reason: "must be between 1 and 1440".into() });
        }
        Ok(Self {
            stage: config::required(env, "ORDERHUB_STAGE")?,
            stats_table: config::required(env, "STATS_TABLE")?,
            event_bus,
            thresholds,
            silence: SilenceRules { silence_minutes, ..SilenceRules::default() },
            shards: config::parsed(env, "COUNTER_SHARDS", domain::model::counters::DEFAULT_SHARDS)?.max(1),
            report_bucket: env.var("REPORT_BUCKET").map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()),
            link_days: link_days(env)?,
        })
    }
}

fn link_days(env: &dyn Env) -> Result<u64, ConfigError> {
    let days: u64 = config::parsed(env, "REPORT_LINK_DAYS", 7)?;
    if !(1..=7).contains(&days) {
        return Err(ConfigError::Malformed { var: "REPORT_LINK_DAYS", reason: "must be between 1 and 7".into() });
    }
    Ok(days)
}

/// Emits a report's indicators as metrics: one value per report kind, scope (`overall` or a
/// channel) and indicator.
pub fn record_indicators(summary: &ReportSummary) {
    for (scope, values) in &summary.indicators {
        for (indicator, value) in values {
            adapters::metrics::health_indicator(summary.kind, scope, *indicator, *value);
        }
    }
}

/// Thresholds from JSON laid over the defaults, key by key at any depth. Unknown keys (a typo
/// would otherwise be ignored silently) and limits outside the indicator's range (98.5 for a
/// rate of 0..=1) are refused with the reason.
pub fn thresholds_from_json(json: &str) -> Result<HealthThresholds, String> {
    let given: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let mut merged = serde_json::to_value(HealthThresholds::default()).map_err(|e| e.to_string())?;
    merge(&mut merged, &given, "")?;
    let thresholds: HealthThresholds = serde_json::from_value(merged).map_err(|e| e.to_string())?;
    for indicator in Indicator::ALL {
        let limit = thresholds.get(indicator).limit;
        let max = match indicator {
            Indicator::SyncDelayMedian => 24.0 * 60.0,
            Indicator::TrustScore => 100.0,
            _ => 1.0,
        };
        if !(0.0..=max).contains(&limit) {
            return Err(format!("{} limit {limit} is outside 0..={max}", indicator.as_str()));
        }
    }
    Ok(thresholds)
}

fn merge(into: &mut Value, given: &Value, path: &str) -> Result<(), String> {
    match (into, given) {
        (Value::Object(into), Value::Object(given)) => {
            for (key, value) in given {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let slot = into.get_mut(key).ok_or_else(|| format!("unknown field `{here}`"))?;
                merge(slot, value, &here)?;
            }
            Ok(())
        }
        (Value::Object(_), _) => {
            Err(format!("`{}` must be an object", if path.is_empty() { "(top level)" } else { path }))
        }
        (slot, value) => {
            *slot = value.clone();
            Ok(())
        }
    }
}

/// Handles one invocation. A bad event is answered with `{"error": …}` (retrying cannot help);
/// a storage or bus failure is an error, so the asynchronous (scheduled) invocation is retried.
pub async fn handle(reporting: &HealthReporting<'_>, event: Value) -> Result<Value, ReportFailure> {
    let request = match request::decide(&event, reporting.clock.now()) {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!(error = %err, "bad request");
            return Ok(serde_json::json!({ "error": err.to_string() }));
        }
    };
    let answer = match request {
        Request::Report(report) => {
            let summary = reporting.report(&report).await?;
            record_indicators(&summary);
            serde_json::to_value(summary)
        }
        Request::Silence => serde_json::to_value(reporting.silence_watch().await?),
    };
    Ok(answer.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests;
