-- client_credentials (RFC 6749 §4.4): an access token issued to a client for itself has no
-- user. SQLite cannot drop NOT NULL in place, so access_tokens is rebuilt with user_id
-- nullable, keeping its rows and its family index.
CREATE TABLE access_tokens_new (
    hash       BLOB PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT,                      -- NULL: a client_credentials token
    scopes     TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
INSERT INTO access_tokens_new (hash, family_id, client_id, user_id, scopes, issued_at,
    expires_at, revoked_at)
SELECT hash, family_id, client_id, user_id, scopes, issued_at, expires_at, revoked_at
FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_family ON access_tokens (family_id);
