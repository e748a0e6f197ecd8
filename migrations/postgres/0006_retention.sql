-- composable-rust event store schema, step 6: retention with least privilege (PostgreSQL 13 or newer).
--
-- Run by PostgresEventStore::migrate() after 0004/0005 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0006_retention.sql
-- Run it as the role that owns `events` (the one that ran 0001): the removal function below runs with the
-- rights of its owner. What it does to an existing database, and the roles to set up afterwards:
-- docs/database-setup.md ("Retention"); the argument: docs/decisions.md ("Retention on PostgreSQL").
--
-- The log stays append-only for the application. Events leave it only through events_retention_remove, a
-- SECURITY DEFINER function that nobody may call until the owner grants EXECUTE to a retention role:
--
-- * the application role has SELECT and INSERT on `events` and no EXECUTE on the function: its DELETE,
--   UPDATE and TRUNCATE are refused by privileges, and its call of the function too;
-- * the trigger events_append_only refuses UPDATE and TRUNCATE for every role, and DELETE unless it runs
--   inside events_retention_remove: as the table's owner (the function's owner) with the transaction-local
--   setting composable.retention, which only the function's SET clause turns on. A role that was granted
--   DELETE by mistake (GRANT ALL) is still refused: it is not the owner, whatever it sets;
-- * the function refuses to remove the last event of a stream (so the stream's version and every
--   ExpectedVersion check survive), and an event above the stream's snapshot unless the caller declares the
--   stream's category replay-free (an audit log); it records who (session_user), when, the policy, the counts
--   and the removal horizon in retention_runs, in the same transaction as the removal.

-- One row per retention run (`retention apply`). Each batch of a run is one call of events_retention_remove,
-- one transaction, and adds its counts here in that transaction, so the row always says exactly what is gone,
-- also when a run stops half-way.
CREATE TABLE retention_runs (
    run_id          UUID        PRIMARY KEY,
    -- The role that logged in (session_user), not the function's owner.
    performed_by    TEXT        NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    -- The policy as the caller describes it (recorded, never interpreted here).
    policy          TEXT        NOT NULL,
    batches         BIGINT      NOT NULL CHECK (batches > 0),
    removed_events  BIGINT      NOT NULL CHECK (removed_events >= 0),
    -- Events removed per stream category (the part of the stream id before the first '-').
    removed_by_category JSONB   NOT NULL DEFAULT '{}',
    -- The greatest global position this run removed; NULL when it removed nothing.
    horizon         BIGINT      CHECK (horizon > 0)
);

-- The removal horizon of the store is max(horizon): a subscription whose checkpoint lies below it has missed
-- events for good.
CREATE INDEX retention_runs_horizon_idx ON retention_runs (horizon) WHERE horizon IS NOT NULL;

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

