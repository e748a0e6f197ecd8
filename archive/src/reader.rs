//! [`ArchiveReader`]: reads an archive line by line, never more than [`ReadLimits::max_line_bytes`] of a
//! line in memory, and checks each line with a [`Verifier`] as it goes.

use std::path::Path;

use composable_rust_core::{RecordedEvent, Snapshot};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::error::{ArchiveError, Problem};
use crate::format::{Header, Trailer};
use crate::verify::{Verifier, VerifySummary};

/// How much of an archive a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line accepted, in bytes (default 64 MiB: a 48 MiB payload in base64). A longer line is an
    /// error, read no further than the limit, so a hostile file cannot exhaust memory.
    pub max_line_bytes: usize,
}

impl ReadLimits {
    /// The default longest line: 64 MiB.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self { max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES }
    }
}

/// One checked line of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The header.
    Header(Header),
    /// A checkpoint at a position of the source store.
    Checkpoint {
        /// The handler.
        handler: String,
        /// Its position in the source store.
        position: u64,
    },
    /// An event, at its position in the source store.
    Event(RecordedEvent),
    /// A snapshot.
    Snapshot(Snapshot),
    /// The trailer.
    Trailer(Trailer),
}

/// Reads and checks an archive: each call to [`ArchiveReader::next_record`] reads one line, checks it
/// ([`Verifier`]) and returns what it holds; the reader stops at the first problem.
#[derive(Debug)]
pub struct ArchiveReader<R> {
    input: R,
    limits: ReadLimits,
    verifier: Verifier,
    buffer: Vec<u8>,
    bytes: u64,
    name: String,
}

impl ArchiveReader<BufReader<tokio::fs::File>> {
    /// Opens the archive at `path`.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when the file cannot be opened.
    pub async fn open(path: &Path, limits: ReadLimits) -> Result<Self, ArchiveError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(ArchiveError::io(format!("open the archive {}", path.display())))?;
        Ok(Self::new(BufReader::with_capacity(1 << 16, file), limits, path.display().to_string()))
    }
}

impl<R: AsyncBufRead + Unpin> ArchiveReader<R> {
    /// Reads the archive from `input`; `name` names it in errors.
    pub fn new(input: R, limits: ReadLimits, name: impl Into<String>) -> Self {
        Self { input, limits, verifier: Verifier::new(), buffer: Vec::new(), bytes: 0, name: name.into() }
    }

    /// The number of the last line read.
    #[must_use]
    pub fn line(&self) -> u64 {
        self.verifier.line()
    }

    /// Bytes read so far.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next line, checked; `None` at the end of the file.
    ///
    /// # Errors
    /// [`ArchiveError::Invalid`] naming the line and its problem (a line too long, a line cut short, a bad
    /// line); [`ArchiveError::Io`] when reading fails.
    pub async fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        self.buffer.clear();
        let line = self.verifier.line() + 1;
        let read = read_line(&mut self.input, self.limits, &mut self.buffer, line, &self.name).await?;
        self.bytes += u64::try_from(read).unwrap_or(u64::MAX);
        if read == 0 {
            return Ok(None);
        }
        self.verifier.feed(&self.buffer).map(Some)
    }

    /// The summary, once [`ArchiveReader::next_record`] returned `None`.
    ///
    /// # Errors
    /// [`Problem::MissingTrailer`] when the archive ended without its trailer.
    pub fn finish(self) -> Result<VerifySummary, ArchiveError> {
        self.verifier.finish()
    }
}

/// Reads the next line of `input` onto the end of `buffer`, without its newline, and returns the bytes read
/// (0 at the end of the input). Reads no more than the limit of a line, plus one byte.
///
/// # Errors
/// [`ArchiveError::Invalid`] at `line` for a line longer than the limit or cut short (no newline at the
/// end of the input); [`ArchiveError::Io`] when reading `name` fails.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    limits: ReadLimits,
    buffer: &mut Vec<u8>,
    line: u64,
    name: &str,
) -> Result<usize, ArchiveError> {
    let limit = limits.max_line_bytes;
    // One byte more than the limit, so that a line of exactly `limit` bytes plus its newline fits.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = input
        .take(cap)
        .read_until(b'\n', buffer)
        .await
        .map_err(ArchiveError::io(format!("read the archive {name}")))?;
    match buffer.last() {
        _ if read == 0 => Ok(0),
        Some(b'\n') => {
            buffer.pop();
            Ok(read)
        }
        _ if read > limit => Err(ArchiveError::Invalid { line, problem: Problem::LineTooLong { limit } }),
        _ => Err(ArchiveError::Invalid { line, problem: Problem::TruncatedLine }),
    }
}
