//! Errors of the event store contract. One enum, [`EventStoreError`], crosses the backend boundary;
//! its variants let a caller tell a retryable conflict from bad input and from a broken database.

use std::error::Error as StdError;

use thiserror::Error;

use crate::event::EventId;
use crate::stream::{ExpectedVersion, GlobalPosition, StreamId, Version};

/// A boxed error from a backend driver or user code.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Input that the event store refuses before touching storage.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A stream id failed validation.
    #[error(
        "invalid stream id {value:?}: {reason}; use a non-empty id of at most 255 bytes without control characters"
    )]
    StreamId {
        /// The rejected value (shortened and escaped).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An append was called with no events.
    #[error("cannot append an empty batch to stream {stream_id}: pass at least one event")]
    EmptyBatch {
        /// The stream the append was for.
        stream_id: StreamId,
    },
    /// An event type name failed validation.
    #[error("invalid event type {value:?}: {reason}")]
    EventType {
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A tag failed validation (see [`Tag::validate`](crate::Tag::validate)).
    #[error("invalid tag {value:?}: {reason}; use a non-empty tag of at most 255 bytes without control characters")]
    Tag {
        /// The rejected value (shortened).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A batch is larger than the backend accepts in one append.
    #[error("batch of {len} events for stream {stream_id} exceeds the limit of {max} events per append: split it")]
    BatchTooLarge {
        /// The stream the append was for.
        stream_id: StreamId,
        /// The number of events in the batch.
        len: usize,
        /// The largest batch the backend accepts.
        max: usize,
    },
    /// Any other argument the store refuses.
    #[error("invalid argument: {0}")]
    Other(String),
}

/// Encoding or decoding a payload failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("could not encode {type_name} with the {codec} codec")]
    Encode {
        /// The codec that was used.
        codec: &'static str,
        /// The Rust type that was encoded.
        type_name: &'static str,
        /// The codec's own error.
        #[source]
        source: BoxError,
    },
    /// Stored bytes could not be decoded.
    #[error(
        "could not decode {context} with the {codec} codec; the bytes do not match the Rust type (register an upcaster if the schema changed)"
    )]
    Decode {
        /// The codec that was used.
        codec: &'static str,
        /// What was decoded, e.g. `event OrderPlaced.v1 at order-42 version 3`.
        context: String,
        /// The codec's own error.
        #[source]
        source: BoxError,
    },
    /// A stored event names a codec this build does not know.
    #[error("unknown codec {0:?}: the data was written by a codec this build does not include")]
    UnknownCodec(String),
}

/// What is wrong with the storage schema: each case names the database (`location`: a file path or a
/// server) and says what to do. Nothing was changed in the database when one of these is returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The event store's tables are not there: the schema was never applied to this database.
    #[error("the event store tables are missing in {location}: {fix}")]
    Missing {
        /// The database.
        location: String,
        /// How to apply the schema for this backend.
        fix: &'static str,
    },
    /// The schema is older than this build expects (the store was not migrated).
    #[error("the event store schema in {location} is at migration {applied}, but this build expects {expected}: {fix}")]
    Behind {
        /// The database.
        location: String,
        /// The latest migration applied there (0 when none is recorded).
        applied: i64,
        /// The latest migration this build knows.
        expected: i64,
        /// How to migrate it.
        fix: &'static str,
    },
    /// The database has a migration applied that this build does not know: it was written by newer code.
    #[error(
        "{location} has schema migration {version} applied, which this build does not know: the schema is newer \
         than this code; upgrade the application"
    )]
    Newer {
        /// The database.
        location: String,
        /// The unknown migration.
        version: i64,
    },
    /// A migration applied to the database differs from the one in this build: it was edited after release.
    #[error(
        "schema migration {version} applied in {location} differs from the one in this build: migrations must \
         never be edited after release; restore the original migration"
    )]
    Edited {
        /// The database.
        location: String,
        /// The migration that differs.
        version: i64,
    },
    /// A migration was only partly applied (it failed half-way, or was interrupted).
    #[error("schema migration {version} in {location} was only partly applied: {fix}")]
    Dirty {
        /// The database.
        location: String,
        /// The migration.
        version: i64,
        /// How to recover for this backend.
        fix: &'static str,
    },
    /// The file or database is not an event store this build can read: not a database at all, encrypted,
    /// truncated or damaged.
    #[error("{location} {problem}; it was left untouched: restore it from a backup or open another path")]
    Unreadable {
        /// The database.
        location: String,
        /// What is wrong, e.g. `is not an SQLite database` or `is truncated: ...`.
        problem: String,
    },
    /// Applying the schema failed for another reason.
    #[error("could not apply the event store schema to {location}")]
    MigrationFailed {
        /// The database.
        location: String,
        /// The migrator's error.
        #[source]
        source: BoxError,
    },
}

