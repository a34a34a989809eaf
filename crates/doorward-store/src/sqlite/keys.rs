//! The server's own secrets: named secrets and signing keys.

use async_trait::async_trait;
use doorward_core::model::SigningKeyRecord;
use doorward_core::ports::{Change, KeyStore, SecretStore, StoreResult, UnixTime};
use rusqlite::params;

use super::{changes, execute, other, query_one, SqliteStore};
use crate::rows::{self, corrupt, KEY_COLS};

#[async_trait]
impl SecretStore for SqliteStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![name, candidate],
            )?;
            query_one(
                conn,
                "SELECT value FROM server_secrets WHERE name = ?1",
                [name],
                |row| row.blob("value"),
            )?
            .ok_or_else(|| corrupt("server secret vanished"))
        })
        .await
    }

    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        self.write(|conn| {
            execute(
                conn,
                "UPDATE server_secrets SET value = ?3 WHERE name = ?1 AND value = ?2",
                params![name, expected, sealed],
            )
            .map(|n| n == 1)
        })
        .await
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.find_all(
            &format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY alg, generation"),
            [],
            rows::signing_key,
        )
        .await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO signing_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO NOTHING"
        );
        self.change_keys(|conn| {
            execute(
                conn,
                &sql,
                params![
                    key.kid,
                    key.alg.as_str(),
                    key.generation,
                    key.private_key,
                    key.public_jwk,
                    key.created_at,
                    key.activate_at,
                    key.remove_at,
                ],
            )
        })
        .await
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        // Only a removal brought forward is a change (the same time again is not).
        self.change_keys(|conn| {
            execute(
                conn,
                "UPDATE signing_keys SET remove_at = ?2
                 WHERE kid = ?1 AND (remove_at IS NULL OR remove_at > ?2)",
                params![kid, remove_at],
            )
        })
        .await
        .map(drop)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.change_keys(|conn| execute(conn, "DELETE FROM signing_keys WHERE kid = ?1", [kid]))
            .await
            .map(drop)
    }

    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        self.write(|conn| {
            execute(
                conn,
                "UPDATE signing_keys SET private_key = ?3 WHERE kid = ?1 AND private_key = ?2",
                params![kid, expected, sealed],
            )
            .map(|n| n == 1)
        })
        .await
    }
}

impl SqliteStore {
    /// Runs `statement`, one statement on `signing_keys` that answers how many rows it
    /// changed, in a transaction that records [`Change::Keys`] when it changed one; whether
    /// it did.
    async fn change_keys(
        &self,
        statement: impl FnOnce(&rusqlite::Connection) -> StoreResult<usize> + Send,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let changed = statement(&tx)? == 1;
            if changed {
                changes::record(&tx, &Change::Keys)?;
            }
            tx.commit().map_err(other)?;
            Ok(changed)
        })
        .await
    }
}
