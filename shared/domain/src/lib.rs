//! orderhub's domain: no AWS or Lambda type is used here (`cargo tree -p domain -e normal`).
//!
//! Rooms by role, each a folder whose name says what lives there:
//!
//! | room | holds | may use |
//! |---|---|---|
//! | [`model`] | values: ids, the order and its [`apply`], lifecycle, records, events, geo, secret values | nothing else here |
//! | [`rules`] | pure decisions: sign-trust scoring, health indicators, SLA and timing policy | `model` |
//! | [`sources`] | one module per platform, carrier or app behind one trait, found through one registry | `model` |
//! | [`ports`] | the traits adapters implement (stores, inbox, queue, bus, secrets, clock, platform query) | `model`, `sources` |
//! | [`app`] | the use cases, named for what they do; one per function trigger | everything above |
//! | `testing` | in-memory ports, the contract suite, fixtures: tests and the `testing` feature only | everything above |

pub mod app;
pub mod model;
pub mod ports;
pub mod rules;
pub mod sources;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use model::ids::{IdError, MessageId, OrderId, OrderKey, ShopId, Sku, Source};
pub use model::lifecycle::{Lifecycle, MoveKind, RefundKind, RefundState, Stage};
pub use model::order::{Decision, Order, Outcome, Provenance, StatusChange, Verdict, apply};
