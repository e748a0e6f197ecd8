//! [`Repository`]: loads, changes and snapshots event-sourced [`Aggregate`]s through an [`EventStore`].
//!
//! - Load: the latest snapshot (if present, decodable and of the current schema version) plus a replay
//!   of the events after it, streamed from the store and decoded through the configured upcasters.
//! - Execute a command: load, [`Aggregate::decide`], append with `ExpectedVersion::Exact(loaded
//!   version)`. On a concurrency conflict, reload and decide again, up to
//!   [`RepositoryConfig::max_conflict_retries`] times. A domain error appends nothing.
//! - Snapshot: after a successful append, when the [`SnapshotPolicy`] says so, the new state is
//!   encoded and saved in a background task; the caller's result never waits for it and a failed write
//!   is only logged. [`Repository::flush_snapshots`] waits for them (tests, shutdown, short-lived CLIs).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use composable_rust_core::{
    Aggregate, AppendResult, CodecId, EventDecodeError, EventDecoder, EventId, EventStore, EventStoreError,
    ExpectedVersion, LoadRequest, LoadUntil, Metadata, NewEvent, Snapshot, StreamId, StreamRange, Upcasters, Version,
    error_chain, load_history,
};
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::replay::{Replay, encode_events, encode_snapshot};
use crate::snapshot_policy::SnapshotPolicy;

/// How a [`Repository`] treats one aggregate type. Build it from [`RepositoryConfig::default`].
///
/// ```
/// use composable_rust_core::CodecId;
/// use composable_rust_runtime::{RepositoryConfig, SnapshotPolicy};
///
/// let config = RepositoryConfig::default()
///     .with_snapshot_policy(SnapshotPolicy::every(500))
///     .with_max_conflict_retries(5)
///     .with_codec(CodecId::Json);
/// assert_eq!(config.max_conflict_retries, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepositoryConfig {
    /// When to save snapshots. Default: every 100 events.
    pub snapshot_policy: SnapshotPolicy,
    /// How often a command is reloaded and decided again after a concurrency conflict before the
    /// conflict is returned. Default: 3 (so at most 4 attempts).
    pub max_conflict_retries: u32,
    /// The codec new events and snapshots are written with. Default: bincode. Stored data always
    /// decodes with the codec recorded next to it, so changing this needs no migration.
    pub codec: CodecId,
    /// How often a load or an append that failed because the store was unavailable
    /// ([`EventStoreError::is_transient`]) is retried before the command gives up. Default: 8, about 7 s of
    /// waiting in all, enough for a server restart. An append is retried with the same event ids, so one
    /// that did land the first time is not written again.
    pub transient_retries: u32,
    /// The wait before the first retry of a transient failure; it doubles with each retry, up to two
    /// seconds. Default: 50 ms.
    pub retry_backoff: Duration,
}

impl RepositoryConfig {
    /// Sets the snapshot policy.
    #[must_use]
    pub fn with_snapshot_policy(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshot_policy = policy;
        self
    }

    /// Sets how many times a conflicting command is retried.
    #[must_use]
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// Sets the codec for new events and snapshots.
    #[must_use]
    pub fn with_codec(mut self, codec: CodecId) -> Self {
        self.codec = codec;
        self
    }

    /// Sets how many times a transient store failure is retried, and the first wait.
    #[must_use]
    pub fn with_transient_retries(mut self, retries: u32, first_backoff: Duration) -> Self {
        self.transient_retries = retries;
        self.retry_backoff = first_backoff;
        self
    }

    /// The wait before retry number `retry` (from 1) of a transient failure.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1_u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.retry_backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self {
            snapshot_policy: SnapshotPolicy::default(),
            max_conflict_retries: 3,
            codec: CodecId::Bincode,
            transient_retries: 8,
            retry_backoff: Duration::from_millis(50),
        }
    }
}

/// What a load did: whether a snapshot was used, how many events were replayed and how long it took.
///
/// Its `Display` is a one-line summary for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadMetrics {
    /// The version of the snapshot the load started from; `None` when it replayed from the start.
    pub snapshot_version: Option<Version>,
    /// A snapshot that existed but was not used, and why.
    pub ignored_snapshot: Option<IgnoredSnapshot>,
    /// How many events were decoded and applied.
    pub events_replayed: u64,
    /// Wall time of the whole load (snapshot read, decode and replay).
    pub elapsed: Duration,
}

