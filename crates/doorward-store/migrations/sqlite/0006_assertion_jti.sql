-- The `jti` of client assertions already used (private_key_jwt, client_secret_jwt; RFC 7523
-- §3): one row per client and jti, kept until the assertion's expiry, inserted by one upsert
-- that replaces only an expired row, purged once expired. No foreign key: the rows outlive
-- nothing by more than minutes.
CREATE TABLE assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) WITHOUT ROWID;
CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);
