//! orderhub's domain: the sources and their codes, the unified order lifecycle and its
//! transition rules, and the ports that adapters implement. No AWS or Lambda type is used here.

pub mod events;
pub mod health;
pub mod ids;
pub mod inbound;
pub mod inbox;
pub mod inventory;
pub mod json;
pub mod lifecycle;
pub mod memory;
pub mod normalize;
pub mod order;
pub mod platform;
pub mod ports;
pub mod refundcheck;
pub mod secrets;
pub mod signals;
pub mod signature;
pub mod sources;
pub mod stats;
pub mod status;
pub mod store;
pub mod time;
pub mod trust;
pub mod trustcheck;
pub mod webhook;

#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(any(test, feature = "contract"))]
pub mod fixtures;

pub use ids::{IdError, MessageId, OrderId, OrderKey, ShopId, Sku, Source};
pub use lifecycle::{Lifecycle, MoveKind, RefundKind, RefundState, Stage};
pub use order::{Decision, Order, Outcome, Provenance, StatusChange, Verdict, apply};
