//! composable-rust: application logic as pure reducers that return effects, a runtime that executes
//! them, and an event store in PostgreSQL, an SQLite file or memory. This is the one crate to depend on.
//!
//! ```
//! use composable_rust::prelude::*;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum Action { Increment, Decrement }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let counter = reducer_fn(|count: &mut i64, action: Action, _env: &()| {
//!     match action {
//!         Action::Increment => *count += 1,
//!         Action::Decrement => *count -= 1,
//!     }
//!     Effect::None
//! });
//!
//! let store = Store::new(counter, 0, ());
//! store.send(Action::Increment).finished().await;
//! assert_eq!(store.state(|count| *count), 1);
//! # }
//! ```
//!
//! # Where things are
//! - The programming model and the event store contract (from `composable-rust-core`) are re-exported at
//!   the crate root: [`Reducer`], [`Effect`], [`Scope`], [`Aggregate`], [`EventStore`], [`StreamId`], ...
//! - The runtime (from `composable-rust-runtime`): [`Store`], [`Repository`], [`SnapshotPolicy`], [`SystemClock`].
//! - Backends: [`sqlite`] (default feature) and [`postgres`] (feature `postgres`), or pick one from a
//!   configuration file with [`config::open`].
//! - Test tools: [`testing`] (feature `testing`): `TestStore`, `TestClock`, `InMemoryEventStore`, the
//!   conformance suite.
//! - [`prelude`]: the imports most programs need.
//!
//! The guide from `cargo new` to a tested aggregate in SQLite and PostgreSQL is `docs/getting-started.md`.
//!
//! # Features
//!
//! | feature | enables | default |
//! |---|---|---|
//! | `sqlite` | [`sqlite::SqliteEventStore`], `backend = "sqlite"` in configuration | yes |
//! | `postgres` | [`postgres::PostgresEventStore`], `backend = "postgres"` | no |
//! | `testing` | [`testing`]: `TestStore`, `TestClock`, `InMemoryEventStore`; `backend = "in-memory"` | no |
//! | `json` | nothing more: the JSON codec is always compiled (kept for manifests that name it) | no |

pub use composable_rust_core::*;
pub use composable_rust_runtime::*;

pub mod config;

/// The embedded SQLite event store (feature `sqlite`, on by default).
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use composable_rust_sqlite::*;
}

/// The PostgreSQL event store (feature `postgres`).
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use composable_rust_postgres::*;
}

/// Test tools: `TestStore`, `TestClock`, `InMemoryEventStore`, the backend conformance suite (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing {
    pub use composable_rust_testing::*;
}

/// The imports most programs need: `use composable_rust::prelude::*;`.
pub mod prelude {
    pub use composable_rust_core::ReducerExt;
    pub use composable_rust_core::{
        Aggregate, Combine, Effect, EffectId, Event, EventStore, EventStoreError, EventStoreOperation,
        EventStoreRequest, ExpectedVersion, ForEach, Identifiable, IfLet, Metadata, Reducer, Scope, StreamId, Version,
        case, reducer_fn,
    };
    // The jobs `EventStore` is made of, in scope (unnamed) so that their methods can be called on a concrete
    // store such as `SqliteEventStore`; on a `dyn EventStore` they need no import.
    pub use composable_rust_core::backend::{
        EventLog as _, SnapshotStore as _, StoreLifecycle as _, SubscriptionStore as _,
    };
    pub use composable_rust_runtime::{
        AggregateAction, AggregateEnvironment, Aggregates, EventSourced, Repository, RepositoryConfig, SnapshotPolicy,
        Store,
    };

    #[cfg(feature = "sqlite")]
    pub use composable_rust_sqlite::SqliteEventStore;

    #[cfg(feature = "postgres")]
    pub use composable_rust_postgres::PostgresEventStore;

    #[cfg(feature = "testing")]
    pub use composable_rust_testing::{InMemoryEventStore, TestClock, TestStore};
}

/// The README's example, compiled by `cargo test --doc` so it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// `docs/getting-started.md`, compiled by `cargo test --doc` (it needs the `testing` feature).
#[doc = include_str!("../../docs/getting-started.md")]
#[cfg(all(doctest, feature = "testing"))]
pub struct GettingStartedDoctests;
