-- The `jti` of client assertions already used (see the SQLite migration 0005).
CREATE TABLE assertion_jtis (
    client_id  UUID NOT NULL,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);
