//! The server's own secrets: named secrets and signing keys.

use async_trait::async_trait;
use doorward_core::model::SigningKeyRecord;
use doorward_core::ports::{Change, KeyStore, SecretStore, StoreResult, UnixTime};
use sqlx::AssertSqlSafe;

use super::{changes, other, PostgresStore};
use crate::rows::{self, corrupt, Columns, KEY_COLS};

#[async_trait]
impl SecretStore for PostgresStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // Two statements, not one: the SELECT's snapshot is taken after the INSERT, so it sees
        // a value that a concurrent instance committed while the INSERT waited for it.
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        match row {
            Some(row) => row.blob("value"),
            None => Err(corrupt("server secret vanished")),
        }
    }

    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        sqlx::query("UPDATE server_secrets SET value = $3 WHERE name = $1 AND value = $2")
            .bind(name)
            .bind(expected)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|result| result.rows_affected() == 1)
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        // `alg` is COLLATE "C": the order is SQLite's.
        let sql = format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY alg, generation");
        let query = sqlx::query(AssertSqlSafe(sql.as_str()));
        self.find_all(query, rows::signing_key).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO signing_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING"
        );
        self.change_keys(
            sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(key.kid.as_str())
                .bind(key.alg.as_str())
                .bind(key.generation)
                .bind(key.private_key.as_slice())
                .bind(key.public_jwk.as_str())
                .bind(key.created_at)
                .bind(key.activate_at)
                .bind(key.remove_at),
        )
        .await
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        // Only a removal brought forward is a change (the same time again is not).
        self.change_keys(
            sqlx::query(
                "UPDATE signing_keys SET remove_at = $2
                 WHERE kid = $1 AND (remove_at IS NULL OR remove_at > $2)",
            )
            .bind(kid)
            .bind(remove_at),
        )
        .await
        .map(drop)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.change_keys(sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid))
            .await
            .map(drop)
    }

    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        sqlx::query("UPDATE signing_keys SET private_key = $3 WHERE kid = $1 AND private_key = $2")
            .bind(kid)
            .bind(expected)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|result| result.rows_affected() == 1)
    }
}

impl PostgresStore {
    /// Runs `query`, one statement on `signing_keys`, in a transaction that announces
    /// [`Change::Keys`] when it changed a row; whether it did.
    async fn change_keys(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        let changed = query
            .execute(&mut *tx)
            .await
            .map_err(other)?
            .rows_affected()
            == 1;
        if changed {
            changes::notify(&mut tx, &Change::Keys).await?;
        }
        tx.commit().await.map_err(other)?;
        Ok(changed)
    }
}
