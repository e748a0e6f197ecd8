//! [`SqliteEventStore`]: the [`EventStore`] contract on one SQLite file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use composable_rust_core::backend::{
    EventLog, EventTypeCache, HandlerLease, SnapshotStore, StoreLifecycle, SubscriptionStore, idempotent_retry_atomic,
    snapshots_in_order, validate_append, validate_atomic_append, validate_handler_name, validate_import,
};
use composable_rust_core::{
    AppendResult, AtomicAppend, EventId, EventQuery, EventStoreError, EventStream, ExpectedVersion, GlobalPosition,
    HealthReport, LogCursor, LogFilter, NewEvent, QueryItem, QueryPage, RecordedEvent, SchemaError, Snapshot,
    StoreStats, StreamAppend, StreamId, StreamInfo, StreamRange, Tag, Version, async_trait,
};
use futures::stream::{self, BoxStream, StreamExt};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Connection, Row, Sqlite};

use crate::config::SqliteConfig;
use crate::error::{ErrorContext, is_unique_violation};
use crate::group::{AppendQueue, Queued, Reply};
use crate::import::{self, ImportWriter};
use crate::open::{self, Connections};
use crate::readers::{BulkReaders, query_events};
use crate::rows::{self, StreamColumn, to_i64, to_micros, to_u64};
use crate::sql;
use crate::writer::{WriteGuard, Writer, closed};

/// Events per query when a stream is read: bounds memory and never holds a read transaction open
/// while the consumer works.
const READ_PAGE: i64 = 1000;

/// An event store in one SQLite file (or in memory): durable, embedded, no server to run.
///
/// Cheap to clone: clones share the connections. Open it with [`SqliteEventStore::open`] or
/// [`SqliteEventStore::in_memory`]; see the crate documentation for how writers are serialised.
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The database file, or `None` in memory.
    path: Option<PathBuf>,
    config: SqliteConfig,
    /// What errors name: the file and the busy timeout.
    errors: ErrorContext,
    /// The one write connection, shared with the leases and transactional projections.
    writer: Writer,
    /// The appends waiting for the write connection: the next group commit.
    queue: AppendQueue,
    /// Read connections; `None` in memory, where reads share the writer's connection.
    readers: Option<SqlitePool>,
    /// The read connections of a stream's pages and the global log (rusqlite); `None` in memory.
    bulk: Option<Arc<BulkReaders>>,
    /// The write connection of imports (rusqlite), used only under the writer's lock; `None` in memory.
    importer: Option<Arc<ImportWriter>>,
}

/// A connection to read with: from the reader pool, or the locked writer of an in-memory store.
pub(crate) enum Reader<'a> {
    Pooled(PoolConnection<Sqlite>),
    Shared(WriteGuard<'a>),
}

impl Reader<'_> {
    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection, EventStoreError> {
        match self {
            Self::Pooled(conn) => Ok(conn),
            Self::Shared(guard) => Ok(guard),
        }
    }
}

/// When an append looks up the stored events that carry its ids (see [`idempotent_retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdCheck {
    /// Only when the version check fails. The common case (new ids) pays nothing beyond the unique
    /// index, whose check ends the attempt with [`Attempt::IdCollision`] when an id is stored.
    OnCollision,
    /// Before the version check, as the rule states it.
    First,
}

/// How one append of a group ended, when the group's transaction can go on.
enum Attempt {
    /// Appended, or found to be a retry of the append with these results (one per stream).
    Done(Vec<AppendResult>),
    /// A check failed (a conflict, a failed condition, an id used by another event): the append's
    /// answer. It wrote nothing.
    Refused(EventStoreError),
    /// An id of the batch is already stored, found by an insert: the group's transaction holds part of
    /// the batch and must be rolled back. Run the group again with [`IdCheck::First`] for this append.
    IdCollision,
}

/// Why a group's transaction was rolled back.
enum GroupFailure {
    /// The append at this index of the group met an id stored before it: run the group again with
    /// [`IdCheck::First`] for it.
    IdCollision(usize),
    /// The append at this index failed part way (a driver error, a value SQLite cannot store): its
    /// answer. The others run again without it.
    Append(usize, EventStoreError),
    /// The transaction itself could not begin, commit or roll back: every append of the group fails.
    Transaction(EventStoreError),
}

/// What a failed id lookup means for the append: an id used by another event refuses it (nothing was
/// written); any other error is a failure of the lookup itself.
#[allow(clippy::unnecessary_wraps, reason = "it answers for `try_append`, whose result type it shares")]
fn refused_or_failed(error: EventStoreError) -> Result<Attempt, EventStoreError> {
    match error {
        EventStoreError::EventIdInUse { .. } => Ok(Attempt::Refused(error)),
        error => Err(error),
    }
}

/// What an append's errors name: `append to stream order-1`, or the streams of an atomic append.
fn operation(append: &AtomicAppend) -> String {
    match append.streams.as_slice() {
        [one] => format!("append to stream {}", one.stream_id),
        streams => {
            let names: Vec<&str> = streams.iter().take(5).map(|s| s.stream_id.as_str()).collect();
            let more = if streams.len() > names.len() { ", ..." } else { "" };
            format!("append atomically to streams {}{more}", names.join(", "))
        }
    }
}

/// A list bound as a JSON array (for `json_each`); `None` (NULL) when empty.
pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> Result<Option<String>, EventStoreError> {
    if items.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(items).map(Some).map_err(|e| EventStoreError::backend("encode a query parameter", e))
}

/// The `event_tags` rows of an append: each distinct tag of each event with the event's position.
#[derive(Default)]
pub(crate) struct TagRows<'a> {
    rows: Vec<(&'a str, i64)>,
}

impl<'a> TagRows<'a> {
    pub(crate) fn add(&mut self, tags: &'a [Tag], position: i64) {
        for (index, tag) in tags.iter().enumerate() {
            // The index holds a tag once per event, however often the event names it.
            if !tags[..index].contains(tag) {
                self.rows.push((tag.as_str(), position));
            }
        }
    }

