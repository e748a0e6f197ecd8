-- One event per transaction, the same columns, indexes and trigger as an append (no version check).
\set v random(1, 9000000000000000000)
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                    correlation_id, causation_id, actor, extra)
VALUES ('pgbench-' || :client_id, :v, (pg_current_xact_id()::text::bigint << 20) + 1, pgbench_uuid_v7(),
        'ItemAdded.v1', 'bincode',
        '\x0000000c534b552d30303030303030310306ce0f'::bytea, gen_random_uuid(), gen_random_uuid(), 'user-42',
        '{"ip":"10.0.0.1","channel":"web"}');
