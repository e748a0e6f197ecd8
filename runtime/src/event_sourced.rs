//! [`EventSourced`]: an [`Aggregate`] run as a [`Reducer`], every step of a command visible as an action
//! and every event store call a request value.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use composable_rust_core::{
    Aggregate, Clock, Effect, EventDecoder, EventId, EventStoreError, EventStoreOperation, EventStoreRequest,
    ExpectedVersion, LoadRequest, LoadUntil, LoadedHistory, Metadata, NewEvent, Reducer, StreamId, Upcasters, Version,
    error_chain,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use uuid::Uuid;

use crate::clock::SystemClock;
use crate::replay::{Replay, encode_events, encode_snapshot};
use crate::repository::{IgnoredSnapshot, RepositoryConfig};

/// Runs commands of the aggregate `A` as a reducer over [`Aggregates<A>`] with [`AggregateAction<A>`].
///
/// Its configuration is the [`Repository`](crate::Repository)'s: snapshot policy, how many conflicts a
/// command retries, and the codec of new events and snapshots.
///
/// A command goes through these steps, each one an action the reducer handles:
///
/// ```text
/// Command ──► (aggregate not loaded) ──► Load request ──► Loaded ──┐
///    │                                                              ▼
///    └──────► (aggregate loaded) ─────────────────────────► decide(command)
///                                                                   │
///             Rejected ◄── domain error ──┬── no events ──► Appended { events: [] }
///                                         ▼
///                         Append request (stream, Exact(version), events + metadata)
///                                         │
///      Conflicted ◄── another writer won ─┼── stored ──► Appended ──► (policy) SaveSnapshot request
///      (reload, decide again, bounded)    └── failed ──► Failed
/// ```
///
/// Commands for one stream run one at a time, in the order they were sent; commands for different
/// streams run concurrently. The loaded aggregate stays in the state ([`Aggregates`]), so the next command
/// on the same stream appends without loading again; if another process appended meanwhile, the append
/// conflicts and the aggregate is reloaded.
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::{EventStore, Metadata, StreamId};
/// use composable_rust_runtime::{AggregateAction, AggregateEnvironment, Aggregates, EventSourced, Store};
/// # use composable_rust_core::{Aggregate, Event};
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
/// # enum Counted { Added(u32) }
/// # impl Event for Counted { fn event_type(&self) -> &'static str { "Added.v1" } }
/// # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
/// # #[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
/// # struct Counter { total: u32 }
/// # impl Aggregate for Counter {
/// #     const CATEGORY: &'static str = "counter";
/// #     const EVENT_TYPES: &'static [&'static str] = &["Added.v1"];
/// #     const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
/// #     type Event = Counted; type Command = u32; type Error = Never;
/// #     fn apply(&mut self, Counted::Added(n): &Counted) { self.total += n; }
/// #     fn decide(&self, n: &u32) -> Result<Vec<Counted>, Never> { Ok(vec![Counted::Added(*n)]) }
/// # }
/// # let events: Arc<dyn EventStore> = Arc::new(composable_rust_testing::InMemoryEventStore::new());
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = Store::builder(EventSourced::<Counter>::new(), Aggregates::default(), AggregateEnvironment::default())
///     .event_store(events)
///     .build();
/// let stream = Counter::stream_id(7)?;
/// store.send(AggregateAction::command(stream.clone(), 5, Metadata::default())).finished().await;
/// store.send(AggregateAction::command(stream.clone(), 2, Metadata::default())).finished().await;
/// assert_eq!(store.state(|s| s.state(&stream).map(|c| c.total)), Some(7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventSourced<A: Aggregate> {
    config: RepositoryConfig,
    decoder: Arc<EventDecoder<A::Event>>,
}

impl<A: Aggregate> EventSourced<A> {
    /// The reducer with the default [`RepositoryConfig`] and no upcasters.
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(RepositoryConfig::default())
    }

    /// The reducer with `config`.
    #[must_use]
    pub fn with_config(config: RepositoryConfig) -> Self {
        Self { config, decoder: Arc::new(EventDecoder::for_aggregate::<A>()) }
    }

    /// Uses `upcasters` for stored events of older types.
    #[must_use]
    pub fn with_upcasters(self, upcasters: Upcasters<A::Event>) -> Self {
        Self { config: self.config, decoder: Arc::new(EventDecoder::for_aggregate::<A>().with_upcasters(upcasters)) }
    }

    /// The decoder this reducer reads its stored events with (its upcasters included), for code that reads
    /// the aggregate's events itself, such as a saga re-arming its deadlines after a restart.
    #[must_use]
    pub fn decoder(&self) -> &EventDecoder<A::Event> {
        &self.decoder
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    /// The append this reducer asks for when `events` are decided on `stream_id` at `expected`, with
    /// `metadata`: the request a test expects (see the `TestStore`'s `receive_request`).
    ///
    /// # Errors
    /// [`EventStoreError::Codec`] when an event does not encode.
    pub fn append_request(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: &[A::Event],
        metadata: &Metadata,
    ) -> Result<EventStoreRequest, EventStoreError> {
        Ok(EventStoreRequest::append(stream_id.clone(), expected, encode_events(events, self.config.codec, metadata)?))
    }
}

