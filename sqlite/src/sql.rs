//! Every SQL statement the store runs. Only placeholders vary; nothing is assembled from user input.

use std::sync::LazyLock;

use composable_rust_core::{LogCursor, LogFilter};

/// The columns of an event row in the order [`crate::rows`] decodes them; reads that do not know the
/// stream add `stream_id`.
macro_rules! event_columns {
    () => {
        "global_position, version, event_type, codec, payload, correlation_id, causation_id, actor, extra, \
         recorded_at, event_id, tags"
    };
}

/// A stream's current version (no row: the stream has no events).
pub(crate) const STREAM_VERSION: &str = "SELECT version FROM streams WHERE stream_id = ?1";

/// Sets a stream's version after an append (the row exists once the stream has events).
pub(crate) const UPSERT_STREAM: &str = "INSERT INTO streams (stream_id, version) VALUES (?1, ?2) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";

/// The versions of the streams of the JSON array `?1` that have events (the others have no row), for an
/// import: one statement for a whole batch.
pub(crate) const STREAM_VERSIONS: &str =
    "SELECT stream_id, version FROM streams WHERE stream_id IN (SELECT value FROM json_each(?1))";

/// Sets the versions of the streams an import wrote: `?1` is a JSON array of `[stream_id, version]` pairs,
/// one per stream. (`WHERE true` tells SQLite's parser that `ON CONFLICT` belongs to the upsert.)
pub(crate) const UPSERT_STREAMS: &str = "INSERT INTO streams (stream_id, version) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1) WHERE true \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";

/// One page of a stream, in version order, from the `(stream_id, version)` index.
pub(crate) const READ_STREAM_PAGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version LIMIT ?4"
);

/// A value bound to a read of the global log, in the order of its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// An integer (positions, times in microseconds, the limit).
    Int(i64),
    /// Text (types, stream ids, categories, actors).
    Text(String),
    /// Bytes (correlation ids).
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(value) => (*value).into(),
            Self::Text(value) => value.as_str().into(),
            Self::Blob(value) => value.as_slice().into(),
        })
    }
}

/// One read of the global log: the statement and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRead {
    /// The statement, built by [`read_log`] from fixed fragments.
    pub(crate) sql: String,
    /// Its parameters, one per `?`, in order.
    pub(crate) params: Vec<Param>,
}

/// The most event types merged as one compound `SELECT` (one range scan of `events_event_type` each);
/// more are matched with `IN` and sorted.
const MAX_MERGED_TYPES: usize = 16;

/// The text `substr(stream_id, 1, instr(stream_id, '-'))` yields for the streams a prefix selects, when
/// the prefix holds the category separator: `order-4` is in category `order-`.
fn category_of(prefix: &str) -> Option<&str> {
    prefix.find(composable_rust_core::StreamId::CATEGORY_SEPARATOR).map(|end| &prefix[..=end])
}

