-- Doorward's PostgreSQL schema: the SQLite schema (migrations/sqlite/0001_init.sql and
-- 0002_oidc.sql) in one file, since this store started with both. Codes, tokens and session ids
-- are stored as SHA-256 digests only (BYTEA, 32 bytes). Ids are UUID; times are Unix seconds
-- (BIGINT). Scopes are space-separated, redirect URIs one a line, and the client policy a JSON
-- object, all TEXT as in SQLite, so that the adapters share their encodings.
--
-- Every code starts a grant family (`grants`); the tokens issued from it and from its refresh
-- tokens carry its family_id. Revoking a grant (a replayed code or refresh token, RFC 9700
-- §4.14.2, or the user withdrawing consent) marks the grant and its tokens; tokens inserted
-- into a revoked grant later (a rotation that raced the revocation) are born revoked.
-- Token tables have one secondary index, on family_id (time-ordered UUIDv7, so inserts append).
--
-- A grant recorded by a revocation alone (a family without a code: never in practice) has the
-- nil UUID as its user and client, as SQLite has ''.

CREATE TABLE clients (
    id            UUID PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    app_uri       TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,          -- one URI a line, each exactly as registered
    secret_hash   TEXT,                   -- Argon2id PHC string; NULL for a public client
    policy        TEXT NOT NULL DEFAULT '{}'  -- ClientPolicy::to_json
);

CREATE TABLE users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    email          TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    hash       BYTEA PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE consents (
    user_id    UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  UUID NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE grants (
    family_id  UUID PRIMARY KEY,
    user_id    UUID NOT NULL,
    client_id  UUID NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_user_client ON grants (user_id, client_id);

CREATE TABLE codes (
    hash             BYTEA PRIMARY KEY,
    client_id        UUID NOT NULL,
    user_id          UUID NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    scope_requested  BOOLEAN NOT NULL,
    challenge        TEXT,
    challenge_method TEXT,
    family_id        UUID NOT NULL,
    auth_time        BIGINT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT,
    nonce            TEXT
);
CREATE INDEX codes_family ON codes (family_id);

CREATE TABLE access_tokens (
    hash       BYTEA PRIMARY KEY,
    family_id  UUID NOT NULL,
    client_id  UUID NOT NULL,
    user_id    UUID NOT NULL,
    scopes     TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);

CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    family_id  UUID NOT NULL,
    client_id  UUID NOT NULL,
    user_id    UUID NOT NULL,
    scopes     TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- `alg` sorts bytewise ("C"), as SQLite's BINARY does: list_signing_keys orders by it.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT COLLATE "C" NOT NULL,
    generation  BIGINT NOT NULL,
    private_key BYTEA NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    activate_at BIGINT NOT NULL,
    remove_at   BIGINT,
    UNIQUE (alg, generation)
);
