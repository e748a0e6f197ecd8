\set v random(1, 9000000000000000000)
WITH head AS (
    SELECT COALESCE(MAX(version), 0) AS version FROM events WHERE stream_id = 'a-' || (:v)::bigint
), appended AS (
    INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                        correlation_id, causation_id, actor, extra)
    SELECT 'a-' || (:v)::bigint, head.version + e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
           e.event_id, e.event_type, e.codec, e.payload, e.correlation_id, e.causation_id, e.actor, e.extra
    FROM head,
         UNNEST(ARRAY[gen_random_uuid()], ARRAY['UsernameClaimed.v1'], ARRAY['bincode'], ARRAY['\x070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707'::bytea], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::text], ARRAY[NULL::text])
             WITH ORDINALITY
             AS e(event_id, event_type, codec, payload, correlation_id, causation_id, actor, extra, ordinal)
    WHERE CASE 'exact'::text
              WHEN 'any' THEN true
              WHEN 'exists' THEN head.version > 0
              ELSE head.version = 0::bigint
          END
    RETURNING global_position
)
SELECT (SELECT version FROM head), COUNT(*), MIN(global_position) FROM appended;
