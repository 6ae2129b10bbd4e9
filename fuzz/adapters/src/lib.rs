//! `adapters::config`, `adapters::trigger` and `adapters::metrics`, compiled from `shared/adapters/src/` itself (no
//! copy): all of the adapters crate that `functions/webhook-verify/src/lib.rs` uses.

#[path = "../../../shared/adapters/src/config.rs"]
pub mod config;

#[path = "../../../shared/adapters/src/trigger.rs"]
pub mod trigger;

#[path = "../../../shared/adapters/src/metrics.rs"]
pub mod metrics;
