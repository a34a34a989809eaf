//! Bulk rows for the scale benchmark (`doorward dev seed-tokens`, `bench/scale.sh`): live
//! access tokens without a user, inserted by SQL in batches rather than one by one.

use doorward_core::ports::{StoreResult, UnixTime};
use uuid::Uuid;

use super::{other, PostgresStore};

/// Rows per statement.
const BATCH: u64 = 100_000;

impl PostgresStore {
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
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let first_ms = issued_at.saturating_mul(1000).saturating_add(done as i64);
            sqlx::query(
                "INSERT INTO access_tokens
                   (hash, family_id, client_id, user_id, scopes, issued_at, expires_at,
                    revoked_at, resources)
                 SELECT decode(lpad(to_hex($2 + i), 12, '0'), 'hex')
                          || substring(decode(md5(random()::text) || md5(random()::text), 'hex')
                                       FROM 1 FOR 26),
                        gen_random_uuid(), $3, NULL, 'base', $4, $5, NULL, ''
                 FROM generate_series(0, $1 - 1) AS i",
            )
            .bind(n as i64)
            .bind(first_ms)
            .bind(client)
            .bind(issued_at)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(other)?;
            done += n;
        }
        Ok(done)
    }
}
