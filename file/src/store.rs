//! [`FileEventStore`]: opening a directory (lock, recovery, index), the commit path, and the four job
//! traits of the event store contract.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use chrono::{SubsecRound, Utc};
use composable_rust_core::backend::{
    EventLog, HandlerLease, ImportStep, LocalLeases, SnapshotStore, StoreLifecycle, SubscriptionStore,
    check_atomic_append, plan_import, validate_append, validate_atomic_append, validate_handler_name, validate_import,
};
use composable_rust_core::{
    AppendResult, AtomicAppend, Durability, EventId, EventQuery, EventStoreError, EventStream, ExpectedVersion,
    GlobalPosition, HealthReport, InvalidInput, LogCursor, LogFilter, NewEvent, QueryPage, RecordedEvent, Snapshot,
    StoreStats, StreamId, StreamInfo, StreamRange, Version, async_trait,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::config::FileConfig;
use crate::index::Index;
use crate::line::{Header, encode_event, format_time};
use crate::lock::DirLock;
use crate::segment::{self, Segment};
use crate::state::{StateFile, StoredBatch, StoredCheckpoint, StoredSnapshot};

/// How many events [`EventLog::read_stream`] copies per lock acquisition.
const READ_PAGE: usize = 512;

/// The name of the snapshots file in a store's directory.
const SNAPSHOTS_FILE: &str = "snapshots.jsonl";
/// The name of the checkpoints file in a store's directory.
const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
/// The name of the retention record in a store's directory.
const RETENTION_FILE: &str = "retention.jsonl";

/// An [`EventStore`](composable_rust_core::EventStore) in a directory of append-only JSONL segment files,
/// for development and single-process services (see the [crate documentation](crate)).
///
/// Cheap to clone: clones share the open files and the index. One store per directory at a time, in this
/// process or any other: a second [`open`](FileEventStore::open) fails with [`EventStoreError::InUse`].
/// Its methods need a tokio runtime (file writes run on tokio's blocking threads).
///
/// ```
/// use composable_rust_core::backend::EventLog;
/// use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange, Version};
/// use composable_rust_file::FileEventStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = FileEventStore::open(dir.path().join("events")).await?;
/// let order = StreamId::new("order-1")?;
/// let placed = NewEvent::new("OrderPlaced.v1", CodecId::Json, br#"{"items":2}"#.to_vec(), Metadata::default());
/// store.append(&order, ExpectedVersion::NoStream, vec![placed]).await?;
/// drop(store);
///
/// // Another run of the program finds the event again.
/// let store = FileEventStore::open(dir.path().join("events")).await?;
/// let events = store.load_stream(&order, StreamRange::all()).await?;
/// assert_eq!(events[0].version, Version::FIRST);
/// assert_eq!(&events[0].payload[..], br#"{"items":2}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FileEventStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    config: FileConfig,
    pub(crate) index: RwLock<Index>,
    /// `None` once the store is closed.
    pub(crate) writer: Mutex<Option<Writer>>,
    pub(crate) snapshots: StateFile<StoredSnapshot>,
    /// The retention record: one line per removal batch (`retention.jsonl`).
    pub(crate) retention: StateFile<StoredBatch>,
    checkpoints: StateFile<StoredCheckpoint>,
    /// Bumped after every commit: the wake-up behind `commit_notifications`.
    commits: tokio::sync::watch::Sender<u64>,
    /// Handler leases; the directory lock makes this store the only one on its directory.
    leases: LocalLeases,
    /// Held until the store is closed or dropped.
    lock: Mutex<Option<DirLock>>,
}

/// The open segment and the segments being compressed.
pub(crate) struct Writer {
    file: File,
    path: PathBuf,
    /// The length of the committed content of `file`: where the next commit starts.
    len: u64,
    /// Why the segment can take no more writes: a failed write could not be taken back, so its end is
    /// unknown. Reopening the store cuts the damage.
    broken: Option<String>,
    /// Background compressions of closed segments, joined on close.
    compressions: Vec<JoinHandle<()>>,
    /// The lines of the commit being written, reused between commits.
    buf: Vec<u8>,
}

impl std::fmt::Debug for FileEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEventStore")
            .field("dir", &self.inner.dir)
            .field("events", &read(&self.inner.index).len())
            .finish_non_exhaustive()
    }
}

// A panic while a lock is held cannot leave the index or a file half-updated in a way that breaks the
// contract (a commit is written to disk before the index changes, and the index changes in one push per
// event after all checks), so a poisoned lock is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read(index: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write(index: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