/// The read of up to `limit` events on `cursor`'s side that match `filter`, in the cursor's direction:
/// `None` when no position can match (a position beyond SQLite's integers).
///
/// Built from fixed fragments, never from the values, which are all bound. Each filter is an equality or a
/// range on an indexed column (migrations/sqlite/0005_query_indexes.sql), so SQLite drives the read by an
/// index whose entries end in the position: a page stops after `limit` matches. Several event types become
/// one arm per type of a `UNION ALL`, which SQLite merges in position order. A stream prefix without the
/// category separator spans categories: it is checked per event (`+stream_id`) along the position order.
pub(crate) fn read_log(cursor: LogCursor, filter: &LogFilter, limit: i64) -> Option<LogRead> {
    let (bound, descending) = match cursor {
        LogCursor::After(after) => ((" global_position > ?", i64::try_from(after.get()).ok()?), false),
        LogCursor::Before(before) => ((" global_position < ?", i64::try_from(before.get()).unwrap_or(i64::MAX)), true),
        // An explicit bound keeps the plan a search of the rowid, like the other two.
        LogCursor::Newest => ((" global_position <= ?", i64::MAX), true),
    };
    // The conditions of every arm but the type, and their values.
    let mut conditions: Vec<&str> = vec![bound.0];
    let mut values: Vec<Param> = vec![Param::Int(bound.1)];
    if let Some(prefix) = filter.stream_prefix.as_deref().filter(|p| !p.is_empty()) {
        if let Some(category) = category_of(prefix) {
            conditions.push(" substr(stream_id, 1, instr(stream_id, '-')) = ?");
            values.push(Param::Text(category.to_owned()));
        }
        if category_of(prefix) != Some(prefix) {
            conditions.push(" +stream_id >= ?");
            values.push(Param::Text(prefix.to_owned()));
            if let Some(end) = crate::rows::prefix_end(prefix) {
                conditions.push(" +stream_id < ?");
                values.push(Param::Text(end));
            }
        }
    }
    if let Some(id) = filter.correlation_id {
        conditions.push(" correlation_id = ?");
        values.push(Param::Blob(id.as_bytes().to_vec()));
    }
    if let Some(actor) = &filter.actor {
        conditions.push(" actor = ?");
        values.push(Param::Text(actor.clone()));
    }
    if let Some(from) = filter.recorded_from {
        conditions.push(" recorded_at >= ?");
        values.push(Param::Int(crate::rows::to_micros(from)));
    }
    if let Some(before) = filter.recorded_before {
        conditions.push(" recorded_at < ?");
        values.push(Param::Int(crate::rows::to_micros(before)));
    }
    let arm = |type_condition: Option<&str>| {
        let mut sql = String::from(concat!("SELECT ", event_columns!(), ", stream_id FROM events"));
        let conditions: Vec<&str> = type_condition.into_iter().chain(conditions.iter().copied()).collect();
        sql.push_str(" WHERE");
        sql.push_str(&conditions.join(" AND"));
        sql
    };
    let mut params = Vec::new();
    let mut sql = match filter.event_types.as_slice() {
        [] => {
            params.extend(values);
            arm(None)
        }
        types if types.len() > MAX_MERGED_TYPES => {
            params.push(Param::Text(serde_json::Value::from(types.to_vec()).to_string()));
            params.extend(values);
            arm(Some(" event_type IN (SELECT value FROM json_each(?))"))
        }
        types => {
            let one = arm(Some(" event_type = ?"));
            for event_type in types {
                params.push(Param::Text(event_type.clone()));
                params.extend(values.iter().cloned());
            }
            vec![one; types.len()].join(" UNION ALL ")
        }
    };
    sql.push_str(if descending {
        " ORDER BY global_position DESC LIMIT ?"
    } else {
        " ORDER BY global_position LIMIT ?"
    });
    params.push(Param::Int(limit));
    Some(LogRead { sql, params })
}

/// The event with an id, from the unique index on `event_id`.
pub(crate) const LOAD_EVENT: &str = concat!("SELECT ", event_columns!(), ", stream_id FROM events WHERE event_id = ?1");

/// Streams by id (byte-wise), in `[?1, ?2)` and after `?3`.
pub(crate) const LIST_STREAMS: &str = "SELECT stream_id, version FROM streams \
     WHERE stream_id >= ?1 AND (?2 IS NULL OR stream_id < ?2) AND (?3 IS NULL OR stream_id > ?3) \
     ORDER BY stream_id LIMIT ?4";

/// Saves the latest snapshot of a stream, unless the stored one is at a newer version: a late write of an
/// older snapshot (a slow background save) must not take it back in time. An equal version replaces.
pub(crate) const UPSERT_SNAPSHOT: &str = "INSERT INTO snapshots \
     (stream_id, version, schema_version, codec, payload, taken_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version, \
     codec = excluded.codec, payload = excluded.payload, taken_at = excluded.taken_at \
     WHERE snapshots.version <= excluded.version";

/// Loads the latest snapshot of a stream.
pub(crate) const LOAD_SNAPSHOT: &str =
    "SELECT version, schema_version, codec, payload, taken_at FROM snapshots WHERE stream_id = ?1";

