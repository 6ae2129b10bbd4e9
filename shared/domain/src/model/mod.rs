//! Values: what orderhub knows and says, with no I/O and no policy. Everything else in the
//! domain is built from these.

pub mod alert;
pub mod callback;
pub mod counters;
pub mod domain_event;
pub mod geo;
pub mod health;
pub mod ids;
pub mod lifecycle;
pub mod order;
pub mod parcel;
pub mod privacy;
pub mod record;
pub mod secret;
pub mod sign;
pub mod signal;
pub mod source_event;
pub mod status;
pub mod stock;
pub mod sync;
pub mod time;
