//! The composable-rust runtime: the [`Store`] that runs reducers and executes their effects on tokio.
//!
//! Application logic is a pure [`Reducer`](composable_rust_core::Reducer) that returns
//! [`Effect`](composable_rust_core::Effect) values. A [`Store`] holds the state, reduces every action sent to
//! it, executes the returned effects (tasks, delays on a [`Clock`](composable_rust_core::Clock), event store
//! operations, cancellation) and feeds the actions they produce back in, in order.
//!
//! ```
//! use std::time::Duration;
//! use composable_rust_core::{Effect, EffectId, reducer_fn};
//! use composable_rust_runtime::Store;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum Action { Start, Tick, Stop }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let timer = EffectId::new("timer");
//! let reducer = reducer_fn(move |ticks: &mut u32, action: Action, _env: &()| match action {
//!     Action::Start => Effect::delay(Duration::from_millis(1), Action::Tick).cancellable(timer.clone()),
//!     Action::Tick => {
//!         *ticks += 1;
//!         Effect::None
//!     }
//!     Action::Stop => Effect::cancel(timer.clone()),
//! });
//! let store = Store::new(reducer, 0, ());
//! store.send(Action::Start).finished().await; // waits for the delay and the Tick it sends
//! assert_eq!(store.state(|ticks| *ticks), 1);
//! # }
//! ```
//!
//! # Concepts
//! - [`Store`] and [`StoreBuilder`]: state, `send`, [`SendHandle::finished`] (waits for the effects a send
//!   started, cascades included), `shutdown`. How each effect runs is described on [`Store`].
//! - [`SystemClock`]: the default clock; tests give the store a `TestClock` from `composable-rust-testing`
//!   and move time by hand. The `TestStore` there asserts every state change and every action effects send.
//! - [`EventSourced`]: an aggregate as a reducer, every load, append and snapshot an event store request value.
//! - [`Decider`]: [`Decision`](composable_rust_core::Decision)s as a reducer: a read by query, a decision and an
//!   append under the condition that nothing read has changed (docs/dcb.md).
//! - [`Repository`] and [`SnapshotPolicy`]: load and change event-sourced aggregates (snapshot + replay) directly.
//! - [`Subscription`]: a named handler that reads the global log from its checkpoint, then follows new events.
//!
//! The guide is `docs/concepts.md` in the repository.
//!
//! # Invariants
//! This crate knows no SQL and no backend: it talks to storage only through
//! [`EventStore`](composable_rust_core::EventStore).

mod clock;
mod decider;
mod event_sourced;
mod replay;
mod repository;
mod retention;
mod snapshot_policy;
mod store;
mod subscription;

pub use decider::{Decider, DeciderConfig, DecisionAction, DecisionFailure, Decisions, RunId, RunningDecision};
pub use event_sourced::{
    AggregateAction, AggregateEnvironment, AggregateFailure, AggregateSlot, Aggregates, EventSourced, LoadedAggregate,
    Retry, RunningCommand,
};
pub use repository::{
    Executed, IgnoredSnapshot, LoadError, LoadMetrics, Loaded, Repository, RepositoryConfig, RepositoryError,
    SnapshotIgnoreReason,
};
pub use retention::{Applied, apply_retention, plan_retention};
pub use snapshot_policy::SnapshotPolicy;

pub use clock::SystemClock;
pub use store::{ActionOrigin, SendHandle, Store, StoreBuilder, StorePoisoned};
pub use subscription::{
    ArchivedEvents, AtLeastOnce, Backoff, EventHandler, FnHandler, Phase, Progress, RunReport, Subscription,
    SubscriptionConfig, SubscriptionError, SubscriptionHandle, SubscriptionStopped, WhenLocked, handler_fn,
};
