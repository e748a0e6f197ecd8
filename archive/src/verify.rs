//! [`Verifier`]: the checks of an archive, line by line, and [`verify`], which runs them over a file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use composable_rust_core::backend::{validate_handler_name, validate_import};
use composable_rust_core::{RecordedEvent, Snapshot, StreamId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Progress;
use crate::error::{ArchiveError, Problem};
use crate::format::{CheckpointLine, FORMAT_NAME, FORMAT_VERSION, Header, Line, Selection, Trailer};
use crate::reader::{DecodingReader, ReadLimits, Record};

/// Where in the archive the verifier is: each kind of line has its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Start,
    Checkpoints,
    Events,
    Snapshots,
    Done,
}

/// What a complete, valid archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// The header.
    pub header: Header,
    /// Event lines.
    pub events: u64,
    /// Streams with events.
    pub streams: u64,
    /// Snapshot lines.
    pub snapshots: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
    /// Lines, trailer included.
    pub lines: u64,
    /// The SHA-256 of the lines before the trailer, in hex.
    pub sha256: String,
}

/// Checks an archive fed one line at a time, in order: structure, each line's content, dense versions per
/// stream, unique ids, positions in order, one snapshot per stream no newer than its events, one checkpoint
/// per handler, and the trailer's counts and checksum. Stops at the first problem, naming its line.
///
/// Memory: one entry per stream (its last version) and one per event id (16 bytes and the set's overhead),
/// which is what finding a duplicate id anywhere in the archive takes.
#[derive(Debug)]
pub struct Verifier {
    place: Place,
    line: u64,
    header: Option<Header>,
    hasher: Sha256,
    streams: HashMap<StreamId, u64>,
    ids: HashSet<Uuid>,
    handlers: HashSet<String>,
    snapshotted: HashSet<StreamId>,
    last_position: u64,
    events: u64,
    trailer: Option<Trailer>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier at the start of an archive.
    #[must_use]
    pub fn new() -> Self {
        Self {
            place: Place::Start,
            line: 0,
            header: None,
            hasher: Sha256::new(),
            streams: HashMap::new(),
            ids: HashSet::new(),
            handlers: HashSet::new(),
            snapshotted: HashSet::new(),
            last_position: 0,
            events: 0,
            trailer: None,
        }
    }

    /// The number of the last line fed.
    #[must_use]
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Checks the next line, `raw` (its bytes without the newline), and returns what it holds.
    ///
    /// # Errors
    /// [`ArchiveError::Invalid`] naming this line and its problem.
    pub fn feed(&mut self, raw: &[u8]) -> Result<Record, ArchiveError> {
        self.accept(raw, Decoded::of(raw))
    }

    /// [`Verifier::feed`] for a line decoded already (`decoded` is `Decoded::of(raw)`).
    pub(crate) fn accept(&mut self, raw: &[u8], decoded: Decoded) -> Result<Record, ArchiveError> {
        self.line += 1;
        let line = self.line;
        let invalid = |problem| ArchiveError::Invalid { line, problem };
        if self.place == Place::Done {
            return Err(invalid(Problem::AfterTrailer));
        }
        let record = match decoded {
            Decoded::Malformed(_) if self.place == Place::Start => return Err(invalid(Problem::MissingHeader)),
            Decoded::Malformed(problem) => return Err(invalid(Problem::Malformed(problem))),
            decoded => self.check(decoded).map_err(invalid)?,
        };
        if !matches!(record, Record::Trailer(_)) {
            self.hasher.update(raw);
            self.hasher.update(b"\n");
        }
        Ok(record)
    }

    /// The summary of a complete archive: call after the last line.
    ///
    /// # Errors
    /// [`Problem::MissingTrailer`] when no trailer was fed.
    pub fn finish(self) -> Result<VerifySummary, ArchiveError> {
        match (self.header, self.trailer) {
            (Some(header), Some(trailer)) => Ok(VerifySummary {
                header,
                events: trailer.events,
                streams: u64::try_from(self.streams.len()).unwrap_or(u64::MAX),
                snapshots: trailer.snapshots,
                checkpoints: trailer.checkpoints,
                lines: self.line,
                sha256: trailer.sha256,
            }),
            _ => Err(ArchiveError::Invalid { line: self.line + 1, problem: Problem::MissingTrailer }),
        }
    }

