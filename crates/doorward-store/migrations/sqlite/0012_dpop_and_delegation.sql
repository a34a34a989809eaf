-- DPoP (RFC 9449): the RFC 7638 thumbprint of the key a credential is bound to. On a code, the
-- authorization request's `dpop_jkt` (§10); on an access token its `cnf.jkt` (§6); on a public
-- client's refresh token the key its refresh must prove (§5). NULL: not bound.
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
-- Token exchange (RFC 8693): an access token issued by an exchange keeps who acts for the
-- subject (its `act` claim, §4.1, as JSON; nested for a chain). NULL: not delegated. The
-- user's delegated tokens are listed on their account page, through this partial index.
ALTER TABLE access_tokens ADD COLUMN act TEXT;
CREATE INDEX access_tokens_delegated ON access_tokens (user_id) WHERE act IS NOT NULL;
