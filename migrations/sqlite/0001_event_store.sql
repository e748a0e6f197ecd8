-- The SQLite event store schema (composable-rust-sqlite). Embedded with `sqlx::migrate!` and applied by
-- `SqliteEventStore::open`; sqlx records it in `_sqlx_migrations`, which is how a database written by a newer
-- version of the code is recognised and refused. Never edit an applied migration: add a new file.

-- One row per stream: its current version (= the version of its last event). The append path reads and
-- updates it under the write lock, so the version check and the insert are one atomic step; it also serves
-- `stream_version` and `list_streams` without scanning events. Byte-wise (BINARY) order for listing.
CREATE TABLE streams (
    stream_id TEXT    NOT NULL PRIMARY KEY,
    version   INTEGER NOT NULL CHECK (version >= 1)
) WITHOUT ROWID;

-- The log. `global_position` is the rowid: SQLite has one writer at a time, so positions are handed out
-- in commit order and a reader can never see a later commit at a lower position. AUTOINCREMENT keeps a
-- position from ever being reused. Versions are dense per stream, starting at 1.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT    NOT NULL REFERENCES streams (stream_id),
    version         INTEGER NOT NULL CHECK (version >= 1),
    event_type      TEXT    NOT NULL,
    codec           TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    correlation_id  BLOB,             -- UUID, 16 bytes
    causation_id    BLOB,             -- UUID, 16 bytes
    actor           TEXT,
    extra           TEXT,             -- free-form JSON as text
    recorded_at     INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    UNIQUE (stream_id, version)
);

-- Append-only in the database itself, not only in the API.
CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a stored event cannot be updated');
END;

CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a stored event cannot be deleted');
END;

-- The latest snapshot of each stream (save = upsert). A cache: it may be deleted at any time.
CREATE TABLE snapshots (
    stream_id      TEXT    NOT NULL PRIMARY KEY,
    version        INTEGER NOT NULL CHECK (version >= 0),
    schema_version INTEGER NOT NULL CHECK (schema_version >= 0),
    codec          TEXT    NOT NULL,
    payload        BLOB    NOT NULL,
    taken_at       INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
);

-- The position each named handler (projection, subscription) has processed up to.
CREATE TABLE checkpoints (
    handler    TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL CHECK (position >= 0),
    updated_at INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
) WITHOUT ROWID;
