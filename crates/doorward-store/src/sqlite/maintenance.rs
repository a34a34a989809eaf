//! The periodic purge of expired rows.

use async_trait::async_trait;
use doorward_core::ports::{MaintenanceStore, PoolUse, StoreResult, UnixTime, MAX_REFRESH_GRACE};

use super::{execute, other, SqliteStore};

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let mut deleted = 0;
            for (statement, before) in [
                ("DELETE FROM sessions WHERE expires_at <= ?1", now),
                ("DELETE FROM codes WHERE expires_at <= ?1", now - keep_spent),
                ("DELETE FROM access_tokens WHERE expires_at <= ?1", now),
                ("DELETE FROM refresh_tokens WHERE expires_at <= ?1", now),
            ] {
                deleted += execute(&tx, statement, [before])? as u64;
            }
            // Failure counters past their time (not counted: no credential goes).
            execute(
                &tx,
                "DELETE FROM failure_counters WHERE expires_at <= ?1",
                [now],
            )?;
            execute(
                &tx,
                "DELETE FROM assertion_jtis WHERE expires_at <= ?1",
                [now],
            )?;
            execute(
                &tx,
                "DELETE FROM registration_tokens WHERE expires_at <= ?1",
                [now],
            )?;
            execute(&tx, "DELETE FROM invitations WHERE expires_at <= ?1", [now])?;
            execute(
                &tx,
                "DELETE FROM device_authorizations WHERE expires_at <= ?1",
                [now],
            )?;
            // Past the grace window nobody may read a successor again (not counted either).
            execute(
                &tx,
                "UPDATE refresh_tokens SET successor = NULL
                 WHERE successor IS NOT NULL AND used_at < ?1",
                [now - MAX_REFRESH_GRACE],
            )?;
            // A grant goes once nothing refers to it any more (not counted: it is bookkeeping).
            execute(
                &tx,
                "DELETE FROM grants WHERE created_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.family_id = grants.family_id)
                   AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = grants.family_id)
                   AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = grants.family_id)",
                [now - keep_spent],
            )?;
            // The change feed keeps its last rows (`changes.rs`; not counted either).
            super::changes::prune(&tx)?;
            tx.commit().map_err(other)?;
            Ok(deleted)
        })
        .await
    }

    /// The writer and the readers, busy when their lock is held right now.
    fn pool_use(&self) -> Option<PoolUse> {
        let connections = std::iter::once(&*self.writer).chain(&self.readers);
        let (mut open, mut busy) = (0, 0);
        for connection in connections {
            open += 1;
            busy += u32::from(connection.try_lock().is_err());
        }
        Some(PoolUse {
            open,
            busy,
            max: open,
        })
    }
}
