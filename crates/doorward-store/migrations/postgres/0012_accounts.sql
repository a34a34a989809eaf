-- Accounts managed while servers run (`doorward users`, the admin console, sign-up): the admin
-- role, a disabled account (its sessions, grants and tokens were ended when it was disabled),
-- and who created it ('config' for the seeds, which existed before).
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
-- Signing a user out of every browser (disabling, removing, the console) finds its sessions.
CREATE INDEX sessions_user ON sessions (user_id);
