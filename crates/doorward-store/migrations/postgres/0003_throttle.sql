-- Failure counters of the sign-in and client-authentication throttle (see the SQLite
-- migration 0004).
CREATE TABLE failure_counters (
    key        TEXT COLLATE "C" PRIMARY KEY,
    failures   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX failure_counters_expires_at ON failure_counters (expires_at);
