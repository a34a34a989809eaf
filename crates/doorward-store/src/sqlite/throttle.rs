//! Failure counters of the throttle: one row per key, one upsert per failure.

use async_trait::async_trait;
use doorward_core::ports::{Failures, StoreResult, ThrottleStore, UnixTime};
use rusqlite::params;

use super::{execute, query_one, SqliteStore};
use crate::rows::{self, corrupt};

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        self.find(
            "SELECT failures, last_at, expires_at FROM failure_counters WHERE key = ?1",
            [key],
            rows::failures,
        )
        .await
    }

    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        self.write(|conn| {
            query_one(
                conn,
                "INSERT INTO failure_counters (key, failures, last_at, expires_at)
                 VALUES (?1, 1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN failure_counters.expires_at <= excluded.last_at
                                   THEN 1 ELSE failure_counters.failures + 1 END,
                   last_at = excluded.last_at,
                   expires_at = excluded.expires_at
                 RETURNING failures, last_at, expires_at",
                params![key, now, expires_at],
                rows::failures,
            )?
            .ok_or_else(|| corrupt("the upserted failure counter is missing"))
        })
        .await
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.write(|conn| {
            execute(conn, "DELETE FROM failure_counters WHERE key = ?1", [key]).map(drop)
        })
        .await
    }
}
