-- Helpers for the pgbench scripts, created in the scratch database after the migrations.

-- An event id made from the event's global position (the position in the first 8 bytes, zeros after): unique
-- because positions are, and increasing from one transaction to the next, so the ids of a batch land at the
-- right edge of events_event_id_idx, as the time-ordered ids of EventId::generate() (UUID version 7) do from the
-- store. One expression naming its argument once, so the planner inlines it: about a microsecond per id. The
-- store sends ids made by the client, which the server only parses; an id made on the server must cost as
-- little, or the ceiling is understated (the helper this replaces, a version-7 UUID built from
-- clock_timestamp() in a subquery, cost about 12 microseconds per id on a loaded machine: 12 ms of every
-- 1000-event batch).
CREATE FUNCTION pgbench_event_id(global_position bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
    SELECT (encode(int8send(global_position), 'hex') || '0000000000000000')::uuid
$$;
