//! [`export`]: a store's events (and snapshots and checkpoints) into an archive, in constant memory.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use composable_rust_core::{EventStore, GlobalPosition, LogFilter, RecordedEvent, StreamId, StreamRemoval, Version};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

pub use crate::format::Selection;
use crate::format::{CheckpointLine, EventLine, FORMAT_NAME, FORMAT_VERSION, Header, Line, SnapshotLine, Trailer};
use crate::verify::hex;
use crate::{ArchiveError, Progress};

/// Events per read of the global log, and streams per listing.
const PAGE: usize = 1000;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Event lines.
    pub events: u64,
    /// Streams with events.
    pub streams: u64,
    /// Snapshot lines.
    pub snapshots: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
    /// Bytes written, trailer included.
    pub bytes: u64,
    /// The SHA-256 in the trailer.
    pub sha256: String,
}

/// Writes lines and hashes every byte until the trailer.
struct Lines<W> {
    out: BufWriter<W>,
    hasher: Sha256,
    bytes: u64,
    buffer: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Lines<W> {
    async fn write(&mut self, line: &Line, hashed: bool) -> Result<(), ArchiveError> {
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, line)
            .map_err(|e| ArchiveError::io("encode an archive line")(std::io::Error::other(e)))?;
        self.buffer.push(b'\n');
        if hashed {
            self.hasher.update(&self.buffer);
        }
        self.bytes += u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        self.out.write_all(&self.buffer).await.map_err(ArchiveError::io("write the archive"))
    }

    /// Writes lines that [`encode_page`] encoded and hashed.
    async fn write_encoded(&mut self, encoded: &[u8]) -> Result<(), ArchiveError> {
        self.bytes += u64::try_from(encoded.len()).unwrap_or(u64::MAX);
        self.out.write_all(encoded).await.map_err(ArchiveError::io("write the archive"))
    }
}

/// A page of events encoded as archive lines, with the hash over every line up to its end.
struct EncodedPage {
    bytes: Vec<u8>,
    hasher: Sha256,
    events: u64,
}

/// Encodes `page` as event lines into `buffer` (cleared first) and adds them to `hasher`: the same bytes as
/// [`Lines::write`] of each event. CPU work, run on a blocking thread while the next page is read.
fn encode_page(page: &[RecordedEvent], mut hasher: Sha256, mut buffer: Vec<u8>) -> Result<EncodedPage, ArchiveError> {
    buffer.clear();
    for event in page {
        serde_json::to_writer(&mut buffer, &Line::Event(EventLine::from_recorded(event)))
            .map_err(|e| ArchiveError::io("encode an archive line")(std::io::Error::other(e)))?;
        buffer.push(b'\n');
    }
    // One update over the page hashes the same bytes, in the same order, as one per line.
    hasher.update(&buffer);
    Ok(EncodedPage { bytes: buffer, hasher, events: u64::try_from(page.len()).unwrap_or(u64::MAX) })
}

/// An [`encode_page`] running on a blocking thread.
type Encoding = tokio::task::JoinHandle<Result<EncodedPage, ArchiveError>>;

/// Starts encoding `page` on a blocking thread, so that the caller can read the next page meanwhile.
fn start_encoding(page: Vec<RecordedEvent>, hasher: Sha256, buffer: Vec<u8>) -> Encoding {
    tokio::task::spawn_blocking(move || encode_page(&page, hasher, buffer))
}

/// Waits for an [`Encoding`].
async fn finish_encoding(encoding: Encoding) -> Result<EncodedPage, ArchiveError> {
    ArchiveError::join(encoding, "encode an archive line").await?
}

