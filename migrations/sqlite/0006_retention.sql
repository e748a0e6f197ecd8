-- Retention (composable_rust_core::retention): the one way events leave the store, an explicit administrative
-- operation that records what it removed. Existing files are upgraded in place when opened; nothing is removed.
--
-- `retention_runs` is the audit table: one row per run (who, when, which policy, where the events were
-- archived, how many were removed, in how many batches); each batch updates its run's counts in the batch's
-- own transaction, so the row always matches what was removed.
CREATE TABLE retention_runs (
    run_id         BLOB    NOT NULL PRIMARY KEY CHECK (typeof(run_id) = 'blob' AND length(run_id) = 16),
    actor          TEXT    NOT NULL CHECK (length(actor) > 0),
    policy         TEXT    NOT NULL,
    archive        TEXT,
    started_at     INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    finished_at    INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    events_removed INTEGER NOT NULL CHECK (events_removed >= 0),
    batches        INTEGER NOT NULL CHECK (batches >= 1)
);

-- One row per removed event: its position, stream and type (what a subscription's filter needs to tell
-- whether it missed something), and the run. The greatest position is the removal horizon.
CREATE TABLE retention_removed (
    global_position INTEGER NOT NULL PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    run_id          BLOB    NOT NULL REFERENCES retention_runs (run_id)
);

-- The audit is append-only: a run's row may gain counts, never disappear; a removal record never changes.
CREATE TRIGGER retention_runs_reject_delete BEFORE DELETE ON retention_runs
BEGIN
    SELECT RAISE(ABORT, 'retention runs are an audit trail: a run cannot be deleted');
END;

CREATE TRIGGER retention_removed_reject_update BEFORE UPDATE ON retention_removed
BEGIN
    SELECT RAISE(ABORT, 'retention records are an audit trail: a record cannot be updated');
END;

CREATE TRIGGER retention_removed_reject_delete BEFORE DELETE ON retention_removed
BEGIN
    SELECT RAISE(ABORT, 'retention records are an audit trail: a record cannot be deleted');
END;

-- Events (and their tags) stay append-only for everything but retention. SQLite has no roles: whoever can
-- write the file can do anything to it, so the file's permissions are the privilege boundary. The triggers
-- guard against mistakes: a DELETE is refused unless the event's removal was recorded first, in the same
-- transaction, under an audited run (which is what the store's retention path does). A stray DELETE from
-- application code or a hand-typed statement fails; getting around it leaves an audit row behind.
DROP TRIGGER events_reject_delete;

CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM retention_removed WHERE global_position = OLD.global_position)
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a stored event cannot be deleted (only retention removes events)');
END;

DROP TRIGGER event_tags_reject_delete;

CREATE TRIGGER event_tags_reject_delete BEFORE DELETE ON event_tags
WHEN NOT EXISTS (SELECT 1 FROM retention_removed WHERE global_position = OLD.global_position)
BEGIN
    SELECT RAISE(ABORT, 'event tags are append-only: a stored tag cannot be deleted (only retention removes events)');
END;
