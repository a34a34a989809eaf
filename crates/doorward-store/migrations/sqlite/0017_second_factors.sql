-- How a session's user authenticated (RFC 8176 methods, space-separated; empty: the
-- application's sign-in did not say), kept with each grant family for its ID tokens.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT '';
-- This user must sign in with a second factor (the server may require it of everyone).
ALTER TABLE users ADD COLUMN second_factor_required INTEGER NOT NULL DEFAULT 0;
-- A user's authenticator app (TOTP, RFC 6238): its secret sealed like the signing keys, and
-- the last time step accepted (a code works once).
CREATE TABLE totp_secrets (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_step  INTEGER NOT NULL
) WITHOUT ROWID;
-- Recovery codes: an HMAC of each under the server's key, spent once.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash    BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
