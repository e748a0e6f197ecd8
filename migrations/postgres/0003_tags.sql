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
-- present). Partial: untagged events are not in the index.
CREATE INDEX events_tags_idx ON events USING gin (tags) WHERE tags IS NOT NULL;

-- Appends of tagged events and atomic appends, in one round trip (see postgres/src/sql.rs, APPEND_LOCKED,
-- and the PostgreSQL section of docs/decisions.md):
--
-- 1. Takes transaction-scoped advisory locks in the key space (1952540531 = ASCII 'tags', hashtext(tag))
--    (the two-int form, which never meets the one-bigint keys of subscription leases): SHARED for every tag
--    of the appended events, EXCLUSIVE for the smallest tag of each condition item (a matching event carries
--    all of the item's tags), one lock per key (exclusive wins), in ascending key order (no deadlocks among
--    appends). They are held until commit. No transaction id is assigned before they are held, so an append
--    that waited gets its positions after the one it waited for.
-- 2. Checks the condition: the first event matching an item (`p_condition_tags`, `p_condition_types`: one
--    entry per item, tags and types each joined with U+001F; empty types: any type) after `p_after`. Each
--    statement of a VOLATILE function sees a snapshot taken when the statement starts, so this one sees
--    every commit made before the locks were granted.
-- 3. Checks each stream's expectation (`p_modes`: any, exists or exact with `p_expected`).
-- 4. Inserts every event (`p_stream` is the 1-based stream of each event, tags joined with U+001F, NULL
--    for none); event n of the append gets position (xid << 20) + n.
--
-- Returns one row: `condition_position` when the condition failed; `refused_stream` (1-based) when an
-- expectation failed, with `versions` the streams' versions; otherwise `first_position` and `versions`
-- (before the append). A version taken by a concurrent writer or a stored event id is a unique violation
-- (23505) raised by the INSERT, as for the plain append statement.
CREATE FUNCTION events_append(
    p_streams text[], p_modes text[], p_expected bigint[],
    p_stream int[], p_ids uuid[], p_types text[], p_codecs text[], p_payloads bytea[],
    p_correlation_ids uuid[], p_causation_ids uuid[], p_actors text[], p_extras text[], p_tags text[],
    p_condition_tags text[], p_condition_types text[], p_after bigint,
    OUT condition_position bigint, OUT refused_stream int, OUT versions bigint[], OUT first_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k record;
    base bigint;
BEGIN
    FOR k IN
        SELECT w.key, bool_or(w.exclusive) AS exclusive
        FROM (
            SELECT hashtext(t.tag) AS key, false AS exclusive
            FROM unnest(p_tags) AS e(tags), unnest(string_to_array(e.tags, E'\x1f')) AS t(tag)
            UNION ALL
            SELECT hashtext((SELECT min(t.tag) FROM unnest(string_to_array(c.tags, E'\x1f')) AS t(tag))), true
            FROM unnest(p_condition_tags) AS c(tags)
        ) AS w
        WHERE w.key IS NOT NULL
        GROUP BY w.key
        ORDER BY w.key
    LOOP
        IF k.exclusive THEN
            PERFORM pg_advisory_xact_lock(1952540531, k.key);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(1952540531, k.key);
        END IF;
    END LOOP;

    IF cardinality(p_condition_tags) > 0 THEN
        -- No ORDER BY ... LIMIT per item: the planner would then scan global positions in order, hoping
        -- to meet a match early, instead of looking the tags up in events_tags_idx.
        SELECT min(m.global_position) INTO condition_position
        FROM unnest(p_condition_tags, p_condition_types) AS c(tags, types),
             LATERAL (
                 SELECT e.global_position FROM events e
                 WHERE e.tags @> string_to_array(c.tags, E'\x1f')
                   AND (c.types = '' OR e.event_type = ANY (string_to_array(c.types, E'\x1f')))
                   AND e.global_position > p_after
             ) AS m;
        IF condition_position IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;

    SELECT array_agg((SELECT COALESCE(MAX(e.version), 0) FROM events e WHERE e.stream_id = s.stream_id)
                     ORDER BY s.n)
    INTO versions
    FROM unnest(p_streams) WITH ORDINALITY AS s(stream_id, n);

    SELECT min(s.n) INTO refused_stream
    FROM unnest(p_modes, p_expected) WITH ORDINALITY AS s(mode, expected, n)
    WHERE CASE s.mode
              WHEN 'any' THEN false
              WHEN 'exists' THEN versions[s.n] = 0
              ELSE versions[s.n] <> s.expected
          END;
    IF refused_stream IS NOT NULL THEN
        RETURN;
    END IF;

    base := pg_current_xact_id()::text::bigint << 20;
    -- Rows go in stream order, so two atomic appends to the same streams wait for each other's versions
    -- in one order rather than deadlocking.
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra, tags)
    SELECT p_streams[e.stream],
           versions[e.stream] + row_number() OVER (PARTITION BY e.stream ORDER BY e.ordinal),
           base + e.ordinal, e.event_id, e.event_type, e.codec, e.payload, e.correlation_id,
           e.causation_id, e.actor, e.extra, string_to_array(e.tags, E'\x1f')
    FROM unnest(p_stream, p_ids, p_types, p_codecs, p_payloads, p_correlation_ids, p_causation_ids,
                p_actors, p_extras, p_tags) WITH ORDINALITY
             AS e(stream, event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra,
                  tags, ordinal)
    ORDER BY p_streams[e.stream] COLLATE "C", e.ordinal;
    first_position := base + 1;
END;
$$;
