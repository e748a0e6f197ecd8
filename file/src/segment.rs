//! The segment files of a store: their names, reading them back into the [`Index`] with the recovery rule,
//! and closing (compressing) a full one.
//!
//! A store directory holds `events-<first position, 20 digits>.jsonl` segments. The newest is open for
//! appends; older ones are closed and, once compressed, named `….jsonl.gz`. Compression writes
//! `….jsonl.gz.tmp`, flushes it, renames it into place and only then deletes the plain file, so whichever
//! moment a crash hits, one complete copy of every closed segment exists.
//!
//! **Recovery rule.** A commit exists once the line that closes it (`"commit": n`) is complete. In the
//! newest segment, whatever follows the last complete commit was never acknowledged (an append returns
//! after its commit line is written) and is cut on open, as long as no complete commit line follows the
//! damage: then the damage is in acknowledged data, and the open fails naming the line instead. Closed
//! segments must be whole: any damage there fails the open.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use composable_rust_core::{EventStoreError, GlobalPosition, SchemaError};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::index::Index;
use crate::line::{Header, decode_event};

const PREFIX: &str = "events-";
const PLAIN: &str = ".jsonl";
const COMPRESSED: &str = ".jsonl.gz";
const COMPRESSING: &str = ".jsonl.gz.tmp";

/// One segment file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The position of its first event (from its name).
    pub(crate) first: GlobalPosition,
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Whether it is gzip-compressed (closed).
    pub(crate) compressed: bool,
}

/// The file name of the segment starting at `first`.
pub(crate) fn file_name(first: GlobalPosition, compressed: bool) -> String {
    format!("{PREFIX}{:020}{}", first.get(), if compressed { COMPRESSED } else { PLAIN })
}

/// The position in a segment file name, if `name` is one, and whether it is compressed.
fn parse_name(name: &str) -> Option<(GlobalPosition, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (digits, compressed) = match rest.strip_suffix(COMPRESSED) {
        Some(digits) => (digits, true),
        None => (rest.strip_suffix(PLAIN)?, false),
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|first| (GlobalPosition::new(first), compressed))
}

/// The segments in `dir`, oldest first. Tidies what an interrupted compression left: a `.gz.tmp` is
/// deleted, and a plain segment whose `.gz` exists (the rename happened, the delete did not) is deleted.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.starts_with(PREFIX) && name.ends_with(COMPRESSING) {
            fs::remove_file(entry.path())?;
            continue;
        }
        if let Some((first, compressed)) = parse_name(&name) {
            segments.push(Segment { first, path: entry.path(), compressed });
        } else if name.starts_with(PREFIX) {
            tracing::warn!(file = %entry.path().display(), "ignoring a file that looks like a segment but is not named like one");
        }
    }
    segments.sort_by_key(|s| (s.first, !s.compressed));
    let mut kept: Vec<Segment> = Vec::with_capacity(segments.len());
    for segment in segments {
        match kept.last() {
            Some(previous) if previous.first == segment.first => {
                // Sorted compressed first: this is the plain copy of a segment already compressed.
                fs::remove_file(&segment.path)?;
            }
            _ => kept.push(segment),
        }
    }
    Ok(kept)
}

/// What loading the newest segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// The length in bytes of its committed content: the header and every complete commit.
    pub(crate) committed_len: u64,
    /// Whether it lacks a complete header (empty, or cut inside its first line): it must be started again.
    pub(crate) headless: bool,
    /// What was cut after the last commit, if anything.
    pub(crate) cut: Option<Cut>,
}

/// The uncommitted tail cut from the newest segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The first line of the tail that is not part of a commit.
    pub(crate) line: usize,
    /// How many complete event lines the tail held (a batch whose commit line never made it).
    pub(crate) events: usize,
    /// Why its last line did not close a commit.
    pub(crate) reason: String,
}

/// The error for damage at `line` of `path` (`None`: the file as a whole).
pub(crate) fn unreadable(path: &Path, line: Option<usize>, problem: impl Into<String>) -> EventStoreError {
    let location = match line {
        Some(line) => format!("{} line {line}", path.display()),
        None => path.display().to_string(),
    };
    SchemaError::Unreadable { location, problem: problem.into() }.into()
}

fn io_error(path: &Path, error: &io::Error) -> EventStoreError {
    unreadable(path, None, format!("could not be read: {error}"))
}

