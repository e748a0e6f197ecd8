//! [`EventLog::import`](composable_rust_core::backend::EventLog::import) on SQLite: one plan
//! ([`ImportPlan`]) and two executors of it.
//!
//! A file store writes an import batch through a rusqlite connection of its own ([`ImportWriter`]), on a
//! blocking thread, one cached single-row `INSERT` per event: sqlx's driver boxes every bound value and
//! hands each statement to its worker thread, which cost an import ~14 µs per event (docs/decisions.md,
//! "Import speed"). The connection writes only while the thread holds the store's write lock
//! ([`Writer::hold`]), so the process still has one writer at a time. An in-memory store has a single
//! connection, sqlx's, so it runs the same plan through sqlx ([`import_with_sqlx`]), as its reads do.
//!
//! Both executors make the same attempt: `BEGIN IMMEDIATE`, read the streams' versions, plan (looking the
//! ids up only when they can matter, see [`IdLookup`]), upsert the streams, insert the events and their
//! tags, commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use composable_rust_core::backend::{ImportStep, plan_import};
use composable_rust_core::{Durability, EventStoreError, GlobalPosition, RecordedEvent, StreamId, Version};
use rusqlite::{Connection, TransactionBehavior};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection as _, Row};

use crate::blocking::{on_blocking_thread, open_connection};
use crate::error::{ErrorContext, is_unique_violation, is_unique_violation_rusqlite};
use crate::readers::query_events;
use crate::rows::{self, StreamColumn, to_i64, to_micros, to_u64};
use crate::sql;
use crate::store::{TagRows, json_list};
use crate::writer::{Writer, closed};

/// Whether an import attempt looks its ids up before planning.
///
/// A fresh import stores none of its ids, so the batch is first planned as if none were stored: an event
/// stored exactly as given fails that plan (its stream is at or past its version), and an id stored for
/// another event fails the insert on the unique index. Either way the attempt is rolled back and the
/// batch runs again with its ids looked up, which is what decides the answer. Under the write lock nothing
/// changes in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdLookup {
    /// Only when the plan without them fails; a stored id met by the insert ends the attempt.
    OnlyIfNeeded,
    /// Always, before planning.
    First,
}

/// What an attempt writes, decided before its first write, and the positions it has found so far.
struct ImportPlan<'a> {
    events: &'a [RecordedEvent],
    /// One per event of the batch: the stored position of an event to skip, and of a written one once
    /// [`ImportPlan::written_at`] recorded it.
    positions: Vec<GlobalPosition>,
    /// The indexes of the events to write, in the order given (positions follow it).
    written: Vec<usize>,
    tags: TagRows<'a>,
}

impl<'a> ImportPlan<'a> {
    /// The plan of an attempt without looking its ids up, when `lookup` allows that and the plan holds;
    /// `None` when the ids must be looked up first ([`ImportPlan::with_ids`]).
    fn without_ids(
        events: &'a [RecordedEvent],
        versions: &HashMap<StreamId, Version>,
        lookup: IdLookup,
    ) -> Option<Self> {
        match lookup {
            IdLookup::OnlyIfNeeded => Some(Self::from_steps(events, &plan_import(events, &[], versions).ok()?)),
            IdLookup::First => None,
        }
    }

    /// The plan of an attempt, given the stored events that carry an id of the batch.
    ///
    /// # Errors
    /// [`plan_import`]'s: a conflict, an id in use.
    fn with_ids(
        events: &'a [RecordedEvent],
        stored: &[RecordedEvent],
        versions: &HashMap<StreamId, Version>,
    ) -> Result<Self, EventStoreError> {
        Ok(Self::from_steps(events, &plan_import(events, stored, versions)?))
    }

    fn from_steps(events: &'a [RecordedEvent], steps: &[ImportStep]) -> Self {
        let positions = steps
            .iter()
            .map(|step| match step {
                ImportStep::Stored(position) => *position,
                ImportStep::Write => GlobalPosition::START,
            })
            .collect();
        let written =
            steps.iter().enumerate().filter(|(_, step)| **step == ImportStep::Write).map(|(i, _)| i).collect();
        Self { events, positions, written, tags: TagRows::default() }
    }