impl FileEventStore {
    /// Opens the store in `dir` with the default [`FileConfig`], creating the directory if needed.
    ///
    /// # Errors
    /// As [`FileEventStore::open_with`].
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, EventStoreError> {
        Self::open_with(dir, FileConfig::default()).await
    }

    /// Opens the store in `dir`: takes its lock, reads every segment back into the index (cutting the
    /// uncommitted tail a crash left, with a warning in the log) and opens the newest segment for appends.
    ///
    /// # Errors
    /// [`EventStoreError::InUse`] when another process (or another store in this process) has the
    /// directory open; [`EventStoreError::Schema`] with
    /// [`SchemaError::Unreadable`](composable_rust_core::SchemaError::Unreadable) naming the file and line of
    /// damage that is not a crash's torn tail; [`EventStoreError::Backend`] when a file cannot be read or
    /// written.
    pub async fn open_with(dir: impl Into<PathBuf>, config: FileConfig) -> Result<Self, EventStoreError> {
        let dir = dir.into();
        let operation = format!("open the file event store at {}", dir.display());
        tokio::task::spawn_blocking(move || open_blocking(dir, config))
            .await
            .map_err(|e| EventStoreError::backend(operation, e))?
    }

    /// The store's directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The shared state, for the retention module.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Runs `work` on tokio's blocking threads: file writes and flushes must not stall the runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        operation: impl Into<String>,
        work: impl FnOnce(&Inner) -> Result<T, EventStoreError> + Send + 'static,
    ) -> Result<T, EventStoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner)).await.map_err(|e| EventStoreError::backend(operation, e))?
    }
}

fn open_blocking(dir: PathBuf, config: FileConfig) -> Result<FileEventStore, EventStoreError> {
    let failed = |what: &str, e: std::io::Error| EventStoreError::backend(format!("{what} in {}", dir.display()), e);
    fs::create_dir_all(&dir).map_err(|e| failed("create the store directory", e))?;
    let dir_lock = DirLock::acquire(&dir)?;
    let segments = segment::list(&dir).map_err(|e| failed("list the segments", e))?;
    let mut index = Index::default();
    let mut newest = None;
    for (number, found) in segments.iter().enumerate() {
        let is_newest = number + 1 == segments.len();
        let loaded = segment::load(found, is_newest, &mut index, config.max_line_len)?;
        if is_newest {
            newest = Some(loaded);
        }
    }
    // The state files are read before the segment's tail is cut, so that an open they refuse changes nothing.
    let snapshots = StateFile::open(
        dir.join(SNAPSHOTS_FILE),
        config.max_line_len,
        config.durability,
        |key, value: &StoredSnapshot| value.to_snapshot(key).map(drop),
    )?;
    let checkpoints = StateFile::open(
        dir.join(CHECKPOINTS_FILE),
        config.max_line_len,
        config.durability,
        |key, _: &StoredCheckpoint| validate_handler_name(key).map_err(|e| e.to_string()),
    )?;
    // Removals recorded by retention, applied to the index: the events stay in their segments (which are
    // never rewritten) but leave every read.
    let retention =
        StateFile::open(dir.join(RETENTION_FILE), config.max_line_len, config.durability, |_, batch: &StoredBatch| {
            batch.check(index.len())
        })?;
    for (_, batch) in retention.all() {
        for removed in &batch.removed {
            index.remove(GlobalPosition::new(removed.position));
        }
    }
    let mut writer = match (segments.last(), newest) {
        (Some(last), Some(loaded)) if !last.compressed => reopen_segment(last, &loaded, &index)?,
        _ => {
            let (file, path) =
                segment::create(&dir, index.next_position()).map_err(|e| failed("create a segment", e))?;
            Writer::new(file, path).map_err(|e| failed("create a segment", e))?
        }
    };
    let newest_path = writer.path.clone();
    for closed in segments.iter().filter(|s| !s.compressed && s.path != newest_path) {
        // A closed segment whose compression a crash interrupted: finish it now, in the background.
        writer.compress_in_background(closed.path.clone());
    }
    let (commits, _) = tokio::sync::watch::channel(0);
    Ok(FileEventStore {
        inner: Arc::new(Inner {
            dir,
            config,
            index: RwLock::new(index),
            writer: Mutex::new(Some(writer)),
            snapshots,
            checkpoints,
            retention,
            commits,
            leases: LocalLeases::new(),
            lock: Mutex::new(Some(dir_lock)),
        }),
    })
}

