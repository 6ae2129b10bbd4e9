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

static JITTER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
static JITTER_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Fixes the seed of the retry jitter for this process, so a run under a paused clock replays
/// exactly (the soak: the same seed, the same interleavings). Only before the first backoff;
/// returns whether it took. Without it the seed is random per process.
#[cfg(any(test, feature = "testing"))]
pub fn seed_jitter(seed: u64) -> bool {
    JITTER.set(seed).is_ok()
}

/// Waits before the `attempt`-th retry (from 0): exponential from 20 ms, capped at 1 s, with full
/// jitter, so writers that collided do not collide again in step.
pub async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    let cap_ms = 20u64.saturating_mul(1 << attempt.min(6)).min(1_000);
    // A random seed per process (no RNG dependency needed), a fresh value per call.
    let seed = *JITTER.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let call = JITTER_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write_u64(seed);
    hasher.write_u64(call);
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

/// Adds counters at most once per `token` ([`crate::ports::Stats::add_once`]), retrying a
/// conflict or an outage a few times with backoff. Returns whether they are counted; when not,
/// the same call later (with the same token) is safe.
pub async fn add_counters_once(
    stats: &dyn crate::ports::Stats,
    token: &str,
    adds: &[crate::model::counters::CounterAdd],
    what: &str,
) -> bool {
    if adds.is_empty() {
        return true;
    }
    for attempt in 0..5 {
        match stats.add_once(token, adds).await {
            Ok(()) => return true,
            Err(err) if err.is_retryable() && attempt < 4 => backoff(attempt).await,
            Err(err) => {
                tracing::warn!(error = %err, what, "could not add the counters");
                return false;
            }
        }
    }
    false
}
