//! The store's guards against guessing and replay: failure counters of the throttle (one row
//! per key, one upsert per failure: a single statement, so that concurrent failures from
//! several instances are all counted) and the `jti` of used client assertions (one upsert
//! each, so that of instances racing with one `jti` exactly one wins).

use async_trait::async_trait;
use doorward_core::ports::{
    AssertionStore, Change, Failures, StoreResult, ThrottleStore, UnixTime,
};
use uuid::Uuid;

use super::{changes, other, record, PostgresStore};
use crate::rows;

#[async_trait]
impl ThrottleStore for PostgresStore {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        let row = sqlx::query(
            "SELECT failures, last_at, expires_at FROM failure_counters WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        record(row, rows::failures)
    }

    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        // One statement still: the notification for the read caches (`changes.rs`) is sent by
        // the same statement's transaction.
        let row = sqlx::query(
            "WITH counted AS (
               INSERT INTO failure_counters AS c (key, failures, last_at, expires_at)
               VALUES ($1, 1, $2, $3)
               ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN c.expires_at <= excluded.last_at
                                 THEN 1 ELSE c.failures + 1 END,
                 last_at = excluded.last_at,
                 expires_at = excluded.expires_at
               RETURNING failures, last_at, expires_at)
             SELECT failures, last_at, expires_at, pg_notify($4, $5) FROM counted",
        )
        .bind(key)
        .bind(now)
        .bind(expires_at)
        .bind(changes::CHANNEL)
        .bind(Change::Failures(key.to_owned()).to_wire())
        .fetch_one(&self.pool)
        .await
        .map_err(other)?;
        rows::failures(&row)
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query("DELETE FROM failure_counters WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        changes::notify(&mut tx, &Change::Failures(key.to_owned())).await?;
        tx.commit().await.map_err(other)
    }
}

#[async_trait]
impl AssertionStore for PostgresStore {
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        // A live row makes the upsert change nothing (0 rows); the conflicting insert waits for
        // a concurrent one to commit, then sees its row.
        let changed = sqlx::query(
            "INSERT INTO assertion_jtis AS a (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
             WHERE a.expires_at <= $4",
        )
        .bind(client)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(other)?
        .rows_affected();
        Ok(changed == 1)
    }
}