    /// The rows as the JSON array [`sql::INSERT_EVENT_TAGS`] takes; `None` when no event has a tag.
    pub(crate) fn into_json(self) -> Result<Option<String>, EventStoreError> {
        json_list(&self.rows)
    }
}

impl fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.inner.path.as_deref().map_or_else(|| ":memory:".into(), Path::to_string_lossy);
        f.debug_struct("SqliteEventStore").field("location", &location).field("config", &self.inner.config).finish()
    }
}

impl SqliteEventStore {
    /// Opens the event store in the file at `path` with the default [`SqliteConfig`], creating the file
    /// (and any missing parent folders) when it does not exist and applying the schema.
    ///
    /// # Errors
    /// [`EventStoreError::Schema`] when the file is not an SQLite database, is truncated or damaged, or
    /// holds a schema newer than this build knows (the file is left untouched in each case);
    /// [`EventStoreError::Backend`] when the folder or file cannot be created or opened.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, EventStoreError> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens the event store in the file at `path` with `config`; see [`SqliteEventStore::open`].
    ///
    /// # Errors
    /// As [`SqliteEventStore::open`].
    pub async fn open_with(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, EventStoreError> {
        let path = path.as_ref().to_path_buf();
        let Connections { writer, readers } = open::open_file(&path, &config).await?;
        Ok(Self::from_parts(Some(path), config, writer, readers))
    }

    /// A private, empty store in memory with the same SQL semantics, gone when the last clone is dropped.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] if SQLite cannot start (out of memory).
    pub async fn in_memory() -> Result<Self, EventStoreError> {
        let Connections { writer, readers } = open::open_in_memory().await?;
        let config = SqliteConfig { read_connections: 0, ..SqliteConfig::default() };
        Ok(Self::from_parts(None, config, writer, readers))
    }

    fn from_parts(
        path: Option<PathBuf>,
        config: SqliteConfig,
        writer: SqliteConnection,
        readers: Option<SqlitePool>,
    ) -> Self {
        let location = path.as_deref().map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let errors = ErrorContext { location, busy_timeout: config.busy_timeout };
        let writer = Writer::new(writer, errors.clone());
        let bulk =
            path.as_deref().map(|path| Arc::new(BulkReaders::new(path, config.read_connections, errors.clone())));
        let importer = path.as_deref().map(|path| Arc::new(ImportWriter::new(path, config.durability, errors.clone())));
        let queue = AppendQueue::default();
        Self { inner: Arc::new(Inner { path, config, errors, writer, queue, readers, bulk, importer }) }
    }

    /// The database file, or `None` for an in-memory store.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Closes the store after the operations in progress; later calls on any clone fail.
    ///
    /// Not needed for durability (every append is committed before it returns). It copies the
    /// write-ahead log into the database file and closes the connections, so that once no other
    /// process has the file open, the database is the single file at [`SqliteEventStore::path`].
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the final checkpoint or closing the write connection fails.
    pub async fn close(&self) -> Result<(), EventStoreError> {
        if let Some(bulk) = &self.inner.bulk {
            bulk.close();
        }
        // An import in progress closes its connection before it releases the write lock, for which the
        // writer's close below waits.
        if let Some(importer) = &self.inner.importer {
            importer.close();
        }
        if let Some(readers) = &self.inner.readers {
            // sqlx's `Pool::close` can return with one connection left idle: a read that ended just before
            // the close checks that the pool is open, then hands its connection back after the close has
            // emptied the idle list. That connection would keep the log open until the store is dropped,
            // so close until none is left; each round waits for the connections in use.
            readers.close().await;
            while readers.size() > 0 {
                tokio::task::yield_now().await;
                readers.close().await;
            }
        }
        self.inner.writer.close(self.inner.path.is_some()).await
    }

    /// The write connection, for the leases and transactional projections.
    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    /// A connection to read with.
    pub(crate) async fn reader(&self) -> Result<Reader<'_>, EventStoreError> {
        match &self.inner.readers {
            Some(pool) => match pool.acquire().await {
                Ok(conn) => Ok(Reader::Pooled(conn)),
                Err(sqlx::Error::PoolClosed) => Err(closed()),
                Err(e) => Err(self.fail(|| "get a read connection".to_owned())(e)),
            },
            None => Ok(Reader::Shared(self.inner.writer.lock().await?)),
        }
    }

    fn location(&self) -> &str {
        &self.inner.errors.location
    }

