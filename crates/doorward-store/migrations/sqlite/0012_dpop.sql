-- DPoP (RFC 9449): the RFC 7638 thumbprint of the key a credential is bound to. On a code, the
-- authorization request's `dpop_jkt` (§10); on an access token its `cnf.jkt` (§6); on a public
-- client's refresh token the key its refresh must prove (§5). NULL: not bound.
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
