//! Backup and restore for composable-rust event stores: a versioned JSONL interchange format, and
//! [`export`], [`import`] and [`verify`] over any [`EventStore`](composable_rust_core::EventStore).
//!
//! An archive is one JSON object per line: a header (format version, source backend, time written, what was
//! selected), the checkpoints, the events in global order with every field, the snapshots, and a trailer with
//! the counts and a SHA-256 of every line before it. The format is specified in `docs/operations.md`
//! ("Backup and restore (JSONL)"); [`format`](mod@format) holds its line types.
//!
//! - [`export`] streams events from a store into an archive in constant memory (pages of the global log),
//!   for the whole log, one category, or a position range ([`Selection`]).
//! - [`verify`] reads an archive and checks everything an import relies on: structure, dense versions per
//!   stream, unique ids, positions in order, counts and checksum. The first problem is reported with its line.
//! - [`import`] verifies the whole archive first and writes nothing when it is bad; then writes the events
//!   through [`EventLog::import`](composable_rust_core::backend::EventLog::import), keeping ids, versions,
//!   order and recorded times. Re-running an import writes only what is missing.
//!
//! Every reader caps the length of a line ([`ReadLimits`]), so a hostile archive cannot exhaust memory.

mod error;
mod export;
pub mod format;
mod import;
mod reader;
mod verify;

pub use error::{ArchiveError, Problem};
pub use export::{ExportSummary, Selection, archived_size, export, export_removals};
pub use import::{ImportSummary, VerifiedArchive, import};
pub use reader::{ArchiveReader, ReadLimits, Record};
pub use verify::{Verifier, VerifySummary, verify};

/// What long operations report as they go: lines and events handled so far, and bytes read or written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events handled so far.
    pub events: u64,
    /// Bytes of the archive read or written so far.
    pub bytes: u64,
}
