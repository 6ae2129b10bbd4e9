//! Test harness shared by the integration tests and the cold-start meter: the local stack's
//! environment, SDK clients pointed at it, probes, a mock Lambda Runtime API, and a fake of the
//! sales platforms' gateways and Kuaidi100's subscription endpoint, and the soak's generator,
//! simulations and oracle.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake_gateway;
pub mod fake_notify;
pub mod policy;
pub mod runtime_api;
pub mod soak;
pub mod stack;
