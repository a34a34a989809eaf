//! Users' authenticator apps (TOTP) and recovery codes.

use async_trait::async_trait;
use doorward_core::model::{PasskeyRecord, TotpRecord};
use doorward_core::ports::{SecondFactorStore, StoreResult, UnixTime};
use rusqlite::params;
use uuid::Uuid;

use super::{execute, other, SqliteStore};
use crate::rows::{self, PASSKEY_COLS};

#[async_trait]
impl SecondFactorStore for SqliteStore {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>> {
        self.find(
            "SELECT user_id, secret, created_at, last_step FROM totp_secrets WHERE user_id = ?1",
            [user.to_string()],
            rows::totp,
        )
        .await
    }

    async fn set_totp(&self, totp: &TotpRecord, recovery: &[[u8; 32]]) -> StoreResult<()> {
        let totp = totp.clone();
        let recovery = recovery.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(other)?;
            let user = totp.user_id.to_string();
            execute(
                &tx,
                "INSERT INTO totp_secrets (user_id, secret, created_at, last_step)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,
                     created_at = excluded.created_at, last_step = excluded.last_step",
                params![user, totp.secret, totp.created_at, totp.last_step],
            )?;
            replace_codes(&tx, &user, &recovery)?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool> {
        let user = user.to_string();
        self.write(move |conn| {
            execute(conn, "DELETE FROM totp_secrets WHERE user_id = ?1", [&user]).map(|n| n == 1)
        })
        .await
    }

    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool> {
        let user = user.to_string();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(
                &tx,
                "DELETE FROM recovery_codes WHERE user_id = ?1",
                [&user],
            )?;
            let passkeys = execute(&tx, "DELETE FROM passkeys WHERE user_id = ?1", [&user])?;
            let deleted = execute(&tx, "DELETE FROM totp_secrets WHERE user_id = ?1", [&user])?;
            tx.commit().map_err(other)?;
            Ok(deleted == 1 || passkeys > 0)
        })
        .await
    }

    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let p = passkey.clone();
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO passkeys
                     (id, user_id, credential_id, name, credential, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![
                    p.id.to_string(),
                    p.user_id.to_string(),
                    p.credential_id,
                    p.name,
                    p.credential,
                    p.created_at,
                    p.last_used_at
                ],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        self.find_all(
            &format!(
                "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = ?1 ORDER BY created_at, id"
            ),
            [user.to_string()],
            rows::passkey,
        )
        .await
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        self.find(
            &format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE credential_id = ?1"),
            [credential_id.to_vec()],
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
        let (id, credential) = (credential_id.to_vec(), credential.to_owned());
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE passkeys SET credential = ?2, last_used_at = ?3 WHERE credential_id = ?1",
                params![id, credential, used_at],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool> {
        let (user, id) = (user.to_string(), id.to_string());
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
                params![user, id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool> {
        let user = user.to_string();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE totp_secrets SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
                params![user, step],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &[u8; 32],
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (user, hash) = (user.to_string(), *hash);
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL",
                params![user, &hash[..], now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[[u8; 32]]) -> StoreResult<()> {
        let (user, hashes) = (user.to_string(), hashes.to_vec());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(other)?;
            replace_codes(&tx, &user, &hashes)?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32> {
        self.find(
            "SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
            [user.to_string()],
            |row| row.int("n"),
        )
        .await
        .map(|n| n.unwrap_or(0) as u32)
    }
}

fn replace_codes(tx: &rusqlite::Connection, user: &str, hashes: &[[u8; 32]]) -> StoreResult<()> {
    execute(tx, "DELETE FROM recovery_codes WHERE user_id = ?1", [user])?;
    for hash in hashes {
        execute(
            tx,
            "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
            params![user, &hash[..]],
        )?;
    }
    Ok(())
}
