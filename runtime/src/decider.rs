//! [`Decider`]: [`Decision`]s run as a [`Reducer`], every step visible as an action and every event store
//! call a request value: a read by query, then an append under the condition that nothing the decision
//! read has changed.

use std::collections::BTreeMap;
use std::fmt;

use composable_rust_core::{
    AppendCondition, AtomicAppend, CodecId, Decision, Effect, Event, EventId, EventQuery, EventStoreError,
    EventStoreOperation, EventStoreRequest, ExpectedVersion, GlobalPosition, Metadata, NewEvent, QueryPage, Reducer,
    StreamId, error_chain,
};
use thiserror::Error;
use uuid::Uuid;

/// How a [`Decider`] reads, retries and encodes. Build it from [`DeciderConfig::default`].
///
/// ```
/// use composable_rust_runtime::DeciderConfig;
///
/// let config = DeciderConfig::default().with_max_conflict_retries(5).with_page_size(100);
/// assert_eq!(config.max_conflict_retries, 5);
/// assert_eq!(config.page_size, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeciderConfig {
    /// How often a decision reads the new matching events and decides again after its append condition
    /// failed, before it gives up with [`DecisionFailure::Conflict`]. Default: 3 (so at most 4 attempts).
    pub max_conflict_retries: u32,
    /// The codec new events are written with. Default: bincode. Stored events always decode with the
    /// codec recorded next to them.
    pub codec: CodecId,
    /// How many events one read by query asks for; a full page is followed by another read from its
    /// horizon. Default: 1000.
    pub page_size: usize,
}

impl DeciderConfig {
    /// Sets how many times a decision whose condition failed is decided again.
    #[must_use]
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// Sets the codec of new events.
    #[must_use]
    pub fn with_codec(mut self, codec: CodecId) -> Self {
        self.codec = codec;
        self
    }

    /// Sets how many events one read asks for (at least 1).
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }
}

impl Default for DeciderConfig {
    fn default() -> Self {
        Self { max_conflict_retries: 3, codec: CodecId::Bincode, page_size: 1000 }
    }
}

/// Runs [`Decision`]s of type `D` as a reducer over [`Decisions<D>`] with [`DecisionAction<D>`].
///
/// A decision goes through these steps, each one an action the reducer handles:
///
/// ```text
/// Decide ──► ReadQuery request (query, after: start) ──► Read ──(page full)──► ReadQuery after its horizon
///                                                          │
///                                         fold, then decide(state)
///                                                          │
///             Rejected ◄── domain error ──┬── no events ──► Appended { events: [] }
///                                         ▼
///          AppendAtomic request: the events grouped by stream (ExpectedVersion::Any), under the
///          condition "no event matching the query after the horizon read"
///                                         │
///  Conflicted ◄── a matching event came ──┼── stored ──► Appended
///  (read the new events, decide again,    └── failed ──► Failed
///   bounded by max_conflict_retries)
/// ```
///
/// Decisions run concurrently, even when their queries overlap: two enrolments in the same course are
/// not queued behind each other in the process, because the store checks each append's condition and
/// writes atomically; the one that loses reads the winner's event and decides again. This holds across
/// processes too, which an in-process queue could not give.
///
/// Events of a decision sent with a command id ([`DecisionAction::decide_once`]) get ids derived from it
/// ([`EventId::derived`]), as with `EventSourced`: sending it again after a lost reply does not store its
/// events twice.
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::{EventStore, Metadata, Reducer, reducer_fn};
/// use composable_rust_runtime::{Decider, DecisionAction, Decisions, Store};
/// # use composable_rust_core::{Decision, Event, EventQuery, InvalidInput, StreamId, Tag, TagSpec};
/// # const USERNAME: TagSpec = TagSpec::new("username", &["Registered.v1"]);
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
/// # struct Registered { user: u32, username: String }
/// # impl Event for Registered {
/// #     fn event_type(&self) -> &'static str { "Registered.v1" }
/// #     fn tags(&self) -> Vec<Tag> { vec![USERNAME.tag(&self.username)] }
/// # }
/// # #[derive(Debug, Clone, PartialEq, thiserror::Error)] #[error("taken")] struct Taken;
/// # #[derive(Debug, Clone, PartialEq)] struct Register { user: u32, username: String }
/// # impl Decision for Register {
/// #     type Event = Registered; type State = bool; type Error = Taken;
/// #     fn query(&self) -> EventQuery { USERNAME.query(&self.username) }
/// #     fn apply(&self, taken: &mut bool, _: &Registered) { *taken = true; }
/// #     fn decide(&self, taken: &bool) -> Result<Vec<Registered>, Taken> {
/// #         if *taken { Err(Taken) } else { Ok(vec![Registered { user: self.user, username: self.username.clone() }]) }
/// #     }
/// #     fn stream_id(&self, _: &Registered) -> Result<StreamId, InvalidInput> { StreamId::for_entity("user", self.user) }
/// # }
/// # let events: Arc<dyn EventStore> = Arc::new(composable_rust_testing::InMemoryEventStore::new());
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let decider = Decider::<Register>::new();
/// // A parent reducer keeps the final actions: what a program reports.
/// let reducer = reducer_fn(move |state: &mut (Decisions<Register>, Vec<DecisionAction<Register>>), action, env: &()| {
///     if let action @ (DecisionAction::Appended { .. } | DecisionAction::Rejected { .. }) = &action {
///         state.1.push(action.clone());
///     }
///     decider.reduce(&mut state.0, action, env)
/// });
/// let store = Store::builder(reducer, (Decisions::default(), Vec::new()), ()).event_store(events).build();
/// let ada = |user| Register { user, username: "ada".into() };
/// store.send(DecisionAction::decide(ada(1), Metadata::default())).finished().await;
/// store.send(DecisionAction::decide(ada(2), Metadata::default())).finished().await;
/// let outcomes = store.state(|state| state.1.clone());
/// assert!(matches!(outcomes[..], [DecisionAction::Appended { .. }, DecisionAction::Rejected { .. }]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Decider<D> {
    config: DeciderConfig,
    decision: std::marker::PhantomData<fn() -> D>,
}