/// Exports the events of `store` that a retention plan removes (`removals`) into `out`, as an archive with
/// [`Selection::Removed`] for run `run`: the events in global order, read a page at a time, no snapshots or
/// checkpoints. What `retention apply` writes before it removes anything.
///
/// Memory: a page of events and the set of removals.
///
/// # Errors
/// As [`export`]; and [`ArchiveError::Store`] when an event the removals name is not in the store (the
/// store changed since the plan: plan again).
pub async fn export_removals<W: AsyncWrite + Unpin>(
    store: &dyn EventStore,
    removals: &[StreamRemoval],
    run: &str,
    out: W,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<ExportSummary, ArchiveError> {
    let failed = |action: &str| {
        let action = action.to_owned();
        move |source| ArchiveError::Store { action, line: None, source }
    };
    let backend = store.health_check().await.map_err(failed("answer a health check"))?.backend;
    let mut wanted: HashMap<&StreamId, HashSet<Version>> = HashMap::new();
    for removal in removals {
        wanted.entry(&removal.stream_id).or_default().extend(removal.versions.iter().copied());
    }
    let expected: usize = wanted.values().map(HashSet::len).sum();
    let mut lines =
        Lines { out: BufWriter::with_capacity(1 << 16, out), hasher: Sha256::new(), bytes: 0, buffer: Vec::new() };
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        version: FORMAT_VERSION,
        source_backend: backend.to_owned(),
        written_at: Utc::now(),
        selection: Selection::Removed { run: run.to_owned() },
    };
    lines.write(&Line::Header(header), true).await?;
    let mut events = 0;
    let mut after = GlobalPosition::START;
    while events < expected as u64 {
        let page = store.read_all(after, &LogFilter::all(), PAGE).await.map_err(failed("read the global log"))?;
        for event in &page {
            if wanted.get(&event.stream_id).is_some_and(|versions| versions.contains(&event.version)) {
                lines.write(&Line::Event(EventLine::from_recorded(event)), true).await?;
                events += 1;
            }
        }
        progress(Progress { events, bytes: lines.bytes });
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.position,
            _ => break,
        }
    }
    if events != expected as u64 {
        return Err(ArchiveError::Store {
            action: "archive the events the retention plan removes".to_owned(),
            line: None,
            source: composable_rust_core::EventStoreError::InvalidInput(composable_rust_core::InvalidInput::Other(
                format!(
                    "the plan names {expected} events but only {events} are in the store: it changed since the plan; \
                     plan again"
                ),
            )),
        });
    }
    let streams = u64::try_from(wanted.len()).unwrap_or(u64::MAX);
    let sha256 = hex(&lines.hasher.clone().finalize());
    let trailer = Trailer { events, snapshots: 0, checkpoints: 0, sha256: sha256.clone() };
    lines.write(&Line::Trailer(trailer), false).await?;
    lines.out.flush().await.map_err(ArchiveError::io("write the archive"))?;
    progress(Progress { events, bytes: lines.bytes });
    Ok(ExportSummary { events, streams, snapshots: 0, checkpoints: 0, bytes: lines.bytes, sha256 })
}

/// The bytes `event` takes as a line of an archive (the size a retention plan reports).
#[must_use]
pub fn archived_size(event: &RecordedEvent) -> u64 {
    let line = Line::Event(EventLine::from_recorded(event));
    serde_json::to_vec(&line).map_or(0, |bytes| bytes.len() as u64 + 1)
}

