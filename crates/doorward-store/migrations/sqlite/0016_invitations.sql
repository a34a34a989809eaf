-- Invitations to sign up ([accounts] sign_up = "invite"): the code's digest only; spent once,
-- with the account it created, in the transaction that creates it.
CREATE TABLE invitations (
    hash       BLOB PRIMARY KEY NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    email      TEXT,
    used_at    INTEGER,
    used_by    TEXT
) WITHOUT ROWID;