impl<A: Aggregate + Serialize> EventSourced<A> {
    /// The snapshot-save request this reducer makes for `state` at `version`, taken at `env`'s clock's now.
    ///
    /// # Errors
    /// [`EventStoreError::Codec`] when the state does not encode.
    pub fn snapshot_request(
        &self,
        stream_id: &StreamId,
        state: &A,
        version: Version,
        env: &AggregateEnvironment,
    ) -> Result<EventStoreRequest, EventStoreError> {
        let snapshot = encode_snapshot(stream_id, state, version, self.config.codec, env.clock.now())?;
        Ok(EventStoreRequest::SaveSnapshot(snapshot))
    }
}

impl<A: Aggregate + DeserializeOwned> EventSourced<A> {
    /// An operation that loads the aggregate in `stream_id` as of `until` (see [`LoadUntil`]) and feeds
    /// back `on_loaded(result)`: for reducers that show an aggregate's past, e.g. a history view.
    ///
    /// An unusable snapshot is skipped by loading every event instead, in the same request.
    pub fn load_as_of<Act: 'static>(
        &self,
        stream_id: StreamId,
        until: LoadUntil,
        on_loaded: impl FnOnce(Result<LoadedAggregate<A>, AggregateFailure>) -> Act + Send + 'static,
    ) -> EventStoreOperation<Act> {
        // A load as of a time reads no snapshot; one as of a version only a snapshot at or before it.
        // An undecodable snapshot would need a second request, so a past view replays from the start.
        let request = LoadRequest::latest(stream_id.clone()).until(until).without_snapshot();
        let decoder = Arc::clone(&self.decoder);
        EventStoreOperation::load(request, move |result| {
            on_loaded(result.map_err(|e| AggregateFailure::Load(error_chain(&e))).and_then(|history| {
                match Replay::<A>::fold(&stream_id, &decoder, &history) {
                    Ok(Ok(replay)) => Ok(LoadedAggregate::from(replay)),
                    Ok(Err(ignored)) => Err(AggregateFailure::Load(ignored.to_string())),
                    Err(error) => Err(AggregateFailure::Load(error_chain(&error))),
                }
            }))
        })
    }
}

impl<A: Aggregate> Default for EventSourced<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Aggregate> Clone for EventSourced<A> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone(), decoder: Arc::clone(&self.decoder) }
    }
}

impl<A: Aggregate> fmt::Debug for EventSourced<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourced").field("aggregate", &A::CATEGORY).field("config", &self.config).finish()
    }
}

/// What [`EventSourced`] needs from outside: the clock that stamps snapshots (a test clock in tests, so
/// that a test can state the snapshot it expects).
#[derive(Debug, Clone)]
pub struct AggregateEnvironment {
    /// Stamps [`Snapshot::taken_at`](composable_rust_core::Snapshot::taken_at).
    pub clock: Arc<dyn Clock>,
}

impl AggregateEnvironment {
    /// An environment with `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl Default for AggregateEnvironment {
    /// The system clock.
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock) }
    }
}

/// The state of [`EventSourced`]: one [`AggregateSlot`] per stream it has handled commands for.
pub struct Aggregates<A: Aggregate> {
    slots: BTreeMap<StreamId, AggregateSlot<A>>,
}

impl<A: Aggregate> Aggregates<A> {
    /// The slot of `stream_id`, if a command was sent for it.
    #[must_use]
    pub fn slot(&self, stream_id: &StreamId) -> Option<&AggregateSlot<A>> {
        self.slots.get(stream_id)
    }

    /// The slot of `stream_id`, created empty if needed: for a test's expected state.
    pub fn slot_mut(&mut self, stream_id: &StreamId) -> &mut AggregateSlot<A> {
        self.slots.entry(stream_id.clone()).or_default()
    }

    /// The aggregate in `stream_id` as last loaded or changed, if it is loaded.
    #[must_use]
    pub fn state(&self, stream_id: &StreamId) -> Option<&A> {
        self.loaded(stream_id).map(|loaded| &loaded.state)
    }

