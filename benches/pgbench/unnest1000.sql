-- 1000 events in one UNNEST INSERT, the same table shape as an append (arrays built on the server, so this is
-- an upper bound: the client sends the payload once, not 1000 times). Row shape from run.sh: :payload (bytea in
-- hex) and :metadata (1: correlation, causation, actor and extra set; 0: all four NULL).
\set v random(1, 9000000000000)
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                    correlation_id, causation_id, actor, extra)
SELECT 'pgbench-' || :client_id || '-' || :v, e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
       pgbench_event_id((pg_current_xact_id()::text::bigint << 20) + e.ordinal), e.event_type, e.codec, e.payload,
       CASE WHEN :metadata = 1 THEN gen_random_uuid() END, CASE WHEN :metadata = 1 THEN gen_random_uuid() END,
       CASE WHEN :metadata = 1 THEN 'user-42' END, CASE WHEN :metadata = 1 THEN '{"ip":"10.0.0.1","channel":"web"}' END
FROM UNNEST(array_fill('ItemAdded.v1'::text, ARRAY[1000]), array_fill('bincode'::text, ARRAY[1000]),
            array_fill(:payload::bytea, ARRAY[1000]))
     WITH ORDINALITY AS e(event_type, codec, payload, ordinal);