    /// The events to write, with their indexes in the batch, in the order given.
    fn to_write(&self) -> impl Iterator<Item = (usize, &'a RecordedEvent)> + '_ {
        self.written.iter().filter_map(|&index| Some((index, self.events.get(index)?)))
    }

    /// The parameter of [`sql::UPSERT_STREAMS`]: each written stream with its version after the batch.
    /// Events reference their stream's row, so the streams go first.
    fn heads(&self) -> Result<Option<String>, EventStoreError> {
        let mut heads: HashMap<&str, i64> = HashMap::new();
        for (_, event) in self.to_write() {
            heads.insert(event.stream_id.as_str(), to_i64(event.version.get(), "stream version")?);
        }
        json_list(&heads.into_iter().collect::<Vec<_>>())
    }

    /// Records that the event at `index` was stored at `position`.
    fn written_at(&mut self, index: usize, position: i64) -> Result<(), EventStoreError> {
        let events: &'a [RecordedEvent] = self.events;
        if let (Some(slot), Some(event)) = (self.positions.get_mut(index), events.get(index)) {
            *slot = GlobalPosition::new(to_u64(position, "global position")?);
            self.tags.add(&event.tags, position);
        }
        Ok(())
    }
}

/// What an import's errors name: `import 5000 events`.
fn operation(events: &[RecordedEvent]) -> String {
    format!("import {} events", events.len())
}

/// The parameter of [`sql::STREAM_VERSIONS`]: the batch's streams, once each.
fn streams(events: &[RecordedEvent]) -> Vec<&str> {
    let mut streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    streams
}

/// What [`sql::STREAM_VERSIONS`] returned, by stream.
fn versions(rows: Vec<(String, i64)>) -> Result<HashMap<StreamId, Version>, EventStoreError> {
    let mut versions = HashMap::with_capacity(rows.len());
    for (stream_id, version) in rows {
        let stream_id = StreamId::new(stream_id).map_err(|e| {
            EventStoreError::backend("decode a row of the SQLite event store", format!("stored stream id: {e}"))
        })?;
        versions.insert(stream_id, Version::new(to_u64(version, "stream version")?));
    }
    Ok(versions)
}

/// The answer when the second attempt, which looked the ids up first, still met a stored id.
fn taken_after_lookup(events: &[RecordedEvent]) -> EventStoreError {
    EventStoreError::backend(
        operation(events),
        "an event id was refused as taken after the ids were checked under the write lock",
    )
}

/// Imports `events` (validated) through sqlx on `conn`, the locked write connection of an in-memory
/// store: the attempt of the module documentation, multi-row `INSERT`s of [`sql::INSERT_CHUNK`] rows (one
/// statement per chunk is what sqlx does fastest; a multi-row `INSERT` stores its rows in `VALUES` order,
/// so positions follow the order given).
///
/// # Errors
/// A conflict or an id in use (nothing written); a driver error.
pub(crate) async fn import_with_sqlx(
    conn: &mut SqliteConnection,
    events: &[RecordedEvent],
    errors: &ErrorContext,
    writer: &Writer,
) -> Result<Vec<GlobalPosition>, EventStoreError> {
    match sqlx_attempt(conn, events, errors, writer, IdLookup::OnlyIfNeeded).await? {
        Some(positions) => Ok(positions),
        None => {
            sqlx_attempt(conn, events, errors, writer, IdLookup::First).await?.ok_or_else(|| taken_after_lookup(events))
        }
    }
}

/// One attempt of [`import_with_sqlx`]; `None` (rolled back) when an insert met a stored id that was not
/// looked up.
async fn sqlx_attempt(
    conn: &mut SqliteConnection,
    events: &[RecordedEvent],
    errors: &ErrorContext,
    writer: &Writer,
    lookup: IdLookup,
) -> Result<Option<Vec<GlobalPosition>>, EventStoreError> {
    let operation = || operation(events);
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(errors.fail(operation))?;
    let streams = streams(events);
    let rows: Vec<(String, i64)> = sqlx::query_as(sql::STREAM_VERSIONS)
        .bind(json_list(&streams)?)
        .fetch_all(&mut *tx)
        .await
        .map_err(errors.fail(|| format!("read the versions of the {} streams of an import", streams.len())))?;
    let versions = versions(rows)?;
    let mut plan = match ImportPlan::without_ids(events, &versions, lookup) {
        Some(plan) => plan,
        None => ImportPlan::with_ids(events, &sqlx_stored(&mut tx, events, errors).await?, &versions)?,
    };
    if plan.written.is_empty() {
        tx.rollback().await.map_err(errors.fail(operation))?;
        return Ok(Some(plan.positions));
    }
    sqlx::query(sql::UPSERT_STREAMS).bind(plan.heads()?).execute(&mut *tx).await.map_err(errors.fail(operation))?;
    let written = plan.written.clone();
    for chunk in written.chunks(sql::INSERT_CHUNK) {
        let mut insert = sqlx::query(sql::insert_events(chunk.len()));
        for &index in chunk {
            let Some(event) = events.get(index) else { continue };
            insert = insert
                .bind(event.stream_id.as_str())
                .bind(to_i64(event.version.get(), "stream version")?)
                .bind(event.event_type.as_str())
                .bind(event.codec.as_str())
                .bind(&event.payload[..])
                .bind(event.metadata.correlation_id)
                .bind(event.metadata.causation_id)
                .bind(event.metadata.actor.as_deref())
                .bind(event.metadata.extra.as_deref())
                .bind(to_micros(event.recorded_at))
                .bind(event.id.as_uuid())
                .bind(rows::encode_tags(&event.tags));
        }
        let rows = match insert.fetch_all(&mut *tx).await {
            Ok(rows) => rows,
            Err(error) if is_unique_violation(&error) && lookup == IdLookup::OnlyIfNeeded => {
                tx.rollback().await.map_err(errors.fail(operation))?;
                return Ok(None);
            }
            Err(error) => return Err(errors.fail(operation)(error)),
        };
        let mut chunk_positions = Vec::with_capacity(rows.len());
        for row in &rows {
            let position: i64 = row.try_get(1).map_err(errors.fail(operation))?;
            chunk_positions.push(position);
        }
        if chunk_positions.len() != chunk.len() {
            return Err(EventStoreError::backend(
                operation(),
                format!("an insert of {} rows returned {} positions", chunk.len(), chunk_positions.len()),
            ));
        }
        // RETURNING lists rows in no promised order; the rows were stored in VALUES order.
        chunk_positions.sort_unstable();
        for (&index, position) in chunk.iter().zip(chunk_positions) {
            plan.written_at(index, position)?;
        }
    }
    let ImportPlan { positions, tags, .. } = plan;
    if let Some(rows) = tags.into_json()? {
        sqlx::query(sql::INSERT_EVENT_TAGS).bind(rows).execute(&mut *tx).await.map_err(errors.fail(operation))?;
    }
    tx.commit().await.map_err(errors.fail(operation))?;
    writer.committed();
    Ok(Some(positions))
}

/// The stored events that carry an id of `events`, [`sql::INSERT_CHUNK`] ids per lookup, through sqlx.
async fn sqlx_stored(
    conn: &mut SqliteConnection,
    events: &[RecordedEvent],
    errors: &ErrorContext,
) -> Result<Vec<RecordedEvent>, EventStoreError> {
    let mut stored = Vec::new();
    let mut types = composable_rust_core::backend::EventTypeCache::default();
    for chunk in events.chunks(sql::INSERT_CHUNK) {
        let mut lookup = sqlx::query(sql::events_with_ids(chunk.len()));
        for event in chunk {
            lookup = lookup.bind(event.id.as_uuid());
        }
        let rows = lookup
            .fetch_all(&mut *conn)
            .await
            .map_err(errors.fail(|| format!("look up the event ids of an import of {} events", events.len())))?;
        for row in &rows {
            stored.push(rows::event(row, StreamColumn::InRow, &mut types)?);
        }
    }
    Ok(stored)
}

/// The import's write connection to a store's file (rusqlite), opened at the first import and kept.
pub(crate) struct ImportWriter {
    path: PathBuf,
    durability: Durability,
    errors: ErrorContext,
    slot: Mutex<Slot>,
}

/// Where the import's connection is when no import uses it.
enum Slot {
    /// Not opened yet (`None`), or idle.
    Open(Option<Connection>),
    /// The store was closed: no import may start, and a connection handed back is closed.
    Closed,
}

impl ImportWriter {
    /// The import connection of the store at `path` (which exists and has its schema), with the store's
    /// durability and the busy timeout of `errors`.
    pub(crate) fn new(path: &Path, durability: Durability, errors: ErrorContext) -> Self {
        Self { path: path.to_path_buf(), durability, errors, slot: Mutex::new(Slot::Open(None)) }
    }

