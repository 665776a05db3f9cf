//! Benchmark: one full in-process certification, and clean_restart + get_cert.
fn main() {}
