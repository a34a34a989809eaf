-- Resource indicators (RFC 8707): the resources an authorization request named stay with its
-- code and the refresh tokens of its grant (a later token request may narrow them, §2.2), and
-- an access token keeps the resources it is meant for (its audience). One URI a line; empty:
-- none (the default audience).
ALTER TABLE codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE access_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '';
