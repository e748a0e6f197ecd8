//! Every SQL statement the store sends. Parameters are always bound, never formatted into the text, and
//! every statement is prepared once per connection (sqlx caches them).
//!
//! The position arithmetic is explained on `events.global_position` in `migrations/postgres` and in
//! docs/decisions.md: `global_position = (xid << 20) + ordinal`, and readers stop below
//! `xmin(current snapshot) << 20`.

/// Events per append: the ordinal must fit in the low 20 bits of a global position.
pub(crate) const MAX_BATCH: usize = (1 << 20) - 1;

/// One statement per batch: reads the stream's version, checks the expectation and inserts all events
/// (or none). Returns the version it saw, how many rows it inserted and the first position.
///
/// `$2..=$9` are the batch, one array per column; `$10` is `any`, `exists` or `exact` (with `$11` the
/// expected version). A unique violation (23505) means another writer took a version (`events_pkey`) or an
/// id of the batch is stored (`events_event_id_idx`): the store then looks the ids up ([`EVENTS_BY_ID`])
/// to tell a retry from a conflict, so the happy path stays one round trip.
pub(crate) const APPEND: &str = r"
WITH head AS (
    SELECT COALESCE(MAX(version), 0) AS version FROM events WHERE stream_id = $1
), appended AS (
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT $1, head.version + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_id, e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM head,
         UNNEST($2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::uuid[], $7::uuid[], $8::text[], $9::text[])
             WITH ORDINALITY
             AS e(event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE CASE $10::text
              WHEN 'any' THEN true
              WHEN 'exists' THEN head.version > 0
              ELSE head.version = $11::bigint
          END
    RETURNING global_position
)
SELECT (SELECT version FROM head), COUNT(*), MIN(global_position) FROM appended";

/// The insert of [`APPEND`] without its CTE, for the two expectations that fix the versions in advance; `$10` is
/// the version the stream must be at. `0` (`NoStream`): the events take versions 1..=n if the stream has no event.
/// `v > 0` (`Exact(v)`): they take v+1..=v+n if `v` is the stream's last version. The check is one backward probe
/// of the primary key (the stream's greatest version), and the primary key still refuses a version a concurrent
/// writer took. It cannot rely on the key alone (version 1 exists = the stream exists; `v + 1` exists = the
/// stream is further): retention removes old events (migration 0006), so a truncated stream has no version 1 and
/// may have holes. A refusal by the check inserts nothing and returns a count of 0 (the stream's version is then
/// read separately); a refusal by the key is a unique violation (23505), as for [`APPEND`].
///
/// Cheaper than [`APPEND`] (no CTE): aggregates append with these two expectations, so they are the common case
/// (docs/performance.md).
pub(crate) const APPEND_AT: &str = r"
WITH appended AS (
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT $1, $10::bigint + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_id, e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::uuid[], $7::uuid[], $8::text[], $9::text[])
             WITH ORDINALITY
             AS e(event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE (SELECT MAX(version) FROM events WHERE stream_id = $1) IS NOT DISTINCT FROM NULLIF($10::bigint, 0)
    RETURNING global_position
)
SELECT $10::bigint, COUNT(*), MIN(global_position) FROM appended";

/// Separates the tags of one event, and the tags or types of one query item, in the text arrays bound to
/// [`APPEND_LOCKED`] and [`READ_QUERY`] (split with `string_to_array`): a control character, which
/// [`Tag::validate`](composable_rust_core::Tag::validate) refuses in a tag and no stored event type holds.
pub(crate) const SEPARATOR: char = '\u{1f}';

/// An append that takes locks: of tagged events (shared locks on their tags), under an append condition
/// (an exclusive lock per condition item) or to several streams. One round trip: the plpgsql function
/// `events_append` (`migrations/postgres/0004_append_function.sql`) takes the locks, then checks the
/// condition and the expectations on a snapshot taken after the locks are held, and inserts.
///
/// `$1..=$3` the streams (ids, modes `any`/`exists`/`exact`, expected versions); `$4..=$15` the events
/// sorted by stream id, one array per column: `$4` the 1-based stream of each, `$5` its place in its stream,
/// `$6` its place in the append, `$15` its tags joined with [`SEPARATOR`] (NULL: none); `$16` the tags to
/// lock shared, `$17` those to lock exclusive (one per condition item), each tag in one list once;
/// `$18`/`$19` the condition's items (tags and types joined with [`SEPARATOR`], empty types: any type) and
/// `$20` its position. Returns the failed condition's first position, or the 1-based refused stream, the
/// streams' versions (before the append) and the first position written.
pub(crate) const APPEND_LOCKED: &str = r"
SELECT condition_position, refused_stream, versions, first_position
FROM events_append($1::text[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::int[], $7::uuid[],
                   $8::text[], $9::text[], $10::bytea[], $11::uuid[], $12::uuid[], $13::text[], $14::text[],
                   $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::bigint)";

/// [`APPEND_LOCKED`] for one event to one stream that locks at most one tag, under at most one condition
/// item (claiming a name): the function `events_append_one` with scalar parameters, the same steps and the
/// same result columns. `$1..=$3` the stream, its mode and expected version; `$4..=$11` the event's columns,
/// `$12` its tags (NULL: none); `$13` the tag to lock (NULL: none), `$14` whether exclusively; `$15` the
/// condition item's tags (NULL: no condition), `$16` its types (empty: any type), `$17` its position.
pub(crate) const APPEND_ONE: &str = r"
SELECT condition_position, refused_stream, versions, first_position
FROM events_append_one($1::text, $2::text, $3::bigint, $4::uuid, $5::text, $6::text, $7::bytea, $8::uuid,
                       $9::uuid, $10::text, $11::text, $12::text[], $13::text, $14::boolean, $15::text[],
                       $16::text[], $17::bigint)";

/// The version of a stream (0 when it has no events): a backward index-only scan of one entry.
pub(crate) const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1";

/// The event columns every read selects, in the order `store::decode_event` reads them.
macro_rules! event_columns {
    () => {
        "version, global_position, event_type, codec, payload, correlation_id, causation_id, actor, extra, recorded_at, \
         event_id, tags"
    };
}

/// A stream load: versions `$2..=$3` of stream `$1`, in order.
pub(crate) const READ_STREAM: &str = concat!(
    "SELECT ",
    event_columns!(),
    r"
FROM events
WHERE stream_id = $1 AND version >= $2 AND version <= $3
ORDER BY version"
);

/// One event by id, wherever it is: a lookup in the unique index `events_event_id_idx`.
pub(crate) const LOAD_EVENT: &str = concat!(
    "SELECT stream_id, ",
    event_columns!(),
    r"
FROM events
WHERE event_id = $1"
);

/// The stored events that carry any of the ids `$1`, in any stream: what `idempotent_retry` compares a
/// failed or refused append with. Probes `events_event_id_idx` once per id.
pub(crate) const EVENTS_BY_ID: &str = concat!(
    "SELECT stream_id, ",
    event_columns!(),
    r"
FROM events
WHERE event_id = ANY($1::uuid[])
ORDER BY global_position"
);

/// The upper bound of what a global read may return: every transaction with an xid below the snapshot's
/// xmin has ended, and any later commit has a larger xid.
macro_rules! visible_below {
    () => {
        "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)"
    };
}

/// The global log without filters, the hot path of projections. `$3`, when not null, replaces the xmin
/// horizon with one from [`REFINED_HORIZON`] (so do `$7` below).
pub(crate) const READ_ALL: &str = concat!(
    r"
SELECT stream_id, ",
    event_columns!(),
    r"
FROM events
WHERE global_position > $1 AND global_position < COALESCE($3::bigint, ",
    visible_below!(),
    r")
ORDER BY global_position
LIMIT $2"
);

/// A horizon that ignores transactions of other databases in the cluster, next to the newest committed
/// position. Used when a short page may be held back: the plain xmin horizon also waits for unrelated
/// transactions (another database's DDL, say), which can never write to this `events` table.
///
/// Sound because every in-progress xid of the snapshot is kept unless it is positively known to belong to
/// a backend connected to another database (a transaction never changes database); xids not in progress
/// and below xmax have ended, and any later transaction gets an xid at or above xmax.
pub(crate) const REFINED_HORIZON: &str = r"
WITH snap AS (SELECT pg_current_snapshot() AS s),
     here AS (SELECT oid FROM pg_database WHERE datname = current_database()),
     relevant AS (
         SELECT x.xid::text::bigint AS xid
         FROM snap, pg_snapshot_xip(snap.s) AS x(xid)
         WHERE NOT EXISTS (
             SELECT 1 FROM pg_stat_activity a, here
             WHERE a.backend_xid IS NOT NULL
               AND a.backend_xid::text::bigint = x.xid::text::bigint % 4294967296
               AND a.datid IS DISTINCT FROM here.oid
         )
     )
SELECT COALESCE((SELECT MIN(xid) FROM relevant), (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)) << 20,
       (SELECT MAX(global_position) FROM events)";

/// A value bound to a filtered read of the global log, after `$1..=$3` (see [`read_log`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// Event types.
    Texts(Vec<String>),
    /// A stream id bound or an actor.
    Text(String),
    /// A correlation id.
    Uuid(uuid::Uuid),
    /// A recorded-time bound.
    Time(chrono::DateTime<chrono::Utc>),
}

/// A filtered read of the global log, oldest first (`newest_first` false: positions above `$1`) or newest
/// first (below `$1`), at most `$2`, below the visibility horizon (`$3`, when not null, replaces the xmin
/// horizon with one from [`REFINED_HORIZON`]). Returns the statement and the filter's parameters, which
/// follow `$3` in order.
///
/// Built from fixed fragments; every value is bound. Each set field is a plain equality or range on an
/// indexed column (`migrations/postgres/0005_query_indexes.sql`), never an `IS NULL OR` switch, so the
/// planner can use the index. The store sends these statements unnamed (planned for their values): the
/// planner then weighs a field's index against a walk along `events_global_position_idx` with the
/// statistics of the values read, where a cached generic plan would guess.
pub(crate) fn read_log(newest_first: bool, filter: &composable_rust_core::LogFilter) -> (String, Vec<Param>) {
    let mut sql = String::from(concat!("SELECT stream_id, ", event_columns!(), "\nFROM events\nWHERE "));
    sql.push_str(if newest_first { "global_position < $1" } else { "global_position > $1" });
    sql.push_str(concat!(" AND global_position < COALESCE($3::bigint, ", visible_below!(), ")"));
    let mut params = Vec::new();
    let mut condition = |sql_fragment: &str, param: Param| {
        params.push(param);
        sql.push_str(&sql_fragment.replace('#', &format!("${}", params.len() + 3)));
    };
    if !filter.event_types.is_empty() {
        condition("\n  AND event_type = ANY(#::text[])", Param::Texts(filter.event_types.clone()));
    }
    if let Some(prefix) = filter.stream_prefix.as_deref().filter(|p| !p.is_empty()) {
        // A range of the primary key (stream_id is COLLATE "C": byte order, as prefix_end assumes).
        condition("\n  AND stream_id >= #::text", Param::Text(prefix.to_owned()));
        if let Some(end) = composable_rust_core::backend::prefix_end(prefix) {
            condition("\n  AND stream_id < #::text", Param::Text(end));
        }
    }
    if let Some(id) = filter.correlation_id {
        condition("\n  AND correlation_id = #::uuid", Param::Uuid(id));
    }
    if let Some(actor) = &filter.actor {
        condition("\n  AND actor = #::text", Param::Text(actor.clone()));
    }
    if let Some(from) = filter.recorded_from {
        condition("\n  AND recorded_at >= #::timestamptz", Param::Time(from));
    }
    if let Some(before) = filter.recorded_before {
        condition("\n  AND recorded_at < #::timestamptz", Param::Time(before));
    }
    sql.push_str(if newest_first {
        "\nORDER BY global_position DESC\nLIMIT $2"
    } else {
        "\nORDER BY global_position\nLIMIT $2"
    });
    (sql, params)
}

/// A read by query: the events after `$1` matching any item, in position order, at most `$2`, below the
/// visibility horizon (`$7`, when not null, replaces the xmin horizon with one from [`REFINED_HORIZON`]).
///
/// Tagged items come as `$3` (each item's tags joined with [`SEPARATOR`]) and `$4` (its types joined, empty:
/// any type); each is looked up in `events_tags_idx` (`tags @> ...`). Items without tags are folded into one
/// scan by position: `$5` whether there are any, `$6` their types (empty: any type). Every row carries the
/// horizon used and whether a matching event is committed above it (held back by a transaction in progress:
/// reading again later may return it); with no matching event, one row of NULL event columns carries them.
pub(crate) const READ_QUERY: &str = concat!(
    r"
WITH bound AS MATERIALIZED (
    SELECT COALESCE($7::bigint, ",
    visible_below!(),
    r") AS below
), hits AS MATERIALIZED (
    -- No ORDER BY ... LIMIT per tagged item: the planner would then walk global positions in order,
    -- hoping to meet a match early, instead of looking the tags up in events_tags_idx.
    SELECT m.global_position
    FROM unnest($3::text[], $4::text[]) AS c(tags, types),
         LATERAL (SELECT e.global_position FROM events e
                  WHERE e.tags @> string_to_array(c.tags, E'\x1f')
                    AND (c.types = '' OR e.event_type = ANY (string_to_array(c.types, E'\x1f')))
                    AND e.global_position > $1) AS m
    UNION
    (SELECT e.global_position FROM events e
     WHERE $5::bool AND (cardinality($6::text[]) = 0 OR e.event_type = ANY ($6::text[]))
       AND e.global_position > $1
     ORDER BY e.global_position
     LIMIT $2)
), page AS (
    SELECT h.global_position FROM hits h, bound WHERE h.global_position < bound.below
    ORDER BY h.global_position
    LIMIT $2
)
SELECT e.stream_id, ",
    event_columns!(),
    r",
       bound.below, EXISTS (SELECT 1 FROM hits h WHERE h.global_position >= bound.below)
FROM bound LEFT JOIN (page JOIN events e USING (global_position)) ON true
ORDER BY global_position"
);

/// Stream ids with `$1` as prefix, after `$2`, with their versions: a skip scan over the primary key that
/// touches one index entry per stream instead of every event.
pub(crate) const LIST_STREAMS: &str = r"
WITH RECURSIVE ids(stream_id) AS (
    (SELECT stream_id FROM events WHERE stream_id >= $1 AND stream_id > $2 ORDER BY stream_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.stream_id FROM events e WHERE e.stream_id > ids.stream_id ORDER BY e.stream_id LIMIT 1)
    FROM ids
    WHERE ids.stream_id IS NOT NULL AND starts_with(ids.stream_id, $1)
)
SELECT stream_id, (SELECT MAX(e.version) FROM events e WHERE e.stream_id = ids.stream_id)
FROM ids
WHERE stream_id IS NOT NULL AND starts_with(stream_id, $1)
LIMIT $3";

/// Whether the store's tables exist, and whether sqlx's migration table does.
pub(crate) const HEALTH_TABLES: &str = r"
SELECT to_regclass('events') IS NOT NULL AND to_regclass('snapshots') IS NOT NULL
           AND to_regclass('checkpoints') IS NOT NULL,
       to_regclass('_sqlx_migrations') IS NOT NULL";

/// The migrations sqlx applied successfully, with their checksums; an error when the table does not exist.
pub(crate) const APPLIED_MIGRATIONS: &str = "SELECT version, checksum FROM _sqlx_migrations WHERE success";

/// The newest successfully applied migration.
pub(crate) const HEALTH_MIGRATION: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// Saves a snapshot, replacing the stream's previous one unless that one is at a newer version: a late
/// write of an older snapshot (a slow background save) must not take the stream's snapshot back in time.
/// An equal version replaces, so re-snapshotting at the same version (a new schema) works. The row lock
/// taken by `ON CONFLICT` orders concurrent saves, so the newest version wins whatever the commit order.
pub(crate) const SAVE_SNAPSHOT: &str = r"
INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, codec = EXCLUDED.codec,
    payload = EXCLUDED.payload, taken_at = EXCLUDED.taken_at
WHERE snapshots.version <= EXCLUDED.version";

/// Saves many snapshots as [`SAVE_SNAPSHOT`] does each; one row per stream (a row cannot be upserted twice
/// in one statement).
pub(crate) const SAVE_SNAPSHOTS: &str = r"
INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at)
SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::timestamptz[])
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, codec = EXCLUDED.codec,
    payload = EXCLUDED.payload, taken_at = EXCLUDED.taken_at
WHERE snapshots.version <= EXCLUDED.version";

/// Loads a stream's snapshot.
pub(crate) const LOAD_SNAPSHOT: &str =
    "SELECT version, schema_version, codec, payload, taken_at FROM snapshots WHERE stream_id = $1";

/// Loads the snapshots of the streams of the array `$1`, in any order: the columns of [`LOAD_SNAPSHOT`], then
/// the stream id. One round trip for a page of streams (an export), through the primary key.
pub(crate) const LOAD_SNAPSHOTS: &str = "SELECT version, schema_version, codec, payload, taken_at, stream_id \
     FROM snapshots WHERE stream_id = ANY($1::text[])";

/// Deletes a stream's snapshot.
pub(crate) const DELETE_SNAPSHOT: &str = "DELETE FROM snapshots WHERE stream_id = $1";

/// Loads a handler's checkpoint.
pub(crate) const LOAD_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE handler = $1";

/// Saves a handler's checkpoint, only forward (shared with SQLite).
pub(crate) use composable_rust_sql::checkpoint::SAVE_CHECKPOINT;

/// Forgets a handler's checkpoint (a rebuild).
pub(crate) const DELETE_CHECKPOINT: &str = "DELETE FROM checkpoints WHERE handler = $1";

/// [`EventLog::import`](composable_rust_core::backend::EventLog::import): inserts events recorded elsewhere
/// with their versions, times and tags, in the order given (position `(xid << 20) + ordinal`). `$1..=$12` the
/// events, one array per column, tags joined with [`SEPARATOR`] (NULL: none). The store has checked the
/// versions in the same transaction; a version taken meanwhile is a unique violation of `events_pkey`.
pub(crate) const IMPORT: &str = r"
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                    correlation_id, causation_id, actor, extra, recorded_at, tags)
SELECT e.stream_id, e.version, (pg_current_xact_id()::text::bigint << 20) + e.ordinal, e.event_id, e.event_type,
       e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra, e.recorded_at,
       string_to_array(e.tags, E'\x1f')
FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::uuid[], $8::uuid[],
            $9::text[], $10::text[], $11::timestamptz[], $12::text[]) WITH ORDINALITY
     AS e(stream_id, version, event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra,
          recorded_at, tags, ordinal)
ORDER BY e.ordinal
RETURNING global_position";

/// Shared advisory locks on the tags `$1` of imported events, in the key space and key order of
/// `events_append` (`migrations/postgres/0003_tags.sql`), so an import waits for, and is waited for by,
/// conditional appends on the same tags as a tagged append is.
pub(crate) const IMPORT_TAG_LOCKS: &str = r"
SELECT count(pg_advisory_xact_lock_shared(1952540531, k.key))
FROM (SELECT DISTINCT hashtext(t) AS key FROM unnest($1::text[]) AS t ORDER BY 1) AS k";

/// The versions of the streams `$1` (0 for a stream without events), one row per stream.
pub(crate) const STREAM_VERSIONS: &str = r"
SELECT s.stream_id, (SELECT COALESCE(MAX(e.version), 0) FROM events e WHERE e.stream_id = s.stream_id)
FROM unnest($1::text[]) AS s(stream_id)";

/// What [`StoreLifecycle::stats`](composable_rust_core::backend::StoreLifecycle::stats) reports: one pass
/// over `events`, the two small tables, and the size of the three tables with their indexes.
pub(crate) const STATS: &str = r"
SELECT e.events, e.streams, e.oldest, e.newest,
       (SELECT count(*) FROM snapshots), (SELECT count(*) FROM checkpoints),
       (pg_total_relation_size('events') + pg_total_relation_size('snapshots')
        + pg_total_relation_size('checkpoints'))::bigint
