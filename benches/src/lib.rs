//! criterion benchmarks for composable-rust live in `benches/`; this library is empty.
