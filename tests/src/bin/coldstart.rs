//! Cold-start meter (filled in below).
fn main() {}
