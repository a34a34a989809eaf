//! What a signed-in user sees of their own account: the applications they approved, and the
//! services acting for them with tokens of a token exchange (RFC 8693).

use doorward_proto::ScopeSet;
use uuid::Uuid;

use crate::audit::{kinds, Actor, AuditEvent};
use crate::clock::UnixTime;
use crate::model::{Client, ConsentRecord};
use crate::ports::{Change, ClientRef, StoreError};
use crate::Engine;

/// A service that acts for the user: the live tokens one client got by exchanging the user's
/// tokens (RFC 8693), taken together.
#[derive(Clone, Debug)]
pub struct Delegation {
    /// The client that acts (the exchanged tokens' client).
    pub actor: Client,
    /// Who it acts through: the `sub` of each `act` level below it, nearest first.
    pub through: Vec<String>,
    /// The union of its tokens' scopes.
    pub scopes: ScopeSet,
    /// When its last token expires.
    pub until: UnixTime,
    pub tokens: usize,
}

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

    /// The services acting for the user (live tokens from token exchanges), one entry per
    /// acting client, in the order of their first token.
    pub async fn delegations(&self, user: Uuid) -> Result<Vec<Delegation>, StoreError> {
        let mut out: Vec<Delegation> = Vec::new();
        for token in self.store.list_delegated_tokens(user, self.now()).await? {
            if let Some(known) = out.iter_mut().find(|d| d.actor.id == token.client_id) {
                known.scopes = known.scopes.union(&token.scopes);
                known.until = known.until.max(token.expires_at);
                known.tokens += 1;
                continue;
            }
            let Some(actor) = self
                .store
                .find_client(ClientRef::Id(token.client_id))
                .await?
            else {
                continue;
            };
            out.push(Delegation {
                actor,
                through: token.act.as_deref().map(through).unwrap_or_default(),
                scopes: token.scopes,
                until: token.expires_at,
                tokens: 1,
            });
        }
        Ok(out)
    }

    /// Revokes every live token `actor` got by exchanging the user's tokens.
    pub async fn revoke_delegation(&self, user: Uuid, actor: Uuid) -> Result<(), StoreError> {
        let now = self.now();
        for token in self.store.list_delegated_tokens(user, now).await? {
            if token.client_id == actor {
                self.writing(
                    Change::AccessToken(token.hash),
                    self.store.revoke_access_token(&token.hash, now),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Withdraws the user's approval of a client and revokes the client's tokens for the user;
    /// the next authorization asks for consent again.
    pub async fn revoke_client(&self, user: Uuid, client: Uuid) -> Result<(), StoreError> {
        self.writing(
            Change::Consent { user, client },
            self.store.revoke_consent(user, client, self.now()),
        )
        .await?;
        self.note(
            AuditEvent::new(kinds::CONSENT_REVOKED, Actor::User(user))
                .user(user)
                .client(client),
        );
        Ok(())
    }
}

/// The `sub`s of the levels below the top of an `act` chain (RFC 8693 §4.1), nearest first.
fn through(act: &str) -> Vec<String> {
    let mut out = Vec::new();
    let value: serde_json::Value = serde_json::from_str(act).unwrap_or_default();
    let mut walk = value.get("act");
    while let Some(step) = walk {
        if let Some(sub) = step.get("sub").and_then(serde_json::Value::as_str) {
            out.push(sub.to_owned());
        }
        walk = step.get("act");
    }
    out
}
