//! `Store::send` benchmarks (being written).
#![allow(missing_docs)]
fn main() {}
