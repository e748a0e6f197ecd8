//! The programming model and the event store contract of composable-rust. No I/O happens here.
//!
//! Application logic is a [`Reducer`]: a pure function from state and action to new state plus an
//! [`Effect`], a value that describes the work to do next (send an action, run a task, wait on a
//! [`Clock`], talk to the [`EventStore`]). The runtime crate executes effects; the testing crate asserts
//! on them. Events are persisted through the [`EventStore`] trait, which every backend implements.
//!
//! # Concepts
//! - Reducers and composition: [`Reducer`], written left to right with [`ReducerExt`]
//!   (`parent.scope(..).if_let(..).for_each(..)`), which builds [`Combine`], [`Scope`], [`IfLet`] (children are
//!   [`Identifiable`]) and [`ForEach`]; [`case!`] names an action case.
//! - Effects: [`Effect`], [`EffectId`], [`ActionSink`], and [`EventStoreOperation`] for event store calls: an
//!   [`EventStoreRequest`] (a value tests compare) plus what to do with its [`EventStoreReply`].
//! - Streams: [`StreamId`], [`Version`] (first event is 1, empty stream is 0), [`GlobalPosition`],
//!   [`ExpectedVersion`].
//! - Events: [`Event`], [`NewEvent`], [`RecordedEvent`], [`Metadata`], codecs ([`CodecId`], [`Bincode`], [`Json`]).
//! - Storage: [`EventStore`], [`Snapshot`], [`LogFilter`], [`LogCursor`], [`EventStoreError`].
//! - Consistency beyond one stream: [`AtomicAppend`] (several streams, all or nothing), [`Tag`]s on events,
//!   [`EventQuery`] reads across streams and [`AppendCondition`]s (the Dynamic Consistency Boundary pattern);
//!   [`Decision`] (a command decided on the events its query selects) and [`TagSpec`] (one description for
//!   a decision's query and its events' tags). The runtime's `Decider` runs decisions.
//! - Retention: [`RetentionPolicies`] (per category, default forever), the pure [`RetentionPlan`] and the
//!   [`EventRetention`] capability; the invariants that keep loads and subscriptions correct are in
//!   [`retention`].
//! - Subscriptions: [`CheckpointedHandler`] (apply a page and record the checkpoint); the engine is in the
//!   runtime crate.
//! - Writing a backend: [`backend`] holds the traits an event store implements and the checks every backend
//!   applies; application code does not need it.
//! - Aggregates: [`Aggregate`] (pure `decide` and `apply`), schema evolution with [`Upcasters`] and
//!   [`EventDecoder`]. The runtime's `Repository` loads, saves and snapshots them.
//!
//! # Invariants
//! This crate depends on no async runtime and no database driver.

mod aggregate;
pub mod backend;
mod clock;
mod codec;
pub mod compose;
mod decision;
mod durability;
mod effect;
mod error;
mod event;
mod event_store;
mod operation;
mod projection;
mod query;
mod reducer;
mod reducer_ext;
mod report;
pub mod retention;
mod snapshot;
pub mod stream;
mod upcast;

pub use aggregate::Aggregate;
pub use clock::Clock;
pub use codec::{Bincode, Codec, CodecId, Json};
pub use compose::{ActionCase, ForEach, Identifiable, IfLet, Scope};
pub use decision::{Decision, TagSpec};
pub use durability::Durability;
pub use effect::{ActionSink, Effect, EffectId};
pub use error::{BoxError, CodecError, EventStoreError, InvalidInput, SchemaError, error_chain};
pub use event::{Bytes, Event, EventId, EventType, Metadata, NewEvent, RecordedEvent};
pub use event_store::{
    AppendResult, AtomicAppend, EventStore, EventStream, HealthReport, LogCursor, LogFilter, StoreStats, StreamAppend,
    StreamInfo, StreamRange,
};
pub use operation::{EventStoreOperation, EventStoreReply, EventStoreRequest, LoadRequest, LoadUntil, LoadedHistory};
pub use projection::{ApplyError, CheckpointedHandler};
pub use query::{AppendCondition, EventQuery, QueryItem, QueryPage, Tag};
pub use reducer::{Combine, FnReducer, Reducer, reducer_fn};
pub use reducer_ext::{ReducerExt, Scoped};
pub use report::Report;
pub use retention::{
    CategoryPlan, CategoryPolicy, EventRetention, KeepCriteria, KeptReason, KeptStream, PolicyError, RemovalBatch,
    RemovalOutcome, RemovalRefusal, RetentionPlan, RetentionPolicies, RetentionRule, RetentionRun, RetentionRunId,
    StreamFacts, StreamPlan, StreamRemoval,
};
pub use snapshot::Snapshot;
pub use stream::{ExpectedVersion, GlobalPosition, StreamId, Version};
pub use upcast::{EventDecodeError, EventDecoder, UnknownEventTypes, Upcasters};

/// Re-exported so that backends and users implement [`EventStore`] with the same macro version.
pub use async_trait::async_trait;
