//! [`import`]: an archive into a store, keeping ids, versions, order and times; verified first, resumable.

use std::path::{Path, PathBuf};

use composable_rust_core::{
    EventId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter, RecordedEvent,
    Snapshot, StreamId, Version,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::reader::{DecodingReader, ReadLimits, Record};
use crate::verify::{Verifier, VerifySummary, verify};
use crate::{ArchiveError, Progress};

/// Events per [`EventLog::import`](composable_rust_core::backend::EventLog::import) call: one transaction.
/// Each costs a few round trips and one flush of the log whatever its size (on PostgreSQL: begin, tag locks,
/// stream versions, insert, commit), so larger batches amortise them; 5000 events of ~100 bytes stay a few MB.
const BATCH_EVENTS: usize = 5000;

/// Payload bytes per batch, so that large payloads do not pile up in memory.
const BATCH_BYTES: usize = 8 << 20;

/// Snapshots per [`SnapshotStore::save_snapshots`](composable_rust_core::SnapshotStore::save_snapshots)
/// call (one statement on PostgreSQL, one transaction on SQLite), unless [`BATCH_BYTES`] of payload come first.
const SNAPSHOTS_PER_SAVE: usize = 1000;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// What the archive holds (from the verification before the import).
    pub archive: VerifySummary,
    /// Events this import wrote. The archive's other events were stored already (by an earlier run of the
    /// same import, say) and were left as they were. Counted by position: an event stored above the log's
    /// newest position at the start of the import counts as written by it.
    pub written: u64,
    /// Snapshots saved (a stored newer snapshot is kept; see `SnapshotStore::save_snapshot`).
    pub snapshots: u64,
    /// Checkpoints saved, at the matching positions of this store.
    pub checkpoints: u64,
}

/// A checkpoint of the archive and the position in this store that it maps to.
struct Checkpoint {
    handler: String,
    /// Its position in the source store.
    source: u64,
    /// The position in this store of the last imported event at or below `source`.
    target: GlobalPosition,
}

/// The events of one batch, and for each the archive line it came from with what a store error names.
#[derive(Default)]
struct Batch {
    events: Vec<RecordedEvent>,
    lines: Vec<(u64, EventId, StreamId, Version)>,
    bytes: usize,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.events.len() >= BATCH_EVENTS || self.bytes >= BATCH_BYTES
    }

    fn push(&mut self, event: RecordedEvent, line: u64) {
        self.bytes += event.payload.len();
        self.lines.push((line, event.id, event.stream_id.clone(), event.version));
        self.events.push(event);
    }

    /// The archive line of the event an error of the store names (else the batch's first line).
    fn line_of(&self, error: &EventStoreError) -> Option<u64> {
        let found = match error {
            EventStoreError::ConcurrencyConflict { stream_id, expected: ExpectedVersion::Exact(before), .. } => {
                self.lines.iter().find(|(_, _, stream, version)| stream == stream_id && *version == before.next())
            }
            EventStoreError::EventIdInUse { id, .. } => self.lines.iter().find(|(_, event_id, ..)| event_id == id),
            _ => None,
        };
        found.or_else(|| self.lines.first()).map(|(line, ..)| *line)
    }
}

/// Snapshots waiting to be saved together, and the archive line of the first.
#[derive(Default)]
struct Snapshots {
    snapshots: Vec<Snapshot>,
    first_line: u64,
    bytes: usize,
}

impl Snapshots {
    fn push(&mut self, snapshot: Snapshot, line: u64) {
        if self.snapshots.is_empty() {
            self.first_line = line;
        }
        self.bytes += snapshot.payload.len();
        self.snapshots.push(snapshot);
    }

    fn is_full(&self) -> bool {
        self.snapshots.len() >= SNAPSHOTS_PER_SAVE || self.bytes >= BATCH_BYTES
    }

    /// Saves the snapshots waiting (if any) and empties the list.
    async fn save(&mut self, store: &dyn EventStore) -> Result<(), ArchiveError> {
        if self.snapshots.is_empty() {
            return Ok(());
        }
        let snapshots = std::mem::take(&mut self.snapshots);
        self.bytes = 0;
        store.save_snapshots(&snapshots).await.map_err(|source| ArchiveError::Store {
            action: format!("save {} snapshots", snapshots.len()),
            line: Some(self.first_line),
            source,
        })
    }
}

/// What the reading half of an import hands the writing half, in archive order.
enum Item {
    /// A checkpoint line.
    Checkpoint(Checkpoint),
    /// A full batch of events (or the last one before a snapshot or the end), and the bytes read so far.
    Events(Batch, u64),
    /// A snapshot, and its line.
    Snapshot(Snapshot, u64),
    /// The end of a valid archive, and its size in bytes.
    Done(u64),
}

