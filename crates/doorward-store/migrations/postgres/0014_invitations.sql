-- Invitations to sign up ([accounts] sign_up = "invite"): the code's digest only; spent once,
-- with the account it created, in the transaction that creates it.
CREATE TABLE invitations (
    hash       BYTEA PRIMARY KEY,
    id         UUID NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    email      TEXT,
    used_at    BIGINT,
    used_by    UUID
);