/// Loads the snapshots of the streams of the JSON array `?1`, in any order: the columns of [`LOAD_SNAPSHOT`],
/// then the stream id. One statement for a page of streams (an export), through the primary key.
pub(crate) const LOAD_SNAPSHOTS: &str = "SELECT version, schema_version, codec, payload, taken_at, stream_id \
     FROM snapshots WHERE stream_id IN (SELECT value FROM json_each(?1))";

/// Deletes the snapshot of a stream.
pub(crate) const DELETE_SNAPSHOT: &str = "DELETE FROM snapshots WHERE stream_id = ?1";

/// The events after `?2` that carry the tag `?1`, every tag of the JSON array `?3` (NULL: no more) and,
/// unless `?4` is NULL, a type of the JSON array `?4`; at most `?5`, in position order. One item of a
/// read by query, and of an append condition's check.
///
/// `CROSS JOIN` makes `event_tags` the outer loop (SQLite never reorders a CROSS JOIN): a range scan of
/// its primary key for `?1` after `?2`, already in position order, each event then found by its rowid.
/// Scanning `events` by position instead would read every event after `?2`. The other tags are checked
/// through the same primary key.
pub(crate) const READ_TAGGED_ITEM: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", stream_id FROM event_tags CROSS JOIN events USING (global_position)",
    " WHERE event_tags.tag = ?1 AND event_tags.global_position > ?2",
    " AND NOT EXISTS (SELECT 1 FROM json_each(?3) AS wanted WHERE NOT EXISTS (",
    "SELECT 1 FROM event_tags AS other",
    " WHERE other.tag = wanted.value AND other.global_position = event_tags.global_position))",
    " AND (?4 IS NULL OR event_type IN (SELECT value FROM json_each(?4)))",
    " ORDER BY event_tags.global_position LIMIT ?5"
);

/// The events after `?1` of a type of the JSON array `?2` (NULL: any type), at most `?3`, in position
/// order: an item of a read by query that names no tag. Scans the log from `?1` by position.
pub(crate) const READ_UNTAGGED_ITEM: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", stream_id FROM events WHERE global_position > ?1",
    " AND (?2 IS NULL OR event_type IN (SELECT value FROM json_each(?2)))",
    " ORDER BY global_position LIMIT ?3"
);

/// The highest position in the log (0 when empty): in a read transaction, the horizon of what it sees.
/// Positions are never reused or deleted, so every later commit lies above it.
pub(crate) const LAST_POSITION: &str = "SELECT COALESCE(MAX(global_position), 0) FROM events";

/// Indexes the tags of appended events: `?1` is a JSON array of `[tag, global_position]` pairs, one per
/// distinct tag of each event. One statement whatever the number of tags.
pub(crate) const INSERT_EVENT_TAGS: &str = "INSERT INTO event_tags (tag, global_position) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)";

/// The newest schema migration applied to the database.
pub(crate) const LATEST_MIGRATION: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// Loads a handler's checkpoint.
pub(crate) const LOAD_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE handler = ?1";

/// Saves a handler's checkpoint, only forward (shared with PostgreSQL).
pub(crate) use composable_rust_sql::checkpoint::SAVE_CHECKPOINT;

/// Forgets a handler's checkpoint (a rebuild).
pub(crate) const DELETE_CHECKPOINT: &str = "DELETE FROM checkpoints WHERE handler = ?1";

/// The most rows one `INSERT` statement carries, and the most ids one [`events_with_ids`] lookup takes;
/// larger batches use several statements in one transaction. 12 parameters per row keeps a full chunk
/// far below SQLite's 32766-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 100;

/// Parameters bound per inserted event row.
pub(crate) const INSERT_PARAMS_PER_ROW: usize = 12;

/// Inserts one event, for a prepared statement reused per row (the import's rusqlite path); its
/// `global_position` is the new rowid. Parameters as in [`insert_events`].
pub(crate) const INSERT_EVENT: &str = "INSERT INTO events (stream_id, version, event_type, codec, payload, \
     correlation_id, causation_id, actor, extra, recorded_at, event_id, tags) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// `count` groups of `per_group` placeholders: `(?, ?), (?, ?)`.
