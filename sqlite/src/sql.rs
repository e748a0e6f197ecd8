//! Every SQL statement the store runs. Only placeholders vary; nothing is assembled from user input.

use std::sync::LazyLock;

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

/// One page of the global log. Every filter is optional (a NULL parameter switches it off). The `+` in
/// front of `stream_id` keeps SQLite on the rowid (position) order, which is what a page needs: it stops
/// after `LIMIT` matches instead of sorting a whole category.
pub(crate) const READ_ALL_PAGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", stream_id FROM events WHERE global_position > ?1",
    " AND (?2 IS NULL OR event_type IN (SELECT value FROM json_each(?2)))",
    " AND (?3 IS NULL OR +stream_id >= ?3)",
    " AND (?4 IS NULL OR +stream_id < ?4)",
    " AND (?5 IS NULL OR correlation_id = ?5)",
    " AND (?6 IS NULL OR recorded_at >= ?6)",
    " AND (?7 IS NULL OR recorded_at < ?7)",
    " ORDER BY global_position LIMIT ?8"
);

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

#[cfg(test)]
mod tests {
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

    #[test]
    fn id_lookups_have_one_placeholder_per_id() {
        for ids in [1, 7, INSERT_CHUNK] {
            let sql = events_with_ids(ids);
            assert_eq!(sql.matches('?').count(), ids, "{sql}");
        }
    }
}