FROM (SELECT count(*) AS events, count(DISTINCT stream_id) AS streams, min(recorded_at) AS oldest,
             max(recorded_at) AS newest
      FROM events) AS e";

/// Every checkpoint, by handler name (byte-wise).
pub(crate) const LIST_CHECKPOINTS: &str = r#"SELECT handler, position FROM checkpoints ORDER BY handler COLLATE "C""#;

#[cfg(test)]
mod tests {
    use composable_rust_core::backend::EventLog;
    use composable_rust_core::{CodecId, ExpectedVersion, LogFilter, Metadata, NewEvent, StreamId, Tag};
    use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
    use sqlx::{PgConnection, Row};

    use super::*;
    use crate::{PostgresConfig, PostgresEventStore};

    /// The plan of `statement` run with `args`, as the planner makes it for both custom and generic plans.
    /// Simple-protocol queries only, so sqlx's statement cache on the connection is left alone.
    async fn plans(connection: &mut PgConnection, statement: &str, args: &str) -> Vec<String> {
        sqlx::raw_sql(&format!("PREPARE q AS {statement}")).execute(&mut *connection).await.unwrap();
        let mut plans = Vec::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let explain = format!("SET plan_cache_mode = {mode}; EXPLAIN EXECUTE q({args})");
            let rows = sqlx::raw_sql(&explain).fetch_all(&mut *connection).await.unwrap();
            plans.push(rows.iter().map(|row| row.get::<String, _>(0)).collect::<Vec<_>>().join("\n"));
        }
        sqlx::raw_sql("DEALLOCATE q; RESET plan_cache_mode").execute(&mut *connection).await.unwrap();
        plans
    }

    /// A migrated store holding 50 streams of 200 events, each under its own correlation id, and a connection
    /// with the store's session settings (taken out of its pool) on which the table is analyzed.
    async fn analyzed_store() -> (PostgresTestDatabase, PostgresEventStore, PgConnection) {
        let db = PostgresTestDatabase::start().await;
        let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
        store.migrate().await.unwrap();
        for stream in 0..50 {
            let id = StreamId::new(format!("order-{stream}")).unwrap();
            let correlation = uuid::Uuid::new_v4();
            let events = (0..200)
                .map(|_| NewEvent {
                    id: composable_rust_core::EventId::generate(),
                    event_type: "OrderNoted.v1".into(),
                    codec: CodecId::Json,
                    payload: b"{}".to_vec(),
                    metadata: Metadata::correlated(correlation),
                    tags: Vec::new(),
                })
                .collect();
            store.append(&id, ExpectedVersion::Any, events).await.unwrap();
        }
        let mut connection = store.pool().acquire().await.unwrap().detach();
        sqlx::raw_sql("ANALYZE events").execute(&mut connection).await.unwrap();
        (db, store, connection)
    }

    #[tokio::test]
    async fn stream_loads_and_global_reads_are_index_scans_without_a_sort() {
        let (_db, _store, mut connection) = analyzed_store().await;

        // The prepared ones; filtered reads are planned per call (`each_filter_of_a_global_read_...` below).
        let (newest_first, _) = read_log(true, &LogFilter::all());
        let cases = [
            (READ_STREAM, "'order-7', 1, 9223372036854775807", "Index Scan using events_pkey"),
            (READ_ALL, "0, 1000, NULL", "Index Scan using events_global_position_idx"),
            (
                newest_first.as_str(),
                "9223372036854775807, 1000, NULL",
                "Index Scan Backward using events_global_position_idx",
            ),
        ];
        for (statement, args, index) in cases {
            for plan in plans(&mut connection, statement, args).await {
                assert!(plan.contains(index), "expected {index}:\n{plan}");
                assert!(!plan.contains("Sort"), "the plan sorts:\n{plan}");
            }
        }
        for plan in plans(&mut connection, STREAM_VERSION, "'order-7'").await {
            assert!(plan.contains("Index Only Scan Backward using events_pkey"), "{plan}");
        }
    }

    #[tokio::test]
    async fn event_lookups_by_id_are_index_scans_of_the_event_id_index() {
        let (_db, _store, mut connection) = analyzed_store().await;
        let ids: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT event_id FROM events ORDER BY global_position LIMIT 3 OFFSET 5000")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        let one = format!("'{}'", ids[0]);
        for plan in plans(&mut connection, LOAD_EVENT, &one).await {
            assert!(plan.contains("Index Scan using events_event_id_idx"), "load_event must probe the index:\n{plan}");
        }
        let batch = format!("'{{{},{},{}}}'", ids[0], ids[1], ids[2]);
        for plan in plans(&mut connection, EVENTS_BY_ID, &batch).await {
            assert!(
                plan.contains("Index Scan using events_event_id_idx"),
                "the retry check must probe the index:\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "the retry check must not scan the table:\n{plan}");
        }
    }

    /// The plan of `statement` with `args`, planned for these values (as an unnamed statement is).
    async fn custom_plan(connection: &mut PgConnection, statement: &str, args: &str) -> String {
        sqlx::raw_sql(&format!("PREPARE q AS {statement}")).execute(&mut *connection).await.unwrap();
        let explain = format!("SET plan_cache_mode = force_custom_plan; EXPLAIN EXECUTE q({args})");
        let rows = sqlx::raw_sql(&explain).fetch_all(&mut *connection).await.unwrap();
        sqlx::raw_sql("DEALLOCATE q; RESET plan_cache_mode").execute(&mut *connection).await.unwrap();
        rows.iter().map(|row| row.get::<String, _>(0)).collect::<Vec<_>>().join("\n")
    }

    /// The arguments of a [`read_log`] statement as SQL literals: position, limit, no horizon, then `params`.
    fn literals(position: i64, params: &[Param]) -> String {
        let mut args = vec![position.to_string(), "100".to_owned(), "NULL".to_owned()];
        args.extend(params.iter().map(|param| match param {
            Param::Texts(values) => format!("'{{{}}}'", values.join(",")),
            Param::Text(value) => format!("'{value}'"),
            Param::Uuid(value) => format!("'{value}'"),
            Param::Time(value) => format!("'{}'", value.to_rfc3339()),
        }));
        args.join(", ")
    }

    /// The correlation id of [`filled_store`]'s correlated events.
    const CORRELATION: &str = "0b5e7c3a-7d1f-4c38-9a55-3c6f2e5d9a10";

    /// A migrated store filled by SQL with `rows` events at positions 1..=rows, one second apart from
    /// 2026-01-01, where each filter selects one event in 10,000, spread over the log: the type `Flagged.v1`,
    /// the category `rare`, the correlation id [`CORRELATION`], the actor `auditor`. The rest are
    /// `OrderNoted.v1` in 1,000 `order-` streams without metadata (as the benchmark's event). Analyzed, with a
    /// connection as in [`analyzed_store`].
    async fn filled_store(rows: i64) -> (PostgresTestDatabase, PostgresEventStore, PgConnection) {
        let db = PostgresTestDatabase::start().await;
        let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
        store.migrate().await.unwrap();
        let mut connection = store.pool().acquire().await.unwrap().detach();
        // A million rows take longer than the store's statement timeout on a busy machine.
        sqlx::raw_sql("SET statement_timeout = 0").execute(&mut connection).await.unwrap();
        sqlx::query(
            "INSERT INTO events (stream_id, version, global_position, event_type, codec, payload, correlation_id, \
                                 actor, recorded_at) \
             SELECT CASE WHEN g % 10000 = 0 THEN 'rare-' || (g / 10000 % 5) ELSE 'order-' || (g % 1000) END, g, g, \
                    CASE WHEN g % 10000 = 1 THEN 'Flagged.v1' ELSE 'OrderNoted.v1' END, 'bincode', '\\x00'::bytea, \
                    CASE WHEN g % 10000 = 2 THEN $2::uuid END, CASE WHEN g % 10000 = 3 THEN 'auditor' END, \
                    timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' \
             FROM generate_series(1, $1::bigint) AS g",
        )
        .bind(rows)
        .bind(CORRELATION)
        .execute(&mut connection)
        .await
        .unwrap();
        sqlx::raw_sql("VACUUM ANALYZE events").execute(&mut connection).await.unwrap();
        (db, store, connection)
    }

    /// Each filter of a global read, oldest first from the middle of the log and newest first from the middle
    /// and from the end, is answered from its index on a table of a million events, and nothing scans the
    /// table. The plans are custom ones, as for the unnamed statements the store sends.
    #[tokio::test]
    async fn each_filter_of_a_global_read_uses_its_index_on_a_million_events() {
        const ROWS: i64 = 1_000_000;
        let (_db, _store, mut connection) = filled_store(ROWS).await;
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let at = |second: i64| Some(start + chrono::Duration::seconds(second));
        let middle = ROWS / 2;
        let cases = [
            (LogFilter::all(), "events_global_position_idx"),
            (LogFilter::all().event_types(["Flagged.v1"]), "events_event_type_idx"),
            (LogFilter::all().category("rare"), "events_pkey"),
            (LogFilter::all().correlation_id(CORRELATION.parse().unwrap()), "events_correlation_idx"),
            (LogFilter::all().actor("auditor"), "events_actor_idx"),
            (LogFilter::all().recorded_between(at(middle + 1000), at(middle + 1100)), "events_recorded_at_brin"),
        ];
        for (filter, index) in cases {
            for (newest_first, position) in [(false, middle), (true, middle), (true, i64::MAX)] {
                let (statement, params) = read_log(newest_first, &filter);
                let plan = custom_plan(&mut connection, &statement, &literals(position, &params)).await;
                assert!(plan.contains(index), "{filter:?} (newest first: {newest_first}) must use {index}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{filter:?} must not scan the table:\n{plan}");
            }
        }
    }

    /// A migrated store of 100 streams of 200 events (20,000), each tagged with its stream (1%) and one of
    /// ten shards (10%), and an analyzed connection as in [`analyzed_store`].
    async fn tagged_store() -> (PostgresTestDatabase, PostgresEventStore, PgConnection) {
        let db = PostgresTestDatabase::start().await;
        let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
        store.migrate().await.unwrap();
        for stream in 0..100 {
            let id = StreamId::new(format!("order-{stream}")).unwrap();
            let events = (0..200)
                .map(|n| {
                    NewEvent::new("OrderNoted.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
                        .with_tags([Tag::of("order", stream), Tag::of("shard", n % 10)])
                })
                .collect();
            store.append(&id, ExpectedVersion::Any, events).await.unwrap();
        }
        let mut connection = store.pool().acquire().await.unwrap().detach();
        sqlx::raw_sql("ANALYZE events").execute(&mut connection).await.unwrap();
        (db, store, connection)
    }

    #[tokio::test]
    async fn reads_by_tag_look_the_tags_up_in_the_tag_index() {
        let (_db, _store, mut connection) = tagged_store().await;
        let cases = [
            // One selective tag; the same with a type; two items, one with two tags.
            r#"0, 1000, '{order:7}', '{""}', false, '{}', NULL"#,
            r#"0, 1000, '{order:7}', '{OrderNoted.v1}', false, '{}', NULL"#,
            "0, 10, ARRAY['order:7' || chr(31) || 'shard:3', 'order:8'], '{\"\",\"\"}', false, '{}', NULL",
        ];
        for args in cases {
            for plan in plans(&mut connection, READ_QUERY, args).await {
                assert!(plan.contains("Bitmap Index Scan on events_tags_idx"), "expected a tag index lookup:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "a read by a selective tag scans the log:\n{plan}");
            }
        }
        // Items without tags read by position, as read_all does.
        for plan in plans(&mut connection, READ_QUERY, "0, 1000, '{}', '{}', true, '{OrderNoted.v1}', NULL").await {
            assert!(plan.contains("Index Scan using events_global_position_idx"), "{plan}");
            assert!(!plan.contains("Seq Scan"), "{plan}");
        }
    }

    /// The condition checks of `events_append` and `events_append_one`, cut from their migration, with their
    /// variables as parameters (`$1` tags, `$2` types, `$3` position), and arguments for them.
    fn condition_checks() -> [(String, [&'static str; 3]); 2] {
        let migration = include_str!("../../migrations/postgres/0004_append_function.sql");
        let cut = |from: &str| {
            let start = migration.find(from).expect("the check is in 0004");
            let end = start + migration[start..].find(';').expect("the check ends");
            migration[start..end].replacen(" INTO found", "", 1).replacen(" INTO condition_position", "", 1)
        };
        let many = cut("SELECT min(m.global_position) INTO found")
            .replace("p_condition_tags[i]", "$1::text")
            .replace("p_condition_types[i]", "$2::text")
            .replace("p_after", "$3::bigint");
        let one = cut("SELECT min(m.global_position) INTO condition_position")
            .replace("p_condition_tags", "$1::text[]")
            .replace("p_condition_types", "$2::text[]")
            .replace("p_after", "$3::bigint");
        [
            (
                many,
                ["'order:7', '', 0", "'order:7', 'OrderNoted.v1', 1000", "'order:7' || chr(31) || 'shard:3', '', 0"],
            ),
            (one, ["'{order:7}', '{}', 0", "'{order:7}', '{OrderNoted.v1}', 1000", "'{order:7,shard:3}', '{}', 0"]),
        ]
    }

    #[tokio::test]
    async fn the_condition_of_an_append_looks_its_tags_up_in_the_tag_index_under_a_generic_plan() {
        let (_db, _store, mut connection) = tagged_store().await;
        // The functions force generic plans: plans() checks both kinds.
        for (check, cases) in condition_checks() {
            assert!(!check.contains("p_"), "a variable is left in the check: {check}");
            for args in cases {
                for plan in plans(&mut connection, &check, args).await {
                    assert!(plan.contains("Bitmap Index Scan on events_tags_idx"), "expected a tag lookup:\n{plan}");
                    assert!(!plan.contains("Seq Scan"), "an append condition scans the log:\n{plan}");
                    assert!(!plan.contains("events_global_position_idx"), "the check walks positions:\n{plan}");
                }
            }
        }
    }
}
