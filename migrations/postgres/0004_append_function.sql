-- composable-rust event store schema, step 4: a cheaper events_append (PostgreSQL 13 or newer).
--
-- Run by PostgresEventStore::migrate() after 0003 (embedded with sqlx::migrate!), or by hand:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -1 -f migrations/postgres/0004_append_function.sql
-- What it does to an existing database (lock, time, disk): docs/database-setup.md, "Upgrading". It changes
-- no table: it replaces one function, so it takes no lock on `events` and runs in milliseconds.
--
-- Why: 0003's events_append did everything in one large statement (locks through a GROUP BY query, then
-- condition, expectations and insert in one CTE with a window function). Its executor start-up and
-- init-plans cost about twice the work of the append itself: pgbench measured 0.34-0.35 ms per call where
-- the plain append statement takes 0.12 ms (docs/performance.md). This version runs small statements, each
-- planned once per connection: one lock call per tag, one index lookup per condition item, one
-- primary-key probe per stream, one insert. The semantics are those of 0003, argued in docs/decisions.md:
--
-- 1. Locks, taken before anything is read and before a transaction id is assigned (an append that waited
--    gets positions after the one it waited for): transaction-scoped advisory locks in the key space
--    (1952540531 = ASCII 'tags', hashtext(tag)), SHARED for every tag of the appended events
--    (`p_shared`), EXCLUSIVE for one tag of each condition item (`p_exclusive`; a matching event carries all
--    of the item's tags). The client sends each tag once, in one list only (exclusive wins). One lock needs
--    no ordering; several are taken in ascending key order, so appends never deadlock on them.
-- 2. The condition, on a snapshot taken once the locks are held (each statement of a VOLATILE function
--    takes its own in READ COMMITTED): the first event matching an item after `p_after`
--    (`p_condition_tags`, `p_condition_types`: one entry per item, tags and types each joined with U+001F;
--    empty types: any type).
-- 3. Each stream's expectation (`p_modes`: any, exists or exact with `p_expected`).
-- 4. The insert. The client sends the events sorted by stream id (byte order), so two atomic appends to
--    the same streams wait for each other's versions in one order rather than deadlocking: `p_stream` is
--    the 1-based stream of each event, `p_offset` its 1-based place in its stream, `p_ordinal` its 1-based
--    place in the append (its position is (xid << 20) + ordinal), tags joined with U+001F (NULL: none).
--
-- Returns one row: `condition_position` when the condition failed; `refused_stream` (1-based) when an
-- expectation failed; `versions`, the streams' versions before the append; `first_position` when written.
-- A version taken by a concurrent writer or a stored event id is a unique violation (23505) raised by the
-- INSERT, as for the plain append statements.
DROP FUNCTION events_append(text[], text[], bigint[], int[], uuid[], text[], text[], bytea[], uuid[], uuid[],
                            text[], text[], text[], text[], text[], text[], text[], bigint);

CREATE FUNCTION events_append(
    p_streams text[], p_modes text[], p_expected bigint[],
    p_stream int[], p_offset int[], p_ordinal int[], p_ids uuid[], p_types text[], p_codecs text[],
    p_payloads bytea[], p_correlation_ids uuid[], p_causation_ids uuid[], p_actors text[], p_extras text[],
    p_tags text[], p_shared text[], p_exclusive text[], p_condition_tags text[], p_condition_types text[],
    p_after bigint,
    OUT condition_position bigint, OUT refused_stream int, OUT versions bigint[], OUT first_position bigint)
LANGUAGE plpgsql VOLATILE
-- Every statement here has one good plan whatever the values (a tag lookup in events_tags_idx, primary key
-- probes, an insert); planning them anew per call, the default for the first calls, costs more than running
-- them. The tag lookup keeps its index under a generic plan: tested in postgres/tests/dcb.rs.
SET plan_cache_mode = force_generic_plan
-- A JIT compilation costs tens of milliseconds; these statements run in tens of microseconds. 0003's single
-- statement was estimated dear enough on a 1.5M-event table to be compiled at every call (42 appends/s).
SET jit = off
AS $$
DECLARE
    n_shared int := coalesce(cardinality(p_shared), 0);
    n_exclusive int := coalesce(cardinality(p_exclusive), 0);
    k record;
    i int;
    found bigint;
    version bigint;
BEGIN
    IF n_shared + n_exclusive = 1 THEN
        -- The common case (one tag, or a claim of the one tag the event carries) needs no ordering.
        IF n_exclusive = 1 THEN
            PERFORM pg_advisory_xact_lock(1952540531, hashtext(p_exclusive[1]));
        ELSE
            PERFORM pg_advisory_xact_lock_shared(1952540531, hashtext(p_shared[1]));
        END IF;
    ELSIF n_shared + n_exclusive > 1 THEN
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

    FOR i IN 1 .. coalesce(cardinality(p_condition_tags), 0) LOOP
        -- OFFSET 0 keeps min() from becoming a walk along global positions in order (hoping to meet a match
        -- early): the tags are looked up in events_tags_idx instead.
        SELECT min(m.global_position) INTO found
        FROM (SELECT e.global_position FROM events e
              WHERE e.tags @> string_to_array(p_condition_tags[i], E'\x1f')
                AND (p_condition_types[i] = ''
                     OR e.event_type = ANY (string_to_array(p_condition_types[i], E'\x1f')))
                AND e.global_position > p_after
              OFFSET 0) AS m;
        IF found < condition_position OR (found IS NOT NULL AND condition_position IS NULL) THEN
            condition_position := found;
        END IF;
    END LOOP;
    IF condition_position IS NOT NULL THEN
        RETURN;
    END IF;

    versions := '{}';
    FOR i IN 1 .. cardinality(p_streams) LOOP
        SELECT COALESCE(max(e.version), 0) INTO version FROM events e WHERE e.stream_id = p_streams[i];
        versions := versions || version;
        IF refused_stream IS NULL
           AND (CASE p_modes[i] WHEN 'any' THEN false
                                WHEN 'exists' THEN version = 0
                                ELSE version <> p_expected[i] END) THEN
            refused_stream := i;
        END IF;
    END LOOP;
    IF refused_stream IS NOT NULL THEN
        RETURN;
    END IF;

    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra, tags)
    SELECT p_streams[e.stream], versions[e.stream] + e.stream_offset,
           (pg_current_xact_id()::text::bigint << 20) + e.ordinal, e.event_id, e.event_type, e.codec,
           e.payload, e.correlation_id, e.causation_id, e.actor, e.extra, string_to_array(e.tags, E'\x1f')
    FROM unnest(p_stream, p_offset, p_ordinal, p_ids, p_types, p_codecs, p_payloads, p_correlation_ids,
                p_causation_ids, p_actors, p_extras, p_tags)
         AS e(stream, stream_offset, ordinal, event_id, event_type, codec, payload, correlation_id,
              causation_id, actor, extra, tags);
    first_position := (pg_current_xact_id()::text::bigint << 20) + 1;
