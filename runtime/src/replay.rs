//! Rebuilding an aggregate from its history: a snapshot (when usable) and the events after it.
//!
//! One fold, used by the [`Repository`](crate::Repository) (which streams events from the store) and by
//! the [`EventSourced`](crate::EventSourced) reducer (which receives a loaded history as a value), so that
//! both check snapshots, versions and event types the same way.

use chrono::{DateTime, Utc};
use composable_rust_core::{
    Aggregate, CodecId, Event, EventDecoder, EventStoreError, LoadedHistory, Metadata, NewEvent, RecordedEvent,
    Snapshot, StreamId, Version,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::repository::{IgnoredSnapshot, LoadError, SnapshotIgnoreReason};

/// An aggregate being rebuilt, event by event.
pub(crate) struct Replay<'d, A: Aggregate> {
    decoder: &'d EventDecoder<A::Event>,
    stream_id: StreamId,
    pub(crate) state: A,
    pub(crate) version: Version,
    pub(crate) snapshot_version: Option<Version>,
    pub(crate) ignored_snapshot: Option<IgnoredSnapshot>,
    pub(crate) replayed: u64,
}

impl<'d, A: Aggregate + DeserializeOwned> Replay<'d, A> {
    /// An empty aggregate in `stream_id`, before any snapshot or event.
    pub(crate) fn new(stream_id: &StreamId, decoder: &'d EventDecoder<A::Event>) -> Self {
        Self {
            decoder,
            stream_id: stream_id.clone(),
            state: A::default(),
            version: Version::INITIAL,
            snapshot_version: None,
            ignored_snapshot: None,
            replayed: 0,
        }
    }

    /// Starts from `snapshot` if it decodes and has the current schema version; otherwise records why it
    /// was ignored (with a warning), and the caller must replay from the first event.
    pub(crate) fn start_from(&mut self, snapshot: &Snapshot) {
        match decode_snapshot::<A>(snapshot) {
            Ok(decoded) => {
                self.state = decoded;
                self.version = snapshot.version;
                self.snapshot_version = Some(snapshot.version);
            }
            Err(reason) => {
                tracing::warn!(
                    stream_id = %self.stream_id,
                    snapshot_version = %snapshot.version,
                    %reason,
                    "ignoring snapshot; rebuilding the aggregate by full replay"
                );
                self.ignored_snapshot = Some(IgnoredSnapshot { version: snapshot.version, reason });
            }
        }
    }

    /// Applies the next stored event.
    ///
    /// # Errors
    /// [`LoadError::EventsRemoved`] when versions before it are gone (retention removed them and no usable
    /// snapshot covers them), [`LoadError::VersionGap`] when it does not follow the last version otherwise,
    /// [`LoadError::Decode`] when it
    /// does not decode (or has an unknown type).
    pub(crate) fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), LoadError> {
        if recorded.version > self.version.next() {
            // Versions are dense when stored, so a jump forward means retention removed the versions between:
            // a load must start from a snapshot at or above them, and this one did not (none, or unusable).
            return Err(LoadError::EventsRemoved {
                stream_id: self.stream_id.clone(),
                from: self.version.next(),
                to: Version::new(recorded.version.get() - 1),
                snapshot: self.snapshot_version,
                ignored_snapshot: self.ignored_snapshot.clone(),
            });
        }
        if recorded.version != self.version.next() {
            return Err(LoadError::VersionGap {
                stream_id: self.stream_id.clone(),
                after: self.version,
                found: recorded.version,
            });
        }
        // Aggregates use a strict decoder, so `None` (a skipped unknown type) does not happen here.
        if let Some(event) = self.decoder.decode(recorded)? {
            self.state.apply(&event);
        }
        self.version = recorded.version;
        self.replayed += 1;
        Ok(())
    }

    /// Folds a loaded history. `Ok(Err(ignored))` means its snapshot was unusable: load again without it.
    pub(crate) fn fold(
        stream_id: &StreamId,
        decoder: &'d EventDecoder<A::Event>,
        history: &LoadedHistory,
    ) -> Result<Result<Self, IgnoredSnapshot>, LoadError> {
        let mut replay = Self::new(stream_id, decoder);
        if let Some(snapshot) = &history.snapshot {
            replay.start_from(snapshot);
            if let Some(ignored) = replay.ignored_snapshot.take() {
                return Ok(Err(ignored));
            }
        }
        for event in &history.events {
            replay.apply(event)?;
        }
        Ok(Ok(replay))
    }
}

pub(crate) fn decode_snapshot<A: Aggregate + DeserializeOwned>(snapshot: &Snapshot) -> Result<A, SnapshotIgnoreReason> {
    if snapshot.schema_version != A::SNAPSHOT_SCHEMA_VERSION {
        return Err(SnapshotIgnoreReason::SchemaVersion {
            stored: snapshot.schema_version,
            current: A::SNAPSHOT_SCHEMA_VERSION,
        });
    }
    let context = format_args!("snapshot of {} at version {}", snapshot.stream_id, snapshot.version);
    snapshot
        .codec
        .decode(&snapshot.payload, &context)
        .map_err(|error| SnapshotIgnoreReason::Undecodable(error.to_string()))
}

/// The snapshot of `state` at `version`, encoded with `codec`.
pub(crate) fn encode_snapshot<A: Aggregate + Serialize>(
    stream_id: &StreamId,
    state: &A,
    version: Version,
    codec: CodecId,
    taken_at: DateTime<Utc>,
) -> Result<Snapshot, EventStoreError> {
    Ok(Snapshot {
        stream_id: stream_id.clone(),
        version,
        schema_version: A::SNAPSHOT_SCHEMA_VERSION,
        codec,
        payload: codec.encode(state)?,
        taken_at,
    })
}

/// The events a command decided, encoded for an append, each with `metadata`.
pub(crate) fn encode_events<E: Event>(
    events: &[E],
    codec: CodecId,
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, EventStoreError> {
    events
        .iter()
        .map(|event| event.to_new_event(codec, metadata.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EventStoreError::from)
}
