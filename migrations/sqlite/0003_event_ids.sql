-- Every event has an id (composable_rust_core::EventId, a UUID), unique in the whole store: appends are
-- idempotent by event id and `load_event` finds an event by its id. Existing files are upgraded in place
-- when they are opened: their events get new random ids below.
--
-- The id is a 16-byte BLOB, like correlation_id and causation_id: the text form would take 36 bytes, and
-- the id is stored twice (in the row and in the unique index), so text would cost 40 more bytes per
-- event and compare more slowly.
--
-- SQLite adds a NOT NULL column to an existing table only with a constant default, and checks the new
-- column's CHECK against the rows already there. The nil UUID is that default: it stands for the old rows
-- until the backfill below replaces it, and passes the check. The store always writes an id; a row
-- inserted by hand without one gets the nil id, and the unique index refuses a second such row.

-- The append-only trigger refuses the backfill's UPDATE; it is recreated, unchanged, once every row has
-- its id. sqlx runs this file in one transaction, so no other connection sees the table without it.
DROP TRIGGER events_reject_update;

ALTER TABLE events ADD COLUMN event_id BLOB NOT NULL DEFAULT x'00000000000000000000000000000000'
    CHECK (typeof(event_id) = 'blob' AND length(event_id) = 16);

-- A random UUID (version 4) per existing event: 122 random bits from randomblob(), with the version
-- nibble set to 4 and the variant bits to 10. Each call is evaluated per row.
UPDATE events SET event_id = unhex(
    hex(randomblob(6))                            -- bytes 0-5: 48 random bits
    || '4' || substr(hex(randomblob(2)), 2)       -- bytes 6-7: version 4, then 12 random bits
    || substr('89AB', 1 + abs(random() % 4), 1)   -- byte 8, high half: variant 10, then 2 random bits
    || substr(hex(randomblob(8)), 2)              -- byte 8, low half, and bytes 9-15: 60 random bits
);

-- The lookup behind `load_event` and idempotent appends, and the uniqueness guarantee.
CREATE UNIQUE INDEX events_event_id ON events (event_id);

CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a stored event cannot be updated');
END;
