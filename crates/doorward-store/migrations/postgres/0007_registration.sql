-- Dynamic client registration (see the SQLite migration 0008_registration).
CREATE TABLE registration_tokens (
    hash       BYTEA PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    uses_left  BIGINT NOT NULL
);
CREATE TABLE client_registrations (
    client_id  UUID PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    metadata   TEXT NOT NULL
);