    /// Wraps a driver error, naming the operation and the file (see [`ErrorContext::map`]).
    pub(crate) fn fail<'a>(
        &'a self,
        operation: impl FnOnce() -> String + 'a,
    ) -> impl FnOnce(sqlx::Error) -> EventStoreError + 'a {
        self.inner.errors.fail(operation)
    }

    /// Appends through the group commit, for [`EventLog::append`] (one stream, no condition) and
    /// [`EventLog::append_atomic`] alike: queues the append, then either receives its result from the
    /// leader that committed it, or gets the write connection first and leads the next group itself.
    async fn append_inner(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        let append = Arc::new(append);
        let queue = &self.inner.queue;
        let mut reply = queue.push(Arc::clone(&append));
        loop {
            tokio::select! {
                // An answer wins over the connection: a follower whose group committed just returns.
                biased;
                answer = &mut reply => match answer {
                    Ok(answer) => return answer,
                    // The leader that took this append was cancelled before answering. If its group did
                    // commit, the event ids make this second attempt return the original results.
                    Err(_) => reply = queue.push(Arc::clone(&append)),
                },
                conn = self.inner.writer.lock() => match conn {
                    Ok(mut conn) => self.commit_group(&mut conn, queue.take()).await,
                    // A leader that took it will answer through `reply`.
                    Err(error) => if queue.withdraw(&append) { return Err(error) },
                },
            }
        }
    }

    /// Commits `group` in one `BEGIN IMMEDIATE` transaction (one fsync) and answers each of its appends.
    ///
    /// Each append is checked as if it ran alone after the appends before it in the group: a conflict
    /// or a failed condition refuses that append only, an idempotent retry finds the original even
    /// within the same group, and a condition sees the events appended earlier in the group. An append
    /// that fails part way is answered with its error and the others run again without it.
    async fn commit_group(&self, conn: &mut SqliteConnection, group: Vec<Queued>) {
        let mut group: Vec<(Queued, IdCheck)> = group.into_iter().map(|q| (q, IdCheck::OnCollision)).collect();
        while !group.is_empty() {
            match self.try_group(conn, &group).await {
                Ok(replies) => {
                    self.inner.writer.committed();
                    for ((queued, _), reply) in group.into_iter().zip(replies) {
                        queued.answer(reply);
                    }
                    return;
                }
                Err(GroupFailure::IdCollision(index)) => {
                    let Some((_, check)) = group.get_mut(index) else { return };
                    if *check == IdCheck::First {
                        // The second attempt looks the ids up first, holding the write lock from the
                        // lookup to the insert: it collides only when the lookup is wrong.
                        let (queued, _) = group.remove(index);
                        let operation = operation(&queued.append);
                        queued.answer(Err(EventStoreError::backend(
                            format!("{operation} in {}", self.location()),
                            "an insert met a stored event id that the lookup before it did not find; \
                             the unique index on event_id may be damaged: run `PRAGMA integrity_check`",
                        )));
                    } else {
                        *check = IdCheck::First;
                    }
                }
                Err(GroupFailure::Append(index, error)) => {
                    if index < group.len() {
                        group.remove(index).0.answer(Err(error));
                    } else {
                        return;
                    }
                }
                Err(GroupFailure::Transaction(error)) => {
                    let cause = composable_rust_core::error_chain(&error);
                    for (queued, _) in group {
                        let operation = format!("{} in {}", operation(&queued.append), self.location());
                        queued.answer(Err(if error.is_transient() {
                            EventStoreError::unavailable(operation, cause.clone())
                        } else {
                            EventStoreError::backend(operation, cause.clone())
                        }));
                    }
                    return;
                }
            }
        }
    }

    /// One attempt at a group, in one `BEGIN IMMEDIATE` transaction: every append in order, then one
    /// commit. The replies, one per append, when it committed.
    ///
    /// IMMEDIATE takes SQLite's write lock up front, also against writers in other processes: what the
    /// checks read cannot go stale before the commit, and no read-to-write lock upgrade can fail half
    /// way. Dropping the transaction (a failure, or a cancelled future) rolls it back.
    async fn try_group(
        &self,
        conn: &mut SqliteConnection,
        group: &[(Queued, IdCheck)],
    ) -> Result<Vec<Reply>, GroupFailure> {
        let fail = |e| GroupFailure::Transaction(self.fail(|| "commit a group of appends".to_owned())(e));
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
        // Taken while holding the write lock, so times never go backwards along the log within this
        // process.
        let recorded_at = to_micros(Utc::now());
        let mut replies = Vec::with_capacity(group.len());
        for (index, (queued, check)) in group.iter().enumerate() {
            let failure = match self.try_append(&mut tx, &queued.append, *check, recorded_at).await {
                Ok(Attempt::Done(results)) => {
                    replies.push(Ok(results));
                    continue;
                }
                Ok(Attempt::Refused(error)) => {
                    replies.push(Err(error));
                    continue;
                }
                Ok(Attempt::IdCollision) => GroupFailure::IdCollision(index),
                Err(error) => GroupFailure::Append(index, error),
            };
            tx.rollback().await.map_err(fail)?;
            return Err(failure);
        }
        tx.commit().await.map_err(fail)?;
        Ok(replies)
    }

    /// One append of a group, in the group's transaction: the ids (see [`IdCheck`]), the condition,
    /// every stream's expectation, then the inserts. Every check comes before the first write, so a
    /// refused append leaves the transaction as it found it.
    ///
    /// # Errors
    /// When a statement fails, or a value cannot be stored, possibly after some of the batch was
    /// inserted: the caller rolls the transaction back.
    async fn try_append(
        &self,
        tx: &mut SqliteConnection,
        append: &AtomicAppend,
        check: IdCheck,
        recorded_at: i64,
    ) -> Result<Attempt, EventStoreError> {
        // A retry returns the original results whatever the condition and the expectations say now, so
        // the ids are checked before them (in the first attempt: only when a check fails).
        if check == IdCheck::First {
            match self.earlier_append(tx, append).await {
                Ok(Some(original)) => return Ok(Attempt::Done(original)),
                Ok(None) => {}
                Err(error) => return refused_or_failed(error),
            }
        }
        let mut conflict = None;
        // A condition after the largest position SQLite can store cannot fail: no event lies there.
        let condition = append.condition.as_ref().and_then(|c| Some((c, i64::try_from(c.after.get()).ok()?)));
        if let Some((condition, after)) = condition {
            if let Some(position) = self.first_match(tx, &condition.fail_if_events_match, after).await? {
                conflict = Some(EventStoreError::ConditionFailed { after: condition.after, position });
            }
        }
        let mut actuals = Vec::with_capacity(append.streams.len());
        if conflict.is_none() {
            for stream in &append.streams {
                let actual = self.version_in(tx, &stream.stream_id).await?;
                if !stream.expected.is_satisfied_by(actual) {
                    conflict = Some(EventStoreError::ConcurrencyConflict {
                        stream_id: stream.stream_id.clone(),
                        expected: stream.expected,
                        actual,
                    });
                    break;
                }
                actuals.push(actual);
            }
        }
        if let Some(conflict) = conflict {
            if check == IdCheck::OnCollision {
                match self.earlier_append(tx, append).await {
                    Ok(Some(original)) => return Ok(Attempt::Done(original)),
                    Ok(None) => {}
                    Err(error) => return refused_or_failed(error),
                }
            }
            return Ok(Attempt::Refused(conflict));
        }

        let mut results = Vec::with_capacity(append.streams.len());
        let mut tags = TagRows::default();
        for (stream, actual) in append.streams.iter().zip(actuals) {
            match self.insert_stream(tx, stream, actual, recorded_at, &mut tags).await? {
                Some(result) => results.push(result),
                None => return Ok(Attempt::IdCollision),
            }
        }
        if let Some(rows) = tags.into_json()? {
            sqlx::query(sql::INSERT_EVENT_TAGS)
                .bind(rows)
                .execute(&mut *tx)
                .await
                .map_err(self.fail(|| operation(append)))?;
        }
        Ok(Attempt::Done(results))
    }

    /// A stream's current version as `conn` sees it (0 when it has no events).
    pub(crate) async fn version_in(
        &self,
        conn: &mut SqliteConnection,
        stream_id: &StreamId,
    ) -> Result<Version, EventStoreError> {
        let current: Option<i64> = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id.as_str())
            .fetch_optional(conn)
            .await
            .map_err(self.fail(|| format!("read the version of stream {stream_id}")))?;
        Ok(Version::new(current.map(|v| to_u64(v, "stream version")).transpose()?.unwrap_or(0)))
    }

    /// Inserts one stream's events after its version was checked (`actual`), and collects their tags.
    /// `None` when an event's id is already stored (the caller rolls back).
    async fn insert_stream<'a>(
        &self,
        tx: &mut SqliteConnection,
        stream: &'a StreamAppend,
        actual: Version,
        recorded_at: i64,
        tags: &mut TagRows<'a>,
    ) -> Result<Option<AppendResult>, EventStoreError> {
        let stream_id = &stream.stream_id;
        let events = &stream.events;
        let fail = || self.fail(move || format!("append to stream {stream_id}"));
        let count = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let stream_version = actual.advanced_by(count);
        sqlx::query(sql::UPSERT_STREAM)
            .bind(stream_id.as_str())
            .bind(to_i64(stream_version.get(), "stream version")?)
            .execute(&mut *tx)
            .await
            .map_err(fail())?;

        let first = to_i64(actual.get(), "stream version")?;
        let mut positions = vec![GlobalPosition::START; events.len()];
        for (chunk_index, chunk) in events.chunks(sql::INSERT_CHUNK).enumerate() {
            let chunk_first = first + to_i64((chunk_index * sql::INSERT_CHUNK) as u64, "batch offset")?;
            let mut insert = sqlx::query(sql::insert_events(chunk.len()));
            for (offset, event) in (1..).zip(chunk) {
                insert = insert
                    .bind(stream_id.as_str())
                    .bind(chunk_first + offset)
                    .bind(event.event_type.as_str())
                    .bind(event.codec.as_str())
                    .bind(event.payload.as_slice())
                    .bind(event.metadata.correlation_id)
                    .bind(event.metadata.causation_id)
                    .bind(event.metadata.actor.as_deref())
                    .bind(event.metadata.extra.as_deref())
                    .bind(recorded_at)
                    .bind(event.id.as_uuid())
                    .bind(rows::encode_tags(&event.tags));
            }
            let rows = match insert.fetch_all(&mut *tx).await {
                Ok(rows) => rows,
                // The version was checked under the write lock, so the one unique constraint an insert
                // can meet is the event id's.
                Err(error) if is_unique_violation(&error) => return Ok(None),
                Err(error) => return Err(fail()(error)),
            };
            for row in rows {
                let version: i64 = row.try_get(0).map_err(fail())?;
                let position: i64 = row.try_get(1).map_err(fail())?;
                let index = usize::try_from(version - first - 1).ok();
                let Some((index, event)) = index.and_then(|i| Some((i, events.get(i)?))) else {
                    return Err(EventStoreError::backend(
                        format!("append to stream {stream_id}"),
                        format!("the insert returned version {version}, which is not in the batch"),
                    ));
                };
                positions[index] = GlobalPosition::new(to_u64(position, "global position")?);
                tags.add(&event.tags, position);
            }
        }
        Ok(Some(AppendResult { stream_version, positions }))
    }

    /// The results of the append that already stored the events of `append`, if this is a retry of it;
    /// `None` when no event of it is stored. Looks the ids up in `tx` (through the unique index, up to
    /// [`sql::INSERT_CHUNK`] ids per query) and applies [`idempotent_retry_atomic`].
    ///
    /// # Errors
    /// [`EventStoreError::EventIdInUse`] when an id is stored for another event or only part of the
    /// append is stored; a driver error when the lookup fails.
    async fn earlier_append(
        &self,
        tx: &mut SqliteConnection,
        append: &AtomicAppend,
    ) -> Result<Option<Vec<AppendResult>>, EventStoreError> {
        let mut stored = Vec::new();
        let mut types = EventTypeCache::default();
        let ids: Vec<EventId> = append.events().map(|e| e.id).collect();
        for chunk in ids.chunks(sql::INSERT_CHUNK) {
            let mut lookup = sqlx::query(sql::events_with_ids(chunk.len()));
            for id in chunk {
                lookup = lookup.bind(id.as_uuid());
            }
            let rows = lookup
                .fetch_all(&mut *tx)
                .await
                .map_err(self.fail(|| format!("look up the event ids of an {}", operation(append))))?;
            for row in &rows {
                stored.push(rows::event(row, StreamColumn::InRow, &mut types)?);
            }
        }
        idempotent_retry_atomic(append, &stored)
    }

    /// [`SnapshotStore::save_snapshot`] on the write connection `conn`.
    async fn upsert_snapshot(&self, conn: &mut SqliteConnection, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        sqlx::query(sql::UPSERT_SNAPSHOT)
            .bind(snapshot.stream_id.as_str())
            .bind(to_i64(snapshot.version.get(), "snapshot version")?)
            .bind(i64::from(snapshot.schema_version))
            .bind(snapshot.codec.as_str())
            .bind(snapshot.payload.as_slice())
            .bind(to_micros(snapshot.taken_at))
            .execute(conn)
            .await
            .map_err(self.fail(|| format!("save the snapshot of stream {}", snapshot.stream_id)))?;
        Ok(())
    }

    /// The rows of up to `limit` events after `after` that match `item`, in position order: through the
    /// tag index when the item names a tag, by position otherwise.
    async fn item_rows(
        &self,
        conn: &mut SqliteConnection,
        item: &QueryItem,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SqliteRow>, EventStoreError> {
        let types = json_list(&item.event_types)?;
        let rows = match item.tags.split_first() {
            Some((first, rest)) => {
                let rest = if rest.is_empty() { None } else { json_list(rest)? };
                sqlx::query(sql::READ_TAGGED_ITEM)
                    .bind(first.as_str())
                    .bind(after)
                    .bind(rest)
                    .bind(types)
                    .bind(limit)
                    .fetch_all(conn)
                    .await
            }
            None => sqlx::query(sql::READ_UNTAGGED_ITEM).bind(after).bind(types).bind(limit).fetch_all(conn).await,
        };
        rows.map_err(self.fail(|| format!("read the events matching a query after position {after}")))
    }

    /// The first position after `after` of an event matching `query`, as `conn` sees it: the check of an
    /// append condition. One indexed lookup per item.
    async fn first_match(
        &self,
        conn: &mut SqliteConnection,
        query: &EventQuery,
        after: i64,
    ) -> Result<Option<GlobalPosition>, EventStoreError> {
        let mut first: Option<i64> = None;
        for item in &query.items {
            if let Some(row) = self.item_rows(conn, item, after, 1).await?.first() {
                let position: i64 = row.try_get(0).map_err(self.fail(|| "read a matching position".to_owned()))?;
                first = Some(first.map_or(position, |p| p.min(position)));
            }
        }
        first.map(|p| Ok(GlobalPosition::new(to_u64(p, "global position")?))).transpose()
    }

    /// Reads up to [`READ_PAGE`] events of a stream with versions in `from..=to`.
    async fn stream_page(
        &self,
        stream_id: &StreamId,
        from: i64,
        to: i64,
    ) -> Result<Vec<Result<RecordedEvent, EventStoreError>>, EventStoreError> {
        if let Some(bulk) = &self.inner.bulk {
            let stream = stream_id.clone();
            return bulk
                .run("read a stream", move |conn, errors| {
                    let params = rusqlite::params![stream.as_str(), from, to, READ_PAGE];
                    query_events(conn, sql::READ_STREAM_PAGE, params, &StreamColumn::Known(&stream))
                        .map_err(|e| errors.map_rusqlite(&format!("read stream {stream}"), e))
                })
                .await;
        }
        let rows = sqlx::query(sql::READ_STREAM_PAGE)
            .bind(stream_id.as_str())
            .bind(from)
            .bind(to)
            .bind(READ_PAGE)
            .fetch_all(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("read stream {stream_id}")))?;
        let mut types = EventTypeCache::default();
        Ok(rows.iter().map(|row| rows::event(row, StreamColumn::Known(stream_id), &mut types)).collect())
    }
}

