//! The use cases, named for what they do. Each function's handler calls one of these:
//!
//! | function | use case |
//! |---|---|
//! | webhook-verify | [`intake::Intake`] (a callback in, an ack out; ops replay) |
//! | status-normalize | [`apply_message::ApplyMessage`] over [`apply::ApplyChange`], the one write path, fetching missing order lines with [`order_lines`]; [`sla_sweep`] and [`order_lines::LinesRetry`] |
//! | refund-dual-check | [`refund_check::RefundCheck`], releasing through [`release_stock`] |
//! | signin-trust-check | [`sign_check::SignCheck`] |
//! | health-report | [`health_report::HealthReporting`] |
//! | notify | [`notify::Notify`] (findings to robots, customer notices by SMS) |
//! | order-sync | [`sync_channel::SyncChannel`] (pulls, daily reconciliation), [`tokens::TokenKeeper`] (token lifecycle, also refund-dual-check's and status-normalize's order lines), [`subscribe_tracking::SubscribeTracking`] |
//!
//! Shared by the ones that bring changes in: [`inbound`] (inbox dedupe and the `inbound` queue).

pub mod announce;
pub mod apply;
pub mod apply_message;
pub mod dead_letters;
pub mod failure;
pub mod health_report;
pub mod inbound;
pub mod intake;
pub mod notify;
pub mod order_lines;
pub mod refund_check;
pub mod release_stock;
pub mod sign_check;
pub mod sla_sweep;
pub mod subscribe_tracking;
pub mod sync_channel;
pub mod tokens;
