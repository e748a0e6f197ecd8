-- composable-rust event store schema, step 6: retention with least privilege (PostgreSQL 13 or newer).
--
-- Run by PostgresEventStore::migrate() after 0004/0005 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0006_retention.sql
-- Run it as the role that owns `events` (the one that ran 0001): the removal function below runs with the
-- rights of its owner. What it does to an existing database, and the roles to set up afterwards:
-- docs/database-setup.md ("4b. A retention role"); the argument: docs/decisions.md ("Retention on PostgreSQL").
--
-- The log stays append-only for the application. Events leave it only through events_retention_remove, a
-- SECURITY DEFINER function that nobody may call until the owner grants EXECUTE to a retention role:
--
-- * the application role has SELECT and INSERT on `events` and no EXECUTE on the function: its DELETE,
--   UPDATE and TRUNCATE are refused by privileges, and its call of the function too;
-- * the trigger events_append_only refuses UPDATE and TRUNCATE for every role, and DELETE unless it runs
--   inside events_retention_remove: as the table's owner (the function's owner) with the transaction-local
--   setting composable.retention, which the function turns on around its own writes only. A role that was granted
--   DELETE by mistake (GRANT ALL) is still refused: it is not the owner, whatever it sets;
-- * the function refuses a batch (returns the refusal, removes nothing) that holds the last event of a stream (so
--   the stream's version and every ExpectedVersion check survive), or an event above the stream's snapshot
--   unless the caller declares the stream's category replay-free (an audit log); it records what it removed in
--   retention_removed and who (actor, and session_user), when, the policy, the counts and the removal horizon in
--   retention_runs, in the same transaction as the removal. Both tables are append-only too.

-- One row per retention run (`retention apply`). Each batch of a run is one call of events_retention_remove,
-- one transaction, and adds its counts here in that transaction, so the row always says exactly what is gone,
-- also when a run stops half-way.
CREATE TABLE retention_runs (
    run_id          UUID        PRIMARY KEY,
    -- Who the caller says runs it (an operator, a scheduler).
    actor           TEXT        NOT NULL,
    -- The role that logged in (session_user), whatever the caller says; not the function's owner.
    performed_by    TEXT        NOT NULL,
    -- The policy as the caller describes it (recorded, never interpreted here), and where the removed events
    -- were archived, if anywhere.
    policy          TEXT        NOT NULL,
    archive         TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    batches         BIGINT      NOT NULL CHECK (batches > 0),
    removed_events  BIGINT      NOT NULL CHECK (removed_events >= 0),
    already_removed BIGINT      NOT NULL CHECK (already_removed >= 0),
    -- Events removed per stream category (the part of the stream id before the first '-').
    removed_by_category JSONB   NOT NULL DEFAULT '{}',
    -- The greatest global position this run removed; NULL when it removed nothing.
    horizon         BIGINT      CHECK (horizon > 0)
);

-- What is left of each removed event: its position, stream and type, so that a subscription whose checkpoint
-- lies below removed events can say how many of the events it reads are gone (EventRetention::removed_between),
-- and the removal horizon is max(global_position). Nothing of the payload or metadata stays.
CREATE TABLE retention_removed (
    global_position BIGINT PRIMARY KEY,
    stream_id       TEXT COLLATE "C" NOT NULL,
    event_type      TEXT NOT NULL,
    -- The run that removed it. No foreign key: the function writes the run's row just before, and checking the
    -- key row by row was a quarter of a removal's time.
    run_id          UUID NOT NULL
);

-- The audit is as append-only as the log: UPDATE, DELETE and TRUNCATE of retention_runs and retention_removed are
-- refused for every role, but for the function's own update of its run's row (the same two conditions as for
-- events below).
CREATE FUNCTION retention_audit_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'retention_runs'
       AND pg_catalog.current_setting('composable.retention', true) = 'removing'
       AND (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID)
           = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the retention audit is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'retention records its runs itself, through events_retention_remove';
END;
$$;

CREATE TRIGGER retention_runs_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON retention_runs
    FOR EACH STATEMENT EXECUTE FUNCTION retention_audit_reject_change();

CREATE TRIGGER retention_removed_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON retention_removed
    FOR EACH STATEMENT EXECUTE FUNCTION retention_audit_reject_change();

-- The trigger function of 0001, now with the one way through for DELETE described above. It is not SECURITY
-- DEFINER: it sees the role of the statement, which inside events_retention_remove is the function's owner.
-- (A statement-level trigger: once per statement, whatever the number of rows.)
CREATE OR REPLACE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND pg_catalog.current_setting('composable.retention', true) = 'removing'
       AND (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID)
           = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the events table is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'append new events instead of changing stored ones; retention removes events only '
                     'through events_retention_remove (docs/operations.md, "Retention")';
END;
$$;

-- Removes one batch of events of run `p_run` (by `p_actor`, under `p_policy`, archived to `p_archive` if not
-- NULL), given as parallel arrays with one entry per event: `p_streams`, `p_versions`, and `p_replay_free`,
-- whether the event's stream belongs to a category declared replay-free. At most 100000 events per call: a
-- batch is one transaction, and a bounded one keeps locks, WAL bursts and replication lag small.
--
-- First the invariants (composable_rust_core::retention), on the streams as this transaction sees them: for
-- each stream, in the order of their first entry, the lowest version that may not go, and why:
-- `beyond_stream` (the stream is only at version `refused_at`), `last_event`, or, unless replay-free,
-- `no_snapshot` or `above_snapshot` (the snapshot is at version `refused_at`). If any may not go, the call
-- returns the first such refusal and removes and records nothing. The caller's plan never asks for these; a
-- refusal means the store changed since the plan (a snapshot was deleted), so plan again.
--
-- Otherwise it removes the events, keeps each one's position, stream and type in retention_removed, and adds
-- the batch to the run's row in retention_runs (created by the run's first batch), all in this transaction.
-- Events already gone (a batch retried after a lost connection) are skipped and counted in `already_removed`.
-- Returns `removed`, `already_removed` and `horizon`, the greatest position it removed (NULL when none).
CREATE FUNCTION events_retention_remove(
    p_run uuid, p_actor text, p_policy text, p_archive text,
    p_streams text[], p_versions bigint[], p_replay_free boolean[],
    OUT removed bigint, OUT already_removed bigint, OUT horizon bigint,
    OUT refused_stream text, OUT refused_version bigint, OUT refused_reason text, OUT refused_at bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET jit = off
-- A batch names a few thousand events of a table of millions: each must be one probe of the primary key. Knowing
-- the arrays' length, the planner chose to hash the whole table instead (a sequential scan of `events` per
-- batch: 4x slower on 300k events, and growing with the table), so joins other than nested loops are off here.
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    n int := coalesce(cardinality(p_streams), 0);
    categories jsonb;
