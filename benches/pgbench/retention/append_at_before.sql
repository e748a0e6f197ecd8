\set v random(1, 9000000000000000000)
WITH appended AS (
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT 't-' || (:v)::bigint, 0::bigint + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_id, e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM UNNEST(ARRAY[gen_random_uuid()], ARRAY['OrderPlaced.v1'], ARRAY['bincode'], ARRAY['\x070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707'::bytea], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::text], ARRAY[NULL::text])
             WITH ORDINALITY
             AS e(event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE 0::bigint = 0 OR EXISTS (SELECT 1 FROM events WHERE stream_id = 't-' || (:v)::bigint AND version = 0::bigint)
    RETURNING global_position
)
SELECT 0::bigint, COUNT(*), MIN(global_position) FROM appended;