    /// Moves to `place` for a line of `kind`, unless the archive is already past it.
    fn enter(&mut self, place: Place, kind: &'static str) -> Result<(), Problem> {
        if self.place > place {
            let where_ = match self.place {
                Place::Events => "after the events",
                Place::Snapshots => "after the snapshots",
                _ => "here",
            };
            return Err(Problem::OutOfPlace { kind, place: where_ });
        }
        self.place = place;
        Ok(())
    }

    fn check(&mut self, decoded: Decoded) -> Result<Record, Problem> {
        if self.place == Place::Start {
            let Decoded::Header(header) = decoded else { return Err(Problem::MissingHeader) };
            if header.format != FORMAT_NAME {
                return Err(Problem::MissingHeader);
            }
            if header.version != FORMAT_VERSION {
                return Err(Problem::UnsupportedVersion { found: header.version, supported: FORMAT_VERSION });
            }
            self.place = Place::Checkpoints;
            self.header = Some(header.clone());
            return Ok(Record::Header(header));
        }
        match decoded {
            Decoded::Header(_) => Err(Problem::OutOfPlace { kind: "header", place: "after the first line" }),
            Decoded::Malformed(problem) => Err(Problem::Malformed(problem)),
            Decoded::Checkpoint(checkpoint) => {
                self.enter(Place::Checkpoints, "checkpoint")?;
                validate_handler_name(&checkpoint.handler).map_err(|e| Problem::Invalid(e.to_string()))?;
                if !self.handlers.insert(checkpoint.handler.clone()) {
                    return Err(Problem::Repeated { kind: "checkpoint", name: checkpoint.handler, per: "handler" });
                }
                Ok(Record::Checkpoint { handler: checkpoint.handler, position: checkpoint.position })
            }
            Decoded::Event(event) => {
                self.enter(Place::Events, "event")?;
                let event = event?;
                self.check_event(&event)?;
                Ok(Record::Event(event))
            }
            Decoded::Snapshot(snapshot) => {
                self.enter(Place::Snapshots, "snapshot")?;
                let snapshot = snapshot?;
                self.check_snapshot(&snapshot)?;
                Ok(Record::Snapshot(snapshot))
            }
            Decoded::Trailer(trailer) => {
                self.place = Place::Done;
                let found = [
                    ("event", trailer.events, self.events),
                    ("snapshot", trailer.snapshots, count(&self.snapshotted)),
                    ("checkpoint", trailer.checkpoints, count(&self.handlers)),
                ];
                if let Some(&(kind, stated, found)) = found.iter().find(|(_, stated, found)| stated != found) {
                    return Err(Problem::CountMismatch { kind, stated, found });
                }
                let computed = hex(&self.hasher.clone().finalize());
                if !trailer.sha256.eq_ignore_ascii_case(&computed) {
                    return Err(Problem::ChecksumMismatch { stated: trailer.sha256, computed });
                }
                self.trailer = Some(trailer.clone());
                Ok(Record::Trailer(trailer))
            }
        }
    }

    /// The checks of an event that depend on the lines before it (its own are in [`Decoded::of`]).
    fn check_event(&mut self, event: &RecordedEvent) -> Result<(), Problem> {
        let position = event.position.get();
        if self.events > 0 && position <= self.last_position {
            return Err(Problem::PositionOutOfOrder { position, previous: self.last_position });
        }
        let version = event.version.get();
        let previous = self.streams.get(event.stream_id.as_str()).copied();
        let selection = self.header.as_ref().map(|h| &h.selection);
        let may_start_anywhere = matches!(selection, Some(Selection::Positions { .. } | Selection::Removed { .. }));
        let may_skip = matches!(selection, Some(Selection::Removed { .. }));
        let expected = match previous {
            Some(previous) => previous + 1,
            None if may_start_anywhere => version,
            None => 1,
        };
        let in_order = if may_skip { version >= expected } else { version == expected };
        if !in_order {
            return Err(Problem::VersionOutOfOrder {
                stream: event.stream_id.to_string(),
                version,
                previous: previous.unwrap_or(0),
                expected,
            });
        }
        if !self.ids.insert(event.id.as_uuid()) {
            return Err(Problem::DuplicateId { id: event.id.to_string() });
        }
        match self.streams.get_mut(event.stream_id.as_str()) {
            Some(head) => *head = version,
            None => {
                self.streams.insert(event.stream_id.clone(), version);
            }
        }
        self.last_position = position;
        self.events += 1;
        Ok(())
    }