    /// The aggregate in `stream_id` with its version, if it is loaded.
    #[must_use]
    pub fn loaded(&self, stream_id: &StreamId) -> Option<&LoadedAggregate<A>> {
        self.slots.get(stream_id).and_then(|slot| slot.loaded.as_ref())
    }

    /// Every slot, by stream id.
    pub fn iter(&self) -> impl Iterator<Item = (&StreamId, &AggregateSlot<A>)> {
        self.slots.iter()
    }

    /// Whether a command is running or waiting on any stream.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.slots.values().any(AggregateSlot::is_busy)
    }

    /// Forgets the loaded aggregate of every idle stream, to bound memory; the next command reloads it.
    pub fn unload_idle(&mut self) {
        self.slots.retain(|_, slot| slot.is_busy());
    }
}

/// One stream's part of [`Aggregates`]: the loaded aggregate, the running command and the waiting ones.
pub struct AggregateSlot<A: Aggregate> {
    /// The aggregate as last loaded or changed by this reducer; `None` before the first load, and after
    /// a failure (the next command loads it again).
    pub loaded: Option<LoadedAggregate<A>>,
    /// The command being handled.
    pub running: Option<RunningCommand<A>>,
    /// Commands sent while another ran, in order.
    pub waiting: VecDeque<RunningCommand<A>>,
}

impl<A: Aggregate> AggregateSlot<A> {
    /// Whether a command is running or waiting.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.waiting.is_empty()
    }
}

/// An aggregate's state and the stream version it reflects.
pub struct LoadedAggregate<A> {
    /// The state after every event up to `version`.
    pub state: A,
    /// The version of the last event applied ([`Version::INITIAL`] when there is none).
    pub version: Version,
    /// The version of the newest snapshot known to exist (loaded from, or saved by this reducer).
    pub snapshot_version: Option<Version>,
}

impl<A: Aggregate> From<Replay<'_, A>> for LoadedAggregate<A> {
    fn from(replay: Replay<'_, A>) -> Self {
        Self { state: replay.state, version: replay.version, snapshot_version: replay.snapshot_version }
    }
}

/// A command with its metadata, and how many times it has been decided and retried.
pub struct RunningCommand<A: Aggregate> {
    /// The command.
    pub command: A::Command,
    /// The metadata every event it causes carries.
    pub metadata: Metadata,
    /// The command's idempotency key, when it has one: its events get ids derived from it, so that it is
    /// applied at most once (see [`AggregateAction::command_once`]).
    pub command_id: Option<Uuid>,
    /// How many times it was decided: 0 while waiting or loading, then 1, plus one per conflict.
    pub attempts: u32,
    /// How many requests of this command were retried because the store was unavailable.
    pub retries: u32,
}

impl<A: Aggregate> RunningCommand<A> {
    /// A command not yet decided.
    pub fn new(command: A::Command, metadata: Metadata) -> Self {
        Self { command, metadata, command_id: None, attempts: 0, retries: 0 }
    }

    /// The same command with the idempotency key `command_id`.
    #[must_use]
    pub fn with_command_id(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self
    }
}

/// A request that failed because the store was unavailable, and is sent again after a backoff.
pub enum Retry<A: Aggregate> {
    /// The load of the aggregate.
    Load(LoadRequest),
    /// The append of a decided command, with the same events and ids.
    Append {
        /// The expected version of the append.
        expected: ExpectedVersion,
        /// The encoded events, with their ids.
        batch: Vec<NewEvent>,
        /// The events as decided.
        events: Vec<A::Event>,
    },
}

/// The actions of [`EventSourced`]: a command, and each step of handling it.
///
/// Only [`AggregateAction::Command`] is sent by the application; the others are fed back by the
/// reducer's effects, and a parent reducer reacts to [`Appended`](AggregateAction::Appended),
/// [`Rejected`](AggregateAction::Rejected) and [`Failed`](AggregateAction::Failed).
pub enum AggregateAction<A: Aggregate> {
    /// Handle `command` on the aggregate in `stream_id`; the events it causes carry `metadata`.
    Command {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// What to do.
        command: A::Command,
        /// Correlation, causation and actor of the events.
        metadata: Metadata,
        /// The idempotency key, if any (see [`AggregateAction::command_once`]).
        command_id: Option<Uuid>,
    },
    /// The aggregate was loaded (snapshot plus the events after it).
    Loaded {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// The aggregate and its version.
        loaded: LoadedAggregate<A>,
    },
    /// The stored snapshot could not be used; the aggregate is loaded again from its first event.
    SnapshotIgnored {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// Which snapshot, and why.
        ignored: IgnoredSnapshot,
    },
    /// Another writer appended first; the aggregate is reloaded and the command decided again.
    Conflicted {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// The version the append expected.
        expected: ExpectedVersion,
        /// The version the stream had.
        actual: Version,
    },
    /// The command's events were appended (none when the command changed nothing; then nothing was
    /// written).
    Appended {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// The events, in order.
        events: Vec<A::Event>,
        /// The stream's version after them.
        version: Version,
    },
    /// The store was unavailable (connection lost, timeout); the request is sent again after a backoff,
    /// at most [`RepositoryConfig::transient_retries`] times, with the same event ids.
    Interrupted {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// What went wrong, with its causes.
        error: String,
        /// The request to send again.
        retry: Retry<A>,
    },
    /// A command with an idempotency key had already been applied (by an earlier attempt, another
    /// process, or a duplicate delivery); nothing was written now. The aggregate is reloaded before the
    /// next command.
    AlreadyApplied {
        /// The aggregate's stream.
        stream_id: StreamId,
    },
    /// The aggregate refused the command; nothing was written.
    Rejected {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// Why.
        error: A::Error,
    },
    /// The command could not be handled; nothing was written unless the failure says otherwise.
    Failed {
        /// The aggregate's stream.
        stream_id: StreamId,
        /// What went wrong.
        error: AggregateFailure,
    },
}

