//! [`PostgresEventStore`]: the [`EventStore`] contract on a sqlx `PgPool`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use composable_rust_core::backend::{
    EventLog, EventTypeCache, HandlerLease, SnapshotStore, StoreLifecycle, SubscriptionStore, idempotent_retry,
    idempotent_retry_atomic, snapshots_in_order, validate_append, validate_atomic_append, validate_handler_name,
};
use composable_rust_core::{
    AppendResult, AtomicAppend, CodecId, EventId, EventQuery, EventStoreError, EventStream, ExpectedVersion,
    GlobalPosition, HealthReport, InvalidInput, LogCursor, LogFilter, Metadata, NewEvent, QueryPage, RecordedEvent,
    SchemaError, Snapshot, StoreStats, StreamId, StreamInfo, StreamRange, Tag, Version, async_trait,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use crate::config::{PostgresConfig, describe_server};
use crate::error::{ConnectionHealth, ErrorContext, MISSING_SCHEMA_HINT, PostgresError};
use crate::notify::Notifier;
use crate::sql;

mod import;

/// The schema, embedded from `migrations/postgres` at build time.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// How often an append with [`ExpectedVersion::Any`] or [`ExpectedVersion::StreamExists`] retries after
/// losing a race for the next version to another writer (each lost race means another writer progressed).
const MAX_RACE_RETRIES: u32 = 100;

/// An [`EventStore`](composable_rust_core::EventStore) in PostgreSQL: one round trip per appended batch, streamed loads, and a global log
/// that never shows a later commit behind a position already read.
///
/// Cheap to clone (it wraps a connection pool). Create it with [`PostgresEventStore::connect`],
/// [`PostgresEventStore::connect_with`] or [`PostgresEventStore::from_pool`], then create the schema once
/// with [`PostgresEventStore::migrate`].
#[derive(Clone)]
pub struct PostgresEventStore {
    pool: PgPool,
    context: Arc<ErrorContext>,
    read_all_wait: Duration,
    notifier: Arc<Notifier>,
}

impl PostgresEventStore {
    /// Connects to the server named by a `postgres://user:password@host:port/database` URL with the default
    /// [`PostgresConfig`].
    ///
    /// # Errors
    /// [`EventStoreError::Unavailable`] when the server does not answer within the acquire timeout or refuses
    /// the connection (retry later); [`EventStoreError::Backend`] when the URL is invalid, the login is
    /// refused or the database does not exist. The source is a [`PostgresError`] that says what to do.
    pub async fn connect(url: &str) -> Result<Self, EventStoreError> {
        Self::connect_with(PostgresConfig::from_url(url)?).await
    }

    /// Connects with explicit settings.
    ///
    /// One connection is opened right away so that a wrong address, user or database fails here with the
    /// real cause, instead of later as a pool timeout.
    ///
    /// # Errors
    /// As [`PostgresEventStore::connect`].
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, EventStoreError> {
        let options = config.connect_options();
        let health = Arc::new(ConnectionHealth::default());
        let context = ErrorContext {
            server: config.server(),
            acquire_timeout: config.acquire_timeout,
            health: Arc::clone(&health),
        };
        let operation = "connect";
        let probe = tokio::time::timeout(config.acquire_timeout, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                EventStoreError::unavailable(
                    operation,
                    PostgresError::AcquireTimeout { server: context.server.clone(), timeout: config.acquire_timeout },
                )
            })?
            .map_err(|e| context.map(operation, e))?;
        // Closing politely only matters to the server's log; a failure here changes nothing for us.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(config.test_before_acquire)
            // After a broken connection (a server restart), do not hand out the connections opened before it.
            .before_acquire(move |_, meta| {
                let stale = health.opened_before_last_loss(meta.age);
                Box::pin(async move { Ok(!stale) })
            })
            .connect_lazy_with(options);
        tracing::debug!(server = %context.server, "connected to PostgreSQL");
        Ok(Self { pool, context: Arc::new(context), read_all_wait: config.read_all_wait, notifier: Arc::default() })
    }

    /// Uses an existing pool as it is configured (consider `test_before_acquire(false)`, see
    /// [`PostgresConfig::test_before_acquire`]). The pool is shared, not copied: closing the store with
    /// [`StoreLifecycle::close`] closes it for every other user too.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        let context = ErrorContext {
            server: describe_server(&pool.connect_options()),
            acquire_timeout: pool.options().get_acquire_timeout(),
            // The caller's pool has no hook to consult it; its own settings decide about dead connections.
            health: Arc::default(),
        };
        Self {
            pool,
            context: Arc::new(context),
            read_all_wait: PostgresConfig::DEFAULT_READ_ALL_WAIT,
            notifier: Arc::default(),
        }
    }

    /// Creates or updates the schema (tables, indexes, the append-only trigger) by applying the embedded
    /// migrations that are not applied yet. Safe to call at every start and from several processes at
    /// once (sqlx takes an advisory lock).
    ///
    /// # Errors
    /// [`EventStoreError::Schema`] when the database holds a migration this build does not know, an applied
    /// migration was edited, or one was only partly applied; [`EventStoreError::Backend`] when the server
    /// fails or refuses (for example, the role may not create tables).
    ///
    /// A store whose migrations are all applied, unchanged, is left alone without running the migrator, so that a
    /// role that may not create tables (the application's or retention's least-privilege role,
    /// docs/database-setup.md) can open it: sqlx's migrator starts with `CREATE TABLE IF NOT EXISTS`, which such a
    /// role is refused even when the table exists. Such a role needs `SELECT` on `_sqlx_migrations`.
    pub async fn migrate(&self) -> Result<(), EventStoreError> {
        if self.migrations_current().await {
            return Ok(());
        }
        MIGRATOR.run(&self.pool).await.map_err(|e| self.context.map_migrate(e))
    }

    /// Whether the database has applied exactly the embedded migrations, with their checksums. Any doubt (no
    /// migration table, no right to read it, a migration missing, edited or unknown) is `false`: the migrator then
    /// runs, and applies what is missing or says what is wrong.
    async fn migrations_current(&self) -> bool {
        let applied: Vec<(i64, Vec<u8>)> = match sqlx::query_as(sql::APPLIED_MIGRATIONS).fetch_all(&self.pool).await {
            Ok(applied) => applied,
            Err(_) => return false,
        };
        let embedded: Vec<_> = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
        embedded.len() == applied.len()
            && embedded.iter().all(|m| {
                applied.iter().any(|(version, checksum)| *version == m.version && checksum.as_slice() == &*m.checksum)
            })
    }

    /// How this store's driver errors read, for the transactional projections.
    pub(crate) fn errors(&self) -> &ErrorContext {
        &self.context
    }

    /// The connection pool, to share it with the application's own queries.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One page of the global log on `cursor`'s side (`After` or `Before`), below the visibility horizon:
    /// the snapshot's xmin, or `horizon`.
    async fn read_page(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
        horizon: Option<i64>,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let (position, newest_first) = match cursor {
            LogCursor::After(after) => (to_db(after.get()), false),
            LogCursor::Before(before) => (to_db(before.get()), true),
            LogCursor::Newest => (i64::MAX, true),
        };
        let page = i64::try_from(limit).unwrap_or(i64::MAX);
        let filtered;
        let query = if filter.is_all() && !newest_first {
            sqlx::query(sql::READ_ALL).bind(position).bind(page).bind(horizon)
        } else {
            let params;
            (filtered, params) = sql::read_log(newest_first, filter);
            let mut query = sqlx::query(&filtered)
                .bind(position)
                .bind(page)
                .bind(horizon)
                // Planned for its values: see `sql::read_log`.
                .persistent(filter.is_all());
            for param in params {
                query = match param {
                    sql::Param::Texts(values) => query.bind(values),
                    sql::Param::Text(value) => query.bind(value),
                    sql::Param::Uuid(value) => query.bind(value),
                    sql::Param::Time(value) => query.bind(value),
                };
            }
            query
        };
        let operation = || match cursor {
            LogCursor::After(after) => format!("read the global log after position {after}"),
            LogCursor::Before(before) => format!("read the global log before position {before}, newest first"),
            LogCursor::Newest => "read the global log, newest first".to_owned(),
        };
        let mut rows = query.fetch(&self.pool);
        let mut events = Vec::with_capacity(limit.min(4096));
        let mut last_stream = None;
        let mut types = EventTypeCache::default();
        while let Some(row) = rows.try_next().await.map_err(|e| self.context.map(operation(), e))? {
            let event = stream_id_of(&row, &mut last_stream)
                .and_then(|stream_id| decode_event(&row, stream_id, 1, &mut types))
                .map_err(|e| self.context.map_decode(operation, e))?;
            events.push(event);
        }
        Ok(events)
    }

    /// A page of the global log newest first: below the refined visibility horizon, after waiting (up to
    /// `read_all_wait`) for transactions of this database that hold committed events back above it, so the
    /// page starts at the newest event and nothing can later commit below it.
    async fn read_newest_first(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let below = match cursor {
            LogCursor::Before(before) => to_db(before.get()),
            LogCursor::After(_) | LogCursor::Newest => i64::MAX,
        };
        let deadline = Instant::now() + self.read_all_wait;
        let mut backoff = Duration::from_millis(1);
        loop {
            let (horizon, newest): (i64, Option<i64>) = sqlx::query_as(sql::REFINED_HORIZON)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.context.map("read the global log's visibility horizon", e))?;
            // Held back: a committed event at or above the horizon, below the cursor.
            let held = newest.is_some_and(|newest| newest >= horizon && horizon < below);
            if !held || Instant::now() + backoff > deadline {
                return self.read_page(cursor, filter, limit, Some(horizon)).await;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
    }

    /// One attempt at the single-statement append.
    async fn try_append(&self, stream_id: &StreamId, expected: ExpectedVersion, batch: &Batch<'_>) -> Attempt {
        let (mode, version) = expectation(expected);
        // Versions known in advance skip the version lookup (see `sql::APPEND_AT`).
        // (A version near i64::MAX, which no stream reaches, goes the general way: `v + n` would overflow.)
        let at = match expected {
            ExpectedVersion::NoStream => true,
            ExpectedVersion::Exact(v) => v.get() < (i64::MAX as u64) - sql::MAX_BATCH as u64,
            ExpectedVersion::Any | ExpectedVersion::StreamExists => false,
        };
        let statement = if at { sql::APPEND_AT } else { sql::APPEND };
        let query = sqlx::query(statement)
            .bind(stream_id.as_str())
            .bind(&batch.ids)
            .bind(&batch.event_types)
            .bind(&batch.codecs)
            .bind(&batch.payloads)
            .bind(&batch.correlation_ids)
            .bind(&batch.causation_ids)
            .bind(&batch.actors)
            .bind(&batch.extras);
        let query = if at { query.bind(version) } else { query.bind(mode).bind(version) };
        let row = match query.fetch_one(&self.pool).await {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e) => return Attempt::Duplicate,
            Err(e) => return Attempt::Failed(e),
        };
        let decoded: Result<(i64, i64, Option<i64>), sqlx::Error> =
            (|| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))();
        match decoded {
            // APPEND_AT does not read the version it was refused at.
            Ok((_, 0, _)) if at => Attempt::Refused { actual: None },
            Ok((current, 0, _)) => Attempt::Refused { actual: Some(Version::new(from_db(current))) },
            Ok((current, _, Some(first))) => Attempt::Appended { current: from_db(current), first: from_db(first) },
            Ok((_, _, None)) => Attempt::Failed(sqlx::Error::Protocol("append returned rows but no position".into())),
            Err(e) => Attempt::Failed(e),
        }
    }

    /// The stored events that carry any id of `batch`, in any stream.
    async fn events_by_id(
        &self,
        stream_id: &StreamId,
        batch: &Batch<'_>,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let operation = || format!("look up the event ids of an append to stream {stream_id}");
        let mut rows = sqlx::query(sql::EVENTS_BY_ID).bind(&batch.ids).fetch(&self.pool);
        let mut stored = Vec::new();
        let mut last_stream = None;
        let mut types = EventTypeCache::default();
        while let Some(row) = rows.try_next().await.map_err(|e| self.context.map(operation(), e))? {
            let event = stream_id_of(&row, &mut last_stream)
                .and_then(|stream_id| decode_event(&row, stream_id, 1, &mut types))
                .map_err(|e| self.context.map_decode(operation, e))?;
            stored.push(event);
        }
        Ok(stored)
    }

    /// After an append wrote nothing (its expectation failed, or a unique index refused a row): the result
    /// of the earlier append that stored exactly this batch, if it is a retry of one (see
    /// [`idempotent_retry`]).
    ///
    /// # Errors
    /// [`EventStoreError::EventIdInUse`] when an id of the batch is stored for another event.
    async fn stored_retry(
        &self,
        stream_id: &StreamId,
        events: &[NewEvent],
        batch: &Batch<'_>,
    ) -> Result<Option<AppendResult>, EventStoreError> {
        let stored = self.events_by_id(stream_id, batch).await?;
        idempotent_retry(stream_id, events, &stored)
    }
}

