-- The refresh-rotation grace window (see the SQLite migration 0003).
ALTER TABLE refresh_tokens ADD COLUMN successor BYTEA;
