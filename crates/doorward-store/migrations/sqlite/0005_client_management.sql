-- Clients managed while the server runs (`doorward clients …`): the secret a rotation replaced,
-- accepted until its expiry; who registered the client (`config` or `cli`); when it was first
-- stored (clients stored before this migration get the migration's time).
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
ALTER TABLE clients ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE clients SET created_at = CAST(strftime('%s', 'now') AS INTEGER);
-- No index on the token tables' client_id: `doorward clients remove` revokes by client_id with
-- one scan per table, rather than every token insert paying for one more index.