/// The outcome of one [`sql::APPEND_LOCKED`] call.
enum LockedAttempt {
    /// Written: each stream's version before the append, and the first event's position.
    Appended {
        versions: Vec<u64>,
        first: u64,
    },
    /// The condition failed: an event matching it lies at `position`, after the condition's position.
    ConditionFailed {
        position: u64,
    },
    /// The expectation of stream `index` (0-based) did not hold at `actual`; nothing was written.
    Refused {
        index: usize,
        actual: Version,
    },
    /// A unique index refused a row (see [`Attempt::Duplicate`]); nothing was written.
    Duplicate,
    Failed(sqlx::Error),
}

impl PostgresEventStore {
    /// Appends through [`sql::APPEND_LOCKED`]: tagged events, a condition, or several streams. The caller
    /// has validated `append`. `operation` names the call in errors.
    async fn append_locked(
        &self,
        append: &AtomicAppend,
        operation: &str,
    ) -> Result<Vec<AppendResult>, EventStoreError> {
        let (shared, exclusive) = tag_locks(append);
        let call = match OneAppend::of(append, &shared, &exclusive) {
            Some(one) => LockedCall::One(one),
            None => LockedCall::Many(Box::new(LockedBatch::new(append, shared, exclusive))),
        };
        let mut races = 0;
        loop {
            match self.try_append_locked(&call).await {
                LockedAttempt::Appended { versions, first } => {
                    self.notifier.committed(&self.pool);
                    let mut next = first;
                    let results = append
                        .streams
                        .iter()
                        .zip(versions)
                        .map(|(stream, version)| {
                            let count = stream.events.len() as u64;
                            let positions = (next..next + count).map(GlobalPosition::new).collect();
                            next += count;
                            AppendResult { stream_version: Version::new(version).advanced_by(count), positions }
                        })
                        .collect();
                    return Ok(results);
                }
                LockedAttempt::ConditionFailed { position } => {
                    // A retry of a conditional append that committed finds its own events.
                    if let Some(original) = self.stored_retry_atomic(append, operation).await? {
                        return Ok(original);
                    }
                    let after = append.condition.as_ref().map_or(GlobalPosition::START, |c| c.after);
                    return Err(EventStoreError::ConditionFailed { after, position: GlobalPosition::new(position) });
                }
                LockedAttempt::Refused { index, actual } => {
                    if let Some(original) = self.stored_retry_atomic(append, operation).await? {
                        return Ok(original);
                    }
                    let stream = append.streams.get(index).ok_or_else(|| {
                        EventStoreError::backend(
                            operation,
                            format!("the append refused stream {index}, which it was not given"),
                        )
                    })?;
                    return Err(EventStoreError::ConcurrencyConflict {
                        stream_id: stream.stream_id.clone(),
                        expected: stream.expected,
                        actual,
                    });
                }
                LockedAttempt::Duplicate => {
                    if let Some(original) = self.stored_retry_atomic(append, operation).await? {
                        return Ok(original);
                    }
                    // No id is stored, so a concurrent writer took a version: check everything again (an
                    // exact expectation is then refused with the version that writer left).
                    races += 1;
                    if races > MAX_RACE_RETRIES {
                        return Err(EventStoreError::backend(
                            operation,
                            format!(
                                "lost the race for the next version {MAX_RACE_RETRIES} times in a row: too many writers on one stream; use fewer writers or retry later"
                            ),
                        ));
                    }
                }
                LockedAttempt::Failed(e) => return Err(self.context.map(operation, e)),
            }
        }
    }

