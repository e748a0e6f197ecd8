//! PostgreSQL event store for composable-rust: [`PostgresEventStore`] implements the
//! [`EventStore`](composable_rust_core::EventStore) contract on a sqlx connection pool.
//!
//! Appends write a whole batch in one statement and one round trip, with the expected-version check in
//! the same statement and the primary key `(stream_id, version)` catching races. Every event is stored
//! with its id under a unique index, so an append retried after an ambiguous failure is written once: only
//! an append that wrote nothing looks its ids up, and a retry gets the original result. Stream loads
//! stream rows from an index scan. Global positions are derived from transaction ids, so a reader of the global log
//! never misses an event that commits after it read past that event's position. The schema lives in
//! `migrations/postgres`, is embedded, and is applied by [`PostgresEventStore::migrate`].
//!
//! # Example
//!
//! ```no_run
//! use composable_rust_core::backend::EventLog;
//! use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId};
//! use composable_rust_postgres::PostgresEventStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresEventStore::connect("postgres://app:secret@127.0.0.1:5432/orders").await?;
//! store.migrate().await?;
//!
//! let order = StreamId::new("order-42")?;
//! let placed = NewEvent {
//!     id: composable_rust_core::EventId::generate(),
//!     event_type: "OrderPlaced.v1".into(),
//!     codec: CodecId::Json,
//!     payload: br#"{"customer":"ada"}"#.to_vec(),
//!     metadata: Metadata::default().with_actor("ada"),
//!     tags: Vec::new(),
//! };
//! let written = store.append(&order, ExpectedVersion::NoStream, vec![placed]).await?;
//! assert_eq!(written.stream_version.get(), 1);
//! # Ok(()) }
//! ```
//!
//! # Tags, reads by query, conditional and multi-stream appends
//!
//! Event tags are stored with each event (`events.tags`, a `text[]`, NULL when none) and indexed (GIN), so
//! [`read_query`](composable_rust_core::backend::EventLog::read_query) looks a tagged item up in the index
//! instead of scanning the log; items without tags read by position. Its horizon is the gap-safe one of the
//! global log: no matching event can later commit at or below it.
//!
//! [`append_atomic`](composable_rust_core::backend::EventLog::append_atomic), and a plain append of tagged
//! events, is one round trip to the function `events_append` (migration `0004_append_function.sql`): it takes
//! transaction-scoped advisory locks per tag, shared for the tags of the appended events and exclusive for
//! one tag of each condition item, then checks the condition and the expected versions on a snapshot taken
//! with the locks held, then inserts. So a conditional append waits only for appends that share a tag with
//! its condition, and none of those can commit unseen between the condition's horizon and its own events.
//! Untagged plain appends take no lock; with `NoStream` or `Exact(v)` they insert at the versions they expect
//! without looking the stream's version up. A deadlock between atomic appends is
//! [`EventStoreError::Unavailable`](composable_rust_core::EventStoreError::Unavailable): retry.
//!
//! # Configuration
//!
//! [`PostgresConfig`] (from a URL or sqlx `PgConnectOptions`), passed to [`PostgresEventStore::connect_with`];
//! or bring your own pool with [`PostgresEventStore::from_pool`].
//!
//! | setting | default | what it does |
//! |---|---|---|
//! | `max_connections` | 10 | most connections the pool opens |
//! | `min_connections` | 0 | connections kept open while idle |
//! | `acquire_timeout` | 10 s | longest wait to connect or for a free connection |
//! | `statement_timeout` | 30 s | the server cancels statements that run longer (`None`: server setting) |
//! | `test_before_acquire` | `false` | ping each connection before use (costs ~30% of a single append) |
//! | `read_all_wait` | 2 s | how long `read_all` waits for in-flight transactions of this database that hold back newer commits |
//! | `random_page_cost` | 1.1 | planner setting on the store's connections, so stream loads are index scans in order |
//! | JIT | off, always | the store's statements run in microseconds; compiling one takes milliseconds |
//! | TLS | URL | `?sslmode=require` / `verify-full` (rustls), `sslrootcert=` for a private CA |
//!
//! Errors never contain the password: servers are named as `host:port/database`, and [`PostgresConfig`]'s
//! `Debug` redacts it. A server that cannot be reached, a lost connection, a pool timeout, a serialization
//! failure, a deadlock or a server shutting down is
//! [`EventStoreError::Unavailable`](composable_rust_core::EventStoreError::Unavailable): safe to retry as it
//! is ([`is_transient`](composable_rust_core::EventStoreError::is_transient)), appends included, because
//! an append retried with the same event ids is written once. Other failures are
//! [`EventStoreError::Backend`](composable_rust_core::EventStoreError::Backend); the source of either, a
//! [`PostgresError`], says what to do. A missing schema is
//! [`EventStoreError::Schema`](composable_rust_core::EventStoreError::Schema).
//!
//! Setting up a database, running the migrations by hand and a least-privilege role for applications:
//! `docs/database-setup.md`. Why the schema looks as it does: the PostgreSQL section of `docs/decisions.md`.
//!
//! # Read models with exactly-once effects
//!
//! A [`SqlProjection`] keeps a read model in the store's database; [`Transactional`] runs it under a
//! `Subscription::checkpointed` (runtime), writing each page with the handler's checkpoint in one
//! transaction on a connection of the store's pool. These items come from `composable-rust-sql`, shared
//! with the SQLite backend.
//!
//! ```no_run
//! use composable_rust_core::{BoxError, RecordedEvent, async_trait};
//! use composable_rust_postgres::{PostgresEventStore, SqlProjection, Transactional, Writes};
//! use sqlx::Postgres;
//!
//! /// Events per stream.
//! struct Counts;
//!
//! #[async_trait]
//! impl SqlProjection<Postgres> for Counts {
//!     async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<Postgres>) -> Result<(), BoxError> {
//!         writes.push(
//!             sqlx::query("INSERT INTO counts VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1")
//!                 .bind(event.stream_id.to_string()),
//!         );
//!         Ok(())
//!     }
//!
//!     async fn reset(&mut self, writes: &mut Writes<Postgres>) -> Result<(), BoxError> {
//!         writes.push(sqlx::query("DELETE FROM counts"));
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(store: PostgresEventStore) {
//! let counts = Transactional::new(store.clone(), Counts);
//! // Then: `Subscription::checkpointed(Arc::new(store), "counts", counts).spawn()`.
//! # }
//! ```

mod config;
mod error;
mod notify;
mod projection;
mod retention;
mod sql;
mod store;

pub use composable_rust_sql::{SqlProjection, Transactional, Writes};
pub use config::PostgresConfig;
pub use error::PostgresError;
pub use store::PostgresEventStore;
