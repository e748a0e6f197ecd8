//! In-memory event store for composable-rust: the whole event store contract in process memory, nothing
//! persisted.
//!
//! [`InMemoryEventStore`] implements the [`EventStore`](composable_rust_core::EventStore) contract of
//! `composable-rust-core` with the same versions, positions, errors, idempotent retries, snapshots,
//! checkpoints, leases and commit notifications as the database backends (the conformance and subscription
//! suites run against it), plus inspection helpers ([`InMemoryEventStore::events`],
//! [`InMemoryEventStore::all_events`], [`InMemoryEventStore::reset`]). Use it for development, tests and
//! services whose events may die with the process; `backend = "memory"` in the facade's configuration opens
//! it.
//!
//! The crate depends on `core` and nothing from the test tools, so a production build that uses it pulls no
//! proptest or diff library; `composable-rust-testing` re-exports the store for tests.
//!
//! Layout, chosen for replay speed: each stream keeps its own `Vec` of recorded events, in version order,
//! so reading a stream is a contiguous copy; the global log is a `Vec` of `(stream slot, index)` pairs, so
//! a global position is an index into it. All event state sits behind one `RwLock` that is never held
//! across an `.await`; readers copy a page at a time and release the lock between pages.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::ops::{Bound, ControlFlow};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};

use chrono::{DateTime, SubsecRound, Utc};
use composable_rust_core::backend::{
    EventLog, EventRetention, HandlerLease, ImportStep, LocalLeases, SnapshotStore, StoreLifecycle, SubscriptionStore,
    check_atomic_append, check_stream_removal, plan_import, removed_event_matches, validate_append,
    validate_atomic_append, validate_handler_name, validate_import,
};
use composable_rust_core::{
    AppendResult, AtomicAppend, EventId, EventQuery, EventStoreError, EventStream, EventType, ExpectedVersion,
    GlobalPosition, HealthReport, LogCursor, LogFilter, NewEvent, QueryPage, RecordedEvent, RemovalBatch,
    RemovalOutcome, RetentionRun, Snapshot, StoreStats, StreamAppend, StreamId, StreamInfo, StreamRange, Tag, Version,
    async_trait,
};
use futures::Stream;
use futures::stream::BoxStream;

/// How many events [`EventLog::read_stream`] copies per lock acquisition.
const READ_PAGE: usize = 512;

/// An [`EventStore`](composable_rust_core::EventStore) kept in memory: same contract as the database backends,
/// plus inspection helpers.
///
/// Cheap to clone: clones share the same events, snapshots and checkpoints. Nothing is persisted.
///
/// ```
/// use composable_rust_core::backend::EventLog;
/// use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
/// use composable_rust_memory::InMemoryEventStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("order-1")?;
/// let event = NewEvent {
///     id: composable_rust_core::EventId::generate(),
///     event_type: "OrderPlaced.v1".into(),
///     codec: CodecId::Json,
///     payload: b"{}".to_vec(),
///     metadata: Metadata::default(),
///     tags: Vec::new(),
/// };
/// let written = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(written.stream_version, Version::FIRST);
/// assert_eq!(store.events(&stream).len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct InMemoryEventStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    log: RwLock<Log>,
    snapshots: RwLock<HashMap<StreamId, Snapshot>>,
    checkpoints: Mutex<HashMap<String, GlobalPosition>>,
    /// Bumped after every append: the in-process wake-up behind `commit_notifications`.
    commits: tokio::sync::watch::Sender<u64>,
    /// Handler leases of subscriptions on this store (not shared with other stores in the process).
    leases: LocalLeases,
}

