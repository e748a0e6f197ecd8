//! Executing a command: load, decide, append at the loaded version; reload and decide again on a
//! conflict; at most once per command id with [`Repository::execute_once`].

use std::fmt;

use composable_rust_core::{
    Aggregate, AppendResult, EventId, EventStoreError, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange,
    Version,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::retry::with_transient_retries;
use super::{LoadError, LoadMetrics, Loaded, Repository, RepositoryError};
use crate::replay::encode_events;

#[cfg(doc)]
use super::RepositoryConfig;
#[cfg(doc)]
use crate::snapshot_policy::SnapshotPolicy;

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

impl<A> Repository<A>
where
    A: Aggregate + Serialize + DeserializeOwned,
{
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
}