/// Where a [`SqliteEventStore::read_stream`] is: the next version to fetch and the last one wanted.
struct StreamCursor {
    store: SqliteEventStore,
    stream_id: StreamId,
    next: i64,
    last: i64,
    done: bool,
}

impl StreamCursor {
    /// Fetches the next page; `None` once the range is exhausted or an error was reported.
    async fn next_page(mut self) -> Option<(Vec<Result<RecordedEvent, EventStoreError>>, Self)> {
        if self.done || self.next > self.last {
            return None;
        }
        match self.store.stream_page(&self.stream_id, self.next, self.last).await {
            Ok(page) => {
                let full = i64::try_from(page.len()).is_ok_and(|n| n == READ_PAGE);
                match page.last() {
                    Some(Ok(event)) if full => {
                        self.next = to_i64(event.version.get(), "version").unwrap_or(i64::MAX) + 1
                    }
                    _ => self.done = true,
                }
                if page.is_empty() { None } else { Some((page, self)) }
            }
            Err(error) => {
                self.done = true;
                Some((vec![Err(error)], self))
            }
        }
    }
}

#[async_trait]
impl EventLog for SqliteEventStore {
    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        validate_atomic_append(&append)?;
        self.append_inner(append).await
    }

    /// Each item of the query is one read: a range scan of the tag index for an item with tags, a scan of
    /// the log from `after` for one without. The items' events are merged in position order. Every read
    /// and the horizon come from one read transaction, so from one snapshot of the log.
    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        query.validate()?;
        // Past the largest position SQLite can store, nothing can ever appear.
        let Ok(after_db) = i64::try_from(after.get()) else {
            return Ok(QueryPage { events: Vec::new(), horizon: after });
        };
        if limit == 0 {
            // A full page with no last event: complete up to where the read started, and no further.
            return Ok(QueryPage { events: Vec::new(), horizon: after });
        }
        let fail = || self.fail(move || format!("read by query after position {after}"));
        let limit_db = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut reader = self.reader().await?;
        let mut tx = reader.conn()?.begin().await.map_err(fail())?;
        let mut found: Vec<(i64, SqliteRow)> = Vec::new();
        for item in &query.items {
            for row in self.item_rows(&mut tx, item, after_db, limit_db).await? {
                found.push((row.try_get(0).map_err(fail())?, row));
            }
        }
        let last: i64 = sqlx::query_scalar(sql::LAST_POSITION).fetch_one(&mut *tx).await.map_err(fail())?;
        tx.commit().await.map_err(fail())?;
        if query.items.len() > 1 {
            found.sort_by_key(|(position, _)| *position);
            found.dedup_by_key(|(position, _)| *position);
            found.truncate(limit);
        }
        let mut types = EventTypeCache::default();
        let events = found
            .iter()
            .map(|(_, row)| rows::event(row, StreamColumn::InRow, &mut types))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QueryPage::new(events, after, limit, GlobalPosition::new(to_u64(last, "global position")?)))
    }

    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        validate_append(stream_id, &events)?;
        let append = AtomicAppend::new().stream(stream_id.clone(), expected, events);
        let mut results = self.append_inner(append).await?;
        results.pop().ok_or_else(|| {
            EventStoreError::backend(format!("append to stream {stream_id}"), "the append returned no result")
        })
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        let clamp = |v: Version| i64::try_from(v.get()).unwrap_or(i64::MAX);
        let cursor = StreamCursor {
            store: self.clone(),
            stream_id: stream_id.clone(),
            next: clamp(range.from).max(1),
            last: range.to.map_or(i64::MAX, clamp),
            done: false,
        };
        stream::unfold(cursor, StreamCursor::next_page).flat_map(stream::iter).boxed()
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        let version: Option<i64> = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id.as_str())
            .fetch_optional(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("read the version of stream {stream_id}")))?;
        Ok(Version::new(version.map(|v| to_u64(v, "stream version")).transpose()?.unwrap_or(0)))
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        let row = sqlx::query(sql::LOAD_EVENT)
            .bind(id.as_uuid())
            .fetch_optional(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("load the event with id {id}")))?;
        row.map(|row| rows::event(&row, StreamColumn::InRow, &mut EventTypeCache::default())).transpose()
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(read) = sql::read_log(cursor, filter, limit) else { return Ok(Vec::new()) };
        let operation = move || match cursor {
            LogCursor::After(after) => format!("read the global log after position {after}"),
            LogCursor::Before(before) => format!("read the global log before position {before}, newest first"),
            LogCursor::Newest => "read the global log, newest first".to_owned(),
        };
        if let Some(bulk) = &self.inner.bulk {
            return bulk
                .run("read the global log", move |conn, errors| {
                    let params = rusqlite::params_from_iter(read.params.iter());
                    query_events(conn, &read.sql, params, &StreamColumn::InRow)
                        .map_err(|e| errors.map_rusqlite(&operation(), e))?
                        .into_iter()
                        .collect()
                })
                .await;
        }
        let mut query = sqlx::query(&read.sql);
        for param in &read.params {
            query = match param {
                sql::Param::Int(value) => query.bind(*value),
                sql::Param::Text(value) => query.bind(value.as_str()),
                sql::Param::Blob(value) => query.bind(value.as_slice()),
            };
        }
        let rows = query.fetch_all(self.reader().await?.conn()?).await.map_err(self.fail(operation))?;
        let mut types = EventTypeCache::default();
        rows.iter().map(|row| rows::event(row, StreamColumn::InRow, &mut types)).collect()
    }

    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::LIST_STREAMS)
            .bind(prefix)
            .bind(rows::prefix_end(prefix))
            .bind(after.map(StreamId::as_str))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("list streams starting with {prefix:?}")))?;
        rows.iter().map(rows::stream_info).collect()
    }

    /// One `BEGIN IMMEDIATE` transaction under the write lock (see `crate::import`): through the store's
    /// rusqlite import connection for a file, through sqlx in memory.
    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        validate_import(&events)?;
        match &self.inner.importer {
            Some(importer) => importer.import(&self.inner.writer, events).await,
            None => {
                let mut conn = self.inner.writer.lock().await?;
                import::import_with_sqlx(&mut conn, &events, &self.inner.errors, &self.inner.writer).await
            }
        }
    }
}

