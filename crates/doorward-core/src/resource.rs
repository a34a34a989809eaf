//! Bearer tokens presented to a protected resource (RFC 6750).

use doorward_proto::{ErrorCode, OAuthError, ScopeSet};

use crate::error::Error;
use crate::model::{Client, User};
use crate::opaque::TokenHash;
use crate::ports::UnixTime;
use crate::Engine;

/// What a valid access token stands for.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// `None` for a `client_credentials` token, whose subject is the client. A resource that
    /// is about a user answers such a token with [`TokenInfo::require_user`].
    pub user: Option<User>,
    pub client: Client,
    pub scopes: ScopeSet,
    pub expires_at: UnixTime,
}

impl TokenInfo {
    /// The token's user, or `insufficient_scope` (RFC 6750 §3.1, 403) for a token without
    /// one: the token is valid (introspection calls it active, so `invalid_token` would send
    /// the client to refresh for nothing), it just grants nothing about a user.
    pub fn require_user(&self) -> Result<&User, OAuthError> {
        self.user.as_ref().ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InsufficientScope,
                "this resource needs a token issued for a user, not to a client for itself",
            )
        })
    }
}

impl Engine {
    /// Resolves a bearer access token. Unknown, expired and revoked tokens are all
    /// `invalid_token` (RFC 6750 §3.1), without saying which.
    pub async fn check_access_token(&self, token: &str) -> Result<TokenInfo, Error> {
        let invalid = || OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid");
        let bearer = self
            .store
            .find_bearer(&TokenHash::of(token))
            .await?
            .filter(|b| !b.token.revoked && b.token.expires_at > self.now())
            .ok_or_else(invalid)?;
        Ok(TokenInfo {
            user: bearer.user,
            client: bearer.client,
            scopes: bearer.token.scopes,
            expires_at: bearer.token.expires_at,
        })
    }
}