/// Every stream's events plus the global order.
#[derive(Default)]
struct Log {
    /// The streams, in creation order; a stream's slot never changes.
    streams: Vec<StreamEvents>,
    /// Stream id to slot, for appends and reads.
    slots: HashMap<StreamId, usize>,
    /// Stream id to slot in byte-wise id order, for `list_streams`.
    ordered: BTreeMap<StreamId, usize>,
    /// The global log: entry `i` is the event at position `i + 1`, as (stream slot, index in that stream).
    global: Vec<(usize, usize)>,
    /// Every event type name stored, once: events share it instead of each owning a copy.
    event_types: HashSet<EventType>,
    /// Event id to (stream slot, index in that stream): the unique index behind `load_event` and
    /// idempotent appends.
    ids: HashMap<EventId, (usize, usize)>,
    /// Tag to the indexes into `global` of the events that carry it, ascending: reads by query.
    tagged: HashMap<Tag, Vec<usize>>,
    /// The positions retention removed: the removal horizon is the last one. A removed event keeps its
    /// slot in `global` and in its stream (so indexes stay positions and versions), stripped of its
    /// payload, metadata and tags, and every read skips it.
    removed: BTreeSet<GlobalPosition>,
    /// The audit rows of retention runs, oldest first.
    runs: Vec<RetentionRun>,
}

/// The shared name for `name`, added to `known` the first time it is seen.
fn intern(known: &mut HashSet<EventType>, name: String) -> EventType {
    if let Some(existing) = known.get(name.as_str()) {
        return existing.clone();
    }
    let new = EventType::from(name);
    known.insert(new.clone());
    new
}

struct StreamEvents {
    id: StreamId,
    /// Event `i` has version `i + 1`.
    events: Vec<RecordedEvent>,
    /// Whether retention removed event `i`; empty (shorter than `events`) until it removes one.
    removed: Vec<bool>,
}

impl StreamEvents {
    fn is_removed(&self, index: usize) -> bool {
        self.removed.get(index).copied().unwrap_or(false)
    }

    /// The stored events of `range` (indexes), removed ones skipped.
    fn stored(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &RecordedEvent> {
        let start = range.start;
        self.events[range].iter().enumerate().filter(move |(i, _)| !self.is_removed(start + i)).map(|(_, e)| e)
    }
}

impl Log {
    fn stream(&self, stream_id: &StreamId) -> Option<&StreamEvents> {
        self.slots.get(stream_id).map(|&slot| &self.streams[slot])
    }

    fn event_at(&self, (slot, index): (usize, usize)) -> &RecordedEvent {
        &self.streams[slot].events[index]
    }

    /// The event at `at`, unless retention removed it.
    fn stored_at(&self, (slot, index): (usize, usize)) -> Option<&RecordedEvent> {
        let stream = &self.streams[slot];
        (!stream.is_removed(index)).then(|| &stream.events[index])
    }

    fn version_of(&self, stream_id: &StreamId) -> Version {
        self.stream(stream_id).map_or(Version::INITIAL, |s| version_from_len(s.events.len()))
    }

    fn last_position(&self) -> GlobalPosition {
        GlobalPosition::new(u64::try_from(self.global.len()).unwrap_or(u64::MAX))
    }

    /// Appends a checked batch at the stream's next versions.
    fn push(&mut self, append: StreamAppend, recorded_at: DateTime<Utc>) -> AppendResult {
        let slot = self.slot_for(&append.stream_id);
        let stream = &mut self.streams[slot];
        let stream_id = stream.id.clone();
        stream.events.reserve(append.events.len());
        self.global.reserve(append.events.len());
        let mut positions = Vec::with_capacity(append.events.len());
        let mut version = version_from_len(stream.events.len());
        for event in append.events {
            version = version.next();
            let index = self.global.len();
            let position = GlobalPosition::new(u64::try_from(index + 1).unwrap_or(u64::MAX));
            self.global.push((slot, stream.events.len()));
            self.ids.insert(event.id, (slot, stream.events.len()));
            for tag in &event.tags {
                self.tagged.entry(tag.clone()).or_default().push(index);
            }
            stream.events.push(RecordedEvent {
                id: event.id,
                stream_id: stream_id.clone(),
                version,
                position,
                event_type: intern(&mut self.event_types, event.event_type),
                codec: event.codec,
                payload: event.payload.into(),
                metadata: event.metadata,
                recorded_at,
                tags: event.tags,
            });
            positions.push(position);
        }
        AppendResult { stream_version: version, positions }
    }

