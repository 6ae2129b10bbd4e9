//! Benchmark of verify + parse per source (in progress).
fn main() {}