impl<D: Decision> Decider<D> {
    /// The reducer with the default [`DeciderConfig`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(DeciderConfig::default())
    }

    /// The reducer with `config`.
    #[must_use]
    pub fn with_config(config: DeciderConfig) -> Self {
        Self { config, decision: std::marker::PhantomData }
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &DeciderConfig {
        &self.config
    }

    /// The read this reducer asks for when `decision` reads its events after `after`: the request a test
    /// expects (see the `TestStore`'s `receive_request`).
    #[must_use]
    pub fn read_request(&self, decision: &D, after: GlobalPosition) -> EventStoreRequest {
        EventStoreRequest::read_query(decision.query(), after, self.config.page_size)
    }
}

impl<D: Decision> Default for Decider<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> Clone for Decider<D> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone(), decision: std::marker::PhantomData }
    }
}

impl<D> fmt::Debug for Decider<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decider").field("decision", &std::any::type_name::<D>()).field("config", &self.config).finish()
    }
}

/// Which run of a decision an action is about: numbered in the order the decisions were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}", self.0)
    }
}

/// The state of [`Decider`]: the decisions being read, decided and appended.
pub struct Decisions<D: Decision> {
    next: u64,
    running: BTreeMap<RunId, RunningDecision<D>>,
}

impl<D: Decision> Decisions<D> {
    /// The run of `run`, while it has not ended.
    #[must_use]
    pub fn running(&self, run: RunId) -> Option<&RunningDecision<D>> {
        self.running.get(&run)
    }

    /// The run of `run`, while it has not ended, to change: for a test's expected state.
    pub fn running_mut(&mut self, run: RunId) -> Option<&mut RunningDecision<D>> {
        self.running.get_mut(&run)
    }

    /// Starts a run of `decision` under the next id, as [`DecisionAction::Decide`] does; a test describes
    /// the state after sending a decision with it.
    pub fn start(&mut self, decision: D, metadata: Metadata, command_id: Option<Uuid>) -> RunId {
        let run = RunId(self.next);
        self.next += 1;
        self.running.insert(run, RunningDecision::new(decision, metadata, command_id));
        run
    }