/// An archive checked whole by [`VerifiedArchive::check`], ready to import: the first half of [`import`],
/// for a caller that wants to know the archive is valid before it opens (or creates) the store.
#[derive(Debug, Clone)]
pub struct VerifiedArchive {
    path: PathBuf,
    limits: ReadLimits,
    summary: VerifySummary,
}

impl VerifiedArchive {
    /// Checks the whole archive at `path` ([`verify`]), reporting the bytes read to `progress`.
    ///
    /// # Errors
    /// [`ArchiveError::Invalid`] naming the first bad line; [`ArchiveError::Io`] when reading fails.
    pub async fn check(
        path: &Path,
        limits: ReadLimits,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Self, ArchiveError> {
        let summary = verify(path, limits, progress).await?;
        Ok(Self { path: path.to_owned(), limits, summary })
    }

    /// What the archive holds.
    #[must_use]
    pub fn summary(&self) -> &VerifySummary {
        &self.summary
    }

    /// Imports the archive into `store`: steps 2 and 3 of [`import`]. The archive is read and checked
    /// again as it is written, so a file changed since [`VerifiedArchive::check`] stops the import at its
    /// first bad line (the batches before it stay written, as when the store fails half way).
    ///
    /// # Errors
    /// As [`import`].
    pub async fn import(
        self,
        store: &dyn EventStore,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<ImportSummary, ArchiveError> {
        let Self { path, limits, summary: archive } = self;
        let newest_before = newest_position(store).await?;
        // Two items in flight: memory stays at a few batches whatever the archive's size.
        let (sender, mut items) = mpsc::channel(2);
        let mut reader = AbortOnDrop(tokio::spawn(read_items(path, limits, sender)));
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        let mut events = 0;
        let mut written = 0;
        let mut snapshots = 0;
        let mut pending = Snapshots::default();
        loop {
            let Some(item) = items.recv().await else {
                // The reader sends `Done` or an error before it ends; only a panic ends it without either.
                let ended = (&mut reader.0).await.err().map_or_else(|| "it ended early".to_owned(), |e| e.to_string());
                return Err(ArchiveError::io("read the archive")(std::io::Error::other(format!(
                    "the archive's reader stopped before the end: {ended}"
                ))));
            };
            match item? {
                Item::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
                Item::Events(mut batch, bytes) => {
                    let (count, new) = write_batch(store, &mut batch, &mut checkpoints, newest_before).await?;
                    events += count;
                    written += new;
                    progress(Progress { events, bytes });
                }
                Item::Snapshot(snapshot, line) => {
                    pending.push(snapshot, line);
                    if pending.is_full() {
                        pending.save(store).await?;
                    }
                    snapshots += 1;
                }
                Item::Done(bytes) => {
                    pending.save(store).await?;
                    progress(Progress { events, bytes });
                    break;
                }
            }
        }
        for checkpoint in &checkpoints {
            store.save_checkpoint(&checkpoint.handler, checkpoint.target).await.map_err(|source| {
                ArchiveError::Store {
                    action: format!("save the checkpoint of handler {:?}", checkpoint.handler),
                    line: None,
                    source,
                }
            })?;
        }
        let checkpoints = u64::try_from(checkpoints.len()).unwrap_or(u64::MAX);
        Ok(ImportSummary { archive, written, snapshots, checkpoints })
    }
}

/// Imports the archive at `path` into `store`.
///
/// 1. Verifies the whole archive ([`verify`]); when it is not valid, returns the first problem, naming its
///    line, and writes **nothing**.
/// 2. Writes the events through `EventLog::import`, in batches of up to 5000 events (each batch one
///    transaction, all or nothing), in the archive's order: ids, versions, order, tags and recorded times are
///    kept; positions are the store's own. The archive is read (and checked again) on a task of its own, its
///    lines decoded on blocking threads, a batch ahead of the store, so that decoding the next batch overlaps
///    with writing this one.
/// 3. Saves the snapshots (up to 1000 at once), then the checkpoints, each moved to the position in this
///    store of the last imported event at or below its position in the source.
///
/// When the store fails half way, the batches written stay; running the import again skips what is stored
/// (by id) and writes the rest ([`ImportSummary::written`] counts what it wrote). An event of the archive
/// that the store holds differently (another event with its id, another event at its version) stops the
/// import with an error naming its line.
///
/// `progress` hears of the second step. [`VerifiedArchive`] runs the two halves separately.
///
/// # Errors
/// [`ArchiveError::Invalid`] for a bad archive (nothing written); [`ArchiveError::Store`] when the store
/// refuses or fails, with the archive line of the event concerned; [`ArchiveError::Io`] when reading fails.
pub async fn import(
    store: &dyn EventStore,
    path: &Path,
    limits: ReadLimits,
    progress: impl FnMut(Progress) + Send,
) -> Result<ImportSummary, ArchiveError> {
    VerifiedArchive::check(path, limits, |_| {}).await?.import(store, progress).await
}

/// The position of the newest event in `store` (the start for an empty store): the events an import
/// writes are stored above it (`EventLog::import`), the ones it skips at or below it.
async fn newest_position(store: &dyn EventStore) -> Result<GlobalPosition, ArchiveError> {
    let newest = store.read_log(LogCursor::Newest, &LogFilter::all(), 1).await.map_err(|source| {
        ArchiveError::Store { action: "read the newest event of the store".to_owned(), line: None, source }
    })?;
    Ok(newest.first().map_or(GlobalPosition::START, |event| event.position))
}

/// Aborts a task when its handle is dropped: an import that fails or is cancelled stops its reader.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reading half of [`import`]: reads and checks the archive at `path` again and sends its checkpoints,
/// its events in batches and its snapshots, in order, then `Done`; or, at the first problem, its error.
/// Stops when the writing half is gone.
async fn read_items(path: PathBuf, limits: ReadLimits, items: mpsc::Sender<Result<Item, ArchiveError>>) {
    if let Err(error) = send_items(&path, limits, &items).await {
        let _ = items.send(Err(error)).await;
    }
}

async fn send_items(
    path: &Path,
    limits: ReadLimits,
    items: &mpsc::Sender<Result<Item, ArchiveError>>,
) -> Result<(), ArchiveError> {
    let mut reader = DecodingReader::open(path, limits).await?;
    let mut verifier = Verifier::new();
    let mut batch = Batch::default();
    // A closed channel means the writing half stopped (it failed or was dropped): nothing more to do.
    let send = |item| async move { items.send(Ok(item)).await.is_ok() };
    while let Some(mut block) = reader.next().await? {
        for (raw, decoded) in block.lines() {
            let record = verifier.accept(raw, decoded)?;
            let line = verifier.line();
            let item = match record {
                Record::Header(_) | Record::Trailer(_) => None,
                Record::Checkpoint { handler, position } => {
                    Some(Item::Checkpoint(Checkpoint { handler, source: position, target: GlobalPosition::START }))
                }
                Record::Event(event) => {
                    batch.push(event, line);
                    batch.is_full().then(|| Item::Events(std::mem::take(&mut batch), reader.bytes_read()))
                }
                Record::Snapshot(snapshot) => {
                    if !batch.events.is_empty()
                        && !send(Item::Events(std::mem::take(&mut batch), reader.bytes_read())).await
                    {
                        return Ok(());
                    }
                    Some(Item::Snapshot(snapshot, line))
                }
            };
            if let Some(item) = item {
                if !send(item).await {
                    return Ok(());
                }
            }
        }
    }
    if !batch.events.is_empty() && !send(Item::Events(batch, reader.bytes_read())).await {
        return Ok(());
    }
    let bytes = reader.bytes_read();
    verifier.finish()?;
    send(Item::Done(bytes)).await;
    Ok(())
}

/// Imports the events of `batch` (if any), empties it, and moves the checkpoints along. Returns the number
/// of events imported, and of those the number written (stored above `newest_before`, the newest position
/// before the import started).
async fn write_batch(
    store: &dyn EventStore,
    batch: &mut Batch,
    checkpoints: &mut [Checkpoint],
    newest_before: GlobalPosition,
) -> Result<(u64, u64), ArchiveError> {
    if batch.events.is_empty() {
        return Ok((0, 0));
    }
    let sources: Vec<u64> = batch.events.iter().map(|e| e.position.get()).collect();
    let count = batch.events.len();
    let events = std::mem::take(&mut batch.events);
    let positions = match store.import(events).await {
        Ok(positions) => positions,
        Err(source) => {
            let line = batch.line_of(&source);
            return Err(ArchiveError::Store { action: format!("import {count} events"), line, source });
        }
    };
    let written = positions.iter().filter(|position| **position > newest_before).count();
    for (source, target) in sources.into_iter().zip(positions) {
        for checkpoint in checkpoints.iter_mut().filter(|c| c.source >= source) {
            checkpoint.target = target;
        }
    }
    batch.lines.clear();
    batch.bytes = 0;
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Ok((as_u64(count), as_u64(written)))
}
