-- The audit trail (doorward_core::audit): one row per event, ids increasing with insertion;
-- deleted past the retention by the purge. No secret is ever written here.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    address   TEXT,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_user ON events (user_id, id) WHERE user_id IS NOT NULL;