/// One line read with a length cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line (without its newline) is in the buffer.
    Complete,
    /// The file ended inside a line; its bytes are in the buffer.
    Unterminated,
    /// The line was longer than the cap; it was skipped, not kept.
    TooLong,
    /// No more bytes.
    End,
}

/// Reads the next line into `buf`, keeping at most `cap` bytes of it: a longer line is consumed and
/// reported as [`Line::TooLong`], so memory stays bounded whatever the file holds. Returns the line and the
/// number of bytes consumed (newline included).
pub(crate) fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<(Line, u64)> {
    buf.clear();
    let mut too_long = false;
    let mut consumed: u64 = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            let line = if too_long {
                Line::TooLong
            } else if consumed == 0 {
                Line::End
            } else {
                Line::Unterminated
            };
            return Ok((line, consumed));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk > cap {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..chunk]);
            }
        }
        let used = if done { chunk + 1 } else { chunk };
        reader.consume(used);
        consumed += used as u64;
        if done {
            return Ok((if too_long { Line::TooLong } else { Line::Complete }, consumed));
        }
    }
}

/// Reads `segment` into `index`, checking every line. `newest` says whether it is the segment appends go
/// to, whose uncommitted tail is cut (see the module's recovery rule); the index then holds only committed
/// events.
///
/// # Errors
/// [`SchemaError::Unreadable`] naming the file and line of the first problem.
pub(crate) fn load(
    segment: &Segment,
    newest: bool,
    index: &mut Index,
    max_line_len: usize,
) -> Result<Loaded, EventStoreError> {
    let path = &segment.path;
    let file = File::open(path).map_err(|e| io_error(path, &e))?;
    if segment.compressed {
        let mut reader = BufReader::with_capacity(1 << 16, GzDecoder::new(BufReader::new(file)));
        load_lines(&mut reader, path, false, index, max_line_len, segment.first)
    } else {
        let mut reader = BufReader::with_capacity(1 << 16, file);
        load_lines(&mut reader, path, newest, index, max_line_len, segment.first)
    }
}

fn load_lines(
    reader: &mut impl BufRead,
    path: &Path,
    recover: bool,
    index: &mut Index,
    max_line_len: usize,
    first: GlobalPosition,
) -> Result<Loaded, EventStoreError> {
    let mut buf = Vec::new();
    let (line, header_len) = read_line(reader, &mut buf, max_line_len).map_err(|e| io_error(path, &e))?;
    let header = match line {
        Line::Complete => Header::decode(&buf).map_err(|problem| unreadable(path, Some(1), problem))?,
        Line::End | Line::Unterminated if recover => {
            // Created, and the process died before its header was complete: nothing was ever committed here.
            return Ok(Loaded { committed_len: 0, headless: true, cut: None });
        }
        Line::End => return Err(unreadable(path, None, "is empty: a closed segment starts with a header")),
        Line::Unterminated | Line::TooLong => return Err(unreadable(path, Some(1), "is not a segment header")),
    };
    if header.first_position != first.get() {
        return Err(unreadable(
            path,
            Some(1),
            format!("says the segment starts at position {}, but its name says {first}", header.first_position),
        ));
    }
    if first != index.next_position() {
        return Err(unreadable(
            path,
            None,
            format!(
                "starts at position {first}, but the segments before it end at position {}: a segment is missing \
                 or does not belong to this store",
                index.last_position()
            ),
        ));
    }

    let mut committed = Loaded { committed_len: header_len, headless: false, cut: None };
    let mut committed_events = index.len();
    let mut offset = header_len;
    let mut line_number = 1;
    let mut last_commit_line = 1;
    let mut pending = 0_u64;
    let damage = loop {
        line_number += 1;
        let (line, consumed) = read_line(reader, &mut buf, max_line_len).map_err(|e| io_error(path, &e))?;
        offset += consumed;
        let problem = match line {
            Line::End => break None,
            Line::Unterminated => "is cut short: the file ends inside it".to_owned(),
            Line::TooLong => format!("is longer than the limit of {max_line_len} bytes (FileConfig::max_line_len)"),
            Line::Complete => match decode_event(&buf, index) {
                Err(problem) => problem,
                Ok(decoded) => match index.refuse(&decoded.event) {
                    Some(problem) => problem,
                    None => {
                        index.push(decoded.event);
                        pending += 1;
                        match decoded.commit {
                            None => continue,
                            Some(size) if size == pending => {
                                committed.committed_len = offset;
                                committed_events = index.len();
                                last_commit_line = line_number;
                                pending = 0;
                                continue;
                            }
                            Some(size) => format!(
                                "closes a commit of {size} events, but {pending} events were written since the \
                                 previous commit"
                            ),
                        }
                    }
                },
            },
        };
        break Some(problem);
    };
    if damage.is_none() && pending == 0 {
        return Ok(committed);
    }
    if damage.is_none() {
        line_number -= 1; // the last line, which left its commit open
    }
    let damaged = damage.is_some();
    let reason = damage.unwrap_or_else(|| "is the last line, and it does not close its commit".to_owned());
    if !recover {
        return Err(unreadable(
            path,
            Some(line_number),
            format!("{reason}; this closed segment must end with a complete commit"),
        ));
    }
    if damaged && later_commit_exists(reader, &mut buf, max_line_len) {
        return Err(unreadable(
            path,
            Some(line_number),
            format!(
                "{reason}; committed events follow it, so it is not a crash's torn tail: repair or restore the file"
            ),
        ));
    }
    index.truncate(committed_events);
    committed.cut =
        Some(Cut { line: last_commit_line + 1, events: usize::try_from(pending).unwrap_or(usize::MAX), reason });
    Ok(committed)
}

