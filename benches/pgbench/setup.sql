-- Helpers for the pgbench scripts, created in the scratch database after the migrations.

-- A time-ordered id as EventId::generate() makes them (UUID version 7): the first 48 bits are the Unix time
-- in milliseconds, the rest random, so ids of events appended together land at the right edge of
-- events_event_id_idx as they do from the store.
CREATE FUNCTION pgbench_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_byte(b, 6, (get_byte(b, 6) & 15) | 112), 'hex')::uuid
    FROM (SELECT overlay(uuid_send(gen_random_uuid())
                         PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                         FROM 1 FOR 6) AS b) AS random_with_time
$$;
