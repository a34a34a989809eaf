//! A token for the client itself: the `client_credentials` grant (RFC 6749 §4.4), for a
//! backend service calling an API on its own behalf, with no user.

use super::Client;
use crate::error::TokenError;
use crate::token::Token;

impl Client {
    /// Asks for a token for this client itself (RFC 6749 §4.4.2), with its client
    /// authentication (which the grant requires: §4.4, "MUST only be used by confidential
    /// clients"). `scopes` empty: no `scope` parameter, the provider's default for the
    /// client (the configured scopes are a user sign-in's, often `openid`, which such a token
    /// cannot carry). The answer has no refresh token (§4.4.3: "SHOULD NOT be included"): ask
    /// again when it expires. One that comes anyway is kept, an ID token is dropped.
    pub async fn client_credentials(&self, scopes: &[&str]) -> Result<Token, TokenError> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let mut token = self.token_request(form).await?;
        token.id_token = None;
        Ok(token)
    }
}