/// Everything that can go wrong when talking to an [`EventStore`](crate::EventStore).
///
/// Match the cases that matter to you and keep a wildcard arm: new cases may be added. The questions
/// callers usually ask have methods: [`is_conflict`](Self::is_conflict) (reload and decide again),
/// [`is_transient`](Self::is_transient) (retry as is) and [`is_not_found`](Self::is_not_found).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EventStoreError {
    /// The stream's version did not match the expectation: another writer won. Reload and retry.
    #[error(
        "concurrency conflict on stream {stream_id}: expected {expected}, but the stream is at version {actual}; reload the stream and retry"
    )]
    ConcurrencyConflict {
        /// The stream that was written to.
        stream_id: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was checked.
        actual: Version,
    },
    /// An [`AppendCondition`](crate::AppendCondition) failed: an event matching its query was appended after
    /// the position the decision read up to. Nothing was written. Read by the query again, decide again.
    #[error(
        "the append condition failed: an event matching its query was appended at position {position}, after \
         position {after}; nothing was written\nread the query again and decide again"
    )]
    ConditionFailed {
        /// The condition's position: what the decision had read up to.
        after: GlobalPosition,
        /// The first position after `after` holding a matching event.
        position: GlobalPosition,
    },
    /// The caller passed input the store refuses. Not retryable.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// A payload, metadata or snapshot could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The storage schema is missing, behind, newer than this code, or the database is unreadable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// What the call needs does not exist: the database named in the connection settings, for example.
    /// Not retryable until it is created.
    #[error("{what} does not exist: {fix}")]
    NotFound {
        /// What is missing, e.g. `database orders on 127.0.0.1:5432`.
        what: String,
        /// How to create it or where to point instead.
        fix: &'static str,
    },
    /// An event id of the batch is already stored for another event: a different stream, version, type,
    /// payload or metadata, or a batch that overlaps an earlier one only in part. Nothing was written.
    /// Not retryable: give a new event a new id, and retry an append only with exactly the events first sent.
    #[error(
        "event id {id} is already used by version {version} of stream {stream_id}, which {difference}; nothing was \
         written\na new event needs a new id; retry an append only with exactly the events it first sent"
    )]
    EventIdInUse {
        /// The id.
        id: EventId,
        /// The stream of the stored event with that id.
        stream_id: StreamId,
        /// The version of the stored event with that id.
        version: Version,
        /// How the stored event differs, e.g. `has another payload`.
        difference: &'static str,
    },
    /// The store could not be reached, or the connection was lost or timed out, or the database asked to
    /// retry (serialization failure, deadlock, shutdown). Safe to retry: an append retried with the same
    /// event ids is written at most once, even when the failed attempt did commit.
    #[error("could not {operation} (the event store is unavailable; retrying is safe)")]
    Unavailable {
        /// What the store was doing, e.g. `append to stream order-42`.
        operation: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A reducer returned an event store request, but the `Store` running it was built without an event
    /// store. Nothing was run.
    #[error("could not {request}: this Store has no event store; build it with Store::builder(..).event_store(..)")]
    NoEventStore {
        /// The request that could not run, described.
        request: String,
    },
    /// A store that admits one process at a time (the file backend) is already open elsewhere: another
    /// process holds its lock. Nothing was read or written. Not retryable until that process closes it.
    #[error("the event store at {location} is open in {holder}: close it there, or open another path")]
    InUse {
        /// The store, e.g. its directory.
        location: String,
        /// Who holds it, e.g. `process 4242`.
        holder: String,
    },
    /// Retention was asked to remove an event whose removal would break event sourcing: a stream's last
    /// event, or an event a load still replays (no snapshot covers it and the category is not
    /// replay-free). Nothing of the batch was removed. Plan again: the plan keeps such events.
    #[error(
        "retention may not remove version {version} of stream {stream_id}: {reason}; nothing of the batch was removed"
    )]
    RemovalRefused {
        /// The stream.
        stream_id: StreamId,
        /// The version that may not go.
        version: Version,
        /// Why.
        reason: crate::retention::RemovalRefusal,
    },
    /// The backend does not implement the operation (yet). Nothing was read or written.
    #[error("{operation} is not supported by the {backend} backend yet: {fix}")]
    Unsupported {
        /// What was asked, e.g. `retention`.
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
        /// What to do instead.
        fix: &'static str,
    },
    /// The backend failed (connection lost, I/O error, timeout, constraint other than the version check).
    #[error("could not {operation}")]
    Backend {
        /// What the store was doing, e.g. `append to stream order-42`.
        operation: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl EventStoreError {
    /// Wraps a driver error, naming the operation that failed.
    pub fn backend(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Backend { operation: operation.into(), source: source.into() }
    }

    /// Wraps a driver error that says the store is unreachable or asked to retry (see
    /// [`EventStoreError::Unavailable`]).
    pub fn unavailable(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable { operation: operation.into(), source: source.into() }
    }

    /// Whether retrying after a reload may succeed: a stale expected version or a failed append condition.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::ConcurrencyConflict { .. } | Self::ConditionFailed { .. })
    }

    /// Whether something the call needs does not exist: a database ([`EventStoreError::NotFound`]), the
    /// store's tables ([`SchemaError::Missing`]), or the stream an append expected to exist (an append with
    /// [`ExpectedVersion::StreamExists`] or `Exact(n > 0)` to an empty stream, which is also a conflict).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. } | Self::Schema(SchemaError::Missing { .. }) => true,
            Self::ConcurrencyConflict { expected, actual, .. } => {
                *actual == Version::INITIAL && !expected.is_satisfied_by(Version::INITIAL)
            }
            _ => false,
        }
    }

    /// Whether the same call may succeed if retried as it is: the store was unavailable (connection lost,
    /// timeout, serialization failure). Retrying an append with the same event ids is safe.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// An error and its sources joined with `: `, each cause once: a `#[error(transparent)]` wrapper, which
/// repeats its source's message, does not print it twice. For messages shown to people and logs.
///
/// ```
/// use composable_rust_core::{EventStoreError, error_chain};
///
/// let error = EventStoreError::backend("append to order-1", "connection reset by peer");
/// assert_eq!(
///     error_chain(&error),
///     "could not append to order-1: connection reset by peer"
/// );
/// ```
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
