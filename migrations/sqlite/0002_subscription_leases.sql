-- Subscription leases: at most one running instance per handler name across processes.
--
-- A subscription takes its handler's row when it is free or expired, renews it between pages and deletes
-- it when it stops. A process that dies leaves the row to expire (SqliteEventStore's lease TTL, 30 s), after
-- which a standby instance takes over from the handler's checkpoint.
CREATE TABLE subscription_leases (
    handler    TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL, -- a random id of the holding instance
    expires_at INTEGER NOT NULL  -- microseconds since the Unix epoch, UTC
) WITHOUT ROWID;