BEGIN
    IF p_run IS NULL OR p_actor IS NULL OR p_policy IS NULL THEN
        RAISE EXCEPTION 'a retention batch needs a run id, an actor and a policy'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(p_versions), 0) <> n OR coalesce(cardinality(p_replay_free), 0) <> n THEN
        RAISE EXCEPTION 'a retention batch needs one stream, version and replay-free flag per event (got %, %, %)',
            n, coalesce(cardinality(p_versions), 0), coalesce(cardinality(p_replay_free), 0)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > 100000 THEN
        RAISE EXCEPTION 'a retention batch holds at most 100000 events (got %)', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'split the removal into bounded batches, one transaction each';
    END IF;

    -- One probe of the primary key and one of snapshots per stream of the batch, not per event.
    WITH q AS (
        SELECT q.stream_id, q.version, q.replay_free, q.ordinal
        FROM unnest(p_streams, p_versions, p_replay_free) WITH ORDINALITY AS q(stream_id, version, replay_free, ordinal)
    ), streams AS (
        SELECT q.stream_id, min(q.ordinal) AS first_entry,
               (SELECT coalesce(max(e.version), 0) FROM events e WHERE e.stream_id = q.stream_id) AS stream_version,
               (SELECT s.version FROM snapshots s WHERE s.stream_id = q.stream_id) AS snapshot_version
        FROM q
        GROUP BY q.stream_id
    ), checked AS (
        SELECT st.first_entry, q.stream_id, q.version, st.stream_version, st.snapshot_version,
               CASE WHEN q.version > st.stream_version THEN 'beyond_stream'
                    WHEN q.version = st.stream_version THEN 'last_event'
                    WHEN q.replay_free IS TRUE THEN NULL
                    WHEN st.snapshot_version IS NULL THEN 'no_snapshot'
                    WHEN st.snapshot_version < q.version THEN 'above_snapshot'
               END AS reason
        FROM q JOIN streams st ON st.stream_id = q.stream_id
    )
    SELECT c.stream_id, c.version, c.reason,
           CASE c.reason WHEN 'beyond_stream' THEN c.stream_version WHEN 'above_snapshot' THEN c.snapshot_version END
    INTO refused_stream, refused_version, refused_reason, refused_at
    FROM checked c
    WHERE c.reason IS NOT NULL
    ORDER BY c.first_entry, c.version
    LIMIT 1;
    IF refused_reason IS NOT NULL THEN
        removed := 0;
        already_removed := 0;
        RETURN;
    END IF;

    -- What the triggers check, on for the writes below only. (Not a SET clause of the function: PostgreSQL lets
    -- only superusers put a custom setting there.) Transaction-local, so an error also turns it off.
    PERFORM pg_catalog.set_config('composable.retention', 'removing', true);

    -- The audit row first, so that every row of retention_removed has its run.
    INSERT INTO retention_runs AS r (run_id, actor, performed_by, policy, archive, started_at, finished_at, batches,
                                     removed_events, already_removed)
    VALUES (p_run, p_actor, session_user, p_policy, p_archive, now(), now(), 1, 0, 0)
    ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, batches = r.batches + 1;

    WITH gone AS (
        DELETE FROM events e
        USING unnest(p_streams, p_versions) AS q(stream_id, version)
        WHERE e.stream_id = q.stream_id AND e.version = q.version
        RETURNING e.global_position, e.stream_id, e.event_type
    ), kept AS (
        INSERT INTO retention_removed (global_position, stream_id, event_type, run_id)
        SELECT g.global_position, g.stream_id, g.event_type, p_run FROM gone g
        RETURNING retention_removed.global_position, retention_removed.stream_id
    ), per_category AS (
        SELECT split_part(k.stream_id, '-', 1) AS category, count(*) AS events, max(k.global_position) AS greatest
        FROM kept k
        GROUP BY 1
    )
    SELECT coalesce(sum(c.events), 0), max(c.greatest), coalesce(jsonb_object_agg(c.category, c.events), '{}')
    INTO removed, horizon, categories
    FROM per_category c;
    already_removed := n - removed;

    UPDATE retention_runs AS r SET
        removed_events = r.removed_events + removed,
        already_removed = r.already_removed + events_retention_remove.already_removed,
        removed_by_category = (
            SELECT coalesce(jsonb_object_agg(t.key, t.total), '{}')
            FROM (SELECT k.key, sum(k.value::bigint) AS total
                  FROM (SELECT * FROM jsonb_each_text(r.removed_by_category)
                        UNION ALL
                        SELECT * FROM jsonb_each_text(categories)) AS k
                  GROUP BY k.key) AS t),
        horizon = greatest(r.horizon, events_retention_remove.horizon)
    WHERE r.run_id = p_run;
    PERFORM pg_catalog.set_config('composable.retention', '', true);
