//! Test doubles: in-memory ports, the one contract suite every port implementation passes, a
//! settable clock, and fixtures (shop secrets, callbacks signed as each sender signs them).
//! Compiled for the domain's tests and for crates that enable the `testing` feature — never into
//! a Lambda binary.

pub mod clock;
pub mod contract;
pub mod faults;
pub mod feed;
pub mod fixtures;
pub mod memory;
pub mod notify;
