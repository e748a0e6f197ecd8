-- Indexes for the filters of a global-log read (EventLog::read_log, LogFilter), so that each filter is
-- answered from an index, oldest or newest first, instead of a walk over the whole log. Existing files are
-- upgraded in place when they are opened: building the indexes reads the table once.
--
-- Every index below ends in the rowid (SQLite adds it to each entry), which is the global position: an
-- equality on its column is a range scan already in position order, in either direction, so a page stops
-- after LIMIT matches and never sorts. The store picks the statement shape (sqlite/src/sql.rs, `read_log`);
-- the EXPLAIN QUERY PLAN tests there pin each plan. The reasoning, and the cost in bytes per event, are in
-- docs/decisions.md ("Reading the global log: filters, direction, limits") and docs/performance.md.

-- Event types (`event_types`): one range scan per type; several types are merged by SQLite's compound
-- SELECT, still in position order.
CREATE INDEX events_event_type ON events (event_type);

-- Categories (`category`, and a `stream_prefix` that contains the '-' separator): the stream id up to and
-- including its first '-', the text `LogFilter::category` matches. The `(stream_id, version)` index could
-- find a category too, but in stream order: every page would sort the whole category.
CREATE INDEX events_category ON events (substr(stream_id, 1, instr(stream_id, '-')));

-- Correlation ids and actors: partial, so events without one cost nothing.
CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_actor ON events (actor) WHERE actor IS NOT NULL;

-- Recorded times (`recorded_between`): a range scan of the window, sorted by position (the times of
-- imported events need not follow positions).
CREATE INDEX events_recorded_at ON events (recorded_at);
