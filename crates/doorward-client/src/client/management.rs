//! What a client does with a token it holds, besides using it: refresh (RFC 6749 §6),
//! revocation (RFC 7009) and introspection (RFC 7662).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Client, Endpoint};
use crate::error::{RefreshError, TokenError, TokenManagementError};
use crate::http::RawResponse;
use crate::id_token;
use crate::token::{body_object, provider_error, Token};

/// The answer of an introspection endpoint (RFC 7662 §2.2).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    pub active: bool,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `token_type_hint` (RFC 7009 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl Client {
    /// Refreshes a token (RFC 6749 §6). A rotated refresh token replaces the old one; when the
    /// provider sends none, the old one is kept.
    pub async fn refresh(&self, token: &Token) -> Result<Token, RefreshError> {
        let refresh_token = token.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let mut fresh = self
            .token_request(vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh_token.to_owned()),
            ])
            .await?;
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = token.refresh_token.clone();
        }
        match fresh.id_token().map(str::to_owned) {
            Some(raw) => {
                let claims = self
                    .validate_id_token(&raw, None, Some(fresh.access_token()))
                    .await?;
                let previous = token.id_token().and_then(id_token::unverified_subject);
                if previous.is_some_and(|sub| sub != claims.subject) {
                    return Err(RefreshError::SubjectChanged);
                }
            }
            None => fresh.id_token = token.id_token.clone(),
        }
        Ok(fresh)
    }

    /// Revokes a token (RFC 7009): the refresh token when there is one (which revokes its
    /// access tokens at most providers), else the access token.
    pub async fn revoke(&self, token: &Token) -> Result<(), TokenManagementError> {
        match token.refresh_token() {
            Some(refresh) => {
                self.revoke_token(refresh, Some(TokenTypeHint::RefreshToken))
                    .await
            }
            None => {
                self.revoke_token(token.access_token(), Some(TokenTypeHint::AccessToken))
                    .await
            }
        }
    }

    /// Revokes one token value (RFC 7009 §2.1).
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), TokenManagementError> {
        let url = self.endpoint(Endpoint::Revocation).await?;
        let mut form = vec![("token", token.to_owned())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint.as_str().to_owned()));
        }
        let response = self.authenticated_post(url, form).await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(error_response(&response).into())
        }
    }

    /// Asks the provider about a token (RFC 7662).
    pub async fn introspect(&self, token: &str) -> Result<Introspection, TokenManagementError> {
        let url = self.endpoint(Endpoint::Introspection).await?;
        let response = self
            .authenticated_post(url, vec![("token", token.to_owned())])
            .await?;
        if !response.status.is_success() {
            return Err(error_response(&response).into());
        }
        response
            .json()
            .map_err(TokenManagementError::InvalidResponse)
    }
}

/// A non-success answer of a token, revocation or introspection endpoint.
fn error_response(response: &RawResponse) -> TokenError {
    let status = response.status.as_u16();
    match body_object(response).as_ref().and_then(provider_error) {
        Some(error) => TokenError::Provider { status, error },
        None => TokenError::UnexpectedResponse {
            status,
            body: response.text(),
        },
    }
}
