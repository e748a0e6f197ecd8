//! Application logic as pure reducers that return effects, a runtime that executes them, and an event
//! store in PostgreSQL, an SQLite file or memory: Point-Free's Composable Architecture for Rust servers. This is
//! the one crate to depend on.
//!
//! - **Pure logic.** A [`Reducer`] changes the state for one action and returns an [`Effect`], a value that
//!   describes the work to do next (a task, a timer, a cancellation, an event store request). An [`Aggregate`]
//!   decides commands into events and folds events into its state, with no I/O at all.
//! - **A runtime.** A [`Store`] runs reducers on tokio and executes their effects; [`EventSourced`] runs an
//!   aggregate as a reducer, and the [`Repository`] runs it directly, with snapshots and optimistic concurrency.
//! - **Tests that see everything.** The `TestStore` (feature `testing`) asserts every state change, every
//!   event store request and every action an effect feeds back, exhaustively, with a test clock instead of
//!   sleeps.
//! - **An event store.** SQLite by default with zero configuration, PostgreSQL in production, memory in
//!   tests: one contract, one conformance suite.
//!
//! # Example
//!
//! An account that takes deposits, and a test that checks each step of one command: the load, the exact
//! append, and what each answer does to the state. (The test needs the `testing` feature, usually in
//! `[dev-dependencies]`.)
//!
//! ```
//! use composable_rust::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum AccountEvent {
//!     Deposited { cents: u64 },
//! }
//!
//! impl Event for AccountEvent {
//!     fn event_type(&self) -> &'static str {
//!         "Deposited.v1"
//!     }
//! }
//!
//! #[derive(Debug, Clone, PartialEq, thiserror::Error)]
//! #[error("a deposit must be more than zero cents")]
//! struct EmptyDeposit;
//!
//! #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
//! struct Account {
//!     balance: u64,
//! }
//!
//! impl Aggregate for Account {
//!     const CATEGORY: &'static str = "account";
//!     const EVENT_TYPES: &'static [&'static str] = &["Deposited.v1"];
//!     const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
//!     type Event = AccountEvent;
//!     type Command = u64; // deposit this many cents
//!     type Error = EmptyDeposit;
//!
//!     fn apply(&mut self, AccountEvent::Deposited { cents }: &AccountEvent) {
//!         self.balance += cents;
//!     }
//!
//!     fn decide(&self, cents: &u64) -> Result<Vec<AccountEvent>, EmptyDeposit> {
//!         if *cents == 0 { Err(EmptyDeposit) } else { Ok(vec![AccountEvent::Deposited { cents: *cents }]) }
//!     }
//! }
//!
//! # #[cfg(feature = "testing")]
//! # {
//! use composable_rust::aggregate::{LoadedAggregate, RunningCommand};
//!
//! let id = Account::stream_id(7)?;
//! let teller = Metadata::default().with_actor("teller");
//! let mut store = TestStore::new(EventSourced::<Account>::new(), Aggregates::default(), AggregateEnvironment::default());
//!
//! // The command starts running, and the reducer asks the event store for the account.
//! store.send(AggregateAction::command(id.clone(), 250, teller.clone()), |s| {
//!     s.slot_mut(&id).running = Some(RunningCommand::new(250, teller.clone()));
//! });
//! store.receive_request(EventStoreRequest::load(id.clone()));
//! let empty = LoadedAggregate { state: Account::default(), version: Version::INITIAL, snapshot_version: None };
//! store.receive(AggregateAction::Loaded { stream_id: id.clone(), loaded: empty.clone() }, |s| {
//!     let slot = s.slot_mut(&id);
//!     slot.loaded = Some(empty);
//!     if let Some(running) = slot.running.as_mut() {
//!         running.attempts = 1;
//!     }
//! });
//! // The account decides, and its event is appended to a stream that must still be empty.
//! let deposited = AccountEvent::Deposited { cents: 250 };
//! store.receive_append(&id, ExpectedVersion::Exact(Version::INITIAL), [deposited.clone()], &teller);
//! store.receive(AggregateAction::Appended { stream_id: id.clone(), events: vec![deposited], version: Version::new(1) }, |s| {
//!     let slot = s.slot_mut(&id);
//!     slot.running = None;
//!     let state = Account { balance: 250 };
//!     slot.loaded = Some(LoadedAggregate { state, version: Version::new(1), snapshot_version: None });
//! });
//! store.finish();
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In a program, the same aggregate runs on an event store through a [`Repository`] (or a [`Store`] built
//! with `.event_store(...)`), opened from configuration with [`config::open`]; with no configuration at all
//! that is an SQLite file at `data/events.db` under the working directory.
//!
//! # Guides
//!
//! - [Getting started](https://example.invalid/composable-rust/blob/main/docs/getting-started.md): one project from `cargo new` to an account
//!   in memory, in SQLite and on PostgreSQL, tested with a `TestStore`; every file shown whole. The project is
//!   [`examples/getting-started`](https://example.invalid/composable-rust/blob/main/examples/getting-started).
//! - [Concepts](https://example.invalid/composable-rust/blob/main/docs/concepts.md): reducers, effects, composition, the store, testing.
//! - [Aggregates](https://example.invalid/composable-rust/blob/main/docs/aggregates.md): the repository, snapshots, conflicts, upcasting.
//! - [Event sourcing](https://example.invalid/composable-rust/blob/main/docs/event-sourcing.md): streams, versions, metadata, codecs, the
//!   global log.
//! - [Projections](https://example.invalid/composable-rust/blob/main/docs/projections.md): subscriptions and read models.
//! - [Setting up PostgreSQL](https://example.invalid/composable-rust/blob/main/docs/database-setup.md): databases, roles, the schema.
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
//! - Consistency across streams: tags, reads by query and conditional appends in [`query`].
//! - Subscriptions and projections: [`subscription`].
//! - Backends: [`sqlite`] (default feature), [`postgres`] (feature `postgres`), [`file`](mod@file) (feature `file`) and
//!   [`memory`] (always compiled), or pick one from a configuration file with [`config::open`]. Writing a backend: [`backend`].
//! - Beyond one process: the event bus on NATS JetStream, the outbox and sagas as reducers in `bus`
//!   (feature `bus`; guides `docs/event-bus.md` and `docs/sagas.md`).
//! - Test tools: [`testing`] (feature `testing`): `TestStore`, `TestClock`, the conformance suite.
//! - Errors in `main`: [`Report`] prints an error and each of its causes on its own line.
//! - [`prelude`]: the imports most programs need.
//!
//! # Features
//!
//! | feature | enables | default |
//! |---|---|---|
//! | `sqlite` | [`sqlite::SqliteEventStore`], `backend = "sqlite"` in configuration | yes |
//! | `postgres` | [`postgres::PostgresEventStore`], `backend = "postgres"` | no |
//! | `file` | [`file::FileEventStore`] (JSONL segments in a directory, one process), `backend = "file"` | no |
//! | `bus` | `bus`: `JetStreamBus`, `Outbox`, `Reactor` (sagas) | no |
//! | `testing` | [`testing`]: `TestStore`, `TestClock`, the conformance suite | no |
//! | `json` | nothing more: the JSON codec is always compiled (kept for manifests that name it) | no |
//!
//! The in-memory store, [`memory::InMemoryEventStore`] and `backend = "memory"` (or `"in-memory"`), needs
//! no feature: it is always compiled and pulls no test tools into the build.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85 (edition 2024). Raising it is a minor-version change, named in the changelog.

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
        LoadedHistory, LogCursor, LogFilter, SchemaError, StoreStats, StreamInfo, StreamRange,
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
        ArchivedEvents, AtLeastOnce, Backoff, EventHandler, FnHandler, Phase, Progress, RunReport, Subscription,
        SubscriptionConfig, SubscriptionError, SubscriptionHandle, SubscriptionStopped, WhenLocked, handler_fn,
    };
}