    /// Writes a checked import batch: `steps` says which events to write (see [`plan_import`]); each keeps
    /// its version, time and tags, and gets the next position. Returns every event's position.
    fn push_imported(&mut self, events: Vec<RecordedEvent>, steps: &[ImportStep]) -> Vec<GlobalPosition> {
        let mut positions = Vec::with_capacity(events.len());
        for (event, step) in events.into_iter().zip(steps) {
            if let ImportStep::Stored(position) = *step {
                positions.push(position);
                continue;
            }
            let slot = self.slot_for(&event.stream_id);
            let index = self.global.len();
            let position = GlobalPosition::new(u64::try_from(index + 1).unwrap_or(u64::MAX));
            let stream = &mut self.streams[slot];
            self.global.push((slot, stream.events.len()));
            self.ids.insert(event.id, (slot, stream.events.len()));
            for tag in &event.tags {
                self.tagged.entry(tag.clone()).or_default().push(index);
            }
            let event_type = intern(&mut self.event_types, event.event_type.to_string());
            stream.events.push(RecordedEvent {
                stream_id: stream.id.clone(),
                position,
                event_type,
                recorded_at: event.recorded_at.trunc_subsecs(6),
                ..event
            });
            positions.push(position);
        }
        positions
    }

    /// The slot of `stream_id`, created empty when the stream is new.
    fn slot_for(&mut self, stream_id: &StreamId) -> usize {
        if let Some(&slot) = self.slots.get(stream_id) {
            return slot;
        }
        let slot = self.streams.len();
        self.streams.push(StreamEvents { id: stream_id.clone(), events: Vec::new(), removed: Vec::new() });
        self.slots.insert(stream_id.clone(), slot);
        self.ordered.insert(stream_id.clone(), slot);
        slot
    }

    /// Up to `limit` events after `after` matching `query`, in position order. An item with tags walks the
    /// index of its first tag; an item without tags scans the log from `after`.
    fn query(&self, query: &EventQuery, after: GlobalPosition, limit: usize) -> Vec<&RecordedEvent> {
        let start = usize::try_from(after.get()).unwrap_or(usize::MAX).min(self.global.len());
        let mut indexes: Vec<usize> = Vec::new();
        for item in &query.items {
            let matching = |&index: &usize| {
                self.stored_at(self.global[index]).is_some_and(|event| item.matches(&event.event_type, &event.tags))
            };
            match item.tags.first() {
                Some(tag) => {
                    let postings = self.tagged.get(tag).map_or(&[][..], Vec::as_slice);
                    let from = postings.partition_point(|&index| index < start);
                    indexes.extend(postings[from..].iter().copied().filter(matching).take(limit));
                }
                None => indexes.extend((start..self.global.len()).filter(matching).take(limit)),
            }
        }
        indexes.sort_unstable();
        indexes.dedup();
        indexes.truncate(limit);
        indexes.into_iter().map(|index| self.event_at(self.global[index])).collect()
    }
}

fn version_from_len(len: usize) -> Version {
    Version::new(u64::try_from(len).unwrap_or(u64::MAX))
}

/// Index into a stream's `Vec` of the event at `version` (version 1 is index 0).
fn index_of(version: Version) -> usize {
    usize::try_from(version.get().saturating_sub(1)).unwrap_or(usize::MAX)
}

/// The index just past `version` in a stream's events: versions are 1-based, so it is `version` itself (0 for a
/// range that ends before version 1, which holds nothing).
fn end_of(version: Version) -> usize {
    usize::try_from(version.get()).unwrap_or(usize::MAX)
}

impl InMemoryEventStore {
    /// Makes an empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event of `stream_id`, in version order (empty for an unknown stream).
    #[must_use]
    pub fn events(&self, stream_id: &StreamId) -> Vec<RecordedEvent> {
        self.log_read_lock()
            .stream(stream_id)
            .map(|s| s.stored(0..s.events.len()).cloned().collect())
            .unwrap_or_default()
    }

    /// Every event of every stream, in global position order.
    #[must_use]
    pub fn all_events(&self) -> Vec<RecordedEvent> {
        let log = self.log_read_lock();
        log.global.iter().filter_map(|&at| log.stored_at(at).cloned()).collect()
    }

    /// Forgets every event, snapshot and checkpoint; positions start again at 1.
    pub fn reset(&self) {
        *self.write_log() = Log::default();
        lock_write(&self.inner.snapshots).clear();
        self.checkpoints().clear();
    }