    /// Forgets a run, as its final action does: for a test's expected state.
    pub fn remove(&mut self, run: RunId) -> Option<RunningDecision<D>> {
        self.running.remove(&run)
    }

    /// The id the next decision sent gets.
    #[must_use]
    pub fn next_run(&self) -> RunId {
        RunId(self.next)
    }

    /// Whether a decision is running.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }
}

/// A decision being handled: what it has read so far, and how often it was decided.
pub struct RunningDecision<D: Decision> {
    /// The decision (the command).
    pub decision: D,
    /// The metadata every event it causes carries.
    pub metadata: Metadata,
    /// The idempotency key, if any (see [`DecisionAction::decide_once`]).
    pub command_id: Option<Uuid>,
    /// Its query, computed once: every read and the append condition use the same.
    pub query: EventQuery,
    /// The matching events read so far, folded.
    pub state: D::State,
    /// The position the reads are complete up to.
    pub horizon: GlobalPosition,
    /// How many times it was decided: 0 while reading, then 1, plus one per failed condition.
    pub attempts: u32,
}

impl<D: Decision> RunningDecision<D> {
    /// A decision that has read nothing yet.
    pub fn new(decision: D, metadata: Metadata, command_id: Option<Uuid>) -> Self {
        let query = decision.query();
        Self {
            decision,
            metadata,
            command_id,
            query,
            state: D::State::default(),
            horizon: GlobalPosition::START,
            attempts: 0,
        }
    }
}

/// The actions of [`Decider`]: a decision, and each step of handling it.
///
/// Only [`DecisionAction::Decide`] is sent by the application; the others are fed back by the reducer's
/// effects, and a parent reducer reacts to the final ones ([`DecisionAction::is_final`]), which carry the
/// decision.
pub enum DecisionAction<D: Decision> {
    /// Read, decide and append `decision`; the events it causes carry `metadata`.
    Decide {
        /// The decision.
        decision: D,
        /// Correlation, causation and actor of the events.
        metadata: Metadata,
        /// The idempotency key, if any.
        command_id: Option<Uuid>,
    },
    /// A page of the matching events was read.
    Read {
        /// The run.
        run: RunId,
        /// The events, decoded, in position order.
        events: Vec<D::Event>,
        /// The position the read is complete up to.
        horizon: GlobalPosition,
        /// Whether the page was full, so that more events may follow: the reducer reads on.
        more: bool,
    },
    /// The append's condition failed: an event matching the query was appended after `after`, at
    /// `position`. The reducer reads the new events and decides again.
    Conflicted {
        /// The run.
        run: RunId,
        /// The horizon the decision had read up to.
        after: GlobalPosition,
        /// The first matching position after it.
        position: GlobalPosition,
    },
    /// The events were appended (none when the decision changed nothing; then nothing was written).
    Appended {
        /// The run.
        run: RunId,
        /// The decision.
        decision: D,
        /// The events, in the order decided.
        events: Vec<D::Event>,
    },
    /// A decision with a command id had already been applied; nothing was written now.
    AlreadyApplied {
        /// The run.
        run: RunId,
        /// The decision.
        decision: D,
    },
    /// The decision refused the command; nothing was written.
    Rejected {
        /// The run.
        run: RunId,
        /// The decision.
        decision: D,
        /// Why.
        error: D::Error,
    },
    /// The decision could not be handled; nothing was written.
    Failed {
        /// The run.
        run: RunId,
        /// The decision.
        decision: D,
        /// What went wrong.
        error: DecisionFailure,
    },
}

impl<D: Decision> DecisionAction<D> {
    /// Handle `decision`; its events carry `metadata`.
    pub fn decide(decision: D, metadata: Metadata) -> Self {
        Self::Decide { decision, metadata, command_id: None }
    }

    /// Handle `decision` at most once for `command_id`: its events get ids derived from the key
    /// ([`EventId::derived`]), so sending it again ends in [`DecisionAction::Appended`] with the stored
    /// result or [`DecisionAction::AlreadyApplied`], never in a second copy of its events.
    pub fn decide_once(decision: D, command_id: Uuid, metadata: Metadata) -> Self {
        Self::Decide { decision, metadata, command_id: Some(command_id) }
    }