fn placeholder_groups(count: usize, per_group: usize) -> String {
    let group = format!("({})", vec!["?"; per_group].join(", "));
    vec![group; count].join(", ")
}

/// `INSERT ... VALUES (...), (...) RETURNING version, global_position` for 1 to [`INSERT_CHUNK`] rows,
/// built once. RETURNING's row order is unspecified, so each position is matched back by its version.
static INSERT_EVENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=INSERT_CHUNK)
        .map(|rows| {
            format!(
                "INSERT INTO events (stream_id, version, event_type, codec, payload, correlation_id, causation_id, \
                 actor, extra, recorded_at, event_id, tags) VALUES {} RETURNING version, global_position",
                placeholder_groups(rows, INSERT_PARAMS_PER_ROW)
            )
        })
        .collect()
});

/// The insert statement for `rows` events (1 to [`INSERT_CHUNK`]).
pub(crate) fn insert_events(rows: usize) -> &'static str {
    let index = rows.clamp(1, INSERT_CHUNK) - 1;
    INSERT_EVENTS.get(index).map_or("", String::as_str)
}

/// `SELECT ... WHERE event_id IN (?, ...)` for 1 to [`INSERT_CHUNK`] ids, built once: the stored events
/// that carry any id of a batch, found through the unique index on `event_id`, in no particular order.
static EVENTS_WITH_IDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=INSERT_CHUNK)
        .map(|ids| {
            format!(
                concat!("SELECT ", event_columns!(), ", stream_id FROM events WHERE event_id IN ({})"),
                vec!["?"; ids].join(", ")
            )
        })
        .collect()
});

/// The lookup statement for `ids` event ids (1 to [`INSERT_CHUNK`]).
pub(crate) fn events_with_ids(ids: usize) -> &'static str {
    let index = ids.clamp(1, INSERT_CHUNK) - 1;
    EVENTS_WITH_IDS.get(index).map_or("", String::as_str)
}

/// What [`StoreLifecycle::stats`](composable_rust_core::backend::StoreLifecycle::stats) reports, in one
/// read: events, oldest and newest time, streams, snapshots, checkpoints.
pub(crate) const STATS: &str = "SELECT (SELECT COUNT(*) FROM events), (SELECT MIN(recorded_at) FROM events), \
     (SELECT MAX(recorded_at) FROM events), (SELECT COUNT(*) FROM streams), (SELECT COUNT(*) FROM snapshots), \
     (SELECT COUNT(*) FROM checkpoints)";

/// Every checkpoint, by handler name (byte-wise: SQLite's default collation).
pub(crate) const LIST_CHECKPOINTS: &str = "SELECT handler, position FROM checkpoints ORDER BY handler";

/// The version of a stream's snapshot, if it has one (retention's check).
pub(crate) const SNAPSHOT_VERSION: &str = "SELECT version FROM snapshots WHERE stream_id = ?1";

/// The position and type of a stream's event at a version (retention: what to record before removing it).
pub(crate) const EVENT_AT_VERSION: &str =
    "SELECT global_position, event_type FROM events WHERE stream_id = ?1 AND version = ?2";

/// Records a removed event under its run; the delete triggers of `events` and `event_tags` let a row go
/// only once this record exists.
pub(crate) const RECORD_REMOVED: &str =
    "INSERT INTO retention_removed (global_position, stream_id, event_type, run_id) VALUES (?1, ?2, ?3, ?4)";

/// Removes a removed event's tag rows.
pub(crate) const DELETE_EVENT_TAGS: &str = "DELETE FROM event_tags WHERE global_position = ?1";

/// Removes an event (allowed by the trigger only after [`RECORD_REMOVED`]).
pub(crate) const DELETE_EVENT: &str = "DELETE FROM events WHERE global_position = ?1";

/// Creates a run's audit row with its first batch, or counts a later batch in it.
pub(crate) const UPSERT_RETENTION_RUN: &str = "INSERT INTO retention_runs \
     (run_id, actor, policy, archive, started_at, finished_at, events_removed, batches) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0, 1) \
     ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, batches = retention_runs.batches + 1";