/// Opens the newest segment for appends, cutting what recovery found uncommitted.
fn reopen_segment(last: &Segment, loaded: &segment::Loaded, index: &Index) -> Result<Writer, EventStoreError> {
    let failed = |e: std::io::Error| EventStoreError::backend(format!("recover {}", last.path.display()), e);
    let mut file = OpenOptions::new().append(true).open(&last.path).map_err(failed)?;
    if loaded.headless {
        if last.first != index.next_position() {
            return Err(segment::unreadable(
                &last.path,
                None,
                format!(
                    "starts at position {}, but the segments before it end at {}",
                    last.first,
                    index.last_position()
                ),
            ));
        }
        tracing::warn!(segment = %last.path.display(), "the newest segment has no complete header (a crash as it was created): writing it again");
        file.set_len(0).map_err(failed)?;
        file.write_all(&Header::new(last.first).encode()).map_err(failed)?;
        file.sync_data().map_err(failed)?;
    } else if let Some(cut) = &loaded.cut {
        let length = file.metadata().map_err(failed)?.len();
        tracing::warn!(
            segment = %last.path.display(),
            from_line = cut.line,
            uncommitted_events = cut.events,
            bytes = length.saturating_sub(loaded.committed_len),
            reason = %cut.reason,
            "cutting the uncommitted tail a crash left (no acknowledged append is lost)"
        );
        file.set_len(loaded.committed_len).map_err(failed)?;
        file.sync_data().map_err(failed)?;
    }
    Writer::new(file, last.path.clone()).map_err(failed)
}

impl Writer {
    fn new(file: File, path: PathBuf) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, path, len, broken: None, compressions: Vec::new(), buf: Vec::new() })
    }

    /// Writes one commit's lines and flushes them as `durability` asks. On failure the segment is cut back
    /// to where the commit started, so a later commit never follows a partial one.
    fn write_commit(&mut self, durability: Durability) -> Result<(), EventStoreError> {
        if let Some(broken) = &self.broken {
            return Err(EventStoreError::backend(
                format!("append to {}", self.path.display()),
                format!("{broken}; reopen the store to recover"),
            ));
        }
        let written = self.file.write_all(&self.buf).and_then(|()| match durability {
            Durability::Full => self.file.sync_data(),
            Durability::Normal => Ok(()),
        });
        match written {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(error) => {
                if let Err(undo) = self.file.set_len(self.len) {
                    self.broken = Some(format!("a failed write ({error}) could not be taken back ({undo})"));
                }
                Err(EventStoreError::backend(format!("append to {}", self.path.display()), error))
            }
        }
    }

    /// Closes the open segment and starts the next at `next`: the closed one is flushed first, so a newer
    /// segment never exists beside an older one that is not whole on disk.
    fn rotate(&mut self, dir: &Path, next: GlobalPosition) -> std::io::Result<()> {
        self.file.sync_data()?;
        let (file, path) = segment::create(dir, next)?;
        let closed = std::mem::replace(&mut self.path, path);
        self.file = file;
        self.len = self.file.metadata()?.len();
        self.compress_in_background(closed);
        Ok(())
    }

    fn compress_in_background(&mut self, plain: PathBuf) {
        self.compressions.retain(|running| !running.is_finished());
        let spawned = std::thread::Builder::new().name("segment-gzip".into()).spawn(move || {
            if let Err(error) = segment::compress(&plain) {
                tracing::warn!(segment = %plain.display(), %error, "could not compress a closed segment; it stays plain and is retried on the next open");
            }
        });
        match spawned {
            Ok(handle) => self.compressions.push(handle),
            Err(error) => tracing::warn!(%error, "could not start the compression of a closed segment"),
        }
    }
}

