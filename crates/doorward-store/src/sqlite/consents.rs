//! Users' approvals of clients, and their withdrawal (which revokes the grants made under
//! them).

use async_trait::async_trait;
use doorward_core::model::ConsentRecord;
use doorward_core::ports::{Change, ConsentStore, StoreResult, UnixTime};
use rusqlite::{params, TransactionBehavior};
use uuid::Uuid;

use super::{changes, execute, other, query_one, SqliteStore};
use crate::rows::{self, CONSENT_COLS};

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        self.find(
            &format!("SELECT {CONSENT_COLS} FROM consents WHERE user_id = ?1 AND client_id = ?2"),
            [user.to_string(), client.to_string()],
            rows::consent,
        )
        .await
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        self.write(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(other)?;
            let (user, client) = (consent.user_id.to_string(), consent.client_id.to_string());
            let existing = query_one(
                &tx,
                "SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2",
                [&user, &client],
                |row| row.scopes("scopes"),
            )?;
            let scopes = match existing {
                Some(existing) => existing.union(&consent.scopes),
                None => consent.scopes.clone(),
            };
            execute(
                &tx,
                "INSERT INTO consents (user_id, client_id, scopes, granted_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes,
                     granted_at = excluded.granted_at",
                params![user, client, scopes.to_string(), consent.granted_at],
            )?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        self.find_all(
            &format!(
                "SELECT {CONSENT_COLS} FROM consents
                     WHERE user_id = ?1 ORDER BY granted_at, client_id"
            ),
            [user.to_string()],
            rows::consent,
        )
        .await
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let change = Change::Consent { user, client };
        let (user, client) = (user.to_string(), client.to_string());
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(
                &tx,
                "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
                params![user, client],
            )?;
            const FAMILIES: &str =
                "SELECT family_id FROM grants WHERE user_id = ?1 AND client_id = ?2";
            for statement in [
                format!("UPDATE codes SET used_at = ?3 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
                format!("UPDATE access_tokens SET revoked_at = ?3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
                format!("UPDATE refresh_tokens SET revoked_at = ?3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
                "UPDATE grants SET revoked_at = ?3
                 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL"
                    .to_owned(),
            ] {
                execute(&tx, &statement, params![user, client, now])?;
            }
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)
        })
        .await
    }
}
