//! PostgreSQL event store for composable-rust (being written).
