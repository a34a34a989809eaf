//! Failure counters of the throttle: one row per key, one upsert per failure (a single
//! statement, so that concurrent failures from several instances are all counted).

use async_trait::async_trait;
use doorward_core::ports::{Failures, StoreResult, ThrottleStore, UnixTime};

use super::{other, record, PostgresStore};
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
        let row = sqlx::query(
            "INSERT INTO failure_counters AS c (key, failures, last_at, expires_at)
             VALUES ($1, 1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN c.expires_at <= excluded.last_at
                               THEN 1 ELSE c.failures + 1 END,
               last_at = excluded.last_at,
               expires_at = excluded.expires_at
             RETURNING failures, last_at, expires_at",
        )
        .bind(key)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(other)?;
        rows::failures(&row)
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM failure_counters WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(drop)
    }
}
