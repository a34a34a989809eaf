-- Users' passkeys (WebAuthn credentials): the credential as the WebAuthn library keeps it
-- (public key, signature counter, backup flags: JSON, nothing secret), found by its
-- credential id at a sign-in, which is unique across every user (W3C WebAuthn §7.1 step 26).
CREATE TABLE passkeys (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);