/// Adds a batch's removed events to its run's audit row.
pub(crate) const COUNT_RETENTION_RUN: &str =
    "UPDATE retention_runs SET events_removed = events_removed + ?2 WHERE run_id = ?1";

/// The removal horizon: the greatest position ever removed (NULL when none), from the primary key.
pub(crate) const REMOVAL_HORIZON: &str = "SELECT max(global_position) FROM retention_removed";

/// Removed events in `(?1, ?2]` whose type is in the JSON list `?3` (NULL: any) and whose stream id starts
/// with `?4` (NULL: any): a range of the primary key.
pub(crate) const COUNT_REMOVED: &str = "SELECT count(*) FROM retention_removed \
     WHERE global_position > ?1 AND global_position <= ?2 \
     AND (?3 IS NULL OR event_type IN (SELECT value FROM json_each(?3))) \
     AND (?4 IS NULL OR substr(stream_id, 1, length(?4)) = ?4)";

/// The lowest version of a stream still stored, from the `(stream_id, version)` index.
pub(crate) const FIRST_RETAINED_VERSION: &str = "SELECT min(version) FROM events WHERE stream_id = ?1";

/// Every retention run, oldest first.
pub(crate) const RETENTION_RUNS: &str = "SELECT run_id, actor, policy, archive, started_at, finished_at, \
     events_removed, batches FROM retention_runs ORDER BY started_at, run_id";

#[cfg(test)]
mod tests {
    use composable_rust_core::GlobalPosition;

    use super::*;

    #[test]
    fn insert_statements_have_one_placeholder_group_per_row() {
        for rows in [1, 7, INSERT_CHUNK] {
            let sql = insert_events(rows);
            assert_eq!(sql.matches('?').count(), rows * INSERT_PARAMS_PER_ROW, "{sql}");
            assert_eq!(sql.matches('(').count(), rows + 1, "{sql}");
        }
    }

    /// The plan SQLite chooses for `statement`, one line per step.
    async fn query_plan(statement: &str) -> String {
        let mut conn = crate::open::open_in_memory().await.unwrap().writer;
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {statement}")).fetch_all(&mut conn).await.unwrap();
        rows.iter().map(|row| sqlx::Row::get::<String, _>(row, "detail")).collect::<Vec<_>>().join("\n")
    }

    #[tokio::test]
    async fn lookups_by_event_id_search_the_unique_index() {
        for statement in [LOAD_EVENT, events_with_ids(1), events_with_ids(INSERT_CHUNK)] {
            let plan = query_plan(statement).await;
            assert!(plan.contains("SEARCH events USING INDEX events_event_id (event_id=?)"), "{statement}:\n{plan}");
            assert!(!plan.contains("SCAN events"), "{statement} must not scan the table:\n{plan}");
        }
    }

    #[tokio::test]
    async fn an_import_reads_the_versions_of_its_streams_through_the_primary_key() {
        let plan = query_plan(STREAM_VERSIONS).await;
        assert!(plan.contains("SEARCH streams USING PRIMARY KEY (stream_id=?)"), "{plan}");
        assert!(!plan.contains("SCAN streams"), "an import batch must not scan every stream:\n{plan}");
    }