impl<A: Aggregate> AggregateAction<A> {
    /// A command for the aggregate in `stream_id`.
    pub fn command(stream_id: StreamId, command: A::Command, metadata: Metadata) -> Self {
        Self::Command { stream_id, command, metadata, command_id: None }
    }

    /// A command applied at most once for `command_id`, its idempotency key: its events get ids derived
    /// from the key ([`EventId::derived`]), so sending it again (after a lost reply, a restart, a duplicate
    /// delivery) ends in [`AggregateAction::AlreadyApplied`] instead of a second copy of its events.
    pub fn command_once(stream_id: StreamId, command_id: Uuid, command: A::Command, metadata: Metadata) -> Self {
        Self::Command { stream_id, command, metadata, command_id: Some(command_id) }
    }

    /// Whether this step ends its command: [`Appended`](Self::Appended), [`Rejected`](Self::Rejected),
    /// [`Failed`](Self::Failed) or [`AlreadyApplied`](Self::AlreadyApplied). A parent reducer reacts to these.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Appended { .. } | Self::Rejected { .. } | Self::Failed { .. } | Self::AlreadyApplied { .. }
        )
    }

    /// The stream the action is about.
    #[must_use]
    pub fn stream_id(&self) -> &StreamId {
        match self {
            Self::Command { stream_id, .. }
            | Self::Loaded { stream_id, .. }
            | Self::SnapshotIgnored { stream_id, .. }
            | Self::Conflicted { stream_id, .. }
            | Self::Appended { stream_id, .. }
            | Self::Interrupted { stream_id, .. }
            | Self::AlreadyApplied { stream_id }
            | Self::Rejected { stream_id, .. }
            | Self::Failed { stream_id, .. } => stream_id,
        }
    }
}

/// Why [`EventSourced`] could not handle a command. Comparable, so tests can assert it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AggregateFailure {
    /// Every attempt conflicted with another writer; nothing was appended.
    #[error(
        "gave up after {attempts} attempts because other writers kept appending (the last expected {expected}, \
         the stream was at version {actual}); retry later or raise max_conflict_retries"
    )]
    Conflict {
        /// What the last attempt expected.
        expected: ExpectedVersion,
        /// The version the stream had.
        actual: Version,
        /// How many times the command was decided.
        attempts: u32,
    },
    /// Loading the aggregate failed (the store failed, or an event does not decode).
    #[error("could not load the aggregate: {0}")]
    Load(String),
    /// Encoding or appending the events failed; nothing was written.
    #[error("could not append the events: {0}")]
    Append(String),
    /// The store stayed unavailable through every retry; the command may or may not have been applied.
    /// Send it again with [`AggregateAction::command_once`] and the same key to apply it at most once.
    #[error(
        "the event store stayed unavailable; the command may or may not have been applied ({0})\nsend it again \
         with the same command id to apply it at most once"
    )]
    Unavailable(String),
}

