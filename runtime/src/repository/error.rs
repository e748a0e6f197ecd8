//! What can go wrong loading an aggregate ([`LoadError`]) or executing a command ([`RepositoryError`]).

use composable_rust_core::{EventDecodeError, EventStoreError, ExpectedVersion, StreamId, Version};
use thiserror::Error;

use super::IgnoredSnapshot;

/// The snapshot part of [`LoadError::EventsRemoved`]'s message.
fn describe_snapshot(snapshot: &Option<Version>, ignored: &Option<IgnoredSnapshot>) -> String {
    match (snapshot, ignored) {
        (_, Some(ignored)) => format!("the load could not use the stored snapshot ({ignored})"),
        (Some(version), None) => format!("the snapshot it started from is only at version {version}"),
        (None, None) => "the stream has no snapshot".to_owned(),
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
    /// Versions `from..=to` of the stream were removed by retention, and the load had no usable snapshot at
    /// or above `to` to start from, so the state cannot be rebuilt. No state is returned rather than a
    /// wrong one.
    #[error(
        "cannot load stream {stream_id}: versions {from} to {to} were removed by retention and {}\nsave a \
         snapshot at version {to} or above (the removed events are in the archive of the retention run that \
         removed them, eventstore-admin retention runs names it), then load again",
        describe_snapshot(.snapshot, .ignored_snapshot)
    )]
    EventsRemoved {
        /// The stream being loaded.
        stream_id: StreamId,
        /// The first missing version.
        from: Version,
        /// The last missing version (the one before the first retained version read).
        to: Version,
        /// The snapshot the load started from, if any (it lies below the missing versions).
        snapshot: Option<Version>,
        /// A stored snapshot that could not be used, and why.
        ignored_snapshot: Option<IgnoredSnapshot>,
    },
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