    /// Imports `events` (validated) under the store's write lock, on a blocking thread.
    ///
    /// The lock moves to that thread and is released there, after the connection was handed back: a
    /// caller that stops waiting (a dropped future) cannot let another writer in while the batch is still
    /// being written, nor leave the connection open past [`ImportWriter::close`].
    ///
    /// # Errors
    /// After the store was closed; a conflict or an id in use (nothing written); a driver error.
    pub(crate) async fn import(
        self: &Arc<Self>,
        writer: &Writer,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<GlobalPosition>, EventStoreError> {
        let lock = writer.hold().await?;
        let importer = Arc::clone(self);
        let writer = writer.clone();
        let operation = operation(&events);
        on_blocking_thread(&self.errors, &operation, move || {
            let result = importer.with_connection(|connection| {
                match rusqlite_attempt(connection, &events, &importer.errors, &writer, IdLookup::OnlyIfNeeded)? {
                    Some(positions) => Ok(positions),
                    None => rusqlite_attempt(connection, &events, &importer.errors, &writer, IdLookup::First)?
                        .ok_or_else(|| taken_after_lookup(&events)),
                }
            });
            drop(lock);
            result
        })
        .await
    }

    /// Closes the idle connection and refuses later imports; an import in progress closes its connection
    /// when it ends (before it releases the write lock, which the store's close waits for).
    pub(crate) fn close(&self) {
        *self.slot() = Slot::Closed;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Only takes and hand-backs run under this lock; a poisoned one still holds a consistent slot.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` on the connection (opened if needed) and hands it back.
    fn with_connection<T>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, EventStoreError>,
    ) -> Result<T, EventStoreError> {
        let idle = match &mut *self.slot() {
            Slot::Closed => return Err(closed()),
            Slot::Open(idle) => idle.take(),
        };
        let mut connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let result = write(&mut connection);
        if let Slot::Open(idle) = &mut *self.slot() {
            *idle = Some(connection);
        }
        result
    }

    /// Opens a write connection with the settings of the store's own.
    fn connect(&self) -> Result<Connection, EventStoreError> {
        let purpose = "the import's write connection";
        let connection = open_connection(&self.path, &self.errors, purpose)?;
        let fail = |e| self.errors.map_rusqlite(&format!("open {purpose}"), e);
        let synchronous = match self.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        connection.pragma_update(None, "synchronous", synchronous).map_err(fail)?;
        connection.pragma_update(None, "foreign_keys", true).map_err(fail)?;
        connection.set_prepared_statement_cache_capacity(16);
        Ok(connection)
    }
}

/// One attempt of [`ImportWriter::import`] on `connection`; `None` (rolled back) when an insert met a
/// stored id that was not looked up.
fn rusqlite_attempt(
    connection: &mut Connection,
    events: &[RecordedEvent],
    errors: &ErrorContext,
    writer: &Writer,
    lookup: IdLookup,
) -> Result<Option<Vec<GlobalPosition>>, EventStoreError> {
    let fail = |e| errors.map_rusqlite(&operation(events), e);
    // Dropping `tx` on any early return below rolls it back.
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
    let streams = streams(events);
    let rows = read_versions(&tx, &json_list(&streams)?).map_err(|e| {
        errors.map_rusqlite(&format!("read the versions of the {} streams of an import", streams.len()), e)
    })?;
    let versions = versions(rows)?;
    let mut plan = match ImportPlan::without_ids(events, &versions, lookup) {
        Some(plan) => plan,
        None => ImportPlan::with_ids(events, &rusqlite_stored(&tx, events, errors)?, &versions)?,
    };
    if plan.written.is_empty() {
        tx.rollback().map_err(fail)?;
        return Ok(Some(plan.positions));
    }
    let heads = plan.heads()?;
    tx.prepare_cached(sql::UPSERT_STREAMS).and_then(|mut upsert| upsert.execute([heads])).map_err(fail)?;
    {
        let mut insert = tx.prepare_cached(sql::INSERT_EVENT).map_err(fail)?;
        for index in plan.written.clone() {
            let Some(event) = events.get(index) else { continue };
            let inserted = insert.insert(rusqlite::params![
                event.stream_id.as_str(),
                to_i64(event.version.get(), "stream version")?,
                event.event_type.as_str(),
                event.codec.as_str(),
                &event.payload[..],
                event.metadata.correlation_id.as_ref().map(|id| &id.as_bytes()[..]),
                event.metadata.causation_id.as_ref().map(|id| &id.as_bytes()[..]),
                event.metadata.actor.as_deref(),
                event.metadata.extra.as_deref(),
                to_micros(event.recorded_at),
                &event.id.as_uuid().as_bytes()[..],
                rows::encode_tags(&event.tags),
            ]);
            match inserted {
                // `global_position` is the table's rowid.
                Ok(position) => plan.written_at(index, position)?,
                Err(error) if is_unique_violation_rusqlite(&error) && lookup == IdLookup::OnlyIfNeeded => {
                    drop(insert);
                    tx.rollback().map_err(fail)?;
                    return Ok(None);
                }
                Err(error) => return Err(fail(error)),
            }
        }
    }
    let ImportPlan { positions, tags, .. } = plan;
    if let Some(rows) = tags.into_json()? {
        tx.prepare_cached(sql::INSERT_EVENT_TAGS).and_then(|mut insert| insert.execute([rows])).map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    writer.committed();
    Ok(Some(positions))
}

/// The rows of [`sql::STREAM_VERSIONS`] for the JSON list `streams`.
fn read_versions(connection: &Connection, streams: &Option<String>) -> Result<Vec<(String, i64)>, rusqlite::Error> {
    let mut select = connection.prepare_cached(sql::STREAM_VERSIONS)?;
    let rows = select.query_map([streams], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// The stored events that carry an id of `events`, [`sql::INSERT_CHUNK`] ids per lookup, through rusqlite.
fn rusqlite_stored(
    connection: &Connection,
    events: &[RecordedEvent],
    errors: &ErrorContext,
) -> Result<Vec<RecordedEvent>, EventStoreError> {
    let fail = |e| errors.map_rusqlite(&format!("look up the event ids of an import of {} events", events.len()), e);
    let mut stored = Vec::new();
    for chunk in events.chunks(sql::INSERT_CHUNK) {
        let ids = chunk.iter().map(|event| event.id.as_uuid().into_bytes());
        let params = rusqlite::params_from_iter(ids.map(|id| id.to_vec()));
        for event in
            query_events(connection, sql::events_with_ids(chunk.len()), params, &StreamColumn::InRow).map_err(fail)?
        {
            stored.push(event?);
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_handed_back_after_close_is_closed_and_no_import_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        Connection::open(&path).unwrap();
        let errors =
            ErrorContext { location: path.display().to_string(), busy_timeout: std::time::Duration::from_secs(1) };
        let importer = ImportWriter::new(&path, Durability::Full, errors);
        let used = importer.with_connection(|_| {
            // The store closes while this import holds the connection.
            importer.close();
            Ok(())
        });
        assert!(used.is_ok());
        assert!(matches!(&*importer.slot(), Slot::Closed), "the connection was not kept");
        let refused = importer.with_connection(|_| Ok(()));
        assert!(refused.is_err_and(|e| composable_rust_core::error_chain(&e).contains("the store was closed")));
    }
}