    fn check_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Problem> {
        let archived = self.streams.get(&snapshot.stream_id).copied().unwrap_or(0);
        if snapshot.version.get() > archived {
            return Err(Problem::SnapshotAhead {
                stream: snapshot.stream_id.to_string(),
                version: snapshot.version.get(),
                archived,
            });
        }
        if !self.snapshotted.insert(snapshot.stream_id.clone()) {
            return Err(Problem::Repeated { kind: "snapshot", name: snapshot.stream_id.to_string(), per: "stream" });
        }
        Ok(())
    }
}

/// A line decoded on its own: parsed, converted and checked for what needs no other line. This is the
/// costly part of a check and needs no state, so [`verify`] and [`crate::import`] decode blocks of lines on
/// blocking threads ([`DecodingReader`]) and [`Verifier::accept`] them in order.
#[derive(Debug)]
pub(crate) enum Decoded {
    Header(Header),
    Checkpoint(CheckpointLine),
    /// The event, or what is wrong with it (an unknown codec, a bad payload, an invalid type or tag).
    Event(Result<RecordedEvent, Problem>),
    Snapshot(Result<Snapshot, Problem>),
    Trailer(Trailer),
    /// Not an archive line: what serde_json found wrong ([`json_problem`]).
    Malformed(String),
}

impl Decoded {
    /// Decodes the line `raw` (without its newline).
    pub(crate) fn of(raw: &[u8]) -> Self {
        // The whole line checked as UTF-8 once, rather than each string as serde_json meets it.
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => return Self::Malformed(format!("the line is not UTF-8 (column {})", e.valid_up_to() + 1)),
        };
        match serde_json::from_str::<Line>(text) {
            Err(e) => Self::Malformed(json_problem(&e)),
            Ok(Line::Header(header)) => Self::Header(header),
            Ok(Line::Checkpoint(checkpoint)) => Self::Checkpoint(checkpoint),
            Ok(Line::Event(event)) => Self::Event(event.into_recorded().map_err(Problem::Invalid).and_then(|event| {
                validate_import(std::slice::from_ref(&event)).map_err(|e| Problem::Invalid(e.to_string()))?;
                Ok(event)
            })),
            Ok(Line::Snapshot(snapshot)) => Self::Snapshot(snapshot.into_snapshot().map_err(Problem::Invalid)),
            Ok(Line::Trailer(trailer)) => Self::Trailer(trailer),
        }
    }
}

/// serde_json's message without its "at line 1 column N" (every archive line is one JSON line), plus the column.
fn json_problem(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = message.rfind(" at line ").map_or(message.as_str(), |at| &message[..at]);
    format!("{message} (column {})", error.column())
}

fn count<T>(set: &HashSet<T>) -> u64 {
    u64::try_from(set.len()).unwrap_or(u64::MAX)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Reads the archive at `path` and checks all of it ([`Verifier`]); `progress` hears about every thousand
/// events.
///
/// Lines are decoded (parsed, converted and checked on their own) in blocks on blocking threads, and accepted
/// in order, so the first problem in line order is the one reported. Memory: what the [`Verifier`] keeps, and
/// a few blocks of at most 1 MiB or one line each.
///
/// # Errors
/// [`ArchiveError::Invalid`] for the first problem, naming its line; [`ArchiveError::Io`] when the file
/// cannot be read.
pub async fn verify(
    path: &Path,
    limits: ReadLimits,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<VerifySummary, ArchiveError> {
    let mut reader = DecodingReader::open(path, limits).await?;
    let mut verifier = Verifier::new();
    let mut events = 0;
    while let Some(mut block) = reader.next().await? {
        for (raw, decoded) in block.lines() {
            if matches!(verifier.accept(raw, decoded)?, Record::Event(_)) {
                events += 1;
                if events % 1000 == 0 {
                    progress(Progress { events, bytes: reader.bytes_read() });
                }
            }
        }
    }
    progress(Progress { events, bytes: reader.bytes_read() });
    verifier.finish()
}