    /// Writes `appends` under one write lock if the condition and every expectation hold: all or nothing.
    /// The caller has validated them.
    fn commit(&self, atomic: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        let mut log = self.write_log();
        let stored: Vec<RecordedEvent> =
            atomic.events().filter_map(|e| log.ids.get(&e.id).map(|&at| log.event_at(at).clone())).collect();
        let first_match = |query: &EventQuery, after| log.query(query, after, 1).first().map(|event| event.position);
        if let Some(original) = check_atomic_append(&atomic, &stored, first_match, |stream| log.version_of(stream))? {
            return Ok(original);
        }
        // One timestamp per append, taken under the lock, so `recorded_at` never decreases along the log.
        let recorded_at = Utc::now().trunc_subsecs(6);
        let results = atomic.streams.into_iter().map(|append| log.push(append, recorded_at)).collect();
        // Signalled under the write lock: a woken subscriber's read waits for the lock, so it sees the batch.
        self.inner.commits.send_modify(|commits| *commits = commits.wrapping_add(1));
        Ok(results)
    }

    /// [`EventLog::import`] under one write lock: all or nothing. The caller has validated the batch.
    fn commit_import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        let mut log = self.write_log();
        let stored: Vec<RecordedEvent> =
            events.iter().filter_map(|e| log.ids.get(&e.id).map(|&at| log.event_at(at).clone())).collect();
        let versions: HashMap<StreamId, Version> =
            events.iter().map(|e| (e.stream_id.clone(), log.version_of(&e.stream_id))).collect();
        let steps = plan_import(&events, &stored, &versions)?;
        let wrote = steps.contains(&ImportStep::Write);
        let positions = log.push_imported(events, &steps);
        if wrote {
            self.inner.commits.send_modify(|commits| *commits = commits.wrapping_add(1));
        }
        Ok(positions)
    }

    fn log_read_lock(&self) -> RwLockReadGuard<'_, Log> {
        self.inner.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_log(&self) -> RwLockWriteGuard<'_, Log> {
        self.inner.log.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkpoints(&self) -> MutexGuard<'_, HashMap<String, GlobalPosition>> {
        self.inner.checkpoints.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// A panic while a lock is held cannot leave the maps half-updated in a way that breaks the contract
// (every mutation is a single push or insert after all checks), so a poisoned lock is still usable.
fn lock_read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn lock_write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for InMemoryEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let log = self.log_read_lock();
        f.debug_struct("InMemoryEventStore")
            .field("streams", &log.streams.len())
            .field("events", &log.global.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventLog for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        validate_append(stream_id, &events)?;
        let append = AtomicAppend::new().stream(stream_id.clone(), expected, events);
        let mut results = self.commit(append)?;
        results.pop().ok_or_else(|| EventStoreError::backend("append", "the append returned no result"))
    }

    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        validate_atomic_append(&append)?;
        self.commit(append)
    }

    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        query.validate()?;
        let log = self.log_read_lock();
        let events: Vec<RecordedEvent> = log.query(query, after, limit).into_iter().cloned().collect();
        // Appends take the write lock, so nothing can appear at or below the last position now.
        Ok(QueryPage::new(events, after, limit, log.last_position()))
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        Box::pin(PagedRead {
            store: self,
            stream_id: stream_id.clone(),
            next: index_of(range.from.max(Version::FIRST)),
            end: range.to.map_or(usize::MAX, end_of),
            page: VecDeque::new(),
        })
    }

    async fn load_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        // One lock acquisition and one exact-size copy: the caller asked for the whole range in memory anyway.
        let log = self.log_read_lock();
        let Some(stream) = log.stream(stream_id) else { return Ok(Vec::new()) };
        let len = stream.events.len();
        let start = index_of(range.from.max(Version::FIRST)).min(len);
        let end = range.to.map_or(len, |to| end_of(to).min(len)).max(start);
        Ok(stream.stored(start..end).cloned().collect())
    }

    /// Lends the stored events themselves, a page (512 events) per lock acquisition: no event is copied, and an
    /// append waits at most for one page of visits.
    async fn visit_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
        visit: &mut (dyn for<'e> FnMut(&'e RecordedEvent) -> ControlFlow<()> + Send),
    ) -> Result<(), EventStoreError> {
        let mut next = index_of(range.from.max(Version::FIRST));
        let end = range.to.map_or(usize::MAX, end_of);
        loop {
            let log = self.log_read_lock();
            let Some(stream) = log.stream(stream_id) else { return Ok(()) };
            let stop = end.min(stream.events.len()).min(next.saturating_add(READ_PAGE));
            let Some(page) = stream.events.get(next..stop).filter(|page| !page.is_empty()) else { return Ok(()) };
            for (i, event) in page.iter().enumerate() {
                if !stream.is_removed(next + i) && visit(event).is_break() {
                    return Ok(());
                }
            }
            next = stop;
        }
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        Ok(self.log_read_lock().version_of(stream_id))
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        let log = self.log_read_lock();
        Ok(log.ids.get(&id).map(|&at| log.event_at(at).clone()))
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let log = self.log_read_lock();
        // Entry `i` of the global log is the event at position `i + 1`; events retention removed are skipped.
        let index =
            |position: GlobalPosition| usize::try_from(position.get()).unwrap_or(usize::MAX).min(log.global.len());
        let pick = |at: &(usize, usize)| log.stored_at(*at).filter(|event| filter.matches(event)).cloned();
        Ok(match cursor {
            LogCursor::After(after) => log.global[index(after)..].iter().filter_map(pick).take(limit).collect(),
            LogCursor::Before(before) => log.global[..index(GlobalPosition::new(before.get().saturating_sub(1)))]
                .iter()
                .rev()
                .filter_map(pick)
                .take(limit)
                .collect(),
            LogCursor::Newest => log.global.iter().rev().filter_map(pick).take(limit).collect(),
        })
    }

    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError> {
        let log = self.log_read_lock();
        let lower = match after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.as_str()),
            _ => Bound::Included(prefix),
        };
        Ok(log
            .ordered
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(id, _)| id.as_str().starts_with(prefix))
            .take(limit)
            .map(|(id, &slot)| StreamInfo {
                stream_id: id.clone(),
                version: version_from_len(log.streams[slot].events.len()),
            })
            .collect())
    }

    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        validate_import(&events)?;
        self.commit_import(events)
    }
}

