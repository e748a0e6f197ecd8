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
//! The crate root holds what most programs name; each module below groups the rest of one subject.
//!
//! - Reducers and the runtime: [`Reducer`], [`ReducerExt`] (composition read left to right), [`Effect`],
//!   [`Store`]; more in [`compose`] and [`effect`].
//! - Aggregates: [`Aggregate`] (pure `decide` and `apply`), [`EventSourced`] (an aggregate as a reducer),
//!   [`Repository`] (the direct API), [`SnapshotPolicy`]; more in [`aggregate`].
//! - Decisions across streams (the Dynamic Consistency Boundary pattern): [`Decision`] (read by query,
//!   decide, append under a condition), [`Decider`] (decisions as a reducer); more in [`decision`] and
//!   [`query`]; the guide is `docs/dcb.md`.
//! - Events and streams: [`Event`], [`NewEvent`], [`RecordedEvent`], [`Metadata`], [`EventId`], [`StreamId`],
//!   [`Version`], [`ExpectedVersion`], [`GlobalPosition`]; codecs and schema evolution in [`event`].
//! - The event store: [`EventStore`] (the handle), [`EventStoreError`], requests as values
//!   ([`EventStoreRequest`]); filters, ranges and the other types of its methods in [`event_store`].
//! - Subscriptions and projections: [`subscription`].
//! - Backends: [`sqlite`] (default feature), [`postgres`] (feature `postgres`) and [`memory`] (always
//!   compiled), or pick one from a configuration file with [`config::open`]. Writing a backend: [`backend`].
//! - Test tools: [`testing`] (feature `testing`): `TestStore`, `TestClock`, the conformance suite.
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
//! | `testing` | [`testing`]: `TestStore`, `TestClock`, the conformance suite | no |
//! | `json` | nothing more: the JSON codec is always compiled (kept for manifests that name it) | no |
//!
//! The in-memory store, [`memory::InMemoryEventStore`] and `backend = "memory"` (or `"in-memory"`), needs
//! no feature: it is always compiled and pulls no test tools into the build.

pub use composable_rust_core::{
    Aggregate, Decision, Effect, Event, EventId, EventStore, EventStoreError, EventStoreOperation, EventStoreRequest,
    ExpectedVersion, GlobalPosition, Metadata, NewEvent, RecordedEvent, Reducer, ReducerExt, Report, StreamId, Version,
    async_trait, error_chain, reducer_fn,
};
pub use composable_rust_runtime::{Decider, EventSourced, Repository, SnapshotPolicy, Store};

pub mod config;

/// Composition: a parent reducer built from children, each scoped to its part of the state and its case
/// of the action (in the manner of TCA's `Scope`, `ifLet` and `forEach`).
pub mod compose {
    pub use composable_rust_core::compose::*;
    pub use composable_rust_core::{Combine, FnReducer, Scoped, case};
}

/// Effects and how the [`Store`] runs them: ids for cancellation, the sink a task sends
/// actions through, clocks, and what a `send` returns.
pub mod effect {
    pub use composable_rust_core::{ActionSink, Clock, EffectId};
    pub use composable_rust_runtime::{ActionOrigin, SendHandle, StoreBuilder, StorePoisoned, SystemClock};
}

/// Aggregates: an [`EventSourced`] reducer's state, actions and failures, and the
/// [`Repository`]'s configuration, results and errors.
pub mod aggregate {
    pub use composable_rust_runtime::{
        AggregateAction, AggregateEnvironment, AggregateFailure, AggregateSlot, Aggregates, Executed, IgnoredSnapshot,
        LoadError, LoadMetrics, Loaded, LoadedAggregate, RepositoryConfig, RepositoryError, Retry, RunningCommand,
        SnapshotIgnoreReason,
    };
}

/// Events: types, codecs (bincode by default, JSON), snapshots, and schema evolution with upcasters.
pub mod event {
    pub use composable_rust_core::{
        Bincode, Bytes, Codec, CodecError, CodecId, EventDecodeError, EventDecoder, EventType, Json, Snapshot,
        UnknownEventTypes, Upcasters,
    };
}

