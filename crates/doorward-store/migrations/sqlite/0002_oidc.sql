-- OpenID Connect: client policy, user e-mail, the nonce of a code, signing keys.
ALTER TABLE clients ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE codes ADD COLUMN nonce TEXT;

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    generation INTEGER NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activate_at INTEGER NOT NULL,
    remove_at INTEGER,
    UNIQUE (alg, generation)
);
