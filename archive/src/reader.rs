//! [`ArchiveReader`]: reads an archive line by line, never more than [`ReadLimits::max_line_bytes`] of a
//! line in memory, and checks each line with a [`Verifier`] as it goes; and [`DecodingReader`], which decodes
//! blocks of lines on blocking threads for [`crate::verify`] and [`crate::import`].

use std::collections::VecDeque;
use std::path::Path;

use composable_rust_core::{RecordedEvent, Snapshot};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;

use crate::error::{ArchiveError, Problem};
use crate::format::{Header, Trailer};
use crate::verify::{Decoded, Verifier, VerifySummary};

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

/// Lines per block that a [`DecodingReader`] decodes on a thread of its own.
const BLOCK_LINES: usize = 1000;

/// Bytes after which a block is closed whatever its number of lines, so that a few blocks in flight hold
/// little more than this each (plus one line up to the reader's limit).
const BLOCK_BYTES: usize = 1 << 20;

/// Blocks decoded at once: one per core of the machines this is measured on, and one more, so that a
/// decoder has the next block while the caller works through the first.
const BLOCKS_IN_FLIGHT: usize = 3;

/// Consecutive lines of an archive, each without its newline, one after the other in `bytes`.
#[derive(Default)]
struct Block {
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`.
    ends: Vec<usize>,
}

impl Block {
    fn raw_lines(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.bytes[start..end])
    }
}

/// Reads an archive a block of lines at a time; a problem reading a line comes after the block of the
/// lines before it, so that problems are reported in line order.
struct Blocks {
    input: BufReader<tokio::fs::File>,
    limits: ReadLimits,
    name: String,
    lines: u64,
    bytes: u64,
    failed: Option<ArchiveError>,
    done: bool,
}

impl Blocks {
    async fn open(path: &Path, limits: ReadLimits) -> Result<Self, ArchiveError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(ArchiveError::io(format!("open the archive {}", path.display())))?;
        let input = BufReader::with_capacity(1 << 16, file);
        Ok(Self { input, limits, name: path.display().to_string(), lines: 0, bytes: 0, failed: None, done: false })
    }

    /// The next block; `None` at the end.
    async fn next(&mut self) -> Result<Option<Block>, ArchiveError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let mut block = Block::default();
        while !self.done && block.ends.len() < BLOCK_LINES && block.bytes.len() < BLOCK_BYTES {
            match read_line(&mut self.input, self.limits, &mut block.bytes, self.lines + 1, &self.name).await {
                Ok(0) => self.done = true,
                Ok(read) => {
                    self.lines += 1;
                    self.bytes += u64::try_from(read).unwrap_or(u64::MAX);
                    block.ends.push(block.bytes.len());
                }
                Err(error) if block.ends.is_empty() => return Err(error),
                Err(error) => {
                    self.failed = Some(error);
                    self.done = true;
                }
            }
        }
        Ok((!block.ends.is_empty()).then_some(block))
    }
}

/// A block of lines and what each decoded to.
pub(crate) struct DecodedBlock {
    block: Block,
    decoded: Vec<Decoded>,
}

impl DecodedBlock {
    /// Each line (without its newline) with what it decoded to, in order; once.
    pub(crate) fn lines(&mut self) -> impl Iterator<Item = (&[u8], Decoded)> {
        let decoded = std::mem::take(&mut self.decoded);
        self.block.raw_lines().zip(decoded)
    }
}

/// Reads an archive a block of lines at a time and decodes each block ([`Decoded::of`]: the costly part of a
/// check, which needs no other line) on a blocking thread, a few blocks at once, handing them back in order.
/// A problem reading the file comes after the blocks before it, so that problems are met in line order.
pub(crate) struct DecodingReader {
    blocks: Blocks,
    decoding: VecDeque<JoinHandle<DecodedBlock>>,
    ended: Option<ArchiveError>,
    path: String,
}

impl DecodingReader {
    /// Opens the archive at `path`.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when the file cannot be opened.
    pub(crate) async fn open(path: &Path, limits: ReadLimits) -> Result<Self, ArchiveError> {
        let blocks = Blocks::open(path, limits).await?;
        Ok(Self { blocks, decoding: VecDeque::new(), ended: None, path: path.display().to_string() })
    }

    /// Bytes read so far (a few blocks ahead of what [`DecodingReader::next`] returned).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.blocks.bytes
    }

    /// The next block, decoded; `None` at the end of the file.
    ///
    /// # Errors
    /// What reading the file met ([`read_line`]), once the blocks before it are handed back.
    pub(crate) async fn next(&mut self) -> Result<Option<DecodedBlock>, ArchiveError> {
        while self.ended.is_none() && self.decoding.len() < BLOCKS_IN_FLIGHT {
            match self.blocks.next().await {
                Ok(Some(block)) => self.decoding.push_back(tokio::task::spawn_blocking(move || {
                    let decoded = block.raw_lines().map(Decoded::of).collect();
                    DecodedBlock { block, decoded }
                })),
                Ok(None) => break,
                Err(error) => self.ended = Some(error),
            }
        }
        match self.decoding.pop_front() {
            Some(task) => ArchiveError::join(task, format!("decode the archive {}", self.path)).await.map(Some),
            None => self.ended.take().map_or(Ok(None), Err),
        }
    }
}
