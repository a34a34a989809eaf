//! Dynamic client registration (RFC 7591, RFC 7592), as in `sqlite/registration.rs`. What
//! PostgreSQL's concurrency adds: a registration under a cap takes a transaction-level advisory
//! lock before it counts, so that two instances registering at once cannot both see room for
//! one more; the initial token's use is spent by an `UPDATE … WHERE uses_left > 0` in the same
//! transaction, which a racing spend waits for and re-checks.

use async_trait::async_trait;
use doorward_core::model::{Client, InitialTokenRecord, RegistrationRecord};
use doorward_core::ports::{Change, Registered, RegistrationStore, StoreResult, UnixTime};
use doorward_core::TokenHash;
use sqlx::{AssertSqlSafe, Row};

use super::accounts::bind_client;
use super::{changes, other, PostgresStore};
use crate::rows::{self, CLIENT_COLS, INITIAL_TOKEN_COLS};

/// The advisory lock of registrations under a cap: "dcrcap" in ASCII. Database-wide (not
/// keyed by schema like the purge's): capped registrations of deployments in other schemas
/// wait for each other briefly, but instances of an earlier version, which take this key,
/// still exclude the new ones during an upgrade, so the cap holds.
const CAP_LOCK: i64 = 0x6463_7263_6170;

#[async_trait]
impl RegistrationStore for PostgresStore {
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO registration_tokens ({INITIAL_TOKEN_COLS}) VALUES ($1, $2, $3, $4)"
        );
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(token.hash.as_bytes())
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(i64::from(token.uses_left))
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(drop)
    }

    async fn find_initial_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<InitialTokenRecord>> {
        let sql = format!("SELECT {INITIAL_TOKEN_COLS} FROM registration_tokens WHERE hash = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(hash.as_bytes());
        self.find(query, rows::initial_token).await
    }

    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered> {
        // Returning early drops the transaction, which rolls the spent use back.
        let mut tx = self.pool.begin().await.map_err(other)?;
        if let Some(hash) = spend {
            let spent = sqlx::query(
                "UPDATE registration_tokens SET uses_left = uses_left - 1
                 WHERE hash = $1 AND uses_left > 0 AND expires_at > $2",
            )
            .bind(hash.as_bytes())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
            if spent.rows_affected() != 1 {
                return Ok(Registered::TokenRefused);
            }
        }
        if let Some(max) = max {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CAP_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
            let row = sqlx::query("SELECT count(*) AS n FROM client_registrations")
                .fetch_one(&mut *tx)
                .await
                .map_err(other)?;
            let count: i64 = row.try_get("n").map_err(other)?;
            if u64::try_from(count).unwrap_or(0) >= max {
                return Ok(Registered::Full);
            }
        }
        let sql = format!(
            "INSERT INTO clients ({CLIENT_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING"
        );
        let inserted = bind_client(sqlx::query(AssertSqlSafe(sql.as_str())), client)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        if inserted.rows_affected() != 1 {
            return Ok(Registered::Taken);
        }
        sqlx::query(
            "INSERT INTO client_registrations (client_id, token_hash, metadata)
             VALUES ($1, $2, $3)",
        )
        .bind(registration.client_id)
        .bind(registration.token_hash.as_bytes())
        .bind(registration.metadata.as_str())
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)?;
        Ok(Registered::Stored)
    }

    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>> {
        let sql = format!(
            "SELECT {CLIENT_COLS}, token_hash, metadata FROM client_registrations
             JOIN clients ON clients.id = client_registrations.client_id
             WHERE token_hash = $1"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(token.as_bytes());
        self.find(query, rows::registration).await
    }

    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        let changed = sqlx::query(
            "UPDATE client_registrations SET token_hash = $2, metadata = $3
             WHERE client_id = $1",
        )
        .bind(registration.client_id)
        .bind(registration.token_hash.as_bytes())
        .bind(registration.metadata.as_str())
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        if changed.rows_affected() != 1 {
            return Ok(false);
        }
        let sql = super::accounts::upsert_client_sql();
        bind_client(sqlx::query(AssertSqlSafe(sql.as_str())), client)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        changes::notify(&mut tx, &Change::Client(client.id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(true)
    }
}