END;
$$;

-- The greatest global position retention ever removed (NULL: none). Any role may ask: subscriptions of the
-- application compare their checkpoints with it, and the application role needs no privilege on the
-- retention tables for that.
CREATE FUNCTION events_removal_horizon() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
AS $$ SELECT max(global_position) FROM retention_removed $$;

-- How many removed events had a position in (p_after, p_through], of one of `p_types` (empty: any) in a stream
-- starting with `p_prefix` (NULL: any). Any role may ask, for the same reason.
CREATE FUNCTION events_removed_between(p_after bigint, p_through bigint, p_types text[], p_prefix text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT count(*) FROM retention_removed r
    WHERE r.global_position > p_after AND r.global_position <= p_through
      AND (cardinality(p_types) = 0 OR r.event_type = ANY (p_types))
      AND (p_prefix IS NULL OR starts_with(r.stream_id, p_prefix))
$$;

-- The audit rows, oldest first. Any role may read them (who removed what and when is not secret).
CREATE FUNCTION events_retention_runs()
RETURNS TABLE (run_id uuid, actor text, performed_by text, policy text, archive text, started_at timestamptz,
               finished_at timestamptz, batches bigint, removed_events bigint, already_removed bigint,
               removed_by_category jsonb, horizon bigint)
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT r.run_id, r.actor, r.performed_by, r.policy, r.archive, r.started_at, r.finished_at, r.batches,
           r.removed_events, r.already_removed, r.removed_by_category, r.horizon
    FROM retention_runs r
    ORDER BY r.started_at, r.run_id
$$;

-- SECURITY DEFINER functions run with their owner's rights, so names in them must not resolve to objects
-- another role created: pin search_path to the schema that holds `events` (pg_catalog is searched first
-- anyway), with pg_temp last, as PostgreSQL's "Writing SECURITY DEFINER Functions Safely" advises.
DO $$
DECLARE
    home text := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = 'events'::regclass);
BEGIN
    EXECUTE format('ALTER FUNCTION events_retention_remove(uuid, text, text, text, text[], bigint[], boolean[]) '
                   'SET search_path = %I, pg_temp', home);
    EXECUTE format('ALTER FUNCTION events_removal_horizon() SET search_path = %I, pg_temp', home);
    EXECUTE format('ALTER FUNCTION events_removed_between(bigint, bigint, text[], text) SET search_path = %I, pg_temp',
                   home);
    EXECUTE format('ALTER FUNCTION events_retention_runs() SET search_path = %I, pg_temp', home);
END;
$$;

-- New functions are executable by PUBLIC. The removal is not: the owner grants it to a retention role
-- (docs/database-setup.md). This runs in the migration's transaction, so no session ever sees the function
-- callable by everyone.
REVOKE ALL ON FUNCTION events_retention_remove(uuid, text, text, text, text[], bigint[], boolean[]) FROM PUBLIC;
REVOKE ALL ON TABLE retention_runs, retention_removed FROM PUBLIC;
