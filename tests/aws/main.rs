//! Integration tests against the local AWS stack (moto's server, resources created from
//! `infra/template.yaml`). Run them with `scripts/test.sh`, which starts and stops the stack.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod contract;
mod functions;
mod health;
mod schema;
