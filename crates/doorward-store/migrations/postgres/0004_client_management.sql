-- Clients managed while the server runs (see the SQLite migration 0005_client_management).
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
ALTER TABLE clients ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE clients SET created_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT);