    /// Whether this step ends its run: `Appended`, `AlreadyApplied`, `Rejected` or `Failed`.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Appended { .. } | Self::AlreadyApplied { .. } | Self::Rejected { .. } | Self::Failed { .. }
        )
    }
}

/// Why [`Decider`] could not handle a decision. Comparable, so tests can assert it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecisionFailure {
    /// Every attempt's condition failed because other writers kept appending matching events.
    #[error(
        "gave up after {attempts} attempts because other writers kept appending events the decision depends on \
         (the last at position {position}); retry later or raise max_conflict_retries"
    )]
    Conflict {
        /// How many times the decision was decided.
        attempts: u32,
        /// The position of the last conflicting event.
        position: GlobalPosition,
    },
    /// Reading the matching events failed (the store failed, or an event does not decode).
    #[error("could not read the events the decision depends on: {0}")]
    Read(String),
    /// Encoding or appending the events failed; nothing was written.
    #[error("could not append the decided events: {0}")]
    Append(String),
}

impl<D> Reducer for Decider<D>
where
    D: Decision + Clone,
{
    type State = Decisions<D>;
    type Action = DecisionAction<D>;
    type Environment = ();

    fn reduce(&self, state: &mut Decisions<D>, action: DecisionAction<D>, _env: &()) -> Effect<Self::Action> {
        match action {
            DecisionAction::Decide { decision, metadata, command_id } => {
                let run = state.start(decision, metadata, command_id);
                match state.running.get(&run) {
                    Some(running) => self.read(run, running),
                    None => Effect::None,
                }
            }
            DecisionAction::Read { run, events, horizon, more } => {
                let Some(running) = state.running.get_mut(&run) else { return Effect::None };
                for event in &events {
                    running.decision.apply(&mut running.state, event);
                }
                running.horizon = horizon;
                if more { self.read(run, running) } else { self.decide(run, running) }
            }
            DecisionAction::Conflicted { run, position, .. } => {
                let Some(running) = state.running.get(&run) else { return Effect::None };
                if running.attempts <= self.config.max_conflict_retries {
                    // The state holds everything up to the horizon: reading on from there is a full re-read.
                    self.read(run, running)
                } else {
                    let error = DecisionFailure::Conflict { attempts: running.attempts, position };
                    Effect::send(DecisionAction::Failed { run, decision: running.decision.clone(), error })
                }
            }
            DecisionAction::Appended { run, .. }
            | DecisionAction::AlreadyApplied { run, .. }
            | DecisionAction::Rejected { run, .. }
            | DecisionAction::Failed { run, .. } => {
                state.running.remove(&run);
                Effect::None
            }
        }
    }
}

