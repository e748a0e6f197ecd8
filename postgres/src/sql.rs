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
/// `$9` is `any`, `exists` or `exact` (with `$10` the expected version).
pub(crate) const APPEND: &str = r"
WITH head AS (
    SELECT COALESCE(MAX(version), 0) AS version FROM events WHERE stream_id = $1
), appended AS (
    INSERT INTO events (stream_id, version, global_position, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT $1, head.version + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM head,
         UNNEST($2::text[], $3::text[], $4::bytea[], $5::uuid[], $6::uuid[], $7::text[], $8::text[])
             WITH ORDINALITY AS e(event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE CASE $9::text
              WHEN 'any' THEN true
              WHEN 'exists' THEN head.version > 0
              ELSE head.version = $10::bigint
          END
    RETURNING global_position
)
SELECT (SELECT version FROM head), COUNT(*), MIN(global_position) FROM appended";

/// The version of a stream (0 when it has no events): a backward index-only scan of one entry.
pub(crate) const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1";

/// The columns of a stream load, in the order `store::decode_stream_row` reads them.
pub(crate) const READ_STREAM: &str = r"
SELECT version, global_position, event_type, codec, payload,
       correlation_id, causation_id, actor, extra, recorded_at
FROM events
WHERE stream_id = $1 AND version >= $2 AND version <= $3
ORDER BY version";

/// The upper bound of what a global read may return: every transaction with an xid below the snapshot's
/// xmin has ended, and any later commit has a larger xid.
macro_rules! visible_below {
    () => {
        "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)"
    };
}

/// The global log without filters, the hot path of projections.
pub(crate) const READ_ALL: &str = concat!(
    r"
SELECT stream_id, version, global_position, event_type, codec, payload,
       correlation_id, causation_id, actor, extra, recorded_at
FROM events
WHERE global_position > $1 AND global_position < ",
    visible_below!(),
    r"
ORDER BY global_position
LIMIT $2"
);

/// The visibility horizon of global reads next to the newest committed position: when the newest is at
/// or above the horizon, committed events are held back behind an older transaction still in flight.
pub(crate) const HELD_BACK: &str = concat!("SELECT ", visible_below!(), ", (SELECT MAX(global_position) FROM events)");

/// The global log with optional filters: `$3` event types (empty: all), `$4` stream prefix, `$5`/`$6` the
/// recorded-at range.
pub(crate) const READ_ALL_FILTERED: &str = concat!(
    r"
SELECT stream_id, version, global_position, event_type, codec, payload,
       correlation_id, causation_id, actor, extra, recorded_at
FROM events
WHERE global_position > $1 AND global_position < ",
    visible_below!(),
    r"
  AND (cardinality($3::text[]) = 0 OR event_type = ANY($3))
  AND ($4::text IS NULL OR starts_with(stream_id, $4))
  AND ($5::timestamptz IS NULL OR recorded_at >= $5)
  AND ($6::timestamptz IS NULL OR recorded_at < $6)
ORDER BY global_position
LIMIT $2"
);

/// The global log of one correlation id (`$7`), through `events_correlation_idx`, with the other filters.
pub(crate) const READ_ALL_CORRELATED: &str = concat!(
    r"
SELECT stream_id, version, global_position, event_type, codec, payload,
       correlation_id, causation_id, actor, extra, recorded_at
FROM events
WHERE correlation_id = $7 AND global_position > $1 AND global_position < ",
    visible_below!(),
    r"
  AND (cardinality($3::text[]) = 0 OR event_type = ANY($3))
  AND ($4::text IS NULL OR starts_with(stream_id, $4))
  AND ($5::timestamptz IS NULL OR recorded_at >= $5)
  AND ($6::timestamptz IS NULL OR recorded_at < $6)
ORDER BY correlation_id, global_position
LIMIT $2"
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

/// Saves a snapshot, replacing the stream's previous one.
pub(crate) const SAVE_SNAPSHOT: &str = r"
INSERT INTO snapshots (stream_id, version, schema_version, codec, payload, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, codec = EXCLUDED.codec,
    payload = EXCLUDED.payload, taken_at = EXCLUDED.taken_at";

/// Loads a stream's snapshot.
pub(crate) const LOAD_SNAPSHOT: &str =
    "SELECT version, schema_version, codec, payload, taken_at FROM snapshots WHERE stream_id = $1";

/// Deletes a stream's snapshot.
pub(crate) const DELETE_SNAPSHOT: &str = "DELETE FROM snapshots WHERE stream_id = $1";

/// Loads a handler's checkpoint.
pub(crate) const LOAD_CHECKPOINT: &str = "SELECT position FROM checkpoints WHERE handler = $1";

/// Saves a handler's checkpoint.
pub(crate) const SAVE_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, $2, now())
ON CONFLICT (handler) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at";
