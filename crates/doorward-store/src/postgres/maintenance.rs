//! The periodic purge of expired rows, in batches and in one instance at a time.

use async_trait::async_trait;
use doorward_core::ports::{MaintenanceStore, PoolUse, StoreResult, UnixTime};
use sqlx::AssertSqlSafe;

use super::{other, PostgresStore};

#[async_trait]
impl MaintenanceStore for PostgresStore {
    fn pool_use(&self) -> Option<PoolUse> {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(open);
        Some(PoolUse {
            open,
            busy: open.saturating_sub(idle),
            max: super::MAX_CONNECTIONS,
        })
    }

    /// Deletes in batches of `PURGE_BATCH` (5,000) rows, each its own short transaction, so
    /// that no purge holds locks for long; and only in one instance at a time: the others find
    /// the advisory lock taken and return 0 at once. The lock is the schema's: deployments (or
    /// tests) that share a database in schemas of their own purge independently.
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(other)?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))")
                .bind(PURGE_LOCK)
                .fetch_one(&mut *conn)
                .await
                .map_err(other)?;
        if !locked {
            return Ok(0);
        }
        let result = purge_in_batches(&mut conn, now, keep_spent).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
            .bind(PURGE_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // The lock goes with the session: make sure this connection is not reused.
            conn.close_on_drop();
        }
        result
    }
}

/// The first key of the advisory lock held while purging ("dwpg" in ASCII); the second is the
/// hash of the schema's name.
const PURGE_LOCK: i32 = 0x6477_7067;
/// Rows deleted per statement by the purge.
const PURGE_BATCH: i64 = 5000;

async fn purge_in_batches(
    conn: &mut sqlx::PgConnection,
    now: UnixTime,
    keep_spent: i64,
) -> StoreResult<u64> {
    let mut deleted = 0;
    for (table, before) in [
        ("sessions", now),
        ("codes", now - keep_spent),
        ("access_tokens", now),
        ("refresh_tokens", now),
    ] {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid IN
               (SELECT ctid FROM {table} WHERE expires_at <= $1 LIMIT $2)"
        );
        loop {
            let n = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(before)
                .bind(PURGE_BATCH)
                .execute(&mut *conn)
                .await
                .map_err(other)?
                .rows_affected();
            deleted += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
    }
    // Failure counters past their time (not counted: no credential goes).
    sqlx::query("DELETE FROM failure_counters WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(other)?;
    // Used client-assertion jtis past their expiry (not counted either).
    sqlx::query("DELETE FROM assertion_jtis WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(other)?;
    // Initial access tokens of registration past their expiry (not counted either).
    sqlx::query("DELETE FROM registration_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(other)?;
    // Invitations past their expiry, used or not (not counted either).
    sqlx::query("DELETE FROM invitations WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(other)?;
    // Device authorizations past their expiry (not counted: their code, if any, is).
    sqlx::query("DELETE FROM device_authorizations WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(other)?;
    // Past the grace window nobody may read a successor again (not counted: no row goes).
    sqlx::query(
        "UPDATE refresh_tokens SET successor = NULL
         WHERE successor IS NOT NULL AND used_at < $1",
    )
    .bind(now - doorward_core::ports::MAX_REFRESH_GRACE)
    .execute(&mut *conn)
    .await
    .map_err(other)?;
    // A grant goes once nothing refers to it any more (not counted: it is bookkeeping).
    sqlx::query(
        "DELETE FROM grants WHERE created_at <= $1
           AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.family_id = grants.family_id)
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = grants.family_id)
           AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = grants.family_id)",
    )
    .bind(now - keep_spent)
    .execute(&mut *conn)
    .await
    .map_err(other)?;
    Ok(deleted)
}
