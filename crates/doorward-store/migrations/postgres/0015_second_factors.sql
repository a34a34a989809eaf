-- How a session's user authenticated (RFC 8176 methods, space-separated; empty: the
-- application's sign-in did not say), kept with each grant family for its ID tokens.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT '';
-- This user must sign in with a second factor (the server may require it of everyone).
ALTER TABLE users ADD COLUMN second_factor_required BOOLEAN NOT NULL DEFAULT FALSE;
-- A user's authenticator app (TOTP, RFC 6238): its secret sealed like the signing keys, and
-- the last time step accepted (a code works once).
CREATE TABLE totp_secrets (
    user_id    UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    last_step  BIGINT NOT NULL
);
-- Recovery codes: an HMAC of each under the server's key, spent once.
CREATE TABLE recovery_codes (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash    BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, hash)
);
