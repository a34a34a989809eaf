-- The refresh-rotation grace window: the answer to a refresh, sealed with a key derived from
-- the refresh token that was spent, so that the same client presenting it again within the
-- window gets the same answer (and nobody without that token can read it).
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