impl<D> Decider<D>
where
    D: Decision + Clone,
{
    /// Reads the next page of matching events after what `running` has read.
    fn read(&self, run: RunId, running: &RunningDecision<D>) -> Effect<DecisionAction<D>> {
        let decision = running.decision.clone();
        let limit = self.config.page_size;
        let operation = EventStoreOperation::read_query(running.query.clone(), running.horizon, limit, move |result| {
            read_action(run, decision, limit, result)
        });
        Effect::event_store(operation)
    }

    /// Decides on what was read and appends the events under the read's condition.
    fn decide(&self, run: RunId, running: &mut RunningDecision<D>) -> Effect<DecisionAction<D>> {
        running.attempts += 1;
        let decision = running.decision.clone();
        let events = match running.decision.decide(&running.state) {
            Ok(events) => events,
            Err(error) => return Effect::send(DecisionAction::Rejected { run, decision, error }),
        };
        if events.is_empty() {
            return Effect::send(DecisionAction::Appended { run, decision, events });
        }
        let append = match self.atomic_append(running, &events) {
            Ok(append) => append,
            Err(error) => return Effect::send(DecisionAction::Failed { run, decision, error }),
        };
        let keyed = running.command_id.is_some();
        let operation = EventStoreOperation::append_atomic(append, move |result| match result {
            Ok(_) => DecisionAction::Appended { run, decision, events },
            Err(EventStoreError::ConditionFailed { after, position }) => {
                DecisionAction::Conflicted { run, after, position }
            }
            Err(EventStoreError::EventIdInUse { .. }) if keyed => DecisionAction::AlreadyApplied { run, decision },
            Err(error) => DecisionAction::Failed { run, decision, error: DecisionFailure::Append(error_chain(&error)) },
        });
        Effect::event_store(operation)
    }

    /// The events encoded and grouped by stream (streams in the order their first event was decided),
    /// under the condition that nothing matching the query follows the horizon.
    fn atomic_append(
        &self,
        running: &RunningDecision<D>,
        events: &[D::Event],
    ) -> Result<AtomicAppend, DecisionFailure> {
        let mut streams: Vec<(StreamId, Vec<NewEvent>)> = Vec::new();
        for (index, event) in (0_u32..).zip(events) {
            let stream_id = running.decision.stream_id(event).map_err(|e| DecisionFailure::Append(e.to_string()))?;
            let mut new = event
                .to_new_event(self.config.codec, running.metadata.clone())
                .map_err(|e| DecisionFailure::Append(error_chain(&e)))?;
            if let Some(command_id) = running.command_id {
                new.id = EventId::derived(command_id, index);
            }
            match streams.iter_mut().find(|(id, _)| *id == stream_id) {
                Some((_, batch)) => batch.push(new),
                None => streams.push((stream_id, vec![new])),
            }
        }
        let condition = AppendCondition::new(running.query.clone(), running.horizon);
        Ok(streams
            .into_iter()
            .fold(AtomicAppend::new(), |append, (stream_id, batch)| {
                append.stream(stream_id, ExpectedVersion::Any, batch)
            })
            .condition(condition))
    }
}

/// The action a read's reply becomes: the decoded page, or a failure.
fn read_action<D: Decision>(
    run: RunId,
    decision: D,
    limit: usize,
    result: Result<QueryPage, EventStoreError>,
) -> DecisionAction<D> {
    let page = match result {
        Ok(page) => page,
        Err(error) => {
            return DecisionAction::Failed { run, decision, error: DecisionFailure::Read(error_chain(&error)) };
        }
    };
    let more = page.events.len() >= limit;
    match page.events.iter().map(D::Event::from_recorded).collect::<Result<Vec<_>, _>>() {
        Ok(events) => DecisionAction::Read { run, events, horizon: page.horizon, more },
        Err(error) => DecisionAction::Failed { run, decision, error: DecisionFailure::Read(error_chain(&error)) },
    }
}

// Clone, PartialEq and Debug by hand: derives would ask them of `D` only, not of its state, event and
// error types.

impl<D: Decision> Default for Decisions<D> {
    fn default() -> Self {
        Self { next: 0, running: BTreeMap::new() }
    }
}

impl<D: Decision + Clone> Clone for Decisions<D>
where
    D::State: Clone,
{
    fn clone(&self) -> Self {
        Self { next: self.next, running: self.running.clone() }
    }
}

impl<D: Decision + PartialEq> PartialEq for Decisions<D>
where
    D::State: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.next == other.next && self.running == other.running
    }
}

impl<D: Decision + fmt::Debug> fmt::Debug for Decisions<D>
where
    D::State: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decisions").field("next", &self.next).field("running", &self.running).finish()
    }
}

impl<D: Decision + Clone> Clone for RunningDecision<D>
where
    D::State: Clone,
{
    fn clone(&self) -> Self {
        Self {
            decision: self.decision.clone(),
            metadata: self.metadata.clone(),
            command_id: self.command_id,
            query: self.query.clone(),
            state: self.state.clone(),
            horizon: self.horizon,
            attempts: self.attempts,
        }
    }
}

impl<D: Decision + PartialEq> PartialEq for RunningDecision<D>
where
    D::State: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.decision == other.decision
            && self.metadata == other.metadata
            && self.command_id == other.command_id
            && self.query == other.query
            && self.state == other.state
            && self.horizon == other.horizon
            && self.attempts == other.attempts
    }
}

impl<D: Decision + fmt::Debug> fmt::Debug for RunningDecision<D>
where
    D::State: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningDecision")
            .field("decision", &self.decision)
            .field("metadata", &self.metadata)
            .field("command_id", &self.command_id)
            .field("query", &self.query)
            .field("state", &self.state)
            .field("horizon", &self.horizon)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl<D: Decision + Clone> Clone for DecisionAction<D>
