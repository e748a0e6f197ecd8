//! [`import`]: an archive into a store, keeping ids, versions, order and times; verified first, resumable.

use std::path::Path;

use composable_rust_core::{
    EventId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, RecordedEvent, StreamId, Version,
};

use crate::reader::{ArchiveReader, ReadLimits, Record};
use crate::verify::{VerifySummary, verify};
use crate::{ArchiveError, Progress};

/// Events per [`EventLog::import`](composable_rust_core::backend::EventLog::import) call: one transaction.
const BATCH_EVENTS: usize = 1000;

/// Payload bytes per batch, so that large payloads do not pile up in memory.
const BATCH_BYTES: usize = 8 << 20;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// What the archive holds (from the verification before the import).
    pub archive: VerifySummary,
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

/// Imports the archive at `path` into `store`.
///
/// 1. Verifies the whole archive ([`verify`]); when it is not valid, returns the first problem, naming its
///    line, and writes **nothing**.
/// 2. Writes the events through `EventLog::import`, in batches of up to 1000 events (each batch one
///    transaction, all or nothing), in the archive's order: ids, versions, order, tags and recorded times are
///    kept; positions are the store's own.
/// 3. Saves the snapshots, then the checkpoints, each moved to the position in this store of the last
///    imported event at or below its position in the source.
///
/// When the store fails half way, the batches written stay; running the import again skips what is stored
/// (by id) and writes the rest. An event of the archive that the store holds differently (another event with
/// its id, another event at its version) stops the import with an error naming its line.
///
/// # Errors
/// [`ArchiveError::Invalid`] for a bad archive (nothing written); [`ArchiveError::Store`] when the store
/// refuses or fails, with the archive line of the event concerned; [`ArchiveError::Io`] when reading fails.
pub async fn import(
    store: &dyn EventStore,
    path: &Path,
    limits: ReadLimits,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<ImportSummary, ArchiveError> {
    let archive = verify(path, limits, |_| {}).await?;
    let mut reader = ArchiveReader::open(path, limits).await?;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut batch = Batch::default();
    let mut events = 0;
    let mut snapshots = 0;
    while let Some(record) = reader.next_record().await? {
        let line = reader.line();
        match record {
            Record::Header(_) | Record::Trailer(_) => {}
            Record::Checkpoint { handler, position } => {
                checkpoints.push(Checkpoint { handler, source: position, target: GlobalPosition::START });
            }
            Record::Event(event) => {
                batch.push(event, line);
                if batch.is_full() {
                    events += write_batch(store, &mut batch, &mut checkpoints).await?;
                    progress(Progress { events, bytes: reader.bytes_read() });
                }
            }
            Record::Snapshot(snapshot) => {
                events += write_batch(store, &mut batch, &mut checkpoints).await?;
                store.save_snapshot(&snapshot).await.map_err(|source| ArchiveError::Store {
                    action: format!("save the snapshot of stream {}", snapshot.stream_id),
                    line: Some(line),
                    source,
                })?;
                snapshots += 1;
            }
        }
    }
    events += write_batch(store, &mut batch, &mut checkpoints).await?;
    progress(Progress { events, bytes: reader.bytes_read() });
    for checkpoint in &checkpoints {
        store.save_checkpoint(&checkpoint.handler, checkpoint.target).await.map_err(|source| ArchiveError::Store {
            action: format!("save the checkpoint of handler {:?}", checkpoint.handler),
            line: None,
            source,
        })?;
    }
    reader.finish()?;
    Ok(ImportSummary { archive, snapshots, checkpoints: u64::try_from(checkpoints.len()).unwrap_or(u64::MAX) })
}

/// Imports the events of `batch` (if any), empties it, and moves the checkpoints along. Returns the number
/// of events imported.
async fn write_batch(
    store: &dyn EventStore,
    batch: &mut Batch,
    checkpoints: &mut [Checkpoint],
) -> Result<u64, ArchiveError> {
    if batch.events.is_empty() {
        return Ok(0);
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
    for (source, target) in sources.into_iter().zip(positions) {
        for checkpoint in checkpoints.iter_mut().filter(|c| c.source >= source) {
            checkpoint.target = target;
        }
    }
    batch.lines.clear();
    batch.bytes = 0;
    Ok(u64::try_from(count).unwrap_or(u64::MAX))
}