#[async_trait]
impl SnapshotStore for InMemoryEventStore {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        let mut snapshot = snapshot.clone();
        snapshot.taken_at = snapshot.taken_at.trunc_subsecs(6);
        // Never back in time: an older snapshot arriving late (a slow background write) leaves the newer one.
        match lock_write(&self.inner.snapshots).entry(snapshot.stream_id.clone()) {
            Entry::Occupied(mut stored) if stored.get().version <= snapshot.version => {
                stored.insert(snapshot);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(snapshot);
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        Ok(lock_read(&self.inner.snapshots).get(stream_id).cloned())
    }

    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        let snapshots = lock_read(&self.inner.snapshots);
        let mut asked = HashSet::with_capacity(streams.len());
        Ok(streams.iter().filter(|s| asked.insert(*s)).filter_map(|s| snapshots.get(s).cloned()).collect())
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        Ok(lock_write(&self.inner.snapshots).remove(stream_id).is_some())
    }
}

#[async_trait]
impl SubscriptionStore for InMemoryEventStore {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        validate_handler_name(handler)?;
        Ok(self.checkpoints().get(handler).copied())
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        validate_handler_name(handler)?;
        // Fenced: only forward (see the trait).
        let mut checkpoints = self.checkpoints();
        let stored = checkpoints.entry(handler.to_owned()).or_insert(position);
        *stored = (*stored).max(position);
        Ok(())
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        validate_handler_name(handler)?;
        Ok(self.checkpoints().remove(handler).is_some())
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        let mut all: Vec<(String, GlobalPosition)> =
            self.checkpoints().iter().map(|(handler, &position)| (handler.clone(), position)).collect();
        all.sort_unstable();
        Ok(all)
    }

    /// A name in this store's [`LocalLeases`]; `ttl` is ignored (the lease ends when dropped).
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
impl EventRetention for InMemoryEventStore {
    async fn remove_events(&self, batch: &RemovalBatch) -> Result<RemovalOutcome, EventStoreError> {
        batch.validate()?;
        let mut log = self.write_log();
        {
            let snapshots = lock_read(&self.inner.snapshots);
            for removal in &batch.streams {
                let snapshot = snapshots.get(&removal.stream_id).map(|s| s.version);
                check_stream_removal(removal, log.version_of(&removal.stream_id), snapshot)?;
            }
        }
        let mut outcome = RemovalOutcome::default();
        for removal in &batch.streams {
            let Some(&slot) = log.slots.get(&removal.stream_id) else { continue };
            for &version in &removal.versions {
                let index = index_of(version);
                let stream = &mut log.streams[slot];
                if stream.is_removed(index) {
                    outcome.already_removed += 1;
                    continue;
                }
                if stream.removed.len() < stream.events.len() {
                    stream.removed.resize(stream.events.len(), false);
                }
                stream.removed[index] = true;
                let event = &mut stream.events[index];
                event.payload = composable_rust_core::Bytes::new();
                event.metadata = composable_rust_core::Metadata::default();
                event.tags = Vec::new();
                let (id, position) = (event.id, event.position);
                log.ids.remove(&id);
                log.removed.insert(position);
                outcome.removed += 1;
            }
        }
        let now = Utc::now().trunc_subsecs(6);
        match log.runs.iter_mut().find(|run| run.id == batch.run) {
            Some(run) => {
                run.finished_at = now;
                run.events_removed += outcome.removed;
                run.batches += 1;
            }
            None => log.runs.push(RetentionRun {
                id: batch.run,
                actor: batch.actor.clone(),
                policy: batch.policy.clone(),
                archive: batch.archive.clone(),
                started_at: now,
                finished_at: now,
                events_removed: outcome.removed,
                batches: 1,
            }),
        }
        Ok(outcome)
    }

