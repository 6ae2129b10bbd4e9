//! `adapters::config`, compiled from `shared/adapters/src/config.rs` itself (no copy): all of
//! the adapters crate that `functions/webhook-verify/src/lib.rs` uses.

#[path = "../../../shared/adapters/src/config.rs"]
pub mod config;
