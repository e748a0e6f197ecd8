//! Embedded SQLite event store for composable-rust (being written).
