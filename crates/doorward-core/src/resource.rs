//! Bearer tokens presented to a protected resource (RFC 6750).

use doorward_proto::{ErrorCode, OAuthError, ScopeSet};

use crate::dpop::Presentation;
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
    pub user: Option<std::sync::Arc<User>>,
    pub client: std::sync::Arc<Client>,
    pub scopes: ScopeSet,
    pub expires_at: UnixTime,
    /// What the token is meant for (`aud`): its resources (RFC 8707), else the default
    /// audience (the client's `access_token_audience`, else the issuer).
    pub audience: Vec<String>,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6): it must be
    /// presented with `Authorization: DPoP` and a proof made with that key. `None`: a bearer
    /// token.
    pub dpop_jkt: Option<String>,
    /// What the application attached to the grant (TxOAuth2's `additionalData`;
    /// `embedding::GrantTerms::data`): the same for every token of the grant.
    pub grant_data: std::sync::Arc<serde_json::Map<String, serde_json::Value>>,
}

impl TokenInfo {
    /// The token's user, or `insufficient_scope` (RFC 6750 §3.1, 403) for a token without
    /// one: the token is valid (introspection calls it active, so `invalid_token` would send
    /// the client to refresh for nothing), it just grants nothing about a user.
    pub fn require_user(&self) -> Result<&User, OAuthError> {
        self.user.as_deref().ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InsufficientScope,
                "this resource needs a token issued for a user, not to a client for itself",
            )
        })
    }
}

impl Engine {
    /// Resolves a bearer access token for the issuer's own API (UserInfo, the Eternaltwin
    /// API): a token with the default audience, or one whose resources name the issuer. A
    /// token narrowed to other resources (RFC 8707) is not meant for it: `invalid_token`, like
    /// unknown, expired and revoked tokens (RFC 6750 §3.1), without saying which.
    ///
    /// The token is taken as presented with `Authorization: Bearer`: a DPoP-bound one is
    /// refused ([`Engine::check_presented_token`] takes the scheme and the proof).
    pub async fn check_access_token(&self, token: &str) -> Result<TokenInfo, Error> {
        self.check_presented_token(&Presentation::bearer(token))
            .await
    }

    /// [`Engine::check_access_token`] for a token presented with its scheme and `DPoP`
    /// header: a DPoP-bound token (RFC 9449 §7) needs the `DPoP` scheme and a proof by its
    /// key for this request.
    pub async fn check_presented_token(
        &self,
        presented: &Presentation<'_>,
    ) -> Result<TokenInfo, Error> {
        let (info, resources) = self.find_live_token(presented.token).await?;
        if !crate::resource_indicators::for_own_api(&self.config, &resources) {
            return Err(invalid().into());
        }
        self.check_token_binding(presented, info.dpop_jkt.as_deref())
            .await?;
        Ok(info)
    }

    /// Resolves a bearer access token whatever its audience, for a resource server that
    /// checks [`TokenInfo::audience`] itself (`doorward_axum::protect::ResourceServer`), and
    /// its DPoP binding ([`TokenInfo::dpop_jkt`], with [`Engine::check_token_binding`]).
    /// Unknown, expired and revoked tokens are `invalid_token` (RFC 6750 §3.1).
    pub async fn resolve_access_token(&self, token: &str) -> Result<TokenInfo, Error> {
        Ok(self.find_live_token(token).await?.0)
    }

    async fn find_live_token(
        &self,
        token: &str,
    ) -> Result<(TokenInfo, Vec<doorward_proto::ResourceUri>), Error> {
        let bearer = self
            .find_bearer(&TokenHash::of(token))
            .await?
            .filter(|b| b.is_live(self.now()))
            .ok_or_else(invalid)?;
        let audience = crate::resource_indicators::audience(
            &bearer.token.resources,
            &bearer.client,
            &self.config.issuer,
        );
        Ok((
            TokenInfo {
                user: bearer.user,
                client: bearer.client,
                scopes: bearer.token.scopes,
                expires_at: bearer.token.expires_at,
                audience,
                dpop_jkt: bearer.token.dpop_jkt,
                grant_data: bearer.grant_data,
            },
            bearer.token.resources,
        ))
    }
}

fn invalid() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid")
}