    #[tokio::test]
    async fn a_tagged_query_item_is_a_range_scan_of_the_tag_index_in_position_order() {
        let plan = query_plan(READ_TAGGED_ITEM).await;
        assert!(
            plan.contains("SEARCH event_tags USING PRIMARY KEY (tag=? AND global_position>?)"),
            "the first tag must drive the read through the tag index:\n{plan}"
        );
        assert!(plan.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid=?)"), "events by position:\n{plan}");
        assert!(!plan.contains("SCAN events"), "a tagged item must not scan the events:\n{plan}");
        assert!(!plan.contains("SCAN event_tags"), "nor the whole tag index:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "the index order is the position order; no sort:\n{plan}");
    }

    #[tokio::test]
    async fn an_untagged_query_item_reads_the_log_from_its_position() {
        let plan = query_plan(READ_UNTAGGED_ITEM).await;
        assert!(plan.contains("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    /// The plan of a global-log read, checked to be a search of `index` (and `search`) that needs no sort
    /// and scans no table.
    async fn assert_read_plan(cursor: LogCursor, filter: &LogFilter, search: &str) {
        let read = read_log(cursor, filter, 10).unwrap();
        assert_eq!(read.sql.matches('?').count(), read.params.len(), "one parameter per placeholder: {}", read.sql);
        let plan = query_plan(&read.sql).await;
        assert!(plan.contains(search), "{filter:?} {cursor:?} must search `{search}`:\n{plan}");
        assert!(!plan.contains("SCAN events"), "{filter:?} {cursor:?} must not scan the log:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE") || search.contains("recorded_at"), "no sort:\n{plan}");
    }

    #[tokio::test]
    async fn each_filter_of_a_global_read_searches_its_index_in_position_order_both_ways() {
        let position = GlobalPosition::new(100);
        let cases = [
            (LogFilter::all(), "USING INTEGER PRIMARY KEY (rowid"),
            (LogFilter::all().event_types(["A.v1"]), "USING INDEX events_event_type (event_type=? AND rowid"),
            (LogFilter::all().category("order"), "USING INDEX events_category (<expr>=? AND rowid"),
            (LogFilter::all().stream_prefix("order-4"), "USING INDEX events_category (<expr>=? AND rowid"),
            (
                LogFilter::all().correlation_id(uuid::Uuid::nil()),
                "USING INDEX events_correlation (correlation_id=? AND rowid",
            ),
            (LogFilter::all().actor("alice"), "USING INDEX events_actor (actor=? AND rowid"),
        ];
        for (filter, search) in cases {
            for cursor in [LogCursor::After(position), LogCursor::Before(position), LogCursor::Newest] {
                assert_read_plan(cursor, &filter, search).await;
            }
        }
    }

    #[tokio::test]
    async fn several_event_types_are_merged_in_position_order_without_a_sort() {
        for cursor in [LogCursor::OLDEST, LogCursor::Newest] {
            let read = read_log(cursor, &LogFilter::all().event_types(["A.v1", "B.v1", "C.v1"]), 10).unwrap();
            let plan = query_plan(&read.sql).await;
            assert!(plan.contains("MERGE (UNION ALL)"), "{plan}");
            assert_eq!(plan.matches("USING INDEX events_event_type (event_type=? AND rowid").count(), 3, "{plan}");
            assert!(!plan.contains("TEMP B-TREE") && !plan.contains("SCAN events"), "{plan}");
        }
        let many: Vec<String> = (0..=MAX_MERGED_TYPES).map(|n| format!("T{n}.v1")).collect();
        let read = read_log(LogCursor::OLDEST, &LogFilter::all().event_types(many), 10).unwrap();
        let plan = query_plan(&read.sql).await;
        assert!(
            plan.contains("USING INDEX events_event_type (event_type=?"),
            "many types still use the index:\n{plan}"
        );
    }

    #[tokio::test]
    async fn a_recorded_time_window_searches_the_time_index() {
        let filter = LogFilter::all().recorded_between(Some(chrono::Utc::now()), Some(chrono::Utc::now()));
        for cursor in [LogCursor::OLDEST, LogCursor::Newest] {
            assert_read_plan(cursor, &filter, "USING INDEX events_recorded_at (recorded_at>? AND recorded_at<?)").await;
        }
    }

    #[test]
    fn a_cursor_beyond_sqlite_integers_reads_nothing() {
        assert_eq!(read_log(LogCursor::After(GlobalPosition::new(u64::MAX)), &LogFilter::all(), 10), None);
        let read = read_log(LogCursor::Before(GlobalPosition::new(u64::MAX)), &LogFilter::all(), 10).unwrap();
        assert_eq!(read.params.first(), Some(&Param::Int(i64::MAX)));
    }

    #[test]
    fn id_lookups_have_one_placeholder_per_id() {
        for ids in [1, 7, INSERT_CHUNK] {
            let sql = events_with_ids(ids);
            assert_eq!(sql.matches('?').count(), ids, "{sql}");
        }
    }
}
