-- Per-user claims (a JSON object) added to the user's ID tokens, JWT access tokens,
-- introspection and UserInfo; the engine never lets them replace a reserved claim.
ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
-- What the application attached to a grant (TxOAuth2's additionalData; a JSON object), kept
-- with its family: every token of the grant, refreshes included, carries it.
ALTER TABLE grants ADD COLUMN data TEXT NOT NULL DEFAULT '{}';
-- The application granted fewer scopes than the request asked: the token response says which
-- (RFC 6749 §5.1).
ALTER TABLE codes ADD COLUMN scope_narrowed BOOLEAN NOT NULL DEFAULT FALSE;
