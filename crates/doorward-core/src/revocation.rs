//! Token revocation (RFC 7009).

use doorward_proto::OAuthError;

use crate::audit::{kinds, Actor, AuditEvent};
use crate::error::Error;
use crate::opaque::TokenHash;
use crate::ports::Change;
use crate::request::TokenRequest;
use crate::Engine;

impl Engine {
    /// Token revocation (RFC 7009 §2.1): the client authenticates; a token it does not own,
    /// or that does not exist, is answered the same as a revoked one (§2.2: "invalid tokens do
    /// not cause an error response"). Revoking a refresh token revokes its whole grant family
    /// (§2.1: "SHOULD also invalidate all access tokens based on the same authorization grant").
    pub async fn revoke(&self, request: &TokenRequest) -> Result<(), Error> {
        let (client, _) = self
            .authenticate_client(request, crate::request::ClientEndpoint::Revocation)
            .await?;
        let Some(token) = request.params.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::invalid_request("token is missing").into());
        };
        let hash = TokenHash::of(token);
        let now = self.now();
        if let Some(refresh) = self.store.find_refresh_token(&hash).await? {
            if refresh.client_id == client.id {
                self.writing(
                    Change::Family(refresh.family_id),
                    self.store.revoke_family(refresh.family_id, now),
                )
                .await?;
                self.note(
                    AuditEvent::new(kinds::TOKEN_REVOKED, Actor::Client(client.id))
                        .client(client.id)
                        .user(refresh.user_id)
                        .with("token_type", "refresh_token")
                        .with("family", refresh.family_id.to_string()),
                );
            }
            return Ok(());
        }
        if let Some(access) = self.store.find_access_token(&hash).await? {
            if access.client_id == client.id {
                self.writing(
                    Change::AccessToken(hash),
                    self.store.revoke_access_token(&hash, now),
                )
                .await?;
                self.note(
                    AuditEvent::new(kinds::TOKEN_REVOKED, Actor::Client(client.id))
                        .client(client.id)
                        .user(access.user_id)
                        .with("token_type", "access_token"),
                );
            }
        }
        Ok(())
    }
}
