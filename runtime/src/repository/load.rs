//! Loading an aggregate: the latest usable snapshot plus the events after it, as of now or of a point
//! in its past, and what the load did ([`LoadMetrics`]).

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use composable_rust_core::backend::load_history;
use composable_rust_core::{Aggregate, EventStoreError, LoadRequest, LoadUntil, StreamId, StreamRange, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::retry::with_transient_retries;
use super::{LoadError, Repository};
use crate::metric::record_load;
use crate::replay::Replay;

#[cfg(doc)]
use super::RepositoryConfig;

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

impl<A> Repository<A>
where
    A: Aggregate + Serialize + DeserializeOwned,
{
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
        // Visited rather than streamed: an in-memory store lends its events instead of copying each one.
        let mut failed = None;
        let from = StreamRange::after(replay.version);
        self.store
            .visit_stream(stream_id, from, &mut |recorded| match replay.apply(recorded) {
                Ok(()) => ControlFlow::Continue(()),
                Err(error) => {
                    failed = Some(error);
                    ControlFlow::Break(())
                }
            })
            .await?;
        match failed {
            Some(error) => Err(error),
            None => Ok(self.loaded(stream_id, replay, started)),
        }
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
                    return Ok(self.loaded(stream_id, replay, started));
                }
                Err(snapshot) => {
                    ignored = Some(snapshot);
                    request = request.without_snapshot();
                }
            }
        }
    }

    /// The result of a finished replay; records the load's metrics ([`crate::metric`]).
    fn loaded(&self, stream_id: &StreamId, replay: Replay<'_, A>, started: Instant) -> Loaded<A> {
        let metrics = LoadMetrics {
            snapshot_version: replay.snapshot_version,
            ignored_snapshot: replay.ignored_snapshot,
            events_replayed: replay.replayed,
            elapsed: started.elapsed(),
        };
        let from_snapshot = metrics.snapshot_version.is_some();
        record_load(self.store.backend(), A::CATEGORY, from_snapshot, metrics.events_replayed, metrics.elapsed);
        tracing::debug!(stream_id = %stream_id, version = %replay.version, %metrics, "loaded aggregate");
        Loaded { state: replay.state, version: replay.version, metrics }
    }
}
