//! UserInfo (OIDC Core §5.3): the claims of a bearer token's user, for its scopes.

use doorward_proto::OAuthError;
use serde_json::{Map, Value};

use crate::claims::user_claims;
use crate::dpop::Presentation;
use crate::error::Error;
use crate::Engine;

impl Engine {
    /// The UserInfo response (OIDC Core §5.3.2) for a bearer token: its user's claims for its
    /// scopes. The token must hold `openid` (§5.3: "the Access Token obtained from an OpenID
    /// Connect Authentication Request").
    pub async fn userinfo(&self, token: &str) -> Result<Map<String, Value>, Error> {
        self.userinfo_presented(&Presentation::bearer(token)).await
    }

    /// [`Engine::userinfo`] for a token presented with its scheme and `DPoP` header (RFC
    /// 9449 §7).
    pub async fn userinfo_presented(
        &self,
        presented: &Presentation<'_>,
    ) -> Result<Map<String, Value>, Error> {
        let info = self.check_presented_token(presented).await?;
        let user = info.require_user()?;
        if !info.scopes.contains("openid") {
            return Err(OAuthError::new(
                doorward_proto::ErrorCode::InsufficientScope,
                "the access token was not issued for the openid scope",
            )
            .into());
        }
        let mut claims = user_claims(user, &info.scopes);
        self.add_claims(
            &mut claims,
            crate::claims_hook::ClaimsRequest {
                target: crate::claims_hook::ClaimsTarget::UserInfo,
                client: &info.client,
                user: Some(user),
                scopes: &info.scopes,
                grant_data: &info.grant_data,
            },
        )
        .await?;
        Ok(claims)
    }
}