-- Removes one batch of events, given as parallel arrays (one entry per event): `p_streams`, `p_versions`, and
-- `p_replay_free`, whether the event's stream belongs to a category declared replay-free. `p_run` names the
-- run (its audit row), `p_policy` describes the policy. At most 100000 events per call: a batch is one
-- transaction, and a bounded one keeps locks, WAL bursts and replication lag small.
--
-- Refuses the whole batch (SQLSTATE 23514, check_violation; nothing removed) when an event is the last one of
-- its stream, or lies above the stream's snapshot (a missing snapshot counts as version 0) while its stream is
-- not replay-free: removing it would leave an aggregate that cannot be rebuilt. The caller's plan never asks
-- for either; a refusal means the store changed since the plan (a snapshot was deleted), so plan again.
-- Events already gone (a batch retried after a lost connection) are skipped, not counted.
--
-- Returns how many events it removed and the greatest global position among them (NULL when none).
CREATE FUNCTION events_retention_remove(
    p_run uuid, p_policy text, p_streams text[], p_versions bigint[], p_replay_free boolean[],
    OUT removed bigint, OUT horizon bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
-- Turned on for the duration of the call only (restored on return and on error): what the trigger checks.
SET composable.retention = 'removing'
SET jit = off
AS $$
DECLARE
    n int := coalesce(cardinality(p_streams), 0);
    refused record;
    categories jsonb;
BEGIN
    IF p_run IS NULL OR p_policy IS NULL THEN
        RAISE EXCEPTION 'a retention batch needs a run id and a policy' USING ERRCODE = 'invalid_parameter_value';
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

    SELECT r.stream_id, r.version, r.last, r.snapshot INTO refused
    FROM (
        SELECT q.stream_id, q.version, q.replay_free,
               (SELECT max(e.version) FROM events e WHERE e.stream_id = q.stream_id) AS last,
               (SELECT s.version FROM snapshots s WHERE s.stream_id = q.stream_id) AS snapshot
        FROM unnest(p_streams, p_versions, p_replay_free) AS q(stream_id, version, replay_free)
    ) AS r
    WHERE r.version >= r.last
       OR (r.replay_free IS NOT TRUE AND r.version > coalesce(r.snapshot, 0) AND r.version < r.last)
    LIMIT 1;
    IF FOUND THEN
        IF refused.version >= refused.last THEN
            RAISE EXCEPTION 'retention refused to remove version % of stream %: it is the stream''s last event',
                refused.version, refused.stream_id
                USING ERRCODE = 'check_violation',
                      HINT = 'the last event of a stream always stays, so that its version survives; plan again';
        END IF;
        RAISE EXCEPTION 'retention refused to remove version % of stream %: its snapshot is at version %',
            refused.version, refused.stream_id, coalesce(refused.snapshot, 0)
            USING ERRCODE = 'check_violation',
                  HINT = 'events above a stream''s snapshot stay unless its category is replay-free; plan again';
    END IF;

    WITH gone AS (
        DELETE FROM events e
        USING unnest(p_streams, p_versions) AS q(stream_id, version)
        WHERE e.stream_id = q.stream_id AND e.version = q.version
        RETURNING e.stream_id, e.global_position
    ), per_category AS (
        SELECT split_part(g.stream_id, '-', 1) AS category, count(*) AS n, max(g.global_position) AS horizon
        FROM gone g
        GROUP BY 1
    )
    SELECT coalesce(sum(c.n), 0), max(c.horizon), coalesce(jsonb_object_agg(c.category, c.n), '{}')
    INTO removed, horizon, categories
    FROM per_category c;

    INSERT INTO retention_runs AS r (run_id, performed_by, started_at, finished_at, policy, batches,
                                     removed_events, removed_by_category, horizon)
    VALUES (p_run, session_user, now(), now(), p_policy, 1, removed, categories, horizon)
    ON CONFLICT (run_id) DO UPDATE SET
        finished_at = excluded.finished_at,
        batches = r.batches + 1,
        removed_events = r.removed_events + excluded.removed_events,
        removed_by_category = (
            SELECT coalesce(jsonb_object_agg(k.key, k.n), '{}')
            FROM (SELECT t.key, sum(t.value::bigint) AS n
                  FROM (SELECT * FROM jsonb_each_text(r.removed_by_category)
                        UNION ALL
                        SELECT * FROM jsonb_each_text(excluded.removed_by_category)) AS t
                  GROUP BY t.key) AS k),
        horizon = greatest(r.horizon, excluded.horizon);
END;
$$;

-- The greatest global position retention ever removed (NULL: none). Any role may ask: subscriptions of the
-- application compare their checkpoints with it, and the application role needs no privilege on
-- retention_runs for that.
CREATE FUNCTION events_removal_horizon() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
AS $$ SELECT max(horizon) FROM retention_runs $$;

-- The audit rows, oldest first. Any role may read them (who removed what and when is not secret).
CREATE FUNCTION events_retention_runs()
RETURNS TABLE (run_id uuid, performed_by text, started_at timestamptz, finished_at timestamptz, policy text,
               batches bigint, removed_events bigint, removed_by_category jsonb, horizon bigint)
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT r.run_id, r.performed_by, r.started_at, r.finished_at, r.policy, r.batches, r.removed_events,
           r.removed_by_category, r.horizon
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
    EXECUTE format('ALTER FUNCTION events_retention_remove(uuid, text, text[], bigint[], boolean[]) '
                   'SET search_path = %I, pg_temp', home);
    EXECUTE format('ALTER FUNCTION events_removal_horizon() SET search_path = %I, pg_temp', home);
    EXECUTE format('ALTER FUNCTION events_retention_runs() SET search_path = %I, pg_temp', home);
END;
$$;

-- New functions are executable by PUBLIC. The removal is not: the owner grants it to a retention role
-- (docs/database-setup.md). This runs in the migration's transaction, so no session ever sees the function
-- callable by everyone.
REVOKE ALL ON FUNCTION events_retention_remove(uuid, text, text[], bigint[], boolean[]) FROM PUBLIC;
REVOKE ALL ON TABLE retention_runs FROM PUBLIC;
