//! Users' authenticator apps (TOTP) and recovery codes.

use async_trait::async_trait;
use doorward_core::model::{PasskeyRecord, TotpRecord};
use doorward_core::ports::{SecondFactorStore, StoreResult, UnixTime};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{other, PostgresStore};
use crate::rows::{self, PASSKEY_COLS};

#[async_trait]
impl SecondFactorStore for PostgresStore {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>> {
        let query = sqlx::query(
            "SELECT user_id, secret, created_at, last_step FROM totp_secrets WHERE user_id = $1",
        )
        .bind(user);
        self.find(query, rows::totp).await
    }

    async fn set_totp(&self, totp: &TotpRecord, recovery: &[[u8; 32]]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query(
            "INSERT INTO totp_secrets (user_id, secret, created_at, last_step)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,
                 created_at = excluded.created_at, last_step = excluded.last_step",
        )
        .bind(totp.user_id)
        .bind(&totp.secret)
        .bind(totp.created_at)
        .bind(totp.last_step)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        replace_codes(&mut tx, totp.user_id, recovery).await?;
        tx.commit().await.map_err(other)
    }

    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool> {
        sqlx::query("DELETE FROM totp_secrets WHERE user_id = $1")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected() == 1)
    }

    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        let passkeys = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(other)?
            .rows_affected();
        let deleted = sqlx::query("DELETE FROM totp_secrets WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(other)?
            .rows_affected();
        tx.commit().await.map_err(other)?;
        Ok(deleted == 1 || passkeys > 0)
    }

    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        sqlx::query(
            "INSERT INTO passkeys
                 (id, user_id, credential_id, name, credential, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(passkey.id)
        .bind(passkey.user_id)
        .bind(&passkey.credential_id)
        .bind(&passkey.name)
        .bind(&passkey.credential)
        .bind(passkey.created_at)
        .bind(passkey.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(|done| done.rows_affected() == 1)
    }

    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let sql = format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        );
        self.find_all(
            sqlx::query(AssertSqlSafe(sql.as_str())).bind(user),
            rows::passkey,
        )
        .await
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        let sql = format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE credential_id = $1");
        self.find(
            sqlx::query(AssertSqlSafe(sql.as_str())).bind(credential_id),
            rows::passkey,
        )
        .await
    }

    async fn update_passkey(
        &self,
        credential_id: &[u8],
        credential: &str,
        used_at: UnixTime,
    ) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE credential_id = $1",
        )
        .bind(credential_id)
        .bind(credential)
        .bind(used_at)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(|done| done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool> {
        sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected() == 1)
    }

    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool> {
        sqlx::query("UPDATE totp_secrets SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
            .bind(user)
            .bind(step)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected() == 1)
    }

    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &[u8; 32],
        now: UnixTime,
    ) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE recovery_codes SET used_at = $3
             WHERE user_id = $1 AND hash = $2 AND used_at IS NULL",
        )
        .bind(user)
        .bind(&hash[..])
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(|done| done.rows_affected() == 1)
    }

    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[[u8; 32]]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        replace_codes(&mut tx, user, hashes).await?;
        tx.commit().await.map_err(other)
    }

    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(other)?;
        Ok(n as u32)
    }
}

async fn replace_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user: Uuid,
    hashes: &[[u8; 32]],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(other)?;
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)")
            .bind(user)
            .bind(&hash[..])
            .execute(&mut **tx)
            .await
            .map_err(other)?;
    }
    Ok(())
}
