-- composable-rust event store schema, step 5: indexes for the filters of a global-log read (PostgreSQL 13
-- or newer).
--
-- Run by PostgresEventStore::migrate() after 0004 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0005_query_indexes.sql
-- What it does to an existing database: it builds three indexes, reading the table once each, and holds a
-- SHARE lock on `events` meanwhile (reads go on, appends wait); on a large table, build them by hand first
-- with CREATE INDEX CONCURRENTLY under these names and run the migration after, which then finds them (IF NOT
-- EXISTS; docs/database-setup.md, "Upgrading").
--
-- Each filter of EventLog::read_log (LogFilter) gets an index that costs as little as it can for the
-- benchmark's event (no metadata, no tags); the reasoning is in docs/decisions.md ("Reading the global log:
-- filters, direction, limits"), the bytes per event in docs/performance.md. Filtered reads are planned for
-- their values (unnamed statements), so the planner chooses between an index and a walk along
-- events_global_position_idx from the statistics: a walk when the filter matches much of the log (a page
-- then fills quickly), the index when it matches little.
--
--   event types     events_event_type_idx (below)
--   stream prefix   the primary key (stream_id, version): a range of ids, COLLATE "C"
--   correlation id  events_correlation_idx (0001, partial)
--   actor           events_actor_idx (below, partial)
--   recorded time   events_recorded_at_brin (below)
--   newest first    events_global_position_idx, scanned backward

-- Event types: the type alone, so that B-tree deduplication (PostgreSQL 13) stores each type once per
-- leaf page followed by row pointers, about 6 bytes per event where (event_type, global_position) would
-- take about 30. A read by a rare type is a bitmap scan of it plus a sort of the matches after the cursor.
CREATE INDEX IF NOT EXISTS events_event_type_idx ON events (event_type);

-- Actors: partial, so events without an actor cost nothing; in position order within an actor.
CREATE INDEX IF NOT EXISTS events_actor_idx ON events (actor, global_position) WHERE actor IS NOT NULL;

-- Recorded times: rows are appended in position order and recorded_at follows it (imports of old events
-- widen a range's summary, they never make the index wrong), so a BRIN index of 128 pages per range finds
-- a time window for a few bytes per thousand events.
CREATE INDEX IF NOT EXISTS events_recorded_at_brin ON events USING brin (recorded_at);