    /// One call of [`sql::APPEND_LOCKED`] or [`sql::APPEND_ONE`].
    async fn try_append_locked(&self, call: &LockedCall<'_>) -> LockedAttempt {
        let query = match call {
            LockedCall::One(one) => one.query(),
            LockedCall::Many(batch) => batch.query(),
        };
        LockedAttempt::of(query.fetch_one(&self.pool).await)
    }
}

impl LockedBatch<'_> {
    fn query(&self) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let batch = self;
        sqlx::query(sql::APPEND_LOCKED)
            .bind(&batch.stream_ids)
            .bind(&batch.modes)
            .bind(&batch.expected)
            .bind(&batch.event_streams)
            .bind(&batch.offsets)
            .bind(&batch.ordinals)
            .bind(&batch.events.ids)
            .bind(&batch.events.event_types)
            .bind(&batch.events.codecs)
            .bind(&batch.events.payloads)
            .bind(&batch.events.correlation_ids)
            .bind(&batch.events.causation_ids)
            .bind(&batch.events.actors)
            .bind(&batch.events.extras)
            .bind(&batch.tags)
            .bind(&batch.shared)
            .bind(&batch.exclusive)
            .bind(&batch.condition.tags)
            .bind(&batch.condition.types)
            .bind(batch.after)
    }
}

/// An append through `events_append` or `events_append_one`.
enum LockedCall<'a> {
    One(OneAppend<'a>),
    Many(Box<LockedBatch<'a>>),
}

/// The tags an append locks, shared (every tag of its events that is not locked exclusive) and exclusive
/// (one of each condition item: any one meets every matching event, which carries them all), each once.
fn tag_locks(append: &AtomicAppend) -> (Vec<&str>, Vec<&str>) {
    let mut exclusive: Vec<&str> = append
        .condition
        .iter()
        .flat_map(|c| &c.fail_if_events_match.items)
        .filter_map(|item| item.tags.iter().map(Tag::as_str).min())
        .collect();
    exclusive.sort_unstable();
    exclusive.dedup();
    let mut shared: Vec<&str> = append
        .events()
        .flat_map(|e| &e.tags)
        .map(Tag::as_str)
        .filter(|tag| exclusive.binary_search(tag).is_err())
        .collect();
    shared.sort_unstable();
    shared.dedup();
    (shared, exclusive)
}

/// The scalar arguments of [`sql::APPEND_ONE`]: an append of one event to one stream that locks at most one
/// tag, under at most one condition item. Claiming a name has this shape.
struct OneAppend<'a> {
    stream_id: &'a str,
    mode: &'static str,
    expected: i64,
    event: &'a NewEvent,
    tags: Option<Vec<&'a str>>,
    /// The tag to lock, and whether exclusively.
    lock: Option<(&'a str, bool)>,
    /// The condition item's tags and (storable) types; `None`: no condition.
    condition: Option<(Vec<&'a str>, Vec<&'a str>)>,
    after: i64,
}

impl<'a> OneAppend<'a> {
    /// `append` in scalar form, if it has that shape.
    fn of(append: &'a AtomicAppend, shared: &[&'a str], exclusive: &[&'a str]) -> Option<Self> {
        let [stream] = append.streams.as_slice() else { return None };
        let [event] = stream.events.as_slice() else { return None };
        let lock = match (shared, exclusive) {
            ([], []) => None,
            ([tag], []) => Some((*tag, false)),
            ([], [tag]) => Some((*tag, true)),
            _ => return None,
        };
        let items = append.condition.as_ref().map_or(&[][..], |c| c.fail_if_events_match.items.as_slice());
        let condition = match items {
            [] => None,
            [item] => {
                let types: Vec<&str> = storable_types(&item.event_types).collect();
                // Types none of which can be stored match no event: no condition (as `TaggedItems::push`).
                (item.event_types.is_empty() || !types.is_empty())
                    .then(|| (item.tags.iter().map(Tag::as_str).collect(), types))
            }
            _ => return None,
        };
        let (mode, expected) = expectation(stream.expected);
        Some(Self {
            stream_id: stream.stream_id.as_str(),
            mode,
            expected,
            event,
            tags: (!event.tags.is_empty()).then(|| event.tags.iter().map(Tag::as_str).collect()),
            lock,
            condition,
            after: append.condition.as_ref().map_or(0, |c| to_db(c.after.get())),
        })
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let event = self.event;
        sqlx::query(sql::APPEND_ONE)
            .bind(self.stream_id)
            .bind(self.mode)
            .bind(self.expected)
            .bind(event.id.as_uuid())
            .bind(event.event_type.as_str())
            .bind(event.codec.as_str())
            .bind(event.payload.as_slice())
            .bind(event.metadata.correlation_id)
            .bind(event.metadata.causation_id)
            .bind(event.metadata.actor.as_deref())
            .bind(event.metadata.extra.as_deref())
            .bind(&self.tags)
            .bind(self.lock.map(|(tag, _)| tag))
            .bind(self.lock.is_some_and(|(_, exclusive)| exclusive))
            .bind(self.condition.as_ref().map(|(tags, _)| tags))
            .bind(self.condition.as_ref().map(|(_, types)| types))
            .bind(self.after)
    }
}

impl LockedAttempt {
    /// The outcome of an `events_append` or `events_append_one` call.
    fn of(result: Result<PgRow, sqlx::Error>) -> Self {
        let row = match result {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e) => return LockedAttempt::Duplicate,
            Err(e) => return LockedAttempt::Failed(e),
        };
        type Outcome = (Option<i64>, Option<i32>, Option<Vec<i64>>, Option<i64>);
        let decoded: Result<Outcome, sqlx::Error> =
            (|| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?)))();
        let versions = |v: Vec<i64>| v.into_iter().map(from_db).collect::<Vec<u64>>();
        match decoded {
            Ok((Some(position), _, _, _)) => LockedAttempt::ConditionFailed { position: from_db(position) },
            Ok((None, Some(stream), Some(current), _)) => {
                let index = usize::try_from(stream).unwrap_or(usize::MAX).saturating_sub(1);
                let actual = current.get(index).copied().map_or(0, from_db);
                LockedAttempt::Refused { index, actual: Version::new(actual) }
            }
            Ok((None, None, Some(current), Some(first))) => {
                LockedAttempt::Appended { versions: versions(current), first: from_db(first) }
            }
            Ok(_) => {
                LockedAttempt::Failed(sqlx::Error::Protocol("events_append returned an incomplete outcome".into()))
            }
            Err(e) => LockedAttempt::Failed(e),
        }
    }
}