impl<A> Reducer for EventSourced<A>
where
    A: Aggregate + Clone + Serialize + DeserializeOwned,
    A::Command: Clone,
    A::Event: Clone,
{
    type State = Aggregates<A>;
    type Action = AggregateAction<A>;
    type Environment = AggregateEnvironment;

    fn reduce(
        &self,
        state: &mut Aggregates<A>,
        action: AggregateAction<A>,
        env: &AggregateEnvironment,
    ) -> Effect<Self::Action> {
        match action {
            AggregateAction::Command { stream_id, command, metadata, command_id } => {
                let slot = state.slot_mut(&stream_id);
                slot.waiting.push_back(RunningCommand { command_id, ..RunningCommand::new(command, metadata) });
                if slot.running.is_some() {
                    return Effect::None;
                }
                self.start_next(stream_id, slot)
            }
            AggregateAction::Loaded { stream_id, loaded } => {
                let slot = state.slot_mut(&stream_id);
                slot.loaded = Some(loaded);
                self.decide(stream_id, slot)
            }
            AggregateAction::SnapshotIgnored { stream_id, .. } => {
                self.load(LoadRequest::latest(stream_id).without_snapshot())
            }
            AggregateAction::Conflicted { stream_id, expected, actual } => {
                let max_attempts = self.config.max_conflict_retries.saturating_add(1);
                let slot = state.slot_mut(&stream_id);
                slot.loaded = None;
                match &slot.running {
                    Some(running) if running.attempts < max_attempts => self.load(LoadRequest::latest(stream_id)),
                    running => {
                        let attempts = running.as_ref().map_or(0, |r| r.attempts);
                        let error = AggregateFailure::Conflict { expected, actual, attempts };
                        Effect::send(AggregateAction::Failed { stream_id, error })
                    }
                }
            }
            AggregateAction::Appended { stream_id, events, version } => {
                let slot = state.slot_mut(&stream_id);
                slot.running = None;
                let snapshot = match slot.loaded.as_mut() {
                    Some(loaded) => {
                        for event in &events {
                            loaded.state.apply(event);
                        }
                        loaded.version = version;
                        self.snapshot_if_due(&stream_id, loaded, env)
                    }
                    None => Effect::None,
                };
                Effect::merge([snapshot, self.start_next(stream_id, slot)])
            }
            AggregateAction::Interrupted { stream_id, error, retry } => {
                let slot = state.slot_mut(&stream_id);
                let Some(running) = slot.running.as_mut() else { return Effect::None };
                running.retries += 1;
                if running.retries > self.config.transient_retries {
                    let error = AggregateFailure::Unavailable(error);
                    return Effect::send(AggregateAction::Failed { stream_id, error });
                }
                let keyed = running.command_id.is_some();
                let again = match retry {
                    Retry::Load(request) => self.load(request),
                    Retry::Append { expected, batch, events } => self.append(stream_id, expected, batch, events, keyed),
                };
                again.delayed(self.config.backoff(running.retries))
            }
            AggregateAction::AlreadyApplied { stream_id } => {
                let slot = state.slot_mut(&stream_id);
                slot.running = None;
                // The stored events of the first application are not in the cached state: reload.
                slot.loaded = None;
                self.start_next(stream_id, slot)
            }
            AggregateAction::Rejected { stream_id, .. } => {
                let slot = state.slot_mut(&stream_id);
                slot.running = None;
                self.start_next(stream_id, slot)
            }
            AggregateAction::Failed { stream_id, .. } => {
                let slot = state.slot_mut(&stream_id);
                slot.running = None;
                // The stored state is unknown after a failure (an append may even have landed): reload.
                slot.loaded = None;
                self.start_next(stream_id, slot)
            }
        }
    }
}