    async fn removal_horizon(&self) -> Result<Option<GlobalPosition>, EventStoreError> {
        Ok(self.log_read_lock().removed.last().copied())
    }

    async fn removed_between(
        &self,
        after: GlobalPosition,
        through: GlobalPosition,
        filter: &LogFilter,
    ) -> Result<u64, EventStoreError> {
        if through <= after {
            return Ok(0);
        }
        let log = self.log_read_lock();
        // A removed event keeps its stream id and type in its slot: position `p` is `global[p - 1]`.
        let matching = log
            .removed
            .range((Bound::Excluded(after), Bound::Included(through)))
            .filter_map(|p| usize::try_from(p.get()).ok()?.checked_sub(1).and_then(|i| log.global.get(i)))
            .filter(|&&at| {
                let event = log.event_at(at);
                removed_event_matches(filter, event.stream_id.as_str(), &event.event_type)
            })
            .count();
        Ok(matching as u64)
    }

    async fn first_retained_version(&self, stream_id: &StreamId) -> Result<Option<Version>, EventStoreError> {
        let log = self.log_read_lock();
        Ok(log.stream(stream_id).and_then(|s| s.stored(0..s.events.len()).next().map(|e| e.version)))
    }

    async fn retention_runs(&self) -> Result<Vec<RetentionRun>, EventStoreError> {
        Ok(self.log_read_lock().runs.clone())
    }
}

#[async_trait]
impl StoreLifecycle for InMemoryEventStore {
    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        let started = std::time::Instant::now();
        drop(self.log_read_lock());
        Ok(HealthReport { backend: "in-memory", round_trip: started.elapsed() })
    }

    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        let mut stats = StoreStats::empty("in-memory");
        {
            let log = self.log_read_lock();
            stats.events = u64::try_from(log.global.len() - log.removed.len()).unwrap_or(u64::MAX);
            stats.streams = u64::try_from(log.streams.iter().filter(|s| !s.events.is_empty()).count()).unwrap_or(0);
            let times = log.streams.iter().flat_map(|s| s.stored(0..s.events.len()).map(|e| e.recorded_at));
            (stats.oldest, stats.newest) = times.fold((None, None), |(oldest, newest), t| {
                (
                    Some(oldest.map_or(t, |o: DateTime<Utc>| o.min(t))),
                    Some(newest.map_or(t, |n: DateTime<Utc>| n.max(t))),
                )
            });
        }
        stats.snapshots = u64::try_from(lock_read(&self.inner.snapshots).len()).unwrap_or(u64::MAX);
        stats.checkpoints = u64::try_from(self.checkpoints().len()).unwrap_or(u64::MAX);
        Ok(stats)
    }
}

