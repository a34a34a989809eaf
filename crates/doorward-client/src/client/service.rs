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

impl Client {
    /// The resource owner password credentials grant (RFC 6749 §4.3; Authlib's
    /// `fetch_token(username=…, password=…)`): the user's password sent to the token endpoint
    /// with the client's authentication.
    ///
    /// # Security
    /// RFC 9700 §2.4: it "MUST NOT be used". The application sees the user's password, the
    /// user learns to type it anywhere, and nothing but a password can sign them in (no second
    /// factor, no consent). For a provider and a client that offer nothing else.
    pub async fn insecure_password_grant(
        &self,
        username: &str,
        password: &str,
        scopes: &[&str],
    ) -> Result<Token, TokenError> {
        let mut form = vec![
            ("grant_type", "password".to_owned()),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        self.token_request(form).await
    }
}

/// RFC 8693 §3: the token type of an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What a token exchange asks for (RFC 8693 §2.1), besides the subject token.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TokenExchange {
    /// The services the new token is for, as `audience` values (logical names or URIs).
    pub audiences: Vec<String>,
    /// The resources the new token is for (`resource`, RFC 8707: absolute URIs).
    pub resources: Vec<String>,
    /// The scopes asked for; none: what the provider allows (a narrowing exchange names
    /// fewer than the subject token has).
    pub scopes: Vec<String>,
    /// The type of `subject_token`; default: an access token.
    pub subject_token_type: Option<String>,
}

impl TokenExchange {
    /// For the resource `uri` (RFC 8707 `resource`).
    pub fn for_resource(uri: impl Into<String>) -> Self {
        Self {
            resources: vec![uri.into()],
            ..Self::default()
        }
    }

    /// For the service named `audience` (RFC 8693 `audience`).
    pub fn for_audience(audience: impl Into<String>) -> Self {
        Self {
            audiences: vec![audience.into()],
            ..Self::default()
        }
    }

    /// The same, asking for `scopes` only.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl Client {
    /// Trades `subject_token` (a token this service received, typically a user's access
    /// token) for a token to call another service on the same user's behalf: token exchange
    /// (RFC 8693 §2), with this client's authentication (and a DPoP proof when it has a key).
    /// The answer's `issued_token_type` must be an access token; the new token has no
    /// refresh token: exchange again when it expires.
    pub async fn exchange_token(
        &self,
        subject_token: &str,
        request: &TokenExchange,
    ) -> Result<Token, TokenError> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token", subject_token.to_owned()),
            (
                "subject_token_type",
                request
                    .subject_token_type
                    .clone()
                    .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned()),
            ),
            ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
        ];
        for audience in &request.audiences {
            form.push(("audience", audience.clone()));
        }
        for resource in &request.resources {
            form.push(("resource", resource.clone()));
        }
        if !request.scopes.is_empty() {
            form.push(("scope", request.scopes.join(" ")));
        }
        let mut token = self.token_request(form).await?;
        match token
            .extra
            .get("issued_token_type")
            .and_then(|t| t.as_str())
        {
            Some(ACCESS_TOKEN_TYPE) => {}
            other => {
                return Err(TokenError::InvalidResponse {
                    reason: format!(
                        "the exchange issued {other:?}, not an access token (RFC 8693 §2.2.1)"
                    ),
                    body: String::new(),
                })
            }
        }
        token.id_token = None;
        Ok(token)
    }
}
