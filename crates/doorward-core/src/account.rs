//! What a signed-in user sees of their own account: the applications they approved.

use uuid::Uuid;

use crate::model::{Client, ConsentRecord};
use crate::ports::{Change, ClientRef, StoreError};
use crate::Engine;

impl Engine {
    /// The user's approvals, each with its client, in the order the store lists them.
    pub async fn approved_clients(
        &self,
        user: Uuid,
    ) -> Result<Vec<(ConsentRecord, Client)>, StoreError> {
        let mut out = Vec::new();
        for consent in self.store.list_consents(user).await? {
            if let Some(client) = self
                .store
                .find_client(ClientRef::Id(consent.client_id))
                .await?
            {
                out.push((consent, client));
            }
        }
        Ok(out)
    }

    /// Withdraws the user's approval of a client and revokes the client's tokens for the user;
    /// the next authorization asks for consent again.
    pub async fn revoke_client(&self, user: Uuid, client: Uuid) -> Result<(), StoreError> {
        self.writing(
            Change::Consent { user, client },
            self.store.revoke_consent(user, client, self.now()),
        )
        .await
    }
}
