-- Failure counters of the sign-in and client-authentication throttle (doorward-core
-- `throttle`): one row per key (a digest of a username or an address, or a client Id), counted
-- by one upsert per failure and purged once expired.
CREATE TABLE failure_counters (
    key        TEXT PRIMARY KEY NOT NULL,
    failures   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX failure_counters_expires_at ON failure_counters (expires_at);