impl Inner {
    /// Checks and writes an atomic append: the idempotent retry, the condition and every expectation are
    /// checked against the index, the lines are written (and flushed) to the open segment, and only then
    /// are the events added to the index, so a reader never sees an event that is not on disk.
    fn commit(&self, atomic: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        let mut guard = lock(&self.writer);
        let writer = self.open_writer(&mut guard, "append to")?;
        // Only the writer (whose lock is held) changes the index, so what is checked here still holds when
        // the events are added below.
        let index = read(&self.index);
        let stored: Vec<RecordedEvent> =
            atomic.events().filter_map(|e| index.event_or_removed(e.id).cloned()).collect();
        let first_match = |query: &EventQuery, after| index.query(query, after, 1).first().map(|event| event.position);
        if let Some(original) = check_atomic_append(&atomic, &stored, first_match, |stream| index.version_of(stream))? {
            return Ok(original);
        }
        // One timestamp per commit, taken under the writer's lock, so `recorded_at` never decreases.
        let recorded_at = Utc::now().trunc_subsecs(6);
        let mut position = index.next_position();
        let mut results = Vec::with_capacity(atomic.streams.len());
        let mut events = Vec::with_capacity(atomic.events().count());
        for append in atomic.streams {
            let mut version = index.version_of(&append.stream_id);
            let mut positions = Vec::with_capacity(append.events.len());
            for event in append.events {
                version = version.next();
                positions.push(position);
                events.push(recorded(event, &append.stream_id, version, position, recorded_at));
                position = GlobalPosition::new(position.get() + 1);
            }
            results.push(AppendResult { stream_version: version, positions });
        }
        drop(index);
        self.publish(writer, events)?;
        Ok(results)
    }

    /// Checks and writes an import: [`plan_import`] says which events are stored already (skipped) and
    /// which are the next of their streams; those are written as one commit, with their versions, ids, tags
    /// and times, at the next positions.
    fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        let mut guard = lock(&self.writer);
        let writer = self.open_writer(&mut guard, "import into")?;
        let index = read(&self.index);
        let stored: Vec<RecordedEvent> = events.iter().filter_map(|e| index.event_or_removed(e.id).cloned()).collect();
        let versions: HashMap<StreamId, Version> =
            events.iter().map(|e| (e.stream_id.clone(), index.version_of(&e.stream_id))).collect();
        let steps = plan_import(&events, &stored, &versions)?;
        let mut next = index.next_position();
        drop(index);
        let mut positions = Vec::with_capacity(events.len());
        let mut writes = Vec::with_capacity(events.len());
        for (event, step) in events.into_iter().zip(steps) {
            match step {
                ImportStep::Stored(position) => positions.push(position),
                ImportStep::Write => {
                    positions.push(next);
                    writes.push(RecordedEvent {
                        position: next,
                        recorded_at: event.recorded_at.trunc_subsecs(6),
                        ..event
                    });
                    next = GlobalPosition::new(next.get() + 1);
                }
            }
        }
        if !writes.is_empty() {
            self.publish(writer, writes)?;
        }
        Ok(positions)
    }

    /// The open writer, or the error for a closed store.
    fn open_writer<'a>(&self, guard: &'a mut Option<Writer>, action: &str) -> Result<&'a mut Writer, EventStoreError> {
        guard.as_mut().ok_or_else(|| {
            EventStoreError::backend(
                format!("{action} the file event store at {}", self.dir.display()),
                "the store was closed: open it again",
            )
        })
    }

    /// Writes checked events (positions following the index's) as one commit, then adds them to the index
    /// and signals the commit; rotates the segment when it is full. The writer's lock is held.
    fn publish(&self, writer: &mut Writer, events: Vec<RecordedEvent>) -> Result<(), EventStoreError> {
        writer.buf.clear();
        let count = events.len() as u64;
        // An append's events share one time; an import's usually differ. Format each distinct time once.
        let mut time: Option<(chrono::DateTime<Utc>, String)> = None;
        for (number, event) in events.iter().enumerate() {
            if time.as_ref().is_none_or(|(at, _)| *at != event.recorded_at) {
                time = Some((event.recorded_at, format_time(event.recorded_at)));
            }
            let text = time.as_ref().map_or("", |(_, text)| text.as_str());
            let last = number + 1 == events.len();
            encode_event(&mut writer.buf, event, text, last.then_some(count), self.config.max_line_len)
                .map_err(InvalidInput::Other)?;
        }
        writer.write_commit(self.config.durability)?;

        let mut index = write(&self.index);
        for event in events {
            index.push(event);
        }
        let next = index.next_position();
        // Signalled under the index lock: a woken subscriber's read waits for it, so it sees the commit.
        self.commits.send_modify(|commits| *commits = commits.wrapping_add(1));
        drop(index);
        if writer.len >= self.config.segment_size {
            if let Err(error) = writer.rotate(&self.dir, next) {
                // The commit is safe; the segment just grows on until a rotation succeeds.
                tracing::warn!(segment = %writer.path.display(), %error, "could not start a new segment");
            }
        }
        Ok(())
    }

    /// Flushes everything, waits for compressions and releases the directory lock.
    fn close(&self) -> Result<(), EventStoreError> {
        let failed = |e: std::io::Error| {
            EventStoreError::backend(format!("close the file event store at {}", self.dir.display()), e)
        };
        if let Some(writer) = lock(&self.writer).take() {
            writer.file.sync_data().map_err(failed)?;
            for compression in writer.compressions {
                let _ = compression.join();
            }
        }
        self.snapshots.flush().map_err(failed)?;
        self.checkpoints.flush().map_err(failed)?;
        lock(&self.lock).take();
        Ok(())
    }
}

