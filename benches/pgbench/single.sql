-- One event per transaction, the same columns, indexes and trigger as an append (no version check).
-- Row shape from run.sh: :payload (bytea in hex) and :metadata (1: correlation, causation, actor and extra set;
-- 0: all four NULL).
\set v random(1, 9000000000000000000)
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload,
                    correlation_id, causation_id, actor, extra)
VALUES ('pgbench-' || :client_id, :v, (pg_current_xact_id()::text::bigint << 20) + 1,
        pgbench_event_id((pg_current_xact_id()::text::bigint << 20) + 1),
        'ItemAdded.v1', 'bincode', :payload::bytea,
        CASE WHEN :metadata = 1 THEN gen_random_uuid() END, CASE WHEN :metadata = 1 THEN gen_random_uuid() END,
        CASE WHEN :metadata = 1 THEN 'user-42' END,
        CASE WHEN :metadata = 1 THEN '{"ip":"10.0.0.1","channel":"web"}' END);