#[async_trait]
impl SnapshotStore for SqliteEventStore {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        self.upsert_snapshot(&mut *self.inner.writer.lock().await?, snapshot).await
    }

    /// One transaction for all: one flush of the log instead of one per snapshot.
    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<(), EventStoreError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let operation = || format!("save {} snapshots", snapshots.len());
        let mut conn = self.inner.writer.lock().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(self.fail(operation))?;
        for snapshot in snapshots {
            self.upsert_snapshot(&mut tx, snapshot).await?;
        }
        tx.commit().await.map_err(self.fail(operation))
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        let row = sqlx::query(sql::LOAD_SNAPSHOT)
            .bind(stream_id.as_str())
            .fetch_optional(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("load the snapshot of stream {stream_id}")))?;
        row.map(|row| rows::snapshot(&row, stream_id)).transpose()
    }

    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        let Some(ids) = json_list(streams)? else { return Ok(Vec::new()) };
        let rows = sqlx::query(sql::LOAD_SNAPSHOTS)
            .bind(ids)
            .fetch_all(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("load the snapshots of {} streams", streams.len())))?;
        // The stream ids come from `streams`, already valid: no need to parse the stored ones.
        let asked: HashMap<&str, &StreamId> = streams.iter().map(|s| (s.as_str(), s)).collect();
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            found.extend(rows::asked_snapshot(row, &asked)?);
        }
        Ok(snapshots_in_order(streams, found))
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        let result = sqlx::query(sql::DELETE_SNAPSHOT)
            .bind(stream_id.as_str())
            .execute(&mut *self.inner.writer.lock().await?)
            .await
            .map_err(self.fail(|| format!("delete the snapshot of stream {stream_id}")))?;
        Ok(result.rows_affected() > 0)
    }
}

