//! The soak of issue 12: a generated sales day delivered three times per callback through the
//! functions, under injected faults, then checked by one oracle. Shared by the in-process soak
//! (`tests/soak`, in-memory ports under `domain::testing::faults`, a paused tokio clock) and the
//! one on the local stack (`tests/aws/soak.rs`, the AWS adapters over `adapters::faults`).
//!
//! - [`day`]: the day's callbacks, signed as each platform signs them, and what the platforms know;
//! - [`lambdas`]: the functions' handlers as their triggers call them;
//! - [`run`]: the senders, the SQS event sources and the template's schedules, with deadlines;
//! - [`sim`]: the clock, SQS, the event bus rule and Douyin's query API, simulated;
//! - [`oracle`]: what must hold afterwards.

pub mod day;
pub mod lambdas;
pub mod oracle;
pub mod run;
pub mod sim;

use std::collections::BTreeMap;

/// A size or rate from the environment (`SOAK_*`), or the default.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The one summary line of a run.
#[allow(clippy::too_many_arguments)]
pub fn summary(
    label: &str,
    day: &day::Day,
    record: &run::RunRecord,
    verdict: &oracle::Verdict,
    faults: &BTreeMap<String, u64>,
    wall: std::time::Duration,
    seed: u64,
) -> String {
    let deliveries = day.callbacks.len() * 3;
    let attempts: u64 = record.statuses.values().sum();
    let faults_text = if faults.is_empty() {
        "none".to_owned()
    } else {
        faults.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(",")
    };
    format!(
        "soak[{label}] seed={seed} callbacks={} deliveries={deliveries} attempts={attempts} lost={} (never_acked={}) double_applied={} events_missing={} fold_mismatch={} stock_wrong={} dlq_left={} dlq_before_redrive={}+{} faults_injected={{{faults_text}}} peak_in_flight={} virtual={:.1}h wall={:.1}s",
        day.callbacks.len(),
        verdict.lost,
        verdict.never_acked,
        verdict.double_applied,
        verdict.events_missing,
        verdict.fold_mismatch,
        verdict.stock_wrong,
        verdict.dlq_left,
        record.dlq_before_redrive.0,
        record.dlq_before_redrive.1,
        record.peak_in_flight,
        record.virtual_span.num_seconds() as f64 / 3600.0,
        wall.as_secs_f64(),
    )
}
