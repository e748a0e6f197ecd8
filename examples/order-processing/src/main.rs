//! The `order-processing` command-line program.

fn main() {}