impl PostgresEventStore {
    /// After an atomic append wrote nothing: the results of the earlier append that stored exactly it, if
    /// it is a retry of one (see [`idempotent_retry_atomic`]).
    async fn stored_retry_atomic(
        &self,
        append: &AtomicAppend,
        operation: &str,
    ) -> Result<Option<Vec<AppendResult>>, EventStoreError> {
        let ids: Vec<Uuid> = append.events().map(|e| e.id.as_uuid()).collect();
        let mut rows = sqlx::query(sql::EVENTS_BY_ID).bind(&ids).fetch(&self.pool);
        let mut stored = Vec::new();
        let mut last_stream = None;
        let mut types = EventTypeCache::default();
        let operation = || format!("look up the event ids of an append ({operation})");
        while let Some(row) = rows.try_next().await.map_err(|e| self.context.map(operation(), e))? {
            let event = stream_id_of(&row, &mut last_stream)
                .and_then(|stream_id| decode_event(&row, stream_id, 1, &mut types))
                .map_err(|e| self.context.map_decode(operation, e))?;
            stored.push(event);
        }
        idempotent_retry_atomic(append, &stored)
    }

    /// One read of [`sql::READ_QUERY`]: the events, the horizon used and whether a matching event is
    /// committed above it.
    async fn read_query_page(
        &self,
        items: &QueryItems,
        after: GlobalPosition,
        limit: usize,
        horizon: Option<i64>,
    ) -> Result<(Vec<RecordedEvent>, i64, bool), EventStoreError> {
        let operation = || format!("read by query after position {after}");
        let mut rows = sqlx::query(sql::READ_QUERY)
            .bind(to_db(after.get()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(&items.tagged.tags)
            .bind(&items.tagged.types)
            .bind(items.untagged)
            .bind(&items.untagged_types)
            .bind(horizon)
            .fetch(&self.pool);
        let mut events = Vec::with_capacity(limit.min(4096));
        let mut last_stream = None;
        let mut types = EventTypeCache::default();
        let (mut below, mut held) = (0, false);
        while let Some(row) = rows.try_next().await.map_err(|e| self.context.map(operation(), e))? {
            let decoded = (|| -> Result<Option<RecordedEvent>, Decode> {
                below = row.try_get(13)?;
                held = row.try_get(14)?;
                if row.try_get::<Option<&str>, _>(0)?.is_none() {
                    return Ok(None); // no matching event: the row only carries the horizon
                }
                let stream_id = stream_id_of(&row, &mut last_stream)?;
                decode_event(&row, stream_id, 1, &mut types).map(Some)
            })();
            if let Some(event) = decoded.map_err(|e| self.context.map_decode(operation, e))? {
                events.push(event);
            }
        }
        Ok((events, below, held))
    }
}

/// An [`AtomicAppend`] as the arrays [`sql::APPEND_LOCKED`] binds.
struct LockedBatch<'a> {
    stream_ids: Vec<&'a str>,
    modes: Vec<&'static str>,
    expected: Vec<i64>,
    /// The events sorted by stream id (byte order, see `events_append`), as columns.
    events: Batch<'a>,
    /// The 1-based stream of each event.
    event_streams: Vec<i32>,
    /// Each event's 1-based place in its stream.
    offsets: Vec<i32>,
    /// Each event's 1-based place in the append: its position is `(xid << 20) + ordinal`.
    ordinals: Vec<i32>,
    /// Each event's tags joined with [`sql::SEPARATOR`]; `None` for none.
    tags: Vec<Option<String>>,
    /// The tags to lock shared: every tag of the events that is not locked exclusive, once.
    shared: Vec<&'a str>,
    /// The tags to lock exclusive: one of each condition item (any one meets every matching event, which
    /// carries them all), once.
    exclusive: Vec<&'a str>,
    condition: TaggedItems,
    after: i64,
}

impl<'a> LockedBatch<'a> {
    /// `append` as arrays; `shared` and `exclusive` are its [`tag_locks`].
    fn new(append: &'a AtomicAppend, shared: Vec<&'a str>, exclusive: Vec<&'a str>) -> Self {
        let (modes, expected) = append.streams.iter().map(|s| expectation(s.expected)).unzip();
        // (1-based stream, stream id, place in the stream, place in the append, event), numbered in the append's order, then sorted by stream
        // id: events_append inserts rows in this order.
        let mut ordinal = 0;
        let mut placed: Vec<(i32, &str, i32, i32, &NewEvent)> = Vec::new();
        for (number, stream) in (1..).zip(&append.streams) {
            for (offset, event) in (1..).zip(&stream.events) {
                ordinal += 1;
                placed.push((number, stream.stream_id.as_str(), offset, ordinal, event));
            }
        }
        placed.sort_by(|a, b| a.1.cmp(b.1));
        Self {
            stream_ids: append.streams.iter().map(|s| s.stream_id.as_str()).collect(),
            modes,
            expected,
            event_streams: placed.iter().map(|p| p.0).collect(),
            offsets: placed.iter().map(|p| p.2).collect(),
            ordinals: placed.iter().map(|p| p.3).collect(),
            tags: placed.iter().map(|p| (!p.4.tags.is_empty()).then(|| joined(&p.4.tags))).collect(),
            events: Batch::of(placed.iter().map(|p| p.4).collect()),
            shared,
            exclusive,
            condition: append.condition.as_ref().map_or_else(TaggedItems::default, |c| {
                let mut items = TaggedItems::default();
                for item in &c.fail_if_events_match.items {
                    items.push(&item.tags, &item.event_types);
                }
                items
            }),
            after: append.condition.as_ref().map_or(0, |c| to_db(c.after.get())),
        }
    }
}

/// Query items with tags, one entry per item: its tags and its types, each joined with
/// [`sql::SEPARATOR`] (empty types: any type).
#[derive(Default)]
struct TaggedItems {
    tags: Vec<String>,
    types: Vec<String>,
}

impl TaggedItems {
    fn push(&mut self, tags: &[Tag], types: &[String]) {
        // A type that cannot be stored names no event: leave the item out when no type is left.
        let storable: Vec<&str> = storable_types(types).collect();
        if !types.is_empty() && storable.is_empty() {
            return;
        }
        self.tags.push(joined(tags));
        self.types.push(storable.join(&sql::SEPARATOR.to_string()));
    }
}

/// The types of `types` that a stored event can have: a type holding a control character names none (stored
/// types have none, and the separator must not split it).
fn storable_types(types: &[String]) -> impl Iterator<Item = &str> {
    types.iter().map(String::as_str).filter(|t| !t.chars().any(char::is_control))
}

/// An [`EventQuery`] as the parameters of [`sql::READ_QUERY`].
struct QueryItems {
    tagged: TaggedItems,
    /// Whether any item has no tags.
    untagged: bool,
    /// The types of the items without tags; empty when one of them takes any type.
    untagged_types: Vec<String>,
}

impl QueryItems {
    fn new(query: &EventQuery) -> Self {
        let mut items = Self { tagged: TaggedItems::default(), untagged: false, untagged_types: Vec::new() };
        let mut any_type = false;
        for item in &query.items {
            if !item.tags.is_empty() {
                items.tagged.push(&item.tags, &item.event_types);
            } else if item.event_types.is_empty() {
                items.untagged = true;
                any_type = true;
            } else {
                let before = items.untagged_types.len();
                items.untagged_types.extend(storable_types(&item.event_types).map(str::to_owned));
                items.untagged |= items.untagged_types.len() > before;
            }
        }
        if any_type {
            items.untagged_types.clear();
        }
        items
    }
}

/// Tags joined with [`sql::SEPARATOR`], which no tag contains.
fn joined(tags: &[Tag]) -> String {
    let mut text = String::with_capacity(tags.iter().map(|t| t.as_str().len() + 1).sum());
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            text.push(sql::SEPARATOR);
        }
        text.push_str(tag.as_str());
    }
    text
}

