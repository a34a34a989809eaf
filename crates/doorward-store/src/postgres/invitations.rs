//! Invitations to sign up, and the sign-up that spends one with the account it creates.

use async_trait::async_trait;
use doorward_core::model::{InvitationRecord, NewUser};
use doorward_core::ports::{Change, InvitationStore, InvitedSignUp, StoreResult, UnixTime};
use doorward_core::TokenHash;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{changes, other, PostgresStore};
use crate::rows::{self, INVITATION_COLS};

#[async_trait]
impl InvitationStore for PostgresStore {
    async fn insert_invitation(&self, i: &InvitationRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO invitations ({INVITATION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(i.hash.as_bytes())
            .bind(i.id)
            .bind(i.created_at)
            .bind(i.expires_at)
            .bind(i.created_by.as_str())
            .bind(i.email.as_deref())
            .bind(i.used_at)
            .bind(i.used_by)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(drop)
    }

    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE hash = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(hash.as_bytes());
        self.find(query, rows::invitation).await
    }

    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>> {
        let sql = format!(
            "SELECT {INVITATION_COLS} FROM invitations
             WHERE used_at IS NULL AND expires_at > $1 ORDER BY created_at DESC, id DESC"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(now);
        self.find_all(query, rows::invitation).await
    }

    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool> {
        sqlx::query("DELETE FROM invitations WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected() == 1)
    }

    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        let spent = sqlx::query(
            "UPDATE invitations SET used_at = $2, used_by = $3
             WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(invitation.as_bytes())
        .bind(now)
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .map_err(other)?
        .rows_affected();
        if spent != 1 {
            return Ok(InvitedSignUp::InvitationInvalid);
        }
        let inserted = super::accounts::insert_user_in(&mut tx, user).await?;
        if inserted != 1 {
            // Rolled back when dropped: the invitation stays unspent.
            return Ok(InvitedSignUp::UsernameTaken);
        }
        changes::notify(&mut tx, &Change::User(user.id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(InvitedSignUp::Created)
    }
}
