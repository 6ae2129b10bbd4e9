//! Why a use case could not finish a piece of work: retry it, or set it aside with its reason.

use crate::ports::StoreError;

/// Why a message was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Try again later (store unavailable, too many concurrent writers).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed as is (malformed payload): dead-letter it with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        if err.is_retryable() { Failure::Retry(err.to_string()) } else { Failure::Permanent(err.to_string()) }
    }
}

/// Waits before the `attempt`-th retry (from 0): exponential from 20 ms, capped at 1 s, with full
/// jitter, so writers that collided do not collide again in step.
pub async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    let cap_ms = 20u64.saturating_mul(1 << attempt.min(6)).min(1_000);
    // A fresh random value per call from the process's hasher seed: no RNG dependency needed.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let wait_ms = hasher.finish() % (cap_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
}

/// Adds counters, retrying a conflict or an outage a few times with backoff; a counter that
/// still cannot be written is logged (it only dims a report; the change it counts is applied).
pub async fn add_counters(stats: &dyn crate::ports::Stats, adds: &[crate::model::counters::CounterAdd], what: &str) {
    if adds.is_empty() {
        return;
    }
    for attempt in 0..5 {
        match stats.add(adds).await {
            Ok(()) => return,
            Err(err) if err.is_retryable() && attempt < 4 => backoff(attempt).await,
            Err(err) => {
                tracing::warn!(error = %err, what, "could not add the counters");
                return;
            }
        }
    }
}
