-- client_credentials (RFC 6749 §4.4): an access token issued to a client for itself has no
-- user.
ALTER TABLE access_tokens ALTER COLUMN user_id DROP NOT NULL;
