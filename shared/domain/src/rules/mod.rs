//! Pure decisions: given values, say what they mean. No I/O, no clock (callers pass `now`).

pub mod alerting;
pub mod health;
pub mod sign_trust;
pub mod timing;