#[async_trait]
impl SubscriptionStore for SqliteEventStore {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        let position: Option<i64> = sqlx::query_scalar(sql::LOAD_CHECKPOINT)
            .bind(handler)
            .fetch_optional(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| format!("load the checkpoint of handler {handler:?}")))?;
        Ok(position.map(|p| to_u64(p, "checkpoint position")).transpose()?.map(GlobalPosition::new))
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        validate_handler_name(handler)?;
        sqlx::query(sql::SAVE_CHECKPOINT)
            .bind(handler)
            .bind(to_i64(position.get(), "checkpoint position")?)
            .bind(to_micros(Utc::now()))
            .execute(&mut *self.inner.writer.lock().await?)
            .await
            .map_err(self.fail(|| format!("save the checkpoint of handler {handler:?}")))?;
        Ok(())
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        validate_handler_name(handler)?;
        let deleted = sqlx::query(sql::DELETE_CHECKPOINT)
            .bind(handler)
            .execute(&mut *self.inner.writer.lock().await?)
            .await
            .map_err(self.fail(|| format!("delete the checkpoint of handler {handler:?}")))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sql::LIST_CHECKPOINTS)
            .fetch_all(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| "list the checkpoints".to_owned()))?;
        rows.into_iter()
            .map(|(handler, position)| Ok((handler, GlobalPosition::new(to_u64(position, "checkpoint position")?))))
            .collect()
    }

    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        Some(self.inner.writer.commit_notifications())
    }

    /// A row in `subscription_leases` that expires `ttl` after it was taken or last renewed; see
    /// [`SubscriptionStore::try_acquire_lease`].
    async fn try_acquire_lease(
        &self,
        handler: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        crate::lease::try_acquire_lease(&self.inner.writer, handler, ttl).await
    }
}

