\set v random(1, 9000000000000000000)
INSERT INTO events (stream_id, version, global_position, event_id, event_type, codec, payload, tags)
VALUES ('i-' || (:v)::bigint, 1, (pg_current_xact_id()::text::bigint << 20) + 1, gen_random_uuid(), 'UsernameClaimed.v1', 'bincode', '\x070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707'::bytea, NULL);