/// An expectation as the mode and version the append statements take.
fn expectation(expected: ExpectedVersion) -> (&'static str, i64) {
    match expected {
        ExpectedVersion::Any => ("any", 0),
        ExpectedVersion::StreamExists => ("exists", 0),
        ExpectedVersion::NoStream => ("exact", 0),
        // A version beyond i64::MAX cannot be stored, so it can never match: clamp and let it conflict.
        ExpectedVersion::Exact(v) => ("exact", to_db(v.get())),
    }
}

/// Refuses an actor PostgreSQL text cannot store.
fn check_actors<'a>(events: impl IntoIterator<Item = &'a NewEvent>) -> Result<(), EventStoreError> {
    match events.into_iter().find(|e| e.metadata.actor.as_deref().is_some_and(|a| a.contains('\0'))) {
        Some(event) => Err(InvalidInput::Other(format!(
            "metadata.actor of a {} event contains a NUL character, which PostgreSQL text cannot store",
            event.event_type
        ))
        .into()),
        None => Ok(()),
    }
}

/// The outcome of one append statement.
enum Attempt {
    /// Written: the version the stream was at, and the first event's position.
    Appended {
        current: u64,
        first: u64,
    },
    /// The expectation did not hold at `actual` (`None`: not read); nothing was written.
    Refused {
        actual: Option<Version>,
    },
    /// A unique index refused a row, so nothing was written: another writer took one of the versions
    /// (`events_pkey`), or an id of the batch is already stored (`events_event_id_idx`).
    Duplicate,
    Failed(sqlx::Error),
}

/// A batch as bound arrays, one per column, for `UNNEST`.
struct Batch<'a> {
    ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    codecs: Vec<&'static str>,
    payloads: Vec<&'a [u8]>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    actors: Vec<Option<&'a str>>,
    extras: Vec<Option<&'a str>>,
}

impl<'a> Batch<'a> {
    fn new(events: &'a [NewEvent]) -> Self {
        Self::of(events.iter().collect())
    }

    fn of<E: EventRow>(events: Vec<&'a E>) -> Self {
        Self {
            ids: events.iter().map(|e| e.id().as_uuid()).collect(),
            event_types: events.iter().map(|e| e.event_type()).collect(),
            codecs: events.iter().map(|e| e.codec().as_str()).collect(),
            payloads: events.iter().map(|e| e.payload()).collect(),
            correlation_ids: events.iter().map(|e| e.metadata().correlation_id).collect(),
            causation_ids: events.iter().map(|e| e.metadata().causation_id).collect(),
            actors: events.iter().map(|e| e.metadata().actor.as_deref()).collect(),
            extras: events.iter().map(|e| e.metadata().extra.as_deref()).collect(),
        }
    }
}

/// The columns an appended event ([`NewEvent`]) and an imported one ([`RecordedEvent`]) share, so that one
/// [`Batch`] binds both.
trait EventRow {
    fn id(&self) -> EventId;
    fn event_type(&self) -> &str;
    fn codec(&self) -> CodecId;
    fn payload(&self) -> &[u8];
    fn metadata(&self) -> &Metadata;
}

