-- composable-rust event store schema, step 3: tags, reads by query and conditional, multi-stream appends
-- (PostgreSQL 13 or newer).
--
-- Run by PostgresEventStore::migrate() after 0002 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0003_tags.sql
-- What it does to an existing database (lock, time, disk): docs/database-setup.md, "Upgrading".

-- The event's tags, in the order they were appended; NULL when it has none, so untagged events cost
-- nothing (no rewrite of existing rows: a column without a default is added in the catalog only).
-- Tags are 1 to 255 bytes without control characters (checked by the client, Tag::validate).
ALTER TABLE events ADD COLUMN tags TEXT[];

-- Reads by query and append conditions select events by tag (`tags @> ARRAY[...]`, an item's tags all
-- present). Partial: untagged events are not in the index. Without the pending list (fastupdate), each
-- insert updates the index at once: with it, inserts are a little cheaper but every lookup scans the
-- whole pending list (up to 4 MB), which made a conditional append several times slower.
CREATE INDEX events_tags_idx ON events USING gin (tags) WITH (fastupdate = off) WHERE tags IS NOT NULL;

-- Appends of tagged events and atomic appends, in one round trip (see postgres/src/sql.rs, APPEND_LOCKED,
-- and the PostgreSQL section of docs/decisions.md). Two statements:
--
-- 1. Only when there are tags: takes transaction-scoped advisory locks in the key space
--    (1952540531 = ASCII 'tags', hashtext(tag)) (the two-int form, which never meets the one-bigint keys of
--    subscription leases): SHARED for every tag of the appended events (`p_shared`), EXCLUSIVE for one tag of
--    each condition item (`p_exclusive`; a matching event carries all of the item's tags), one lock per key
--    (exclusive wins), in ascending key order (no deadlocks among appends). They are held until commit. No
--    transaction id is assigned before they are held, so an append that waited gets its positions after
--    the one it waited for.
-- 2. On a snapshot taken when the locks are held (each statement of a VOLATILE function takes its own in
--    READ COMMITTED), checks the condition, then each stream's expectation, and inserts every event if both
--    hold. The condition is the first event matching an item after `p_after` (`p_condition_tags`,
--    `p_condition_types`: one entry per item, tags and types each joined with U+001F; empty types: any
--    type). Expectations: `p_modes` any, exists or exact (with `p_expected`). Events: `p_stream` is the
--    1-based stream of each, tags joined with U+001F (NULL for none); event n of the append gets position
--    (xid << 20) + n. Rows go in stream order, so two atomic appends to the same streams wait for each
--    other's versions in one order rather than deadlocking.
--
-- Returns one row: `condition_position` when the condition failed; `refused_stream` (1-based) when an
-- expectation failed; `versions`, the streams' versions before the append; `first_position` when written.
-- A version taken by a concurrent writer or a stored event id is a unique violation (23505) raised by the
-- INSERT, as for the plain append statement.
CREATE FUNCTION events_append(
    p_streams text[], p_modes text[], p_expected bigint[],
    p_stream int[], p_ids uuid[], p_types text[], p_codecs text[], p_payloads bytea[],
    p_correlation_ids uuid[], p_causation_ids uuid[], p_actors text[], p_extras text[], p_tags text[],
    p_shared text[], p_exclusive text[], p_condition_tags text[], p_condition_types text[], p_after bigint,
    OUT condition_position bigint, OUT refused_stream int, OUT versions bigint[], OUT first_position bigint)
LANGUAGE plpgsql VOLATILE
-- The statements' plans do not depend on the values (a lateral tag lookup, primary key probes, an insert),
-- and planning the large statement anew at every call (the default for the first calls and whenever the
-- generic plan looks dearer than the custom ones) cost several times the execution.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    k record;
BEGIN
    IF cardinality(p_shared) > 0 OR cardinality(p_exclusive) > 0 THEN
        FOR k IN
            SELECT hashtext(w.tag) AS key, bool_or(w.exclusive) AS exclusive
            FROM (SELECT unnest(p_shared), false UNION ALL SELECT unnest(p_exclusive), true) AS w(tag, exclusive)
            GROUP BY 1
            ORDER BY 1
        LOOP
            IF k.exclusive THEN
                PERFORM pg_advisory_xact_lock(1952540531, k.key);
            ELSE
                PERFORM pg_advisory_xact_lock_shared(1952540531, k.key);
            END IF;
        END LOOP;
    END IF;

    WITH streams AS MATERIALIZED (
        SELECT s.n, s.mode, s.expected,
               (SELECT COALESCE(MAX(e.version), 0) FROM events e WHERE e.stream_id = s.stream_id) AS version
        FROM unnest(p_streams, p_modes, p_expected) WITH ORDINALITY AS s(stream_id, mode, expected, n)
    ), checked AS (
        SELECT
            -- No ORDER BY ... LIMIT per item: the planner would then walk global positions in order,
            -- hoping to meet a match early, instead of looking the tags up in events_tags_idx.
            (SELECT min(m.global_position)
             FROM unnest(p_condition_tags, p_condition_types) AS c(tags, types),
                  LATERAL (
                      SELECT e.global_position FROM events e
                      WHERE e.tags @> string_to_array(c.tags, E'\x1f')
                        AND (c.types = '' OR e.event_type = ANY (string_to_array(c.types, E'\x1f')))
                        AND e.global_position > p_after
                  ) AS m) AS conflict,
            min(s.n) FILTER (WHERE CASE s.mode
                                       WHEN 'any' THEN false
                                       WHEN 'exists' THEN s.version = 0
                                       ELSE s.version <> s.expected
                                   END)::int AS refused,
            array_agg(s.version ORDER BY s.n) AS versions
        FROM streams s
    ), appended AS (
        INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                            correlation_id, causation_id, actor, extra, tags)
        SELECT p_streams[e.stream],
               checked.versions[e.stream] + row_number() OVER (PARTITION BY e.stream ORDER BY e.ordinal),
               (pg_current_xact_id()::text::bigint << 20) + e.ordinal, e.event_id, e.event_type, e.codec,
               e.payload, e.correlation_id, e.causation_id, e.actor, e.extra, string_to_array(e.tags, E'\x1f')
        FROM checked,
             unnest(p_stream, p_ids, p_types, p_codecs, p_payloads, p_correlation_ids, p_causation_ids,
                    p_actors, p_extras, p_tags) WITH ORDINALITY
                 AS e(stream, event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra,
                      tags, ordinal)
        WHERE checked.conflict IS NULL AND checked.refused IS NULL
        ORDER BY p_streams[e.stream] COLLATE "C", e.ordinal
        RETURNING global_position
    )
    SELECT checked.conflict, checked.refused, checked.versions, (SELECT min(global_position) FROM appended)
    INTO condition_position, refused_stream, versions, first_position
    FROM checked;
END;
$$;
