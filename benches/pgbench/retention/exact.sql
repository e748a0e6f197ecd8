\set s random(1, :streams)
SELECT max(version) AS at FROM events WHERE stream_id = 'order-' || :s \gset
WITH appended AS (
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT 'order-' || :s, :at::bigint + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_id, e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM UNNEST(ARRAY[gen_random_uuid()], ARRAY['OrderShipped.v1'], ARRAY['bincode'], ARRAY['\x070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707'::bytea], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::text], ARRAY[NULL::text])
             WITH ORDINALITY
             AS e(event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE (SELECT MAX(version) FROM events WHERE stream_id = 'order-' || :s) IS NOT DISTINCT FROM NULLIF(:at::bigint, 0)
    RETURNING global_position
)
SELECT :at::bigint, COUNT(*), MIN(global_position) FROM appended;