/// Retention: policies per category (default: keep everything), the plan of what would go and why the rest
/// stays, and applying it in audited, bounded transactions. The invariants that keep aggregates loading
/// and subscriptions correct are in [`composable_rust_core::retention`]; configuration in
/// [`config::RetentionConfig`]; the operator's commands in docs/operations.md ("Retention").
pub mod retention {
    pub use composable_rust_core::retention::{RemovalRefusal, check_stream_removal, removed_event_matches};
    pub use composable_rust_core::{
        CategoryPlan, CategoryPolicy, EventRetention, KeepCriteria, KeptReason, KeptStream, PolicyError, RemovalBatch,
        RemovalOutcome, RetentionPlan, RetentionPolicies, RetentionRule, RetentionRun, RetentionRunId, StreamFacts,
        StreamPlan, StreamRemoval,
    };
    pub use composable_rust_runtime::{Applied, apply_retention, plan_retention};
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

/// The local-file event store: append-only JSONL segments in a directory, for development and
/// single-process services (feature `file`).
#[cfg(feature = "file")]
pub mod file {
    pub use composable_rust_file::*;
}

/// The in-memory event store: the full contract, nothing persisted (always compiled, no feature needed).
pub mod memory {
    pub use composable_rust_memory::*;
}

/// The event bus on NATS JetStream, the outbox, and sagas as reducers (feature `bus`); see
/// `docs/event-bus.md` and `docs/sagas.md`.
#[cfg(feature = "bus")]
pub mod bus {
    pub use composable_rust_bus::*;
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
        EventLog as _, EventRetention as _, SnapshotStore as _, StoreLifecycle as _, SubscriptionStore as _,
    };
    pub use composable_rust_runtime::{
        AggregateAction, AggregateEnvironment, Aggregates, Decider, DecisionAction, Decisions, EventSourced,
        Repository, RepositoryConfig, SnapshotPolicy, Store,
    };

    #[cfg(feature = "sqlite")]
    pub use composable_rust_sqlite::SqliteEventStore;

    #[cfg(feature = "postgres")]
    pub use composable_rust_postgres::PostgresEventStore;

    #[cfg(feature = "file")]
    pub use composable_rust_file::FileEventStore;

    pub use composable_rust_memory::InMemoryEventStore;

    #[cfg(feature = "testing")]
    pub use composable_rust_testing::{TestClock, TestStore};
}

/// The README's example, compiled by `cargo test --doc` so it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

// docs/getting-started.md shows whole files of examples/getting-started, which are built and tested as that
// crate; scripts/check-guide.sh checks that the guide shows them exactly.

/// `docs/concepts.md`, compiled by `cargo test --doc` (it needs the `testing` feature).
#[doc = include_str!("../../docs/concepts.md")]
#[cfg(all(doctest, feature = "testing"))]
pub struct ConceptsDoctests;

/// `docs/event-sourcing.md`, compiled by `cargo test --doc` (it needs the `testing` feature).
#[doc = include_str!("../../docs/event-sourcing.md")]
#[cfg(all(doctest, feature = "testing"))]
pub struct EventSourcingDoctests;

/// `docs/aggregates.md`, compiled by `cargo test --doc`.
#[doc = include_str!("../../docs/aggregates.md")]
#[cfg(doctest)]
pub struct AggregatesDoctests;