impl<A> EventSourced<A>
where
    A: Aggregate + Clone + Serialize + DeserializeOwned,
    A::Command: Clone,
    A::Event: Clone,
{
    /// Starts the next waiting command of `slot`, if nothing runs: decide at once when the aggregate is
    /// loaded, load it first otherwise.
    fn start_next(&self, stream_id: StreamId, slot: &mut AggregateSlot<A>) -> Effect<AggregateAction<A>> {
        if slot.running.is_some() {
            return Effect::None;
        }
        let Some(next) = slot.waiting.pop_front() else { return Effect::None };
        slot.running = Some(next);
        if slot.loaded.is_some() { self.decide(stream_id, slot) } else { self.load(LoadRequest::latest(stream_id)) }
    }

    fn load(&self, request: LoadRequest) -> Effect<AggregateAction<A>> {
        let decoder = Arc::clone(&self.decoder);
        let retry = request.clone();
        Effect::event_store(EventStoreOperation::load(request, move |result| loaded_action(retry, &decoder, result)))
    }

    /// Decides the running command on the loaded aggregate and appends what it decided.
    fn decide(&self, stream_id: StreamId, slot: &mut AggregateSlot<A>) -> Effect<AggregateAction<A>> {
        let (Some(running), Some(loaded)) = (slot.running.as_mut(), slot.loaded.as_ref()) else {
            return Effect::None;
        };
        running.attempts += 1;
        let events = match loaded.state.decide(&running.command) {
            Ok(events) => events,
            Err(error) => return Effect::send(AggregateAction::Rejected { stream_id, error }),
        };
        if events.is_empty() {
            return Effect::send(AggregateAction::Appended { stream_id, events, version: loaded.version });
        }
        let mut batch = match encode_events(&events, self.config.codec, &running.metadata) {
            Ok(batch) => batch,
            Err(error) => {
                let error = AggregateFailure::Append(error_chain(&error));
                return Effect::send(AggregateAction::Failed { stream_id, error });
            }
        };
        if let Some(command_id) = running.command_id {
            for (index, event) in (0_u32..).zip(batch.iter_mut()) {
                event.id = EventId::derived(command_id, index);
            }
        }
        let keyed = running.command_id.is_some();
        self.append(stream_id, ExpectedVersion::Exact(loaded.version), batch, events, keyed)
    }

    /// The append of a decided command, and what each answer becomes.
    fn append(
        &self,
        stream_id: StreamId,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
        events: Vec<A::Event>,
        keyed: bool,
    ) -> Effect<AggregateAction<A>> {
        let retry_batch = batch.clone();
        let operation = EventStoreOperation::append(stream_id.clone(), expected, batch, move |result| match result {
            // An append retried by its key after the first one landed returns that one's result: its last
            // version is then not the one this append would have reached.
            Ok(appended) if keyed && !reaches(expected, events.len(), appended.stream_version) => {
                AggregateAction::AlreadyApplied { stream_id }
            }
            Ok(appended) => AggregateAction::Appended { stream_id, events, version: appended.stream_version },
            Err(EventStoreError::ConcurrencyConflict { expected, actual, .. }) => {
                AggregateAction::Conflicted { stream_id, expected, actual }
            }
            Err(EventStoreError::EventIdInUse { .. }) if keyed => AggregateAction::AlreadyApplied { stream_id },
            Err(error) if error.is_transient() => AggregateAction::Interrupted {
                stream_id,
                error: error_chain(&error),
                retry: Retry::Append { expected, batch: retry_batch, events },
            },
            Err(error) => AggregateAction::Failed { stream_id, error: AggregateFailure::Append(error_chain(&error)) },
        });
        Effect::event_store(operation)
    }

    /// A snapshot-save request when the policy says one is due; the slot then remembers it as the newest.
    fn snapshot_if_due(
        &self,
        stream_id: &StreamId,
        loaded: &mut LoadedAggregate<A>,
        env: &AggregateEnvironment,
    ) -> Effect<AggregateAction<A>> {
        if !self.config.snapshot_policy.is_due(loaded.snapshot_version, loaded.version) {
            return Effect::None;
        }
        let snapshot = match encode_snapshot(
            stream_id,
            &loaded.state,
            loaded.version,
            self.config.codec,
            env.clock.now(),
        ) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%stream_id, version = %loaded.version, %error, "could not encode a snapshot; skipping it");
                return Effect::None;
            }
        };
        loaded.snapshot_version = Some(loaded.version);
        Effect::event_store(EventStoreOperation::save_snapshot(snapshot, |result| {
            if let Err(error) = result {
                // A snapshot is a cache: loads replay more events until the next one is saved.
                tracing::warn!(error = %error_chain(&error), "could not save a snapshot");
            }
            None
        }))
    }
}

/// Whether an append at `expected` of `count` events ends at `version` (and so was written by this call).
fn reaches(expected: ExpectedVersion, count: usize, version: Version) -> bool {
    match expected {
        ExpectedVersion::Exact(at) => at.advanced_by(count as u64) == version,
        _ => true,
    }
}

/// The action a load's reply becomes: the folded aggregate, an ignored snapshot, or a failure.
fn loaded_action<A: Aggregate + DeserializeOwned>(
    request: LoadRequest,
    decoder: &EventDecoder<A::Event>,
    result: Result<LoadedHistory, EventStoreError>,
) -> AggregateAction<A> {
    let stream_id = request.stream_id.clone();
    let history = match result {
        Ok(history) => history,
        Err(error) if error.is_transient() => {
            return AggregateAction::Interrupted { stream_id, error: error_chain(&error), retry: Retry::Load(request) };
        }
        Err(error) => return AggregateAction::Failed { stream_id, error: AggregateFailure::Load(error_chain(&error)) },
    };
    match Replay::<A>::fold(&stream_id, decoder, &history) {
        Ok(Ok(replay)) => AggregateAction::Loaded { stream_id, loaded: LoadedAggregate::from(replay) },
        Ok(Err(ignored)) => AggregateAction::SnapshotIgnored { stream_id, ignored },
        Err(error) => AggregateAction::Failed { stream_id, error: AggregateFailure::Load(error_chain(&error)) },
    }
}

// Clone, PartialEq and Debug by hand: derives would ask them of `A` only, not of its command, event and
// error types.

