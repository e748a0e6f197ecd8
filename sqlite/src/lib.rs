//! Embedded SQLite event store for composable-rust: durable events in one file, no server to install.
//!
//! [`SqliteEventStore`] implements the [`EventStore`](composable_rust_core::EventStore) contract of
//! `composable-rust-core` (the same versions, positions and errors as the PostgreSQL backend, pinned by the
//! conformance suite) on sqlx's SQLite driver (and rusqlite for long reads and imports) with the bundled SQLite
//! library, so `cargo build` on a fresh machine is all it takes. It is the default store of the examples and the
//! natural choice for local development, tests that want real SQL, and single-machine applications.
//!
//! # Example
//!
//! ```
//! use composable_rust_core::backend::EventLog;
//! use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange};
//! use composable_rust_sqlite::SqliteEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `SqliteEventStore::open("data/events.db")` for a file; in memory for this example.
//! let store = SqliteEventStore::in_memory().await?;
//! let order = StreamId::new("order-42")?;
//! let placed = NewEvent::new("OrderPlaced.v1", CodecId::Json, br#"{"customer":"ada"}"#.to_vec(), Metadata::default());
//!
//! let written = store.append(&order, ExpectedVersion::NoStream, vec![placed.clone()]).await?;
//! assert_eq!(written.stream_version.get(), 1);
//!
//! // The same event sent again (a retry after a lost reply) is stored once: the original result.
//! let retried = store.append(&order, ExpectedVersion::NoStream, vec![placed.clone()]).await?;
//! assert_eq!(retried, written);
//!
//! // A second writer that still believes the stream is new loses; it can reload and retry.
//! let other = NewEvent::new("OrderPlaced.v1", CodecId::Json, br#"{"customer":"bob"}"#.to_vec(), Metadata::default());
//! let stale = store.append(&order, ExpectedVersion::NoStream, vec![other]).await;
//! assert!(stale.is_err_and(|e| e.is_conflict()));
//!
//! let events = store.load_stream(&order, StreamRange::all()).await?;
//! assert_eq!(events[0].event_type, "OrderPlaced.v1");
//! assert_eq!(store.load_event(placed.id).await?.as_ref(), events.first());
//! # Ok(())
//! # }
//! ```
//!
//! # The file and its settings
//!
//! [`SqliteEventStore::open`] creates the file (and missing parent folders) and applies the schema in
//! `migrations/sqlite/`, which is embedded in the binary. It refuses, with
//! [`EventStoreError::Schema`](composable_rust_core::EventStoreError::Schema) and without touching the file,
//! a file that is not an SQLite database, one that is visibly truncated, and one whose schema was written
//! by a newer version of this crate. A file written by an older version is upgraded in place, in one
//! transaction (for example, migration 3 gives every stored event an id). Every connection sets:
//!
//! | pragma | value | why |
//! |---|---|---|
//! | `journal_mode` | `WAL` | readers never block the writer and the writer never blocks readers |
//! | `synchronous` | `FULL` ([`Durability::Full`], default) or `NORMAL` | an acknowledged append survives a process crash with either; with `FULL` also a power loss |
//! | `busy_timeout` | 5 s ([`SqliteConfig::busy_timeout`]) | a writer in another process waits for the lock instead of failing |
//! | `foreign_keys` | `ON` | every event belongs to a row in `streams` |
//!
//! The reasoning and the measurements are in `docs/decisions.md` and `docs/performance.md` ("SQLite").
//!
//! # Writers and readers
//!
//! SQLite allows one writer at a time. Inside a process, every write goes through the store's single write
//! connection, so concurrent tasks queue, in the order they arrived, instead of contending for the file
//! lock. Appends that wait for the connection are committed together (group commit): the next one to get
//! it commits every waiting append in one `BEGIN IMMEDIATE` transaction, so under [`Durability::Full`]
//! eight writers pay for one fsync instead of eight. Each append of a group is still checked on its own,
//! after the ones before it: a conflict refuses only that append, a retry still returns its original
//! result, and a condition sees the events appended earlier in the group. `IMMEDIATE` takes the write
//! lock before any version is read, so the checks and the inserts are atomic and no lock upgrade can fail
//! half way. Every waiting append is in the next group, so no writer waits while others commit again and
//! again. Writers in other
//! processes wait up to the busy timeout, and then fail with
//! [`Unavailable`](composable_rust_core::EventStoreError::Unavailable) (transient: retry). A stale
//! expectation is therefore always a
//! [`ConcurrencyConflict`](composable_rust_core::EventStoreError::ConcurrencyConflict), never a
//! "database is locked" error. Because commits are serial, global positions follow commit order, so a
//! reader of the global log never has an event appear behind its checkpoint.
//!
//! # Event ids
//!
//! Every event's id is stored (16 bytes) under a unique index, which serves
//! [`load_event`](composable_rust_core::backend::EventLog::load_event) and makes appends idempotent: an append
//! whose events are already stored, as the same batch of the same stream, returns the original result and
//! writes nothing. The common case costs no extra query: the batch is inserted after the version check,
//! and only when the unique index reports a stored id, or the version check fails, are the batch's ids
//! looked up to tell a retry
//! ([`idempotent_retry`](composable_rust_core::backend::idempotent_retry)) from a reused id
//! ([`EventIdInUse`](composable_rust_core::EventStoreError::EventIdInUse)).
//!
//! # Tags, reads by query and conditional appends
//!
//! An event's [`Tag`](composable_rust_core::Tag)s are stored in order with its row (migration 4), so every
//! read returns them at no extra cost, and indexed one row per distinct tag in `event_tags`, so
//! [`read_query`](composable_rust_core::backend::EventLog::read_query) reads an item that names tags as a
//! range scan of that index in position order (an item without tags scans the log from `after`). All items
//! and the page's horizon are read in one read transaction: the horizon is the last position that
//! transaction sees, and every later commit lies above it.
//!
//! [`append_atomic`](composable_rust_core::backend::EventLog::append_atomic) shares the path of a plain
//! append: one `BEGIN IMMEDIATE` transaction that checks the condition (one indexed lookup per item), every
//! stream's expected version, and inserts, holding SQLite's write lock from the first check to the commit,
//! also against other processes. Plain appends of tagged events take the same lock, so a condition can
//! never miss one. An append without tags costs nothing more than before.
//!
//! ```
//! use composable_rust_core::backend::EventLog;
//! use composable_rust_core::{
//!     AtomicAppend, CodecId, EventQuery, ExpectedVersion, GlobalPosition, Metadata, NewEvent, StreamId, Tag,
//! };
//! use composable_rust_sqlite::SqliteEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteEventStore::in_memory().await?;
//! let alice = EventQuery::tagged([Tag::of("username", "alice")]);
//! let register = |user: &str| -> Result<AtomicAppend, Box<dyn std::error::Error>> {
//!     let event = NewEvent::new("Registered.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
//!         .with_tags([Tag::of("username", "alice")]);
//!     Ok(AtomicAppend::new().stream(StreamId::new(user)?, ExpectedVersion::NoStream, vec![event]))
//! };
//!
//! // Two decisions read the same (empty) history, then both try to take the name.
//! let page = store.read_query(&alice, GlobalPosition::START, 10).await?;
//! assert!(page.events.is_empty());
//! store.append_atomic(register("user-1")?.condition(page.condition(alice.clone()))).await?;
//! let late = store.append_atomic(register("user-2")?.condition(page.condition(alice.clone()))).await;
//! assert!(late.is_err_and(|e| e.is_conflict()));
//! # Ok(())
//! # }
//! ```
//!
//! # Reading
//!
//! Reads use a small pool of connections (see [`SqliteConfig::read_connections`]); a stream is read in
//! pages of 1000 events as the returned stream is polled. The long reads of a file store, a stream's pages
//! and the global log, run on their own read connections through rusqlite, on tokio's blocking threads:
//! sqlx's driver copies every value of every row through its worker thread, which capped replay at a
//! quarter of what SQLite itself delivers (`docs/decisions.md`, "SQLite reads"). Both drivers use the same
//! bundled SQLite library. For the same reason an
//! [`import`](composable_rust_core::backend::EventLog::import) (a restore) into a file store writes through a
//! rusqlite connection of its own, on a blocking thread, and only while it holds the write connection's lock:
//! the process still has one writer at a time.
//!
//! [`SqliteEventStore::in_memory`] gives the same SQL semantics without a file, on one connection.
//!
//! # Read models with exactly-once effects
//!
//! A [`SqlProjection`] keeps a read model in the store's own database; [`Transactional`] runs it under a
//! `Subscription::checkpointed` (runtime), writing each page with the handler's checkpoint in one
//! `BEGIN IMMEDIATE` transaction on the write connection. The projection stages its statements in
//! [`Writes`] first, holding nothing, so it may even append to this store; appends of the process wait
//! only while the staged statements run. These items come from `composable-rust-sql`, shared with the
//! PostgreSQL backend.
//!
//! ```
//! use composable_rust_core::{BoxError, CheckpointedHandler, RecordedEvent, async_trait};
//! use composable_rust_sqlite::{SqlProjection, SqliteEventStore, Transactional, Writes};
//! use sqlx::Sqlite;
//!
//! /// Events per stream.
//! struct Counts;
//!
//! #[async_trait]
//! impl SqlProjection<Sqlite> for Counts {
//!     async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<Sqlite>) -> Result<(), BoxError> {
//!         writes.push(
//!             sqlx::query("INSERT INTO counts VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE SET n = n + 1")
//!                 .bind(event.stream_id.to_string()),
//!         );
//!         Ok(())
//!     }
//!
//!     async fn reset(&mut self, writes: &mut Writes<Sqlite>) -> Result<(), BoxError> {
//!         writes.push(sqlx::query("CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n INTEGER)"));
//!         writes.push(sqlx::query("DELETE FROM counts"));
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteEventStore::in_memory().await?;
//! let mut counts = Transactional::new(store.clone(), Counts);
//! counts.reset("counts").await?; // creates the table, in the transaction that resets the checkpoint
//! assert_eq!(counts.load_checkpoint("counts").await?, Some(composable_rust_core::GlobalPosition::START));
//! // Then: `Subscription::checkpointed(Arc::new(store), "counts", counts).spawn()`.
//! # Ok(())
//! # }
//! ```

mod blocking;
mod config;
mod error;
mod group;
mod import;
mod lease;
mod open;
mod projection;
mod readers;
mod retention;
mod rows;
mod sql;
mod store;
mod writer;

pub use composable_rust_core::Durability;
pub use composable_rust_sql::{SqlProjection, Transactional, Writes};
pub use config::SqliteConfig;
pub use store::SqliteEventStore;