/// The stream behind [`InMemoryEventStore::read_stream`]: copies [`READ_PAGE`] events per lock acquisition.
struct PagedRead<'a> {
    store: &'a InMemoryEventStore,
    stream_id: StreamId,
    /// Index of the next event to copy.
    next: usize,
    /// Index one past the last event of the range.
    end: usize,
    /// Events copied but not yet yielded; the buffer is reused from page to page.
    page: VecDeque<RecordedEvent>,
}

impl PagedRead<'_> {
    fn refill(&mut self) {
        let log = self.store.log_read_lock();
        let Some(stream) = log.stream(&self.stream_id) else { return };
        let stop = self.end.min(stream.events.len()).min(self.next.saturating_add(READ_PAGE));
        if self.next < stop {
            self.page.extend(stream.stored(self.next..stop).cloned());
            self.next = stop;
        }
    }
}

impl Stream for PagedRead<'_> {
    type Item = Result<RecordedEvent, EventStoreError>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.page.is_empty() {
            this.refill();
        }
        Poll::Ready(this.page.pop_front().map(Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.page.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::{CodecId, Metadata};
    use futures::TryStreamExt;

    fn event(n: usize) -> NewEvent {
        NewEvent {
            id: composable_rust_core::EventId::generate(),
            event_type: "Counted.v1".into(),
            codec: CodecId::Bincode,
            payload: n.to_le_bytes().to_vec(),
            metadata: Metadata::default(),
            tags: Vec::new(),
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures::executor::block_on(future)
    }

    #[test]
    fn read_stream_crosses_page_boundaries_without_gaps() {
        let store = InMemoryEventStore::new();
        let id = StreamId::new("paged-1").unwrap();
        let batch: Vec<_> = (0..READ_PAGE * 2 + 7).map(event).collect();
        block_on(store.append(&id, ExpectedVersion::NoStream, batch)).unwrap();
        let read: Vec<_> =
            block_on(store.read_stream(&id, StreamRange::after(Version::new(3))).try_collect::<Vec<_>>()).unwrap();
        let versions: Vec<u64> = read.iter().map(|e| e.version.get()).collect();
        assert_eq!(versions, (4..=(READ_PAGE as u64 * 2 + 7)).collect::<Vec<_>>());
    }

    #[test]
    fn read_stream_sees_events_appended_while_it_is_being_read() {
        let store = InMemoryEventStore::new();
        let id = StreamId::new("growing-1").unwrap();
        block_on(store.append(&id, ExpectedVersion::Any, (0..READ_PAGE).map(event).collect())).unwrap();
        let mut reading = store.read_stream(&id, StreamRange::all());
        let first = block_on(futures::StreamExt::next(&mut reading)).unwrap().unwrap();
        assert_eq!(first.version, Version::FIRST);
        block_on(store.append(&id, ExpectedVersion::Any, vec![event(0)])).unwrap();
        let rest: Vec<_> = block_on(reading.try_collect::<Vec<_>>()).unwrap();
        assert_eq!(rest.len(), READ_PAGE);
        assert_eq!(rest.last().map(|e| e.version), Some(Version::new(READ_PAGE as u64 + 1)));
    }

    #[test]
    fn reset_forgets_everything_and_restarts_positions() {
        let store = InMemoryEventStore::new();
        let id = StreamId::new("reset-1").unwrap();
        block_on(store.append(&id, ExpectedVersion::Any, vec![event(1)])).unwrap();
        block_on(store.save_checkpoint("h", GlobalPosition::new(1))).unwrap();
        store.reset();
        assert!(store.all_events().is_empty());
        assert_eq!(block_on(store.load_checkpoint("h")).unwrap(), None);
        let again = block_on(store.append(&id, ExpectedVersion::NoStream, vec![event(2)])).unwrap();
        assert_eq!(again.positions, vec![GlobalPosition::new(1)]);
    }

    #[test]
    fn clones_share_state() {
        let store = InMemoryEventStore::new();
        let clone = store.clone();
        let id = StreamId::new("shared-1").unwrap();
        block_on(clone.append(&id, ExpectedVersion::Any, vec![event(1)])).unwrap();
        assert_eq!(store.events(&id).len(), 1);
        assert!(format!("{store:?}").contains("events: 1"));
    }
}
