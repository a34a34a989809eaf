//! The store's guards against guessing and replay: failure counters of the throttle (one row
//! per key, one upsert per failure) and the `jti` of used client assertions (one upsert each).

use async_trait::async_trait;
use doorward_core::ports::{
    AssertionStore, Change, Failures, StoreResult, ThrottleStore, UnixTime,
};
use rusqlite::params;
use uuid::Uuid;

use super::{changes, execute, other, query_one, SqliteStore};
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
            let tx = conn.transaction().map_err(other)?;
            let counted = query_one(
                &tx,
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
            .ok_or_else(|| corrupt("the upserted failure counter is missing"))?;
            changes::record(&tx, &Change::Failures(key.to_owned()))?;
            tx.commit().map_err(other)?;
            Ok(counted)
        })
        .await
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(&tx, "DELETE FROM failure_counters WHERE key = ?1", [key])?;
            changes::record(&tx, &Change::Failures(key.to_owned()))?;
            tx.commit().map_err(other)
        })
        .await
    }
}

#[async_trait]
impl AssertionStore for SqliteStore {
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (client, jti) = (client.to_string(), jti.to_owned());
        self.write_batched(move |conn| {
            // One statement: a live row makes it change nothing (0 rows), an expired one is
            // replaced (1 row), none is inserted (1 row).
            let changed = execute(
                conn,
                "INSERT INTO assertion_jtis (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE assertion_jtis.expires_at <= ?4",
                params![client, jti, expires_at, now],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}
