//! Bulk rows for the scale benchmark (`doorward dev seed-tokens`, `bench/scale.sh`): live
//! access tokens without a user, inserted by SQL in batches rather than one by one.

use doorward_core::ports::{StoreResult, UnixTime};
use rusqlite::params;
use uuid::Uuid;

use super::{execute, other, SqliteStore};

/// Rows per transaction.
const BATCH: u64 = 100_000;

impl SqliteStore {
    /// Inserts `count` live access tokens of `client` without a user, valid until
    /// `expires_at`: dated keys (6 bytes of milliseconds from `issued_at`, then random bytes,
    /// like the engine's credentials), random family ids. For benchmarks only: nobody holds
    /// these tokens.
    pub async fn seed_access_tokens(
        &self,
        client: Uuid,
        count: u64,
        issued_at: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<u64> {
        let client = client.to_string();
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let first_ms = issued_at.saturating_mul(1000).saturating_add(done as i64);
            self.write(|conn| {
                let tx = conn.transaction().map_err(other)?;
                execute(
                    &tx,
                    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?1)
                     INSERT INTO access_tokens
                       (hash, family_id, client_id, user_id, scopes, issued_at, expires_at,
                        revoked_at, resources)
                     SELECT unhex(printf('%012x', ?2 + i)) || randomblob(26),
                            lower(hex(randomblob(16))), ?3, NULL, 'base', ?4, ?5, NULL, ''
                     FROM s",
                    params![n as i64, first_ms, client, issued_at, expires_at],
                )?;
                tx.commit().map_err(other)
            })
            .await?;
            done += n;
        }
        Ok(done)
    }
}