impl fmt::Display for LoadMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.snapshot_version {
            Some(version) => write!(f, "snapshot at version {version}")?,
            None => f.write_str("no snapshot")?,
        }
        if let Some(ignored) = &self.ignored_snapshot {
            write!(f, " ({ignored})")?;
        }
        write!(f, ", {} events replayed in {:?}", self.events_replayed, self.elapsed)
    }
}

/// A stored snapshot that a load did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSnapshot {
    /// The stream version the snapshot was taken at.
    pub version: Version,
    /// Why it was ignored.
    pub reason: SnapshotIgnoreReason,
}

impl fmt::Display for IgnoredSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignored the snapshot at version {}: {}", self.version, self.reason)
    }
}

/// Why a snapshot was not used; the aggregate is rebuilt by full replay instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotIgnoreReason {
    /// It was written for another state schema version than [`Aggregate::SNAPSHOT_SCHEMA_VERSION`].
    SchemaVersion {
        /// The schema version stored with the snapshot.
        stored: u32,
        /// The aggregate's current schema version.
        current: u32,
    },
    /// Its payload does not decode as the state type.
    Undecodable(String),
}

impl fmt::Display for SnapshotIgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SchemaVersion { stored, current } => {
                write!(f, "state schema version {stored} is not the current {current}")
            }
            Self::Undecodable(error) => write!(f, "it does not decode: {error}"),
        }
    }
}

/// An aggregate as loaded: its state, the stream version it reflects and how the load went.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after every event up to `version`.
    pub state: A,
    /// The stream's version at load time ([`Version::INITIAL`] for an aggregate with no events).
    pub version: Version,
    /// Snapshot use, events replayed, time taken.
    pub metrics: LoadMetrics,
}

/// The outcome of a command that the aggregate accepted.
pub struct Executed<A: Aggregate> {
    /// The state after the new events.
    pub state: A,
    /// The stream's version after the append (unchanged when `events` is empty).
    pub version: Version,
    /// The events appended, in order; empty when the command changed nothing (and nothing was written).
    pub events: Vec<A::Event>,
    /// How many times the command was decided: 1, plus one per concurrency conflict.
    pub attempts: u32,
    /// The version a background snapshot write was started for, if the policy asked for one.
    pub snapshot_started: Option<Version>,
    /// How the last load (the one the command was decided on) went.
    pub load_metrics: LoadMetrics,
    /// The command was given an id ([`Repository::execute_once`]) and had already been applied: `events`
    /// are the events it appended then, and nothing was written now.
    pub already_applied: bool,
}

impl<A> fmt::Debug for Executed<A>
where
    A: Aggregate + fmt::Debug,
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executed")
            .field("state", &self.state)
            .field("version", &self.version)
            .field("events", &self.events)
            .field("attempts", &self.attempts)
            .field("snapshot_started", &self.snapshot_started)
            .field("load_metrics", &self.load_metrics)
            .field("already_applied", &self.already_applied)
            .finish()
    }
}

impl<A> Clone for Executed<A>
where
    A: Aggregate + Clone,
    A::Event: Clone,
{
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            version: self.version,
            events: self.events.clone(),
            attempts: self.attempts,
            snapshot_started: self.snapshot_started,
            load_metrics: self.load_metrics.clone(),
            already_applied: self.already_applied,
        }
    }
}

/// Loading an aggregate failed.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// A stored event could not be turned into the aggregate's event type (unknown type, bad payload,
    /// broken upcaster chain).
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// The store returned versions that are not consecutive.
    #[error(
        "stream {stream_id} jumps from version {after} to {found} while loading: the event store broke the \
         dense-version contract; check the backend"
    )]
    VersionGap {
        /// The stream being loaded.
        stream_id: StreamId,
        /// The last version applied.
        after: Version,
        /// The version that came next.
        found: Version,
    },
}

