-- composable-rust event store schema, step 2: every event has an id (PostgreSQL 13 or newer).
--
-- Run by PostgresEventStore::migrate() after 0001 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0002_event_ids.sql
-- What it does to an existing database (lock, time, disk): docs/database-setup.md, "Upgrading".

-- The id the application gave the event (EventId, a UUID; version 7 by default, so ids of events appended
-- together sort together). Appends always send it; a retried append finds its events by these ids and
-- returns the original result instead of writing them twice.
--
-- Existing rows get a random id. A volatile DEFAULT makes ADD COLUMN rewrite the table once, filling every
-- row, instead of an UPDATE: no dead row versions (an UPDATE would double the table until a VACUUM FULL),
-- about three times faster, and the append-only trigger stays enabled throughout, since a rewrite is not an
-- UPDATE. The default stays: a row inserted without an id (an older application version still running
-- during a rolling upgrade, hand-written SQL) gets a random one rather than failing.
ALTER TABLE events ADD COLUMN event_id UUID NOT NULL DEFAULT gen_random_uuid();

-- Ids are unique in the whole store. The same index serves lookups by id (load_event) and the check of a
-- retried append. New ids are time-ordered, so inserts land at the right edge of the index.
CREATE UNIQUE INDEX events_event_id_idx ON events (event_id);
