-- Device authorizations (RFC 8628, `sqlite/devices.rs`): the device code by its digest, the
-- user code the user types (unique while the row lives; purged once expired), what the client
-- asked for, when the device last polled, and the user's answer: `pending`, `approved` (with
-- the user and the sign-in's time; a code record of the same digest is stored with it) or
-- `denied`.
CREATE TABLE device_authorizations (
    hash       BLOB PRIMARY KEY,
    user_code  TEXT NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    resources  TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    polled_at  INTEGER,
    state      TEXT NOT NULL,
    user_id    TEXT,
    auth_time  INTEGER
) WITHOUT ROWID;
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