impl<A: Aggregate> Default for Aggregates<A> {
    fn default() -> Self {
        Self { slots: BTreeMap::new() }
    }
}

impl<A: Aggregate> Default for AggregateSlot<A> {
    fn default() -> Self {
        Self { loaded: None, running: None, waiting: VecDeque::new() }
    }
}

impl<A: Aggregate + Clone> Clone for Aggregates<A>
where
    A::Command: Clone,
{
    fn clone(&self) -> Self {
        Self { slots: self.slots.clone() }
    }
}

impl<A: Aggregate + PartialEq> PartialEq for Aggregates<A>
where
    A::Command: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
    }
}

impl<A: Aggregate + fmt::Debug> fmt::Debug for Aggregates<A>
where
    A::Command: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.slots.iter().map(|(k, v)| (k.as_str(), v))).finish()
    }
}

impl<A: Aggregate + Clone> Clone for AggregateSlot<A>
where
    A::Command: Clone,
{
    fn clone(&self) -> Self {
        Self { loaded: self.loaded.clone(), running: self.running.clone(), waiting: self.waiting.clone() }
    }
}

impl<A: Aggregate + PartialEq> PartialEq for AggregateSlot<A>
where
    A::Command: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.loaded == other.loaded && self.running == other.running && self.waiting == other.waiting
    }
}

impl<A: Aggregate + fmt::Debug> fmt::Debug for AggregateSlot<A>
where
    A::Command: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregateSlot")
            .field("loaded", &self.loaded)
            .field("running", &self.running)
            .field("waiting", &self.waiting)
            .finish()
    }
}

impl<A: Clone> Clone for LoadedAggregate<A> {
    fn clone(&self) -> Self {
        Self { state: self.state.clone(), version: self.version, snapshot_version: self.snapshot_version }
    }
}

impl<A: PartialEq> PartialEq for LoadedAggregate<A> {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state && self.version == other.version && self.snapshot_version == other.snapshot_version
    }
}

impl<A: fmt::Debug> fmt::Debug for LoadedAggregate<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedAggregate")
            .field("state", &self.state)
            .field("version", &self.version)
            .field("snapshot_version", &self.snapshot_version)
            .finish()
    }
}

impl<A: Aggregate> Clone for RunningCommand<A>
where
    A::Command: Clone,
{
    fn clone(&self) -> Self {
        Self {
            command: self.command.clone(),
            metadata: self.metadata.clone(),
            command_id: self.command_id,
            attempts: self.attempts,
            retries: self.retries,
        }
    }
}

impl<A: Aggregate> PartialEq for RunningCommand<A>
where
    A::Command: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command
            && self.metadata == other.metadata
            && self.command_id == other.command_id
            && self.attempts == other.attempts
            && self.retries == other.retries
    }
}

impl<A: Aggregate> fmt::Debug for RunningCommand<A>
where
    A::Command: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningCommand")
            .field("command", &self.command)
            .field("metadata", &self.metadata)
            .field("command_id", &self.command_id)
            .field("attempts", &self.attempts)
            .field("retries", &self.retries)
            .finish()
    }
}

impl<A: Aggregate + Clone> Clone for AggregateAction<A>
where
    A::Command: Clone,
    A::Event: Clone,
    A::Error: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Command { stream_id, command, metadata, command_id } => Self::Command {
                stream_id: stream_id.clone(),
                command: command.clone(),
                metadata: metadata.clone(),
                command_id: *command_id,
            },
            Self::Interrupted { stream_id, error, retry } => {
                Self::Interrupted { stream_id: stream_id.clone(), error: error.clone(), retry: retry.clone() }
            }
            Self::AlreadyApplied { stream_id } => Self::AlreadyApplied { stream_id: stream_id.clone() },
            Self::Loaded { stream_id, loaded } => Self::Loaded { stream_id: stream_id.clone(), loaded: loaded.clone() },
            Self::SnapshotIgnored { stream_id, ignored } => {
                Self::SnapshotIgnored { stream_id: stream_id.clone(), ignored: ignored.clone() }
            }
            Self::Conflicted { stream_id, expected, actual } => {
                Self::Conflicted { stream_id: stream_id.clone(), expected: *expected, actual: *actual }
            }
            Self::Appended { stream_id, events, version } => {
                Self::Appended { stream_id: stream_id.clone(), events: events.clone(), version: *version }
            }
            Self::Rejected { stream_id, error } => {
                Self::Rejected { stream_id: stream_id.clone(), error: error.clone() }
            }
            Self::Failed { stream_id, error } => Self::Failed { stream_id: stream_id.clone(), error: error.clone() },
        }
    }
}