impl EventRow for NewEvent {
    fn id(&self) -> EventId {
        self.id
    }
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn codec(&self) -> CodecId {
        self.codec
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl EventRow for RecordedEvent {
    fn id(&self) -> EventId {
        self.id
    }
    fn event_type(&self) -> &str {
        self.event_type.as_str()
    }
    fn codec(&self) -> CodecId {
        self.codec
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// Whether the error is a unique index of `events` refusing a row: the primary key `(stream_id, version)`
/// (a version another writer took) or `events_event_id_idx` (an id already stored).
fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505")
                && matches!(db.constraint(), Some("events_pkey" | "events_event_id_idx"))
        }
        _ => false,
    }
}

/// A `u64` as a `BIGINT` parameter; values beyond `i64::MAX` are clamped (they match no stored row).
fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `BIGINT` the schema keeps non-negative (CHECK constraints) as a `u64`.
fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// Reads the columns shared by stream and global reads, starting at column `first` (`version`).
/// Event type names come through `types`, so a read allocates each distinct name once.
fn decode_event(
    row: &PgRow,
    stream_id: StreamId,
    first: usize,
    types: &mut EventTypeCache,
) -> Result<RecordedEvent, Decode> {
    let codec: &str = column(row, first + 3)?;
    Ok(RecordedEvent {
        id: EventId::from(column::<Uuid>(row, first + 10)?),
        stream_id,
        version: Version::new(from_db(column(row, first)?)),
        position: GlobalPosition::new(from_db(column(row, first + 1)?)),
        event_type: types.get(column(row, first + 2)?),
        codec: codec.parse::<CodecId>().map_err(|e| Decode::Event(e.into()))?,
        payload: column::<&[u8]>(row, first + 4)?.to_vec().into(),
        metadata: Metadata {
            correlation_id: column(row, first + 5)?,
            causation_id: column(row, first + 6)?,
            actor: column(row, first + 7)?,
            extra: column(row, first + 8)?,
        },
        recorded_at: timestamp(column(row, first + 9)?)?,
        tags: column::<Option<Vec<String>>>(row, first + 11)?.unwrap_or_default().into_iter().map(Tag::from).collect(),
    })
}

/// Column `index` of an event row, decoded without sqlx's per-value type check: the columns' types are fixed by
/// the migrations, which the store checks before it reads, and the check (with the type descriptions it
/// clones) was an eighth of a replay's instructions (callgrind, docs/performance.md). A value of another type
/// is still an error, never a panic: every decoder checks the length of what it reads.
fn column<'r, T: sqlx::Decode<'r, sqlx::Postgres>>(row: &'r PgRow, index: usize) -> Result<T, sqlx::Error> {
    row.try_get_unchecked(index)
}

/// A `timestamptz` column read as its wire value (microseconds since 2000-01-01 UTC) and converted without
/// going through a calendar date, which chrono's decoder does per row.
fn timestamp(micros: i64) -> Result<DateTime<Utc>, Decode> {
    /// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
    const POSTGRES_EPOCH: i64 = 946_684_800_000_000;
    micros.checked_add(POSTGRES_EPOCH).and_then(DateTime::from_timestamp_micros).ok_or_else(|| {
        Decode::Event(EventStoreError::backend(
            "read a stored event",
            format!("the events table holds a recorded time out of range ({micros} µs after 2000-01-01)"),
        ))
    })
}

/// Why a row did not turn into a value.
enum Decode {
    Sql(sqlx::Error),
    Event(EventStoreError),
}

impl From<sqlx::Error> for Decode {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl ErrorContext {
    fn map_decode(&self, operation: impl FnOnce() -> String, error: Decode) -> EventStoreError {
        match error {
            Decode::Sql(e) => self.map(operation(), e),
            Decode::Event(e) => e,
        }
    }
}

/// Decodes the first five columns of a [`sql::LOAD_SNAPSHOT`] or [`sql::LOAD_SNAPSHOTS`] row: the snapshot of
/// `stream_id`.
fn decode_snapshot(row: &PgRow, stream_id: StreamId) -> Result<Snapshot, Decode> {
    let schema_version: i64 = row.try_get(1)?;
    let codec: &str = row.try_get(2)?;
    let taken_at: DateTime<Utc> = row.try_get(4)?;
    Ok(Snapshot {
        stream_id,
        version: Version::new(from_db(row.try_get(0)?)),
        schema_version: u32::try_from(schema_version).unwrap_or(u32::MAX),
        codec: codec.parse::<CodecId>().map_err(|e| Decode::Event(e.into()))?,
        payload: row.try_get(3)?,
        taken_at,
    })
}

/// Turns a stored stream id back into a [`StreamId`], reusing the previous row's when it is the same.
fn stream_id_of(row: &PgRow, last: &mut Option<StreamId>) -> Result<StreamId, Decode> {
    let raw: &str = column(row, 0)?;
    if let Some(id) = last.as_ref().filter(|id| id.as_str() == raw) {
        return Ok(id.clone());
    }
    let id = StreamId::new(raw).map_err(|e| {
        Decode::Event(EventStoreError::backend(
            "read a stored stream id",
            format!("the events table holds an invalid stream id: {e}"),
        ))
    })?;
    *last = Some(id.clone());
    Ok(id)
}

#[async_trait]
impl EventLog for PostgresEventStore {
    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError> {
        validate_atomic_append(&append)?;
        let len = append.events().count();
        if len > sql::MAX_BATCH {
            return Err(InvalidInput::Other(format!(
                "an atomic append of {len} events is too large: at most {} events fit in one append; split it",
                sql::MAX_BATCH
            ))
            .into());
        }
        check_actors(append.events())?;
        self.append_locked(&append, "append atomically").await
    }

    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        query.validate()?;
        if limit == 0 {
            return Ok(QueryPage { events: Vec::new(), horizon: after });
        }
        let items = QueryItems::new(query);
        let deadline = Instant::now() + self.read_all_wait;
        let mut backoff = Duration::from_millis(1);
        let mut horizon = None;
        loop {
            let (events, below, held) = self.read_query_page(&items, after, limit, horizon).await?;
            // Complete below the horizon: every transaction that could still write there has ended.
            let complete = GlobalPosition::new(from_db(below).saturating_sub(1));
            if events.len() >= limit || !held || self.read_all_wait.is_zero() || Instant::now() >= deadline {
                return Ok(QueryPage::new(events, after, limit, complete));
            }
            // A matching event is committed above the horizon, held back by a transaction in progress.
            let (refined, _): (i64, Option<i64>) = sqlx::query_as(sql::REFINED_HORIZON)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.context.map("read the global log's visibility horizon", e))?;
            if refined > below {
                // Held back by transactions of other databases only (or ended since): read up to there.
                horizon = Some(refined);
                continue;
            }
            // Held back by a transaction on this database: wait for it, briefly.
            if Instant::now() + backoff > deadline {
                return Ok(QueryPage::new(events, after, limit, complete));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
            horizon = None;
        }
    }

    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        validate_append(stream_id, &events)?;
        if events.len() > sql::MAX_BATCH {
            return Err(InvalidInput::BatchTooLarge {
                stream_id: stream_id.clone(),
                len: events.len(),
                max: sql::MAX_BATCH,
            }
            .into());
        }
        check_actors(&events)?;
        if events.iter().any(|e| !e.tags.is_empty()) {
            // Tagged events take shared locks on their tags (see `append_locked`).
            let append = AtomicAppend::new().stream(stream_id.clone(), expected, events);
            let mut results = self.append_locked(&append, &format!("append to stream {stream_id}")).await?;
            return results.pop().ok_or_else(|| {
                EventStoreError::backend(format!("append to stream {stream_id}"), "the append returned no result")
            });
        }
        let batch = Batch::new(&events);
        let count = events.len() as u64;
        let mut races = 0;
        loop {
            match self.try_append(stream_id, expected, &batch).await {
                Attempt::Appended { current, first } => {
                    self.notifier.committed(&self.pool);
                    return Ok(AppendResult {
                        stream_version: Version::new(current).advanced_by(count),
                        positions: (0..count).map(|i| GlobalPosition::new(first + i)).collect(),
                    });
                }
                Attempt::Refused { actual } => {
                    // A retry of an append that did commit finds the stream past its expectation.
                    if let Some(original) = self.stored_retry(stream_id, &events, &batch).await? {
                        return Ok(original);
                    }
                    let actual = match actual {
                        Some(actual) => actual,
                        None => self.stream_version(stream_id).await?,
                    };
                    return Err(EventStoreError::ConcurrencyConflict {
                        stream_id: stream_id.clone(),
                        expected,
                        actual,
                    });
                }
                Attempt::Duplicate => {
                    // The failed statement's transaction is gone: this reads what the winner committed.
                    if let Some(original) = self.stored_retry(stream_id, &events, &batch).await? {
                        return Ok(original);
                    }
                    // No id of the batch is stored, so the primary key refused a version another writer took.
                    if matches!(expected, ExpectedVersion::Any | ExpectedVersion::StreamExists) {
                        races += 1;
                        if races > MAX_RACE_RETRIES {
                            return Err(EventStoreError::backend(
                                format!("append to stream {stream_id}"),
                                format!(
                                    "lost the race for the next version {MAX_RACE_RETRIES} times in a row: too many writers on one stream; use fewer writers or retry later"
                                ),
                            ));
                        }
                        continue;
                    }
                    let actual = self.stream_version(stream_id).await?;
                    return Err(EventStoreError::ConcurrencyConflict {
                        stream_id: stream_id.clone(),
                        expected,
                        actual,
                    });
                }
                Attempt::Failed(e) => return Err(self.context.map(format!("append to stream {stream_id}"), e)),
            }
        }
    }

    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_> {
        let stream_id = stream_id.clone();
        let context = Arc::clone(&self.context);
        let mut types = EventTypeCache::default();
        sqlx::query(sql::READ_STREAM)
            .bind(stream_id.as_str().to_owned())
            .bind(to_db(range.from.get()))
            .bind(range.to.map_or(i64::MAX, |to| to_db(to.get())))
            .fetch(&self.pool)
            .map(move |row| {
                let operation = || format!("read stream {stream_id}");
                let row = row.map_err(|e| context.map(operation(), e))?;
                decode_event(&row, stream_id.clone(), 0, &mut types).map_err(|e| context.map_decode(operation, e))
            })
            .boxed()
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError> {
        let version: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("read the version of stream {stream_id}"), e))?;
        Ok(Version::new(from_db(version)))
    }

    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError> {
        let operation = || format!("load the event with id {id}");
        let row = sqlx::query(sql::LOAD_EVENT)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.context.map(operation(), e))?;
        let Some(row) = row else { return Ok(None) };
        let event = stream_id_of(&row, &mut None)
            .and_then(|stream_id| decode_event(&row, stream_id, 1, &mut EventTypeCache::default()))
            .map_err(|e| self.context.map_decode(operation, e))?;
        Ok(Some(event))
    }

    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let LogCursor::After(after) = cursor else { return self.read_newest_first(cursor, filter, limit).await };
        let deadline = Instant::now() + self.read_all_wait;
        let mut backoff = Duration::from_millis(1);
        let mut horizon = None;
        loop {
            let events = self.read_page(cursor, filter, limit, horizon).await?;
            if events.len() >= limit || self.read_all_wait.is_zero() || Instant::now() >= deadline {
                return Ok(events);
            }
            // A short page. Is anything committed beyond it that a transaction still in flight holds back?
            let read_up_to = to_db(events.last().map_or(after, |e| e.position).get());
            let (refined, newest): (i64, Option<i64>) = sqlx::query_as(sql::REFINED_HORIZON)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.context.map("read the global log's visibility horizon", e))?;
            match newest {
                None => return Ok(events),
                Some(newest) if newest <= read_up_to => return Ok(events),
                // Held back only by transactions of other databases: read again up to the refined horizon.
                Some(newest) if newest < refined => {
                    if horizon == Some(refined) {
                        return Ok(events); // already read up to there: the rest does not match the filter
                    }
                }
                // Held back by a transaction on this database: wait for it, briefly.
                Some(_) => {
                    if Instant::now() + backoff > deadline {
                        return Ok(events);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
            }
            horizon = Some(refined);
        }
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
        let operation = || format!("list streams starting with {prefix:?}");
        let mut rows = sqlx::query(sql::LIST_STREAMS)
            .bind(prefix)
            .bind(after.map_or("", StreamId::as_str))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch(&self.pool);
        let mut streams = Vec::new();
        let mut last = None;
        while let Some(row) = rows.try_next().await.map_err(|e| self.context.map(operation(), e))? {
            let info = stream_id_of(&row, &mut last).and_then(|stream_id| {
                let version: Option<i64> = row.try_get(1)?;
                Ok(StreamInfo { stream_id, version: Version::new(from_db(version.unwrap_or_default())) })
            });
            streams.push(info.map_err(|e| self.context.map_decode(operation, e))?);
        }
        Ok(streams)
    }

    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError> {
        self.import_batch(events).await
    }
}