where
    D::Event: Clone,
    D::Error: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Decide { decision, metadata, command_id } => {
                Self::Decide { decision: decision.clone(), metadata: metadata.clone(), command_id: *command_id }
            }
            Self::Read { run, events, horizon, more } => {
                Self::Read { run: *run, events: events.clone(), horizon: *horizon, more: *more }
            }
            Self::Conflicted { run, after, position } => {
                Self::Conflicted { run: *run, after: *after, position: *position }
            }
            Self::Appended { run, decision, events } => {
                Self::Appended { run: *run, decision: decision.clone(), events: events.clone() }
            }
            Self::AlreadyApplied { run, decision } => Self::AlreadyApplied { run: *run, decision: decision.clone() },
            Self::Rejected { run, decision, error } => {
                Self::Rejected { run: *run, decision: decision.clone(), error: error.clone() }
            }
            Self::Failed { run, decision, error } => {
                Self::Failed { run: *run, decision: decision.clone(), error: error.clone() }
            }
        }
    }
}

impl<D: Decision + PartialEq> PartialEq for DecisionAction<D>
where
    D::Event: PartialEq,
    D::Error: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Decide { decision: d1, metadata: m1, command_id: k1 },
                Self::Decide { decision: d2, metadata: m2, command_id: k2 },
            ) => d1 == d2 && m1 == m2 && k1 == k2,
            (
                Self::Read { run: r1, events: e1, horizon: h1, more: m1 },
                Self::Read { run: r2, events: e2, horizon: h2, more: m2 },
            ) => r1 == r2 && e1 == e2 && h1 == h2 && m1 == m2,
            (
                Self::Conflicted { run: r1, after: a1, position: p1 },
                Self::Conflicted { run: r2, after: a2, position: p2 },
            ) => r1 == r2 && a1 == a2 && p1 == p2,
            (
                Self::Appended { run: r1, decision: d1, events: e1 },
                Self::Appended { run: r2, decision: d2, events: e2 },
            ) => r1 == r2 && d1 == d2 && e1 == e2,
            (Self::AlreadyApplied { run: r1, decision: d1 }, Self::AlreadyApplied { run: r2, decision: d2 }) => {
                r1 == r2 && d1 == d2
            }
            (
                Self::Rejected { run: r1, decision: d1, error: e1 },
                Self::Rejected { run: r2, decision: d2, error: e2 },
            ) => r1 == r2 && d1 == d2 && e1 == e2,
            (Self::Failed { run: r1, decision: d1, error: e1 }, Self::Failed { run: r2, decision: d2, error: e2 }) => {
                r1 == r2 && d1 == d2 && e1 == e2
            }
            _ => false,
        }
    }
}

impl<D: Decision + fmt::Debug> fmt::Debug for DecisionAction<D>
where
    D::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decide { decision, metadata, command_id } => f
                .debug_struct("Decide")
                .field("decision", decision)
                .field("metadata", metadata)
                .field("command_id", command_id)
                .finish(),
            Self::Read { run, events, horizon, more } => f
                .debug_struct("Read")
                .field("run", run)
                .field("events", events)
                .field("horizon", horizon)
                .field("more", more)
                .finish(),
            Self::Conflicted { run, after, position } => f
                .debug_struct("Conflicted")
                .field("run", run)
                .field("after", after)
                .field("position", position)
                .finish(),
            Self::Appended { run, decision, events } => f
                .debug_struct("Appended")
                .field("run", run)
                .field("decision", decision)
                .field("events", events)
                .finish(),
            Self::AlreadyApplied { run, decision } => {
                f.debug_struct("AlreadyApplied").field("run", run).field("decision", decision).finish()
            }
            Self::Rejected { run, decision, error } => {
                f.debug_struct("Rejected").field("run", run).field("decision", decision).field("error", error).finish()
            }
            Self::Failed { run, decision, error } => {
                f.debug_struct("Failed").field("run", run).field("decision", decision).field("error", error).finish()
            }
        }
    }
}