/// Whether any complete line after the damage closes a commit (then the damage is not a torn tail).
fn later_commit_exists(reader: &mut impl BufRead, buf: &mut Vec<u8>, max_line_len: usize) -> bool {
    let mut scratch = Index::default();
    loop {
        match read_line(reader, buf, max_line_len) {
            Ok((Line::Complete, _)) => {
                if decode_event(buf, &mut scratch).is_ok_and(|decoded| decoded.commit.is_some()) {
                    return true;
                }
            }
            Ok((Line::TooLong, _)) => {}
            Ok((Line::End | Line::Unterminated, _)) | Err(_) => return false,
        }
    }
}

/// Flushes the directory entry of files created, renamed or deleted in `dir`.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Compresses the closed plain segment `plain` into its `.gz`, then deletes `plain` (see the module doc for
/// why no moment of a crash loses it).
pub(crate) fn compress(plain: &Path) -> io::Result<PathBuf> {
    let name = plain.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(stem) = name.strip_suffix(PLAIN) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a plain segment", plain.display())));
    };
    let dir = plain.parent().unwrap_or_else(|| Path::new("."));
    let temporary = dir.join(format!("{stem}{COMPRESSING}"));
    let compressed = dir.join(format!("{stem}{COMPRESSED}"));
    let mut encoder = GzEncoder::new(File::create(&temporary)?, Compression::fast());
    io::copy(&mut File::open(plain)?, &mut encoder)?;
    let file = encoder.finish()?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, &compressed)?;
    sync_dir(dir)?;
    fs::remove_file(plain)?;
    sync_dir(dir)?;
    Ok(compressed)
}

/// Creates the segment starting at `first` in `dir` with its header, flushed to disk with its directory
/// entry. Fails if it exists.
pub(crate) fn create(dir: &Path, first: GlobalPosition) -> io::Result<(File, PathBuf)> {
    let path = dir.join(file_name(first, false));
    let mut file = fs::OpenOptions::new().append(true).create_new(true).open(&path)?;
    file.write_all(&Header::new(first).encode())?;
    file.sync_data()?;
    sync_dir(dir)?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_carry_their_first_position_and_nothing_else_parses() {
        let name = file_name(GlobalPosition::new(42), true);
        assert_eq!(name, "events-00000000000000000042.jsonl.gz");
        assert_eq!(parse_name(&name), Some((GlobalPosition::new(42), true)));
        assert_eq!(parse_name("events-00000000000000000042.jsonl"), Some((GlobalPosition::new(42), false)));
        for other in ["events-42.jsonl", "events-0000000000000000004x.jsonl", "snapshots.jsonl", "events-.jsonl.gz"] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn lines_longer_than_the_cap_are_skipped_without_being_kept() {
        let mut reader = io::Cursor::new(b"short\nxxxxxxxxxxxxxxxx\nend".to_vec());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 8).ok(), Some((Line::Complete, 6)));
        assert_eq!(buf, b"short");
        assert_eq!(read_line(&mut reader, &mut buf, 8).ok(), Some((Line::TooLong, 17)));
        assert!(buf.len() <= 8);
        assert_eq!(read_line(&mut reader, &mut buf, 8).ok(), Some((Line::Unterminated, 3)));
        assert_eq!(buf, b"end");
        assert_eq!(read_line(&mut reader, &mut buf, 8).ok(), Some((Line::End, 0)));
    }
}
