-- Tags (composable_rust_core::Tag): opaque labels on events that reads by query and append conditions
-- select by, across streams. Existing files are upgraded in place when opened; their events have no tags.
--
-- Each event keeps its tags in order in `events.tags`, joined with U+001F (unit separator), a control
-- character that `Tag::validate` forbids inside a tag; NULL when the event has none. Every read decodes
-- them from the row it already fetches, at no extra lookup.
--
-- `event_tags` indexes them: one row per distinct tag of an event, filled by the store in the append's
-- transaction. A query for a tag after a position is a range scan of its primary key, in position order.
-- WITHOUT ROWID: the primary key is the whole row, stored once.
--
-- Adding a nullable column without a default rewrites no row and fires no trigger, so the append-only
-- triggers of `events` stay as they are.
ALTER TABLE events ADD COLUMN tags TEXT CHECK (tags IS NULL OR length(tags) > 0);

CREATE TABLE event_tags (
    tag             TEXT    NOT NULL,
    global_position INTEGER NOT NULL REFERENCES events (global_position),
    PRIMARY KEY (tag, global_position)
) WITHOUT ROWID;

-- As append-only as the events they index.
CREATE TRIGGER event_tags_reject_update BEFORE UPDATE ON event_tags
BEGIN
    SELECT RAISE(ABORT, 'event tags are append-only: a stored tag cannot be updated');
END;

CREATE TRIGGER event_tags_reject_delete BEFORE DELETE ON event_tags
BEGIN
    SELECT RAISE(ABORT, 'event tags are append-only: a stored tag cannot be deleted');
END;
