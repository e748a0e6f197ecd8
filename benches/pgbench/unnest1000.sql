-- 1000 events in one UNNEST INSERT, the same table shape as an append (arrays built on the server, so this is
-- an upper bound: the client sends no payload bytes).
\set v random(1, 9000000000000)
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                    correlation_id, causation_id, actor, extra)
SELECT 'pgbench-' || :client_id || '-' || :v, e.ordinal, (pg_current_xact_id()::text::bigint << 20) + e.ordinal,
       pgbench_uuid_v7(), e.event_type, e.codec, e.payload, gen_random_uuid(), gen_random_uuid(), e.actor, e.extra
FROM UNNEST(array_fill('ItemAdded.v1'::text, ARRAY[1000]), array_fill('bincode'::text, ARRAY[1000]),
            array_fill('\x0000000c534b552d30303030303030310306ce0f'::bytea, ARRAY[1000]),
            array_fill('user-42'::text, ARRAY[1000]), array_fill('{"ip":"10.0.0.1","channel":"web"}'::text, ARRAY[1000]))
     WITH ORDINALITY AS e(event_type, codec, payload, actor, extra, ordinal);