/// A snapshot's version as stored (BIGINT).
fn snapshot_version(snapshot: &Snapshot) -> Result<i64, EventStoreError> {
    i64::try_from(snapshot.version.get()).map_err(|_| {
        InvalidInput::Other(format!(
            "snapshot version {} of {} is too large to store",
            snapshot.version, snapshot.stream_id
        ))
        .into()
    })
}

#[async_trait]
impl SnapshotStore for PostgresEventStore {
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError> {
        sqlx::query(sql::SAVE_SNAPSHOT)
            .bind(snapshot.stream_id.as_str())
            .bind(snapshot_version(snapshot)?)
            .bind(i64::from(snapshot.schema_version))
            .bind(snapshot.codec.as_str())
            .bind(snapshot.payload.as_slice())
            .bind(snapshot.taken_at)
            .execute(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("save the snapshot of stream {}", snapshot.stream_id), e))?;
        Ok(())
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<(), EventStoreError> {
        let latest = composable_rust_core::backend::latest_snapshots(snapshots);
        for chunk in latest.chunks(sql::MAX_BATCH) {
            let versions = chunk.iter().map(|s| snapshot_version(s)).collect::<Result<Vec<_>, _>>()?;
            sqlx::query(sql::SAVE_SNAPSHOTS)
                .bind(chunk.iter().map(|s| s.stream_id.as_str()).collect::<Vec<_>>())
                .bind(versions)
                .bind(chunk.iter().map(|s| i64::from(s.schema_version)).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.codec.as_str()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.payload.as_slice()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.taken_at).collect::<Vec<_>>())
                .execute(&self.pool)
                .await
                .map_err(|e| self.context.map(format!("save {} snapshots", chunk.len()), e))?;
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError> {
        let operation = || format!("load the snapshot of stream {stream_id}");
        let row = sqlx::query(sql::LOAD_SNAPSHOT)
            .bind(stream_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.context.map(operation(), e))?;
        let Some(row) = row else { return Ok(None) };
        decode_snapshot(&row, stream_id.clone()).map(Some).map_err(|e| self.context.map_decode(operation, e))
    }

    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let operation = || format!("load the snapshots of {} streams", streams.len());
        let ids: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
        let rows = sqlx::query(sql::LOAD_SNAPSHOTS)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.context.map(operation(), e))?;
        // The stream ids come from `streams`, already valid: no need to parse the stored ones.
        let asked: HashMap<&str, &StreamId> = streams.iter().map(|s| (s.as_str(), s)).collect();
        let found = rows
            .iter()
            .filter_map(|row| {
                let stream_id = match row.try_get::<&str, _>(5) {
                    Ok(raw) => *asked.get(raw)?,
                    Err(e) => return Some(Err(Decode::Sql(e))),
                };
                Some(decode_snapshot(row, stream_id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.context.map_decode(operation, e))?;
        Ok(snapshots_in_order(streams, found))
    }

    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError> {
        let result = sqlx::query(sql::DELETE_SNAPSHOT)
            .bind(stream_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("delete the snapshot of stream {stream_id}"), e))?;
        Ok(result.rows_affected() > 0)
    }
}

#[async_trait]
impl SubscriptionStore for PostgresEventStore {
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        let position: Option<i64> = sqlx::query_scalar(sql::LOAD_CHECKPOINT)
            .bind(handler)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("load the checkpoint of handler {handler:?}"), e))?;
        Ok(position.map(|p| GlobalPosition::new(from_db(p))))
    }

    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError> {
        validate_handler_name(handler)?;
        let stored = i64::try_from(position.get()).map_err(|_| {
            InvalidInput::Other(format!("checkpoint position {position} of handler {handler:?} is too large to store"))
        })?;
        sqlx::query(sql::SAVE_CHECKPOINT)
            .bind(handler)
            .bind(stored)
            .bind(chrono::Utc::now())
            .execute(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("save the checkpoint of handler {handler:?}"), e))?;
        Ok(())
    }

    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError> {
        validate_handler_name(handler)?;
        let deleted = sqlx::query(sql::DELETE_CHECKPOINT)
            .bind(handler)
            .execute(&self.pool)
            .await
            .map_err(|e| self.context.map(format!("delete the checkpoint of handler {handler:?}"), e))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sql::LIST_CHECKPOINTS)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.context.map("list the checkpoints", e))?;
        Ok(rows.into_iter().map(|(handler, position)| (handler, GlobalPosition::new(from_db(position)))).collect())
    }

    /// An advisory lock held by a connection of its own. `ttl` is ignored: the lock lasts exactly as long
    /// as that connection, so a holder that dies (its connection closes) frees it at once, and one that is
    /// alive cannot lose it to time. A renewal checks that the connection still answers.
    async fn try_acquire_lease(&self, handler: &str, _ttl: Duration) -> Result<Option<HandlerLease>, EventStoreError> {
        crate::projection::try_acquire_lease(&self.pool.connect_options(), handler).await
    }

    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        crate::notify::listen((*self.pool.connect_options()).clone())
    }
}

