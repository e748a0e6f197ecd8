-- composable-rust event store schema for PostgreSQL (13 or newer: uses pg_current_xact_id()).
--
-- Run by PostgresEventStore::migrate() (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations/postgres/0001_event_store.sql
-- See docs/database-setup.md and, for the reasoning, the PostgreSQL section of docs/decisions.md.

-- Events: append-only, one row per event.
--
-- global_position is derived from the writing transaction's id:
--   (pg_current_xact_id() << 20) + ordinal of the event in its batch (1 .. 2^20 - 1).
-- An append is one statement in one transaction, so positions are unique, and a transaction that commits
-- later than a reader's snapshot always has a larger xid than the snapshot's xmin. Readers only read
-- positions below (xmin << 20), so no event can appear behind a position already read.
--
-- Metadata is split so that replay never parses JSON: the ids filtered on are typed columns, the free-form
-- rest is text (valid JSON, checked by the client) that is returned as a plain string.
CREATE TABLE events (
    stream_id       TEXT COLLATE "C" NOT NULL,
    version         BIGINT           NOT NULL CHECK (version > 0),
    global_position BIGINT           NOT NULL CHECK (global_position > 0),
    event_type      TEXT             NOT NULL,
    codec           TEXT             NOT NULL,
    payload         BYTEA            NOT NULL,
    correlation_id  UUID,
    causation_id    UUID,
    actor           TEXT,
    extra           TEXT,
    recorded_at     TIMESTAMPTZ      NOT NULL DEFAULT now(),
    -- Stream loads (ORDER BY version) and the optimistic concurrency check (23505 on a race).
    CONSTRAINT events_pkey PRIMARY KEY (stream_id, version)
);

-- Global log reads: a range scan in position order.
CREATE UNIQUE INDEX events_global_position_idx ON events (global_position);

-- Global log reads filtered by correlation id, still in position order.
CREATE INDEX events_correlation_idx ON events (correlation_id, global_position)
    WHERE correlation_id IS NOT NULL;

-- Append-only, enforced by the database: UPDATE, DELETE and TRUNCATE on events fail for every role.
-- Retention, if ever needed, is an explicit administrative act (disable the trigger as the owner).
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'append new events instead of changing stored ones';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Snapshots: the latest state of a stream; saving replaces it (a cache, may be deleted).
CREATE TABLE snapshots (
    stream_id      TEXT COLLATE "C" PRIMARY KEY,
    version        BIGINT      NOT NULL CHECK (version >= 0),
    schema_version BIGINT      NOT NULL CHECK (schema_version >= 0),
    codec          TEXT        NOT NULL,
    payload        BYTEA       NOT NULL,
    taken_at       TIMESTAMPTZ NOT NULL
);

-- Checkpoints: the last global position each handler (projection, subscription) processed.
CREATE TABLE checkpoints (
    handler    TEXT PRIMARY KEY,
    position   BIGINT      NOT NULL CHECK (position >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
