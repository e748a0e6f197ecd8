//! The SQL layer the composable-rust PostgreSQL and SQLite backends share, written once and generic over
//! [`sqlx::Database`], so that the backends never depend on each other.
//!
//! - [`Transactional`] around a [`SqlProjection`]: a read model kept in the event store's own database, each
//!   page of events written with the handler's checkpoint in one transaction (exactly-once effects). The
//!   projection stages its statements in [`Writes`] before any connection is taken, so its own code (which
//!   may call services or append to the same store) never runs while the store's writer is held.
//! - [`TransactionalStore`]: what a backend gives [`Transactional`] (a write connection, how it begins a
//!   transaction, how its driver errors read). `composable-rust-postgres` and `composable-rust-sqlite`
//!   implement it for their stores and re-export the items above.
//! - [`checkpoint`]: the fenced checkpoint statements, for a backend's `save_checkpoint`.
//! - [`migrate_error`]: how a failed, half-applied, edited or newer schema migration becomes an
//!   [`EventStoreError`](composable_rust_core::EventStoreError).
//!
//! Application code names these items through its backend (`composable_rust_sqlite::Transactional`,
//! `composable_rust_postgres::SqlProjection`, ...); the crate documentation of `composable-rust-sqlite`
//! has an example that runs.
//!
//! The design and its alternatives are argued in `docs/decisions.md` ("One SQL projection layer").

pub mod checkpoint;
mod migrate;
mod projection;
mod transactional;

pub use migrate::migrate_error;
pub use projection::{SqlProjection, Statement, Writes};
pub use transactional::{Transactional, TransactionalStore};