/// Executing a command failed: the aggregate refused it, other writers kept winning, or storage failed.
#[derive(Debug, Error)]
pub enum RepositoryError<E> {
    /// The aggregate rejected the command; nothing was appended.
    #[error(transparent)]
    Domain(E),
    /// Every attempt conflicted with a concurrent writer; nothing was appended.
    #[error(
        "command on stream {stream_id} gave up after {attempts} attempts because other writers kept appending \
         (last attempt expected {expected}, the stream was at version {actual}); retry later or raise \
         max_conflict_retries"
    )]
    Conflict {
        /// The contended stream.
        stream_id: StreamId,
        /// What the last attempt expected.
        expected: ExpectedVersion,
        /// The stream's version the last attempt found.
        actual: Version,
        /// How many times the command was decided and appended.
        attempts: u32,
    },
    /// The event store stayed unavailable through every retry; the command may or may not have been
    /// applied.
    #[error(
        "command on stream {stream_id} gave up after {attempts} attempts because the event store stayed \
         unavailable; it may or may not have been applied\nretry it later with Repository::execute_once and the \
         same command id to apply it at most once"
    )]
    Unavailable {
        /// The stream of the command.
        stream_id: StreamId,
        /// How many times the failing call was made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: EventStoreError,
    },
    /// Loading the aggregate failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Encoding or appending the new events failed.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

impl<E> RepositoryError<E> {
    /// Whether the command failed only because other writers kept winning (retrying later may succeed).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// The domain error, when the aggregate rejected the command.
    #[must_use]
    pub fn domain(&self) -> Option<&E> {
        match self {
            Self::Domain(error) => Some(error),
            _ => None,
        }
    }
}

/// Settings shared by every clone of a repository and by the effects it builds.
struct Shared<A: Aggregate> {
    config: RepositoryConfig,
    decoder: EventDecoder<A::Event>,
}

/// Background snapshot writes of a repository and its clones.
#[derive(Default)]
struct PendingState {
    tasks: Vec<JoinHandle<()>>,
    /// The version of the newest snapshot being written per stream, until its write finishes. The policy
    /// counts from it, so commands that arrive before the write lands do not start more snapshots.
    in_flight: HashMap<StreamId, Version>,
}

#[derive(Clone, Default)]
struct PendingSnapshots(Arc<Mutex<PendingState>>);

impl PendingSnapshots {
    fn lock(&self) -> MutexGuard<'_, PendingState> {
        // The state stays consistent even if a holder panicked: every update is a single insert or remove.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_flight(&self, stream_id: &StreamId) -> Option<Version> {
        self.lock().in_flight.get(stream_id).copied()
    }

    fn finished(&self, stream_id: &StreamId, version: Version) {
        let mut state = self.lock();
        if state.in_flight.get(stream_id) == Some(&version) {
            state.in_flight.remove(stream_id);
        }
    }
}

/// Loads aggregates of type `A`, executes their commands and snapshots them. Cheap to clone.
///
/// The state is stored in snapshots with serde, hence the `Serialize + DeserializeOwned` bound; turn
/// snapshots off with [`SnapshotPolicy::Never`] if the state should never be persisted.
///
/// See `docs/aggregates.md` for a guide; the crate-level example shows a full round trip.
pub struct Repository<A: Aggregate> {
    store: Arc<dyn EventStore>,
    shared: Arc<Shared<A>>,
    pending: PendingSnapshots,
}

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), shared: Arc::clone(&self.shared), pending: self.pending.clone() }
    }
}

impl<A: Aggregate> fmt::Debug for Repository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::CATEGORY)
            .field("store", &self.store)
            .field("config", &self.shared.config)
            .field("decoder", &self.shared.decoder)
            .finish_non_exhaustive()
    }
}

