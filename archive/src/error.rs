//! [`ArchiveError`]: what went wrong with an archive or with the store behind it, naming the line.

use composable_rust_core::EventStoreError;
use thiserror::Error;

/// What went wrong in an export, an import or a verification.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The archive is not valid at `line` (1-based): nothing was written because of it (an import verifies
    /// the whole archive before it writes).
    #[error("line {line}: {problem}")]
    Invalid {
        /// The line, from 1.
        line: u64,
        /// What is wrong with it.
        problem: Problem,
    },
    /// Reading or writing the archive failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done, naming the file.
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The event store refused or failed; `line` is the archive line of the event concerned, when known.
    #[error("the event store failed to {action}{}: {source}", line.map(|l| format!(" (archive line {l})")).unwrap_or_default())]
    Store {
        /// What was being done.
        action: String,
        /// The archive line concerned, when known.
        line: Option<u64>,
        /// The store's error.
        #[source]
        source: EventStoreError,
    },
}

impl ArchiveError {
    /// An I/O error while doing `action`.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }

    /// Waits for work handed to a blocking thread (decoding or encoding lines). A thread that stops before it
    /// finishes (it panicked, or the runtime is shutting down) is an I/O error naming `action`: the caller
    /// stops as it does when the file fails, with no panic of its own.
    pub(crate) async fn join<T>(task: tokio::task::JoinHandle<T>, action: impl Into<String>) -> Result<T, Self> {
        task.await.map_err(|e| Self::io(action)(std::io::Error::other(e)))
    }

    /// The line of an [`ArchiveError::Invalid`], if it is one.
    #[must_use]
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Invalid { line, .. } => Some(*line),
            Self::Store { line, .. } => *line,
            Self::Io { .. } => None,
        }
    }
}

/// What is wrong with one line of an archive. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Problem {
    /// The line is longer than the reader accepts.
    #[error(
        "the line is longer than {limit} bytes: the archive is damaged or hostile (raise --max-line-bytes only if it holds payloads that large)"
    )]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The last line has no newline: the file was cut while it was written.
    #[error("the last line is cut short (no newline at its end): the archive is truncated; export it again")]
    TruncatedLine,
    /// The file ends without a trailer.
    #[error("the archive ends without a trailer line: it is truncated; export it again")]
    MissingTrailer,
    /// The line is not a valid archive line (not UTF-8, not JSON, a wrong type, an unknown field).
    #[error("not a valid archive line: {0}")]
    Malformed(String),
    /// The first line is not a header of this format.
    #[error(
        "the first line must be the archive header {{\"header\":{{\"format\":\"composable-rust-archive\",...}}}}: this is not an archive of this format"
    )]
    MissingHeader,
    /// The header names a format version this build does not read.
    #[error("archive format version {found} is not supported; this build reads version {supported}: use a newer build")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A line of a kind that belongs elsewhere in the file.
    #[error("a {kind} line cannot come {place}: lines go header, checkpoints, events, snapshots, trailer")]
    OutOfPlace {
        /// The kind of the line.
        kind: &'static str,
        /// Where it was found, e.g. `after the events`.
        place: &'static str,
    },
    /// An event's version does not follow its stream's previous event in the archive.
    #[error(
        "event {version} of stream {stream} follows version {previous}: versions of a stream must be dense and in order (expected {expected})"
    )]
    VersionOutOfOrder {
        /// The stream.
        stream: String,
        /// The version found.
        version: u64,
        /// The stream's previous version in the archive (0: none).
        previous: u64,
        /// The version expected.
        expected: u64,
    },
    /// An event id that an earlier line already has.
    #[error("event id {id} appears a second time: every event needs its own id")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// An event position not above the previous event's.
    #[error(
        "position {position} is not above the previous event's position {previous}: events must be in global order"
    )]
    PositionOutOfOrder {
        /// The position found.
        position: u64,
        /// The previous event's position.
        previous: u64,
    },
    /// An event, snapshot or checkpoint the store could not accept (bad type name, bad tag, bad JSON, ...).
    #[error("{0}")]
    Invalid(String),
    /// A snapshot of a stream whose events in the archive do not reach its version.
    #[error(
        "the snapshot of stream {stream} is at version {version}, but the archive holds that stream only up to version {archived}"
    )]
    SnapshotAhead {
        /// The stream.
        stream: String,
        /// The snapshot's version.
        version: u64,
        /// The stream's last version in the archive (0: none).
        archived: u64,
    },
    /// A second snapshot of one stream, or a second checkpoint of one handler.
    #[error("a second {kind} for {name}: an archive holds one per {per}")]
    Repeated {
        /// `snapshot` or `checkpoint`.
        kind: &'static str,
        /// The stream or handler.
        name: String,
        /// `stream` or `handler`.
        per: &'static str,
    },
    /// The trailer's count of a kind of line differs from the lines found.
    #[error("the trailer counts {stated} {kind} lines but the archive holds {found}: lines were lost or added")]
    CountMismatch {
        /// `event`, `snapshot` or `checkpoint`.
        kind: &'static str,
        /// The trailer's count.
        stated: u64,
        /// The lines found.
        found: u64,
    },
    /// The checksum in the trailer differs from the bytes before it.
    #[error(
        "the trailer's sha256 {stated} does not match the archive's {computed}: the archive was changed or damaged"
    )]
    ChecksumMismatch {
        /// The trailer's checksum.
        stated: String,
        /// The checksum of the bytes read.
        computed: String,
    },
    /// Something after the trailer.
    #[error("a line after the trailer: the archive must end with its trailer")]
    AfterTrailer,
}