/// The types of the [`EventStore`]'s methods and requests: ranges, filters, results,
/// replies and the cases of its errors.
pub mod event_store {
    pub use composable_rust_core::{
        AppendResult, BoxError, EventStoreReply, EventStream, HealthReport, InvalidInput, LoadRequest, LoadUntil,
        LoadedHistory, LogFilter, SchemaError, StreamInfo, StreamRange,
    };
}

/// Consistency beyond one stream: tags on events, reads by query across streams, appends under a
/// condition (the Dynamic Consistency Boundary pattern) and atomic appends to several streams. See
/// docs/dcb.md.
pub mod query {
    pub use composable_rust_core::{
        AppendCondition, AtomicAppend, EventQuery, QueryItem, QueryPage, StreamAppend, Tag,
    };
}

/// Decisions (the Dynamic Consistency Boundary programming model): a [`Decision`] reads the events its
/// query selects across streams, decides, and appends under the condition that none of them changed; a
/// [`Decider`] runs decisions as a reducer; a [`TagSpec`](decision::TagSpec) describes once which events
/// carry a kind of tag, for queries and tags alike. See docs/dcb.md.
pub mod decision {
    pub use composable_rust_core::{Decision, TagSpec};
    pub use composable_rust_runtime::{
        Decider, DeciderConfig, DecisionAction, DecisionFailure, Decisions, RunId, RunningDecision,
    };
}

/// Subscriptions: a named handler that reads the global log from its checkpoint and then follows it, with
/// at-least-once or (on a database backend) exactly-once effects.
pub mod subscription {
    pub use composable_rust_core::{ApplyError, CheckpointedHandler};
    pub use composable_rust_runtime::{
        AtLeastOnce, Backoff, EventHandler, FnHandler, Phase, Progress, RunReport, Subscription, SubscriptionConfig,
        SubscriptionError, SubscriptionHandle, SubscriptionStopped, WhenLocked, handler_fn,
    };
}

/// For backend authors: the traits an event store implements and the checks every backend applies.
/// Application code does not need this module.
pub mod backend {
    pub use composable_rust_core::backend::*;
}

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

/// The in-memory event store: the full contract, nothing persisted (always compiled, no feature needed).
pub mod memory {
    pub use composable_rust_memory::*;
}

/// Test tools: `TestStore`, `TestClock`, the backend conformance suite (feature `testing`).
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
    pub use composable_rust_core::{AppendCondition, AtomicAppend, Decision, EventQuery, QueryItem, Tag, TagSpec};
    // The jobs `EventStore` is made of, in scope (unnamed) so that their methods can be called on a concrete
    // store such as `SqliteEventStore`; on a `dyn EventStore` they need no import.
    pub use composable_rust_core::backend::{
        EventLog as _, SnapshotStore as _, StoreLifecycle as _, SubscriptionStore as _,
    };
    pub use composable_rust_runtime::{
        AggregateAction, AggregateEnvironment, Aggregates, Decider, DecisionAction, Decisions, EventSourced,
        Repository, RepositoryConfig, SnapshotPolicy, Store,
    };

    #[cfg(feature = "sqlite")]
    pub use composable_rust_sqlite::SqliteEventStore;

    #[cfg(feature = "postgres")]
    pub use composable_rust_postgres::PostgresEventStore;

    pub use composable_rust_memory::InMemoryEventStore;

    #[cfg(feature = "testing")]
    pub use composable_rust_testing::{TestClock, TestStore};
}

/// The README's example, compiled by `cargo test --doc` so it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// `docs/getting-started.md`, compiled by `cargo test --doc` (it needs the `testing` feature).
#[doc = include_str!("../../docs/getting-started.md")]
#[cfg(all(doctest, feature = "testing"))]
pub struct GettingStartedDoctests;
