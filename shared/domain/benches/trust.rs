//! Benchmark of the trust score (in progress).
fn main() {}