#[async_trait]
impl StoreLifecycle for PostgresEventStore {
    async fn health_check(&self) -> Result<HealthReport, EventStoreError> {
        let started = Instant::now();
        let operation = "check the event store's health";
        let (tables, migrations): (bool, bool) = sqlx::query_as(sql::HEALTH_TABLES)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.context.map(operation, e))?;
        if !tables {
            return Err(SchemaError::Missing { location: self.context.server.clone(), fix: MISSING_SCHEMA_HINT }.into());
        }
        // Schemas applied by hand have no migration table; then the tables' presence is all we can check.
        if migrations {
            let applied: Option<i64> = sqlx::query_scalar(sql::HEALTH_MIGRATION)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.context.map(operation, e))?;
            let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default();
            let applied = applied.unwrap_or_default();
            if applied < expected {
                return Err(SchemaError::Behind {
                    location: self.context.server.clone(),
                    applied,
                    expected,
                    fix: MISSING_SCHEMA_HINT,
                }
                .into());
            }
        }
        Ok(HealthReport { backend: "postgres", round_trip: started.elapsed() })
    }

    async fn stats(&self) -> Result<StoreStats, EventStoreError> {
        type Row = (i64, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64, i64, i64);
        let (events, streams, oldest, newest, snapshots, checkpoints, bytes): Row = sqlx::query_as(sql::STATS)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.context.map("count the events, streams, snapshots and checkpoints", e))?;
        let mut stats = StoreStats::empty("postgres");
        stats.events = from_db(events);
        stats.streams = from_db(streams);
        stats.snapshots = from_db(snapshots);
        stats.checkpoints = from_db(checkpoints);
        stats.bytes_on_disk = Some(from_db(bytes));
        stats.oldest = oldest;
        stats.newest = newest;
        Ok(stats)
    }

    async fn close(&self) -> Result<(), EventStoreError> {
        self.pool.close().await;
        Ok(())
    }
}

impl fmt::Debug for PostgresEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEventStore")
            .field("server", &self.context.server)
            .field("connections", &self.pool.size())
            .field("max_connections", &self.pool.options().get_max_connections())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::timestamp;

    #[test]
    fn timestamps_count_microseconds_from_the_postgres_epoch() {
        let at = |micros| timestamp(micros).ok();
        assert_eq!(at(0), Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single());
        assert_eq!(at(-946_684_800_000_000), Some(DateTime::UNIX_EPOCH));
        let later = Utc.with_ymd_and_hms(2026, 11, 30, 16, 30, 0).single().unwrap() + chrono::Duration::microseconds(7);
        assert_eq!(at(later.timestamp_micros() - 946_684_800_000_000), Some(later));
        // PostgreSQL's 'infinity' is i64::MAX on the wire: an error, not a wrap or a panic.
        assert!(timestamp(i64::MAX).is_err());
        assert!(timestamp(i64::MIN).is_err());
    }
}