/// Exports the events of `store` that `selection` names into `out`, as an archive (see [`crate::format`]):
/// the checkpoints (whole log only), the events in global order, read a page at a time, the snapshots of
/// the exported streams (whole log and category; only those no newer than the events exported), and the
/// trailer. `progress` hears about every page. The snapshots are loaded a page of streams at a time
/// ([`SnapshotStore::load_snapshots`](composable_rust_core::backend::SnapshotStore::load_snapshots)).
///
/// Pages of events go through a pipeline: one page is encoded and hashed on a blocking thread (tokio's
/// `spawn_blocking`) while the next is read, so the store's round trip and the encoding overlap.
///
/// Memory: two pages of events and the encoded lines of two, and one entry per exported stream (its last
/// version, so that no snapshot newer than the archived events is written when writers run during the
/// export).
///
/// # Errors
/// [`ArchiveError::Store`] when the store fails; [`ArchiveError::Io`] when writing fails. What was written
/// then is not a valid archive (it has no trailer); write to a temporary file and rename it when this
/// returns `Ok`, as the admin CLI does.
pub async fn export<W: AsyncWrite + Unpin>(
    store: &dyn EventStore,
    selection: &Selection,
    out: W,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<ExportSummary, ArchiveError> {
    let failed = |action: &str| {
        let action = action.to_owned();
        move |source| ArchiveError::Store { action, line: None, source }
    };
    if let Selection::Removed { .. } = selection {
        return Err(ArchiveError::Store {
            action: "export".to_owned(),
            line: None,
            source: composable_rust_core::EventStoreError::InvalidInput(composable_rust_core::InvalidInput::Other(
                "an archive of removed events is written by export_removals, from a retention plan".to_owned(),
            )),
        });
    }
    let backend = store.health_check().await.map_err(failed("answer a health check"))?.backend;
    let mut lines =
        Lines { out: BufWriter::with_capacity(1 << 16, out), hasher: Sha256::new(), bytes: 0, buffer: Vec::new() };
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        version: FORMAT_VERSION,
        source_backend: backend.to_owned(),
        written_at: Utc::now(),
        selection: selection.clone(),
    };
    lines.write(&Line::Header(header), true).await?;

    let mut checkpoints = 0;
    if *selection == Selection::All {
        for (handler, position) in store.list_checkpoints().await.map_err(failed("list the checkpoints"))? {
            lines.write(&Line::Checkpoint(CheckpointLine { handler, position: position.get() }), true).await?;
            checkpoints += 1;
        }
    }

    let (filter, mut after, up_to) = match selection {
        Selection::All | Selection::Removed { .. } => (LogFilter::all(), GlobalPosition::START, None),
        Selection::Category(category) => (LogFilter::all().category(category), GlobalPosition::START, None),
        Selection::Positions { after, up_to } => (LogFilter::all(), GlobalPosition::new(*after), *up_to),
    };
    let mut streams: HashMap<StreamId, u64> = HashMap::new();
    let mut events = 0;
    // A pipeline of two pages: while one page is encoded and hashed on a blocking thread, the next is read
    // from the store. Only one encoding runs at a time, since each continues the hash of the one before.
    let mut encoding: Option<Encoding> = None;
    let mut spare = Vec::new();
    loop {
        let mut page = store.read_all(after, &filter, PAGE).await.map_err(failed("read the global log"))?;
        let mut last_page = page.len() < PAGE;
        if let Some(up_to) = up_to {
            if let Some(beyond) = page.iter().position(|event| event.position.get() > up_to) {
                page.truncate(beyond);
                last_page = true;
            }
        }
        for event in &page {
            streams.insert(event.stream_id.clone(), event.version.get());
        }
        if let Some(event) = page.last() {
            after = event.position;
        }
        let mut previous = match encoding.take() {
            Some(previous) => Some(finish_encoding(previous).await?),
            None => None,
        };
        // The hash moves from page to page through the encodings, and back into `lines` after the last.
        let hasher = match &mut previous {
            Some(encoded) => std::mem::take(&mut encoded.hasher),
            None => std::mem::take(&mut lines.hasher),
        };
        encoding = Some(start_encoding(page, hasher, std::mem::take(&mut spare)));
        if let Some(encoded) = previous {
            lines.write_encoded(&encoded.bytes).await?;
            events += encoded.events;
            progress(Progress { events, bytes: lines.bytes });
            spare = encoded.bytes;
        }
        if last_page {
            break;
        }
    }
    if let Some(last) = encoding.take() {
        let encoded = finish_encoding(last).await?;
        lines.hasher = encoded.hasher;
        lines.write_encoded(&encoded.bytes).await?;
        events += encoded.events;
        progress(Progress { events, bytes: lines.bytes });
    }

    let mut snapshots = 0;
    let prefix = match selection {
        Selection::All => Some(String::new()),
        Selection::Category(category) => Some(format!("{category}{}", StreamId::CATEGORY_SEPARATOR)),
        Selection::Positions { .. } | Selection::Removed { .. } => None,
    };
    if let Some(prefix) = prefix {
        let mut last: Option<StreamId> = None;
        loop {
            let page = store.list_streams(&prefix, last.as_ref(), PAGE).await.map_err(failed("list the streams"))?;
            // One round trip for the page's snapshots, in the page's (stream id) order.
            let ids: Vec<StreamId> = page.iter().map(|info| info.stream_id.clone()).collect();
            let found = store.load_snapshots(&ids).await.map_err(failed("load the snapshots of a page of streams"))?;
            for snapshot in found {
                let exported = streams.get(&snapshot.stream_id).copied().unwrap_or(0);
                if snapshot.version.get() <= exported {
                    lines.write(&Line::Snapshot(SnapshotLine::from_snapshot(&snapshot)), true).await?;
                    snapshots += 1;
                }
            }
            match page.last() {
                Some(info) if page.len() == PAGE => last = Some(info.stream_id.clone()),
                _ => break,
            }
        }
    }

    let sha256 = hex(&lines.hasher.clone().finalize());
    let trailer = Trailer { events, snapshots, checkpoints, sha256: sha256.clone() };
    lines.write(&Line::Trailer(trailer), false).await?;
    lines.out.flush().await.map_err(ArchiveError::io("write the archive"))?;
    progress(Progress { events, bytes: lines.bytes });
    Ok(ExportSummary {
        events,
        streams: u64::try_from(streams.len()).unwrap_or(u64::MAX),
        snapshots,
        checkpoints,
        bytes: lines.bytes,
        sha256,
    })
}
