//! Test harness shared by the integration tests and the cold-start meter: the local stack's
//! environment, SDK clients pointed at it, probes, and a mock Lambda Runtime API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod runtime_api;
pub mod stack;
