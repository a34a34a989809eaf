-- Doorward's SQLite schema. Codes, tokens and session ids are stored as SHA-256 digests only.
-- UUIDs are TEXT (hyphenated, lower case); times are Unix seconds.
--
-- Every code starts a grant family (`grants`); the tokens issued from it and from its refresh
-- tokens carry its family_id. Revoking a grant (a replayed code or refresh token, RFC 9700
-- §4.14.2, or the user withdrawing consent) marks the grant and its tokens; tokens inserted
-- into a revoked grant later (a rotation that raced the revocation) are born revoked.
-- Token tables have one secondary index, on family_id (time-ordered UUIDv7, so inserts append).

CREATE TABLE clients (
    id            TEXT PRIMARY KEY NOT NULL,
    key           TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    app_uri       TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,          -- one URI a line, each exactly as registered
    secret_hash   TEXT                    -- Argon2id PHC string; NULL for a public client
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    hash       BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;

CREATE TABLE grants (
    family_id  TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX grants_user_client ON grants (user_id, client_id);

CREATE TABLE codes (
    hash             BLOB PRIMARY KEY NOT NULL,
    client_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    scope_requested  INTEGER NOT NULL,
    challenge        TEXT,
    challenge_method TEXT,
    family_id        TEXT NOT NULL,
    auth_time        INTEGER NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
) WITHOUT ROWID;
CREATE INDEX codes_family ON codes (family_id);

CREATE TABLE access_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX access_tokens_family ON access_tokens (family_id);

CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
