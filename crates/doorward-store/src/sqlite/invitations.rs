//! Invitations to sign up, and the sign-up that spends one with the account it creates.

use async_trait::async_trait;
use doorward_core::model::{InvitationRecord, NewUser};
use doorward_core::ports::{Change, InvitationStore, InvitedSignUp, StoreResult, UnixTime};
use doorward_core::TokenHash;
use rusqlite::params;
use uuid::Uuid;

use super::{changes, execute, other, SqliteStore};
use crate::rows::{self, INVITATION_COLS};

#[async_trait]
impl InvitationStore for SqliteStore {
    async fn insert_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        let i = invitation.clone();
        self.write(move |conn| {
            execute(
                conn,
                &format!("INSERT INTO invitations ({INVITATION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    i.hash.as_bytes(),
                    i.id.to_string(),
                    i.created_at,
                    i.expires_at,
                    i.created_by,
                    i.email,
                    i.used_at,
                    i.used_by.map(|u| u.to_string()),
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>> {
        self.find(
            &format!("SELECT {INVITATION_COLS} FROM invitations WHERE hash = ?1"),
            [hash.as_bytes()],
            rows::invitation,
        )
        .await
    }

    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>> {
        self.find_all(
            &format!(
                "SELECT {INVITATION_COLS} FROM invitations
                 WHERE used_at IS NULL AND expires_at > ?1 ORDER BY created_at DESC, id DESC"
            ),
            [now],
            rows::invitation,
        )
        .await
    }

    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(|conn| {
            execute(
                conn,
                "DELETE FROM invitations WHERE id = ?1 AND used_at IS NULL",
                [&id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp> {
        let user = user.clone();
        let hash = *invitation;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(other)?;
            let spent = execute(
                &tx,
                "UPDATE invitations SET used_at = ?2, used_by = ?3
                 WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![hash.as_bytes(), now, user.id.to_string()],
            )?;
            if spent != 1 {
                return Ok(InvitedSignUp::InvitationInvalid);
            }
            let inserted = super::accounts::insert_user_in(&tx, &user)?;
            if inserted != 1 {
                // Dropped without a commit: the invitation stays unspent.
                return Ok(InvitedSignUp::UsernameTaken);
            }
            changes::record(&tx, &Change::User(user.id))?;
            tx.commit().map_err(other)?;
            Ok(InvitedSignUp::Created)
        })
        .await
    }
}