/// `event` as stored at `version` of `stream_id`, position `position`.
fn recorded(
    event: NewEvent,
    stream_id: &StreamId,
    version: Version,
    position: GlobalPosition,
    recorded_at: chrono::DateTime<Utc>,
) -> RecordedEvent {
    RecordedEvent {
        id: event.id,
        stream_id: stream_id.clone(),
        version,
        position,
        event_type: event.event_type.into(),
        codec: event.codec,
        payload: event.payload.into(),
        metadata: event.metadata,
        recorded_at,
        tags: event.tags,
    }
}

#[async_trait]
impl EventLog for FileEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        validate_append(stream_id, &events)?;
        let append = AtomicAppend::new().stream(stream_id.clone(), expected, events);
        let operation = format!("append to stream {stream_id}");
        let mut results = self.blocking(operation, move |inner| inner.commit(append)).await?;
        results.pop().ok_or_else(|| EventStoreError::backend("append", "the append returned no result"))
    }

    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        validate_atomic_append(&append)?;
        self.blocking("append atomically", move |inner| inner.commit(append)).await
    }

    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        validate_import(&events)?;
        self.blocking("import events", move |inner| inner.import(events)).await
    }

    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        query.validate()?;
        let index = read(&self.inner.index);
        let events: Vec<RecordedEvent> = index.query(query, after, limit).into_iter().cloned().collect();
        // Commits add to the index under its write lock, so nothing can appear at or below the last position.
        Ok(QueryPage::new(events, after, limit, index.last_position()))
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        let inner = Arc::clone(&self.inner);
        let stream_id = stream_id.clone();
        let pages = futures::stream::unfold(Some(range.from.max(Version::FIRST)), move |from| {
            let page = from.map(|from| read(&inner.index).stream_events(&stream_id, from, range.to, READ_PAGE));
            async move {
                let page = page.filter(|page| !page.is_empty())?;
                let following =
                    if page.len() < READ_PAGE { None } else { page.last().map(|event| event.version.next()) };
                Some((page, following))
            }
        });
        Box::pin(pages.flat_map(|page| futures::stream::iter(page.into_iter().map(Ok))))
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        // One lock acquisition and one copy: the caller asked for the whole range in memory anyway.
        let from = range.from.max(Version::FIRST);
        Ok(read(&self.inner.index).stream_events(stream_id, from, range.to, usize::MAX))
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        Ok(read(&self.inner.index).version_of(stream_id))
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        Ok(read(&self.inner.index).event(id).cloned())
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let index = read(&self.inner.index);
        let matching = |event: &&RecordedEvent| filter.matches(event);
        Ok(match cursor {
            LogCursor::After(after) => index.after(after).filter(matching).take(limit).cloned().collect(),
            LogCursor::Before(before) => index.before(before).rev().filter(matching).take(limit).cloned().collect(),
            LogCursor::Newest => {
                index.after(GlobalPosition::START).rev().filter(matching).take(limit).cloned().collect()
            }
        })
    }

    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError> {
        Ok(read(&self.inner.index).list_streams(prefix, after, limit))
    }
}

#[async_trait]
impl SnapshotStore for FileEventStore {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        let mut snapshot = snapshot.clone();
        snapshot.taken_at = snapshot.taken_at.trunc_subsecs(6);
        let operation = format!("save the snapshot of {}", snapshot.stream_id);
        self.blocking(operation.clone(), move |inner| {
            let new = StoredSnapshot::from_snapshot(&snapshot);
            // Never back in time: an older snapshot arriving late (a slow background write) leaves the newer one.
            let decide = |stored: Option<&StoredSnapshot>| {
                stored.is_none_or(|stored| stored.version() <= snapshot.version).then_some(Some(new))
            };
            inner
                .snapshots
                .update(snapshot.stream_id.as_str(), decide)
                .map_err(|e| EventStoreError::backend(operation, e))?;
            Ok(())
        })
        .await
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        self.inner
            .snapshots
            .get(stream_id.as_str())
            .map(|stored| stored.to_snapshot(stream_id.as_str()))
            .transpose()
            .map_err(|e| EventStoreError::backend(format!("load the snapshot of {stream_id}"), e))
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        let key = stream_id.as_str().to_owned();
        let operation = format!("delete the snapshot of {stream_id}");
        self.blocking(operation.clone(), move |inner| {
            inner
                .snapshots
                .update(&key, |stored| stored.map(|_| None))
                .map_err(|e| EventStoreError::backend(operation, e))
        })
        .await
    }
}