END;
$$;

-- The common conditional append, with scalar parameters: one stream, one event, at most one tag to lock
-- (`p_lock`, exclusive when `p_lock_exclusive`) and at most one condition item (`p_condition_tags`, NULL for
-- no condition; `p_condition_types`, empty for any type). The same steps and the same result columns as
-- events_append, without its arrays, loops and unnest: claiming a name, the most frequent conditional
-- append, costs about a third less on the server (docs/performance.md).
CREATE FUNCTION events_append_one(
    p_stream text, p_mode text, p_expected bigint,
    p_id uuid, p_type text, p_codec text, p_payload bytea, p_correlation_id uuid, p_causation_id uuid,
    p_actor text, p_extra text, p_tags text[],
    p_lock text, p_lock_exclusive boolean, p_condition_tags text[], p_condition_types text[], p_after bigint,
    OUT condition_position bigint, OUT refused_stream int, OUT versions bigint[], OUT first_position bigint)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    version bigint;
BEGIN
    IF p_lock IS NOT NULL THEN
        IF p_lock_exclusive THEN
            PERFORM pg_advisory_xact_lock(1952540531, hashtext(p_lock));
        ELSE
            PERFORM pg_advisory_xact_lock_shared(1952540531, hashtext(p_lock));
        END IF;
    END IF;

    IF p_condition_tags IS NOT NULL THEN
        SELECT min(m.global_position) INTO condition_position
        FROM (SELECT e.global_position FROM events e
              WHERE e.tags @> p_condition_tags
                AND (cardinality(p_condition_types) = 0 OR e.event_type = ANY (p_condition_types))
                AND e.global_position > p_after
              OFFSET 0) AS m;
        IF condition_position IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;

    SELECT COALESCE(max(e.version), 0) INTO version FROM events e WHERE e.stream_id = p_stream;
    versions := ARRAY[version];
    IF (CASE p_mode WHEN 'any' THEN false WHEN 'exists' THEN version = 0 ELSE version <> p_expected END) THEN
        refused_stream := 1;
        RETURN;
    END IF;

    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra, tags)
    VALUES (p_stream, version + 1, (pg_current_xact_id()::text::bigint << 20) + 1, p_id, p_type, p_codec,
            p_payload, p_correlation_id, p_causation_id, p_actor, p_extra, p_tags)
    RETURNING global_position INTO first_position;
END;
$$;