impl<A> Repository<A>
where
    A: Aggregate + Serialize + DeserializeOwned,
{
    /// A repository over `store` with the default [`RepositoryConfig`] and no upcasters.
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self::with_config(store, RepositoryConfig::default())
    }

    /// A repository over `store` with `config` and no upcasters.
    #[must_use]
    pub fn with_config(store: Arc<dyn EventStore>, config: RepositoryConfig) -> Self {
        let shared = Shared { config, decoder: EventDecoder::for_aggregate::<A>() };
        Self { store, shared: Arc::new(shared), pending: PendingSnapshots::default() }
    }

    /// Uses `upcasters` for stored events of older types (see [`Upcasters`]).
    #[must_use]
    pub fn with_upcasters(self, upcasters: Upcasters<A::Event>) -> Self {
        let shared = Shared {
            config: self.shared.config.clone(),
            decoder: EventDecoder::for_aggregate::<A>().with_upcasters(upcasters),
        };
        Self { store: self.store, shared: Arc::new(shared), pending: self.pending }
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &RepositoryConfig {
        &self.shared.config
    }

    /// The event store this repository reads and writes.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Loads the aggregate in `stream_id`: latest usable snapshot plus the events after it.
    ///
    /// An aggregate with no events loads as `A::default()` at [`Version::INITIAL`]. A snapshot that does
    /// not decode or has another schema version is ignored with a warning (and reported in
    /// [`LoadMetrics::ignored_snapshot`]); the state is then rebuilt from every event.
    ///
    /// A load that fails because the store is unavailable is retried with backoff
    /// ([`RepositoryConfig::transient_retries`]).
    ///
    /// # Errors
    /// [`LoadError::Store`] when the store fails (after the retries, when it stays unavailable),
    /// [`LoadError::Decode`] for an event that cannot be decoded or upcast (including an unknown event
    /// type), [`LoadError::VersionGap`] for a store that breaks the dense-version contract.
    pub async fn load(&self, stream_id: &StreamId) -> Result<Loaded<A>, LoadError> {
        self.retrying_load(|| self.load_from(stream_id, true)).await
    }

    /// Loads the aggregate by replaying every event, ignoring any snapshot (to verify or rebuild one).
    ///
    /// # Errors
    /// As [`Repository::load`].
    pub async fn load_without_snapshot(&self, stream_id: &StreamId) -> Result<Loaded<A>, LoadError> {
        self.retrying_load(|| self.load_from(stream_id, false)).await
    }

    /// Runs a load until it succeeds, fails for good, or the store stays unavailable through the retries.
    async fn retrying_load<F, Fut>(&self, load: F) -> Result<Loaded<A>, LoadError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Loaded<A>, LoadError>>,
    {
        fn store_error(error: &LoadError) -> Option<&EventStoreError> {
            match error {
                LoadError::Store(error) => Some(error),
                _ => None,
            }
        }
        with_transient_retries(&self.shared.config, store_error, load).await
    }

    async fn load_from(&self, stream_id: &StreamId, use_snapshot: bool) -> Result<Loaded<A>, LoadError> {
        let started = Instant::now();
        let mut replay = Replay::new(stream_id, &self.shared.decoder);
        if use_snapshot {
            if let Some(snapshot) = self.store.load_snapshot(stream_id).await? {
                replay.start_from(&snapshot);
            }
        }
        let mut events = self.store.read_stream(stream_id, StreamRange::after(replay.version));
        while let Some(recorded) = events.try_next().await? {
            replay.apply(&recorded)?;
        }
        Ok(Self::loaded(stream_id, replay, started))
    }

    /// Loads the aggregate as it was at a point in its past: after the event with a given version
    /// ([`LoadUntil::Version`]), or after the events recorded up to a time ([`LoadUntil::RecordedAt`]).
    /// [`LoadUntil::End`] loads the current state, like [`Repository::load`].
    ///
    /// A snapshot is used when it lies at or before the version asked for; loads as of a time replay from
    /// the first event. This is the same request a reducer makes with
    /// [`EventStoreOperation::load`](composable_rust_core::EventStoreOperation::load).
    ///
    /// # Errors
    /// As [`Repository::load`].
    pub async fn load_as_of(&self, stream_id: &StreamId, until: LoadUntil) -> Result<Loaded<A>, LoadError> {
        let started = Instant::now();
        let mut request = LoadRequest::latest(stream_id.clone()).until(until);
        let mut ignored = None;
        loop {
            let history = load_history(self.store.as_ref(), request.clone()).await?;
            match Replay::fold(stream_id, &self.shared.decoder, &history)? {
                Ok(mut replay) => {
                    replay.ignored_snapshot = ignored;
                    return Ok(Self::loaded(stream_id, replay, started));
                }
                Err(snapshot) => {
                    ignored = Some(snapshot);
                    request = request.without_snapshot();
                }
            }
        }
    }

    fn loaded(stream_id: &StreamId, replay: Replay<'_, A>, started: Instant) -> Loaded<A> {
        let metrics = LoadMetrics {
            snapshot_version: replay.snapshot_version,
            ignored_snapshot: replay.ignored_snapshot,
            events_replayed: replay.replayed,
            elapsed: started.elapsed(),
        };
        tracing::debug!(stream_id = %stream_id, version = %replay.version, %metrics, "loaded aggregate");
        Loaded { state: replay.state, version: replay.version, metrics }
    }

    /// Executes `command` against the aggregate in `stream_id` and appends the events it decides.
    ///
    /// Loads the aggregate, calls [`Aggregate::decide`], and appends the events (with `metadata`) at
    /// `ExpectedVersion::Exact` of the loaded version. When another writer appended in between, the
    /// aggregate is reloaded and the command decided again, up to
    /// [`RepositoryConfig::max_conflict_retries`] times. A load or append that fails because the store is
    /// unavailable is retried ([`RepositoryConfig::transient_retries`], with backoff); an append is retried
    /// with the same event ids, so it is stored once even if the failed attempt did commit. A command that
    /// decides no events writes nothing. When the [`SnapshotPolicy`] says so, a snapshot of the new state is
    /// saved in the background.
    ///
    /// A caller that retries the whole command itself (after [`RepositoryError::Unavailable`], or after its
    /// own process restarted) should use [`Repository::execute_once`], which applies it at most once.
    ///
    /// # Errors
    /// [`RepositoryError::Domain`] when the aggregate rejects the command (nothing is appended),
    /// [`RepositoryError::Conflict`] when every attempt conflicted, [`RepositoryError::Unavailable`] when
    /// the store stayed unavailable, [`RepositoryError::Load`] and [`RepositoryError::Store`] when loading,
    /// encoding or appending fails otherwise.
    pub async fn execute(
        &self,
        stream_id: &StreamId,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.run_command(stream_id, None, command, metadata).await
    }

    /// Executes `command` at most once for `command_id`, its idempotency key: a second call with the same
    /// id (a retry after a lost reply, a duplicate delivery, the same command sent twice at once) writes
    /// nothing and returns the events the first one appended, with [`Executed::already_applied`] set.
    ///
    /// The key is stored with the events, as their ids: the command's events get ids derived from it
    /// ([`EventId::derived`]), so no separate table can drift from the events. Before deciding, the
    /// repository looks up the id of the command's first event. A command that decides no events leaves
    /// no trace, and is simply decided again.
    ///
    /// # Errors
    /// As [`Repository::execute`]; [`RepositoryError::Store`] with [`EventStoreError::EventIdInUse`] when
    /// `command_id` was already used for a command on another stream.
    pub async fn execute_once(
        &self,
        stream_id: &StreamId,
        command_id: Uuid,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.run_command(stream_id, Some(command_id), command, metadata).await
    }

    async fn run_command(
        &self,
        stream_id: &StreamId,
        command_id: Option<Uuid>,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let config = &self.shared.config;
        let max_attempts = config.max_conflict_retries.saturating_add(1);
        let mut attempts = 0_u32;
        loop {
            attempts += 1;
            if let Some(command_id) = command_id {
                if let Some(done) = self.already_applied(stream_id, command_id).await? {
                    return Ok(done);
                }
            }
            // Read before loading: a snapshot write that finishes during the load is then either still
            // listed here or already visible to the load, never neither.
            let in_flight = self.pending.in_flight(stream_id);
            let Loaded { mut state, version: loaded, metrics } = self.load_retrying(stream_id).await?;
            let events = state.decide(&command).map_err(RepositoryError::Domain)?;
            if events.is_empty() {
                return Ok(Executed {
                    state,
                    version: loaded,
                    events,
                    attempts,
                    snapshot_started: None,
                    load_metrics: metrics,
                    already_applied: false,
                });
            }
            let mut batch = encode_events(&events, config.codec, &metadata)?;
            if let Some(command_id) = command_id {
                for (index, event) in (0_u32..).zip(batch.iter_mut()) {
                    event.id = EventId::derived(command_id, index);
                }
            }
            match self.append_retrying(stream_id, ExpectedVersion::Exact(loaded), batch).await {
                Ok(appended) => {
                    for event in &events {
                        state.apply(event);
                    }
                    let version = appended.stream_version;
                    let last_snapshot = metrics.snapshot_version.max(in_flight);
                    let snapshot_started = if config.snapshot_policy.is_due(last_snapshot, version) {
                        self.start_snapshot(stream_id, &state, version).await
                    } else {
                        None
                    };
                    return Ok(Executed {
                        state,
                        version,
                        events,
                        attempts,
                        snapshot_started,
                        load_metrics: metrics,
                        already_applied: false,
                    });
                }
                Err(RepositoryError::Store(EventStoreError::ConcurrencyConflict { stream_id, expected, actual })) => {
                    if attempts >= max_attempts {
                        return Err(RepositoryError::Conflict { stream_id, expected, actual, attempts });
                    }
                    tracing::debug!(
                        stream_id = %stream_id, %expected, %actual, attempts,
                        "concurrency conflict; reloading and deciding again"
                    );
                    // Let the writer that won make progress before this one reloads.
                    tokio::task::yield_now().await;
                }
                // The same command, appended meanwhile by another caller with other content (it decided on
                // another state): the check at the top of the loop finds it and reports it applied.
                Err(RepositoryError::Store(EventStoreError::EventIdInUse { .. }))
                    if command_id.is_some() && attempts < max_attempts => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// The outcome of command `command_id` if it was already applied to `stream_id`: its stored events
    /// (whose ids derive from the command id) and the aggregate's current state.
    async fn already_applied(
        &self,
        stream_id: &StreamId,
        command_id: Uuid,
    ) -> Result<Option<Executed<A>>, RepositoryError<A::Error>> {
        let first_id = EventId::derived(command_id, 0);
        let Some(first) = self.retrying(stream_id, || self.store.load_event(first_id)).await? else {
            return Ok(None);
        };
        if first.stream_id != *stream_id {
            return Err(RepositoryError::Store(EventStoreError::EventIdInUse {
                id: first_id,
                stream_id: first.stream_id,
                version: first.version,
                difference: "belongs to another stream: the command id was used for a command on that stream",
            }));
        }
        let range = StreamRange { from: first.version, to: None };
        let stored = self.retrying(stream_id, || self.store.load_stream(stream_id, range)).await?;
        let mut events = Vec::new();
        let mut version = first.version;
        for (index, recorded) in (0_u32..).zip(&stored) {
            if recorded.id != EventId::derived(command_id, index) {
                break;
            }
            if let Some(event) = self.shared.decoder.decode(recorded).map_err(LoadError::from)? {
                events.push(event);
            }
            version = recorded.version;
        }
        let Loaded { state, metrics, .. } = self.load_retrying(stream_id).await?;
        tracing::debug!(%stream_id, %command_id, %version, "the command was already applied; nothing appended");
        Ok(Some(Executed {
            state,
            version,
            events,
            attempts: 0,
            snapshot_started: None,
            load_metrics: metrics,
            already_applied: true,
        }))
    }

    /// [`Repository::load`] (which retries while the store is unavailable), as a command's error.
    async fn load_retrying(&self, stream_id: &StreamId) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        match self.load(stream_id).await {
            Err(LoadError::Store(source)) if source.is_transient() => Err(RepositoryError::Unavailable {
                stream_id: stream_id.clone(),
                attempts: self.shared.config.transient_retries.saturating_add(1),
                source,
            }),
            result => result.map_err(RepositoryError::Load),
        }
    }

    /// An append retried with the same events while the store is unavailable.
    async fn append_retrying(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> Result<AppendResult, RepositoryError<A::Error>> {
        self.retrying(stream_id, || self.store.append(stream_id, expected, batch.clone())).await
    }

    /// Runs `call` until it succeeds, fails for good, or the store stays unavailable through the retries.
    async fn retrying<T, F, Fut>(&self, stream_id: &StreamId, call: F) -> Result<T, RepositoryError<A::Error>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, EventStoreError>>,
    {
        let config = &self.shared.config;
        fn itself(error: &EventStoreError) -> Option<&EventStoreError> {
            Some(error)
        }
        with_transient_retries(config, itself, call).await.map_err(|error| {
            if error.is_transient() {
                let attempts = config.transient_retries.saturating_add(1);
                RepositoryError::Unavailable { stream_id: stream_id.clone(), attempts, source: error }
            } else {
                RepositoryError::Store(error)
            }
        })
    }

    /// Saves a snapshot of `state` at `version` now and waits for the write.
    ///
    /// The policy normally takes care of snapshots; this is for tools and tests (e.g. after
    /// [`Repository::load_without_snapshot`] to replace an outdated snapshot). `state` must be the
    /// aggregate's state after exactly the events up to `version`.
    ///
    /// # Errors
    /// [`EventStoreError::Codec`] when the state does not encode, or the store's error.
    pub async fn save_snapshot(
        &self,
        stream_id: &StreamId,
        state: &A,
        version: Version,
    ) -> Result<(), EventStoreError> {
        let snapshot = self.encode_snapshot(stream_id, state, version)?;
        self.store.save_snapshot(&snapshot).await
    }

    /// Waits until every snapshot write started so far by this repository (or its clones) has finished.
    ///
    /// Call it before a short-lived process exits, or in tests before asserting on snapshots: background
    /// writes still running when the tokio runtime shuts down are lost (harmlessly: the next load
    /// replays more events, and the next write takes a new snapshot).
    pub async fn flush_snapshots(&self) {
        loop {
            let handles = std::mem::take(&mut self.pending.lock().tasks);
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                if let Err(error) = handle.await {
                    tracing::warn!(%error, "a snapshot task did not finish");
                }
            }
        }
    }

    fn encode_snapshot(&self, stream_id: &StreamId, state: &A, version: Version) -> Result<Snapshot, EventStoreError> {
        encode_snapshot(stream_id, state, version, self.shared.config.codec, Utc::now())
    }

    /// Encodes the snapshot now (the state is borrowed) and writes it in the background.
    async fn start_snapshot(&self, stream_id: &StreamId, state: &A, version: Version) -> Option<Version> {
        let snapshot = match self.encode_snapshot(stream_id, state, version) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(stream_id = %stream_id, %version, %error, "could not encode a snapshot; skipping it");
                return None;
            }
        };
        let store = Arc::clone(&self.store);
        let pending = self.pending.clone();
        let write = async move {
            let result = store.save_snapshot(&snapshot).await;
            pending.finished(&snapshot.stream_id, snapshot.version);
            if let Err(error) = result {
                tracing::warn!(
                    stream_id = %snapshot.stream_id,
                    version = %snapshot.version,
                    error = &error as &dyn std::error::Error,
                    "could not save a snapshot; loads replay more events until the next one"
                );
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let mut pending = self.pending.lock();
                let newest = pending.in_flight.entry(stream_id.clone()).or_insert(version);
                *newest = (*newest).max(version);
                pending.tasks.retain(|task| !task.is_finished());
                pending.tasks.push(runtime.spawn(write));
            }
            // Outside tokio (another executor) there is nowhere to spawn: write before returning.
            Err(_) => write.await,
        }
        Some(version)
    }
}

/// Runs `call` again while it fails with a transient store error (found by `store_error`), waiting with
/// backoff, at most `config.transient_retries` times; returns the first result that is not such a failure,
/// or the last failure.
async fn with_transient_retries<T, E, F, Fut>(
    config: &RepositoryConfig,
    store_error: fn(&E) -> Option<&EventStoreError>,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retries = 0_u32;
    loop {
        let result = call().await;
        let transient = match &result {
            Err(error) => store_error(error).filter(|e| e.is_transient()),
            Ok(_) => None,
        };
        match transient {
            Some(error) if retries < config.transient_retries => {
                retries += 1;
                let wait = config.backoff(retries);
                tracing::warn!(retries, ?wait, error = %error_chain(error), "the event store is unavailable; retrying");
                tokio::time::sleep(wait).await;
            }
            _ => return result,
        }
    }
}

/// The guide `docs/aggregates.md`, compiled here so that its examples are doctested.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/aggregates.md")]
struct AggregatesGuide;
