-- Device authorizations (RFC 8628; see the SQLite migration 0011).
CREATE TABLE device_authorizations (
    hash       BYTEA PRIMARY KEY,
    user_code  TEXT COLLATE "C" NOT NULL UNIQUE,
    client_id  UUID NOT NULL,
    scopes     TEXT NOT NULL,
    resources  TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    polled_at  BIGINT,
    state      TEXT NOT NULL,
    user_id    UUID,
    auth_time  BIGINT
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
