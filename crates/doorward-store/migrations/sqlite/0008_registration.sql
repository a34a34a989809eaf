-- Dynamic client registration (RFC 7591, RFC 7592). Initial access tokens by digest, with an
-- expiry and the uses left (one spent per registration by one UPDATE). Each registered client's
-- registration access token by digest (the lookup key of the management endpoint) and its
-- metadata as registered; deleted with the client (the foreign key).
CREATE TABLE registration_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    uses_left  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE client_registrations (
    client_id  TEXT PRIMARY KEY NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    metadata   TEXT NOT NULL
);