impl<A: Aggregate + PartialEq> PartialEq for AggregateAction<A>
where
    A::Command: PartialEq,
    A::Event: PartialEq,
    A::Error: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Command { stream_id: s1, command: c1, metadata: m1, command_id: k1 },
                Self::Command { stream_id: s2, command: c2, metadata: m2, command_id: k2 },
            ) => s1 == s2 && c1 == c2 && m1 == m2 && k1 == k2,
            (
                Self::Interrupted { stream_id: s1, error: e1, retry: r1 },
                Self::Interrupted { stream_id: s2, error: e2, retry: r2 },
            ) => s1 == s2 && e1 == e2 && r1 == r2,
            (Self::AlreadyApplied { stream_id: s1 }, Self::AlreadyApplied { stream_id: s2 }) => s1 == s2,
            (Self::Loaded { stream_id: s1, loaded: l1 }, Self::Loaded { stream_id: s2, loaded: l2 }) => {
                s1 == s2 && l1 == l2
            }
            (
                Self::SnapshotIgnored { stream_id: s1, ignored: i1 },
                Self::SnapshotIgnored { stream_id: s2, ignored: i2 },
            ) => s1 == s2 && i1 == i2,
            (
                Self::Conflicted { stream_id: s1, expected: e1, actual: a1 },
                Self::Conflicted { stream_id: s2, expected: e2, actual: a2 },
            ) => s1 == s2 && e1 == e2 && a1 == a2,
            (
                Self::Appended { stream_id: s1, events: e1, version: v1 },
                Self::Appended { stream_id: s2, events: e2, version: v2 },
            ) => s1 == s2 && e1 == e2 && v1 == v2,
            (Self::Rejected { stream_id: s1, error: e1 }, Self::Rejected { stream_id: s2, error: e2 }) => {
                s1 == s2 && e1 == e2
            }
            (Self::Failed { stream_id: s1, error: e1 }, Self::Failed { stream_id: s2, error: e2 }) => {
                s1 == s2 && e1 == e2
            }
            _ => false,
        }
    }
}

impl<A: Aggregate + fmt::Debug> fmt::Debug for AggregateAction<A>
where
    A::Command: fmt::Debug,
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command { stream_id, command, metadata, command_id } => f
                .debug_struct("Command")
                .field("stream_id", stream_id)
                .field("command", command)
                .field("metadata", metadata)
                .field("command_id", command_id)
                .finish(),
            Self::Interrupted { stream_id, error, retry } => f
                .debug_struct("Interrupted")
                .field("stream_id", stream_id)
                .field("error", error)
                .field("retry", retry)
                .finish(),
            Self::AlreadyApplied { stream_id } => {
                f.debug_struct("AlreadyApplied").field("stream_id", stream_id).finish()
            }
            Self::Loaded { stream_id, loaded } => {
                f.debug_struct("Loaded").field("stream_id", stream_id).field("loaded", loaded).finish()
            }
            Self::SnapshotIgnored { stream_id, ignored } => {
                f.debug_struct("SnapshotIgnored").field("stream_id", stream_id).field("ignored", ignored).finish()
            }
            Self::Conflicted { stream_id, expected, actual } => f
                .debug_struct("Conflicted")
                .field("stream_id", stream_id)
                .field("expected", expected)
                .field("actual", actual)
                .finish(),
            Self::Appended { stream_id, events, version } => f
                .debug_struct("Appended")
                .field("stream_id", stream_id)
                .field("events", events)
                .field("version", version)
                .finish(),
            Self::Rejected { stream_id, error } => {
                f.debug_struct("Rejected").field("stream_id", stream_id).field("error", error).finish()
            }
            Self::Failed { stream_id, error } => {
                f.debug_struct("Failed").field("stream_id", stream_id).field("error", error).finish()
            }
        }
    }
}

impl<A: Aggregate> Clone for Retry<A>
where
    A::Event: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Load(request) => Self::Load(request.clone()),
            Self::Append { expected, batch, events } => {
                Self::Append { expected: *expected, batch: batch.clone(), events: events.clone() }
            }
        }
    }
}

impl<A: Aggregate> PartialEq for Retry<A>
where
    A::Event: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Load(a), Self::Load(b)) => a == b,
            (
                Self::Append { expected: x1, batch: b1, events: e1 },
                Self::Append { expected: x2, batch: b2, events: e2 },
            ) => x1 == x2 && b1 == b2 && e1 == e2,
            _ => false,
        }
    }
}

impl<A: Aggregate> fmt::Debug for Retry<A>
where
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(request) => f.debug_tuple("Load").field(request).finish(),
            Self::Append { expected, batch, events } => f
                .debug_struct("Append")
                .field("expected", expected)
                .field("batch", batch)
                .field("events", events)
                .finish(),
        }
    }
}
