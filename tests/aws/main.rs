//! Integration tests against the local AWS stack (moto's server, resources created from
//! `infra/template.yaml`). Run them with `scripts/test.sh`, which starts and stops the stack.
//! `platform` needs no AWS: it runs the platform query clients against a fake gateway
//! (`cargo test -p tests --test aws platform::`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod browser;
mod contract;
mod faults;
mod functions;
mod health;
mod normalize;
mod notify;
mod platform;
mod refund;
mod samples;
mod schema;
mod sync;
mod trust;
mod webhook;
