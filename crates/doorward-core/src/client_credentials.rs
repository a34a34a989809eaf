//! The `client_credentials` grant (RFC 6749 §4.4): a confidential client asks for a token for
//! itself, with no user.
//!
//! - Only when the server enables it ([`crate::Grants::client_credentials`]) and the client's
//!   [`crate::model::ClientPolicy::grant_types`] names it; a public client never gets it
//!   (§4.4: "MUST only be used by confidential clients"). Otherwise `unauthorized_client`.
//! - The scope is within the client's scopes (`ClientPolicy::scopes`) as at the authorization
//!   endpoint; without `scope`, the server's default scopes within them (§3.3). `openid` is
//!   `invalid_scope`: OpenID Connect is about a user, and there is none.
//! - No refresh token (§4.4.3: "SHOULD NOT be included"), no ID token.
//! - The token's subject is the client: the record has no user, its `sub` (JWT access token,
//!   RFC 9068 §2.2, and introspection, RFC 7662 §2.2) is the client's Key, the same value as
//!   `client_id`. Each token gets a fresh UUIDv7 family id, so revoking it touches nothing
//!   else; no `grants` row is written.
//! - `resource` (RFC 8707 §2) names the token's audience among the resources the client may
//!   have; an unknown or forbidden one is `invalid_target`.

use std::collections::HashMap;

use doorward_proto::{OAuthError, ScopeSet, TokenResponse};

use crate::error::Error;
use crate::grant::AuthenticatedClient;
use crate::model::GrantType;
use crate::Engine;

impl Engine {
    /// Answers `grant_type=client_credentials` for an authenticated client (RFC 6749 §4.4.2).
    pub(crate) async fn client_credentials(
        &self,
        authenticated: AuthenticatedClient<'_>,
        params: &HashMap<String, String>,
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let client = authenticated.client;
        if !client.policy.allows_grant(GrantType::ClientCredentials) {
            return Err(OAuthError::new(
                doorward_proto::ErrorCode::UnauthorizedClient,
                "this client may not use the client_credentials grant",
            )
            .into());
        }
        let allowed = self.allowed_scopes(client);
        let requested = ScopeSet::parse(params.get("scope").map_or("", String::as_str))
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        if requested.contains("openid") {
            return Err(OAuthError::invalid_scope(
                "openid cannot be granted without a user (client_credentials)",
            )
            .into());
        }
        let scopes = if requested.is_empty() {
            self.config
                .default_scopes
                .intersection(&allowed)
                .without("openid")
        } else if requested.is_subset(&allowed) {
            requested.clone()
        } else {
            return Err(OAuthError::invalid_scope(format!(
                "this client may ask only for the scopes: {}",
                allowed.without("openid")
            ))
            .into());
        };
        // RFC 8707 §2: the resources the client may have; there is no grant to narrow.
        let audience = crate::resource_indicators::narrowed(&self.config, client, &[], resources)?;
        let built = self
            .lone_access_token(authenticated, None, &scopes, &requested, audience)
            .await?;
        self.store.insert_tokens(&built.access, None).await?;
        self.note_issued("client_credentials", client, None, &scopes);
        Ok(built.response)
    }
}
