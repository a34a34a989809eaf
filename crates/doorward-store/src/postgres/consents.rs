//! Users' approvals of clients, and their withdrawal (which revokes the grants made under
//! them).

use async_trait::async_trait;
use doorward_core::model::ConsentRecord;
use doorward_core::ports::{Change, ConsentStore, StoreResult, UnixTime};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{changes, other, PostgresStore};
use crate::rows::{self, Columns, CONSENT_COLS};

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        let sql =
            format!("SELECT {CONSENT_COLS} FROM consents WHERE user_id = $1 AND client_id = $2");
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user)
            .bind(client);
        self.find(query, rows::consent).await
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        // Inserts the approval, or locks the existing one unchanged and returns its scopes:
        // either way the row is locked until the merge below commits.
        let row = sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = consents.scopes
             RETURNING scopes",
        )
        .bind(consent.user_id)
        .bind(consent.client_id)
        .bind(consent.scopes.to_string())
        .bind(consent.granted_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(other)?;
        let scopes = row.scopes("scopes")?.union(&consent.scopes);
        sqlx::query(
            "UPDATE consents SET scopes = $3, granted_at = $4
             WHERE user_id = $1 AND client_id = $2",
        )
        .bind(consent.user_id)
        .bind(consent.client_id)
        .bind(scopes.to_string())
        .bind(consent.granted_at)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        let sql = format!(
            "SELECT {CONSENT_COLS} FROM consents
             WHERE user_id = $1 ORDER BY granted_at, client_id"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(user);
        self.find_all(query, rows::consent).await
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user)
            .bind(client)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        const FAMILIES: &str = "SELECT family_id FROM grants WHERE user_id = $1 AND client_id = $2";
        // The grants first: their row locks order this revocation with token inserts (see the
        // module's documentation).
        for statement in [
            "UPDATE grants SET revoked_at = $3
             WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL"
                .to_owned(),
            format!("UPDATE codes SET used_at = $3 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
            format!("UPDATE access_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
            format!("UPDATE refresh_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
        ] {
            sqlx::query(AssertSqlSafe(statement.as_str()))
                .bind(user)
                .bind(client)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        changes::notify(&mut tx, &Change::Consent { user, client }).await?;
        tx.commit().await.map_err(other)
    }
}
