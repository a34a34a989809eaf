-- Per-user claims (a JSON object) added to the user's ID tokens, JWT access tokens,
-- introspection and UserInfo; the engine never lets them replace a reserved claim.
ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
