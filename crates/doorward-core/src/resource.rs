//! Bearer tokens presented to a protected resource (RFC 6750).

use doorward_proto::{ErrorCode, OAuthError, ScopeSet};

use crate::engine::Error;
use crate::model::{Client, User};
use crate::opaque::TokenHash;
use crate::ports::{ClientRef, UnixTime};
use crate::Engine;

/// What a valid access token stands for.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub user: User,
    pub client: Client,
    pub scopes: ScopeSet,
    pub expires_at: UnixTime,
}

impl Engine {
    /// Resolves a bearer access token. Unknown, expired and revoked tokens are all
    /// `invalid_token` (RFC 6750 §3.1), without saying which.
    pub async fn check_access_token(&self, token: &str) -> Result<TokenInfo, Error> {
        let invalid = || OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid");
        let record = self
            .store
            .find_access_token(&TokenHash::of(token))
            .await?
            .filter(|r| !r.revoked && r.expires_at > self.now())
            .ok_or_else(invalid)?;
        let user = self.store.find_user(record.user_id).await?;
        let client = self
            .store
            .find_client(ClientRef::Id(record.client_id))
            .await?;
        match (user, client) {
            (Some(user), Some(client)) => Ok(TokenInfo {
                user,
                client,
                scopes: record.scopes,
                expires_at: record.expires_at,
            }),
            _ => Err(invalid().into()),
        }
    }
}