#[async_trait]
impl StoreLifecycle for SqliteEventStore {
    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        let started = Instant::now();
        let applied: Option<i64> = sqlx::query_scalar(sql::LATEST_MIGRATION)
            .fetch_one(self.reader().await?.conn()?)
            .await
            .map_err(self.fail(|| "check the schema version".to_owned()))?;
        let known = open::latest_migration();
        let applied = applied.unwrap_or_default();
        if applied < known {
            let fix = "reopen the store (SqliteEventStore::open) to migrate it";
            return Err(
                SchemaError::Behind { location: self.location().to_owned(), applied, expected: known, fix }.into()
            );
        }
        if applied > known {
            return Err(SchemaError::Newer { location: self.location().to_owned(), version: applied }.into());
        }
        Ok(HealthReport { backend: "sqlite", round_trip: started.elapsed() })
    }

    /// Counts in one read; the bytes are the database file and its write-ahead log (`None` in memory).
    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        let (events, oldest, newest, streams, snapshots, checkpoints): (i64, Option<i64>, Option<i64>, i64, i64, i64) =
            sqlx::query_as(sql::STATS)
                .fetch_one(self.reader().await?.conn()?)
                .await
                .map_err(self.fail(|| "count the events, streams, snapshots and checkpoints".to_owned()))?;
        let mut stats = StoreStats::empty("sqlite");
        stats.events = to_u64(events, "event count")?;
        stats.streams = to_u64(streams, "stream count")?;
        stats.snapshots = to_u64(snapshots, "snapshot count")?;
        stats.checkpoints = to_u64(checkpoints, "checkpoint count")?;
        stats.oldest = oldest.and_then(chrono::DateTime::from_timestamp_micros);
        stats.newest = newest.and_then(chrono::DateTime::from_timestamp_micros);
        stats.bytes_on_disk = self.inner.path.as_deref().map(|path| {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            [path.to_path_buf(), PathBuf::from(wal)]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        });
        Ok(stats)
    }

    async fn close(&self) -> Result<(), EventStoreError> {
        SqliteEventStore::close(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::{AppendCondition, CodecId, Metadata};

    fn event(tag: &str) -> NewEvent {
        NewEvent::new("Grouped.v1", CodecId::Json, b"{}".to_vec(), Metadata::default()).with_tags([Tag::new(tag)])
    }

    fn stream(name: &str) -> StreamId {
        StreamId::new(name).unwrap()
    }

    /// Starts `appends` one after the other while the write connection is held, each only once the
    /// previous one is queued, then lets them run: they arrive in this order and meet one leader.
    async fn queued_while_busy(
        store: &SqliteEventStore,
        appends: Vec<AtomicAppend>,
    ) -> Vec<Result<Vec<AppendResult>, EventStoreError>> {
        let busy = store.inner.writer.lock().await.unwrap();
        let mut tasks = Vec::new();
        for (arrived, append) in appends.into_iter().enumerate() {
            let appending = store.clone();
            tasks.push(tokio::spawn(async move { appending.append_atomic(append).await }));
            while store.inner.queue.len() <= arrived {
                tokio::task::yield_now().await;
            }
        }
        drop(busy);
        let mut replies = Vec::new();
        for task in tasks {
            replies.push(task.await.unwrap());
        }
        replies
    }

    fn one(stream_id: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> AtomicAppend {
        AtomicAppend::new().stream(stream_id.clone(), expected, events)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn appends_that_wait_commit_together_in_order_of_arrival() {
        let store = SqliteEventStore::in_memory().await.unwrap();
        let appends = (0..5).map(|n| one(&stream(&format!("s-{n}")), ExpectedVersion::NoStream, vec![event("t")]));
        let replies = queued_while_busy(&store, appends.collect()).await;
        let positions: Vec<u64> = replies.iter().map(|r| r.as_ref().unwrap()[0].positions[0].get()).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5], "served in the order they arrived");
        let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
        assert!(log.iter().all(|e| e.recorded_at == log[0].recorded_at), "one transaction: one recorded_at");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_append_of_a_group_gets_its_own_checks_and_its_own_result() {
        let store = SqliteEventStore::in_memory().await.unwrap();
        let (orders, other) = (stream("order-1"), stream("other-1"));
        let first = vec![event("order:1")];
        let tagged = EventQuery::tagged([Tag::new("order:1")]);
        let replies = queued_while_busy(
            &store,
            vec![
                one(&orders, ExpectedVersion::NoStream, first.clone()),
                // Loses against the first: a conflict for this append only.
                one(&orders, ExpectedVersion::NoStream, vec![event("order:1")]),
                // A retry of the first (same ids) within the same group: the original result.
                one(&orders, ExpectedVersion::NoStream, first.clone()),
                // Sees the first append's event, appended earlier in the same transaction.
                one(&other, ExpectedVersion::NoStream, vec![event("x")])
                    .condition(AppendCondition::new(tagged, GlobalPosition::START)),
                // Unaffected by the failures before it.
                one(&other, ExpectedVersion::NoStream, vec![event("y")]),
            ],
        )
        .await;
        let original = replies[0].as_ref().unwrap();
        assert_eq!(original[0].stream_version, Version::new(1));
        assert!(
            matches!(&replies[1], Err(EventStoreError::ConcurrencyConflict { actual, .. }) if actual.get() == 1),
            "{:?}",
            replies[1]
        );
        assert_eq!(replies[2].as_ref().unwrap(), original, "a retry returns the original result");
        assert!(
            matches!(&replies[3], Err(EventStoreError::ConditionFailed { position, .. }) if position.get() == 1),
            "{:?}",
            replies[3]
        );
        let last = replies[4].as_ref().unwrap();
        assert_eq!((last[0].stream_version, last[0].positions[0].get()), (Version::new(1), 2));
        let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
        assert_eq!(log.len(), 2, "only the first and the last append wrote: {log:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_append_that_fails_part_way_leaves_the_rest_of_its_group_committed() {
        let store = SqliteEventStore::in_memory().await.unwrap();
        let (a, b) = (stream("a-1"), stream("b-1"));
        // A stream at the largest version SQLite stores cannot take one more event: the insert of the
        // second stream fails after the first stream of the same atomic append was written.
        sqlx::query("INSERT INTO streams (stream_id, version) VALUES ('b-1', 9223372036854775807)")
            .execute(&mut *store.inner.writer.lock().await.unwrap())
            .await
            .unwrap();
        let broken = AtomicAppend::new().stream(a.clone(), ExpectedVersion::NoStream, vec![event("x")]).stream(
            b.clone(),
            ExpectedVersion::Any,
            vec![event("x")],
        );
        let replies = queued_while_busy(
            &store,
            vec![
                one(&stream("c-1"), ExpectedVersion::NoStream, vec![event("x")]),
                broken,
                one(&stream("d-1"), ExpectedVersion::NoStream, vec![event("x")]),
            ],
        )
        .await;
        assert!(replies[1].is_err(), "{:?}", replies[1]);
        assert!(replies[0].is_ok() && replies[2].is_ok(), "{replies:?}");
        assert_eq!(store.stream_version(&a).await.unwrap(), Version::INITIAL, "nothing of the failed append");
        let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap();
        let streams: Vec<&str> = log.iter().map(|e| e.stream_id.as_str()).collect();
        assert_eq!(streams, ["c-1", "d-1"]);
    }

    /// One append of a generated sequence: to one of two streams with some expectation, or a retry (the
    /// same events, so the same ids) of an earlier append of the sequence.
    #[derive(Debug, Clone)]
    enum Step {
        Append { stream: u8, expected: u8 },
        Retry { of: usize },
    }

    fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        let step = prop_oneof![
            3 => (0..2u8, 0..5u8).prop_map(|(stream, expected)| Step::Append { stream, expected }),
            1 => (0..8usize).prop_map(|of| Step::Retry { of }),
        ];
        proptest::collection::vec(step, 1..8)
    }

    fn appends(steps: &[Step]) -> Vec<AtomicAppend> {
        let mut appends: Vec<AtomicAppend> = Vec::new();
        for step in steps {
            let append = match step {
                Step::Retry { of } if !appends.is_empty() => appends[of % appends.len()].clone(),
                Step::Retry { .. } => one(&stream("s-0"), ExpectedVersion::Any, vec![event("t")]),
                Step::Append { stream: s, expected } => {
                    let expected = match expected {
                        0 => ExpectedVersion::Any,
                        1 => ExpectedVersion::NoStream,
                        n => ExpectedVersion::Exact(Version::new(u64::from(n - 2))),
                    };
                    one(&stream(&format!("s-{s}")), expected, vec![event("t"), event("u")])
                }
            };
            appends.push(append);
        }
        appends
    }

    /// What a reply says, comparable: the results, or the error's message.
    fn outcome(reply: &Result<Vec<AppendResult>, EventStoreError>) -> String {
        match reply {
            Ok(results) => format!("{results:?}"),
            Err(error) => error.to_string(),
        }
    }

    async fn log_of(store: &SqliteEventStore) -> Vec<(EventId, String, u64, u64)> {
        let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 1000).await.unwrap();
        log.into_iter().map(|e| (e.id, e.stream_id.to_string(), e.version.get(), e.position.get())).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A group commit answers and writes exactly what the same appends, run one after the other in
        /// arrival order, answer and write: conflicts, retries and all.
        #[test]
        fn a_group_answers_and_writes_what_the_same_appends_do_one_by_one(steps in steps()) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let appends = appends(&steps);
            let (grouped, grouped_log, serial, serial_log) = runtime.block_on(async {
                let group_store = SqliteEventStore::in_memory().await.unwrap();
                let grouped = queued_while_busy(&group_store, appends.clone()).await;
                let serial_store = SqliteEventStore::in_memory().await.unwrap();
                let mut serial = Vec::new();
                for append in appends {
                    serial.push(serial_store.append_atomic(append).await);
                }
                (grouped, log_of(&group_store).await, serial, log_of(&serial_store).await)
            });
            let grouped: Vec<String> = grouped.iter().map(outcome).collect();
            let serial: Vec<String> = serial.iter().map(outcome).collect();
            proptest::prop_assert_eq!(grouped, serial);
            proptest::prop_assert_eq!(grouped_log, serial_log);
        }
    }
}