#[async_trait]
impl SubscriptionStore for FileEventStore {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        validate_handler_name(handler)?;
        Ok(self.inner.checkpoints.get(handler))
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        validate_handler_name(handler)?;
        let handler = handler.to_owned();
        let operation = format!("save the checkpoint of {handler}");
        self.blocking(operation.clone(), move |inner| {
            // Fenced: only forward (see the trait).
            let decide = |stored: Option<&GlobalPosition>| {
                stored.is_none_or(|&stored| stored < position).then_some(Some(position))
            };
            inner.checkpoints.update(&handler, decide).map_err(|e| EventStoreError::backend(operation, e))?;
            Ok(())
        })
        .await
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        validate_handler_name(handler)?;
        let handler = handler.to_owned();
        let operation = format!("delete the checkpoint of {handler}");
        self.blocking(operation.clone(), move |inner| {
            inner
                .checkpoints
                .update(&handler, |stored| stored.map(|_| None))
                .map_err(|e| EventStoreError::backend(operation, e))
        })
        .await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        Ok(self.inner.checkpoints.all())
    }

    /// A name in this store's [`LocalLeases`]; `ttl` is ignored (the lease ends when dropped). The directory
    /// lock already keeps every other process out.
    async fn try_acquire_lease(
        &self,
        handler: &str,
        _ttl: std::time::Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        validate_handler_name(handler)?;
        Ok(self.inner.leases.try_acquire(handler))
    }

    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        let commits = self.inner.commits.subscribe();
        Some(Box::pin(futures::stream::unfold(commits, |mut commits| async move {
            commits.changed().await.ok().map(|()| ((), commits))
        })))
    }
}

#[async_trait]
impl StoreLifecycle for FileEventStore {
    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        let started = std::time::Instant::now();
        let operation = format!("check the file event store at {}", self.inner.dir.display());
        // On the blocking threads: the writer's lock may be held by a commit that is flushing.
        self.blocking(operation.clone(), move |inner| {
            let writer = lock(&inner.writer);
            let Some(writer) = writer.as_ref() else {
                return Err(EventStoreError::unavailable(operation, "the store was closed: open it again"));
            };
            if let Some(broken) = &writer.broken {
                return Err(EventStoreError::backend(operation, format!("{broken}; reopen the store to recover")));
            }
            writer.file.metadata().map_err(|e| EventStoreError::unavailable(operation, e))?;
            Ok(())
        })
        .await?;
        Ok(HealthReport { backend: "file", round_trip: started.elapsed() })
    }

    /// Counts from the index and the state files; bytes on disk are the sizes of the directory's files
    /// (closed segments compressed).
    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        let mut stats = StoreStats::empty("file");
        {
            let index = read(&self.inner.index);
            stats.events = index.stored_len() as u64;
            stats.streams = index.stream_count() as u64;
            (stats.oldest, stats.newest) = index.time_range();
        }
        stats.snapshots = self.inner.snapshots.len() as u64;
        stats.checkpoints = self.inner.checkpoints.len() as u64;
        let operation = format!("measure the file event store at {}", self.inner.dir.display());
        let bytes = self
            .blocking(operation.clone(), move |inner| {
                let mut bytes = 0;
                for entry in fs::read_dir(&inner.dir).map_err(|e| EventStoreError::backend(operation.clone(), e))? {
                    let metadata =
                        entry.and_then(|e| e.metadata()).map_err(|e| EventStoreError::backend(operation.clone(), e))?;
                    bytes += if metadata.is_file() { metadata.len() } else { 0 };
                }
                Ok(bytes)
            })
            .await?;
        stats.bytes_on_disk = Some(bytes);
        Ok(stats)
    }

    /// Flushes the open segment and the snapshot and checkpoint files to disk, waits for segment
    /// compressions to finish and releases the directory lock. Appends afterwards fail; reads keep working
    /// from memory.
    async fn close(&self) -> Result<(), EventStoreError> {
        self.blocking("close the file event store", Inner::close).await
    }
}
