//! Access tokens in the application's own format (TxOAuth2's `TokenFactory`): opaque random
//! strings and RFC 9068 JWTs are the built-ins ([`AccessTokenFormat`]); a client whose format
//! is [`AccessTokenFormat::Application`] gets what the application's [`AccessTokenIssuer`]
//! makes (a PASETO, a macaroon, a token with a prefix its secret scanner knows).
//!
//! The engine stays in charge of the token's life: it stores the token's SHA-256 like an
//! opaque token's, so bearer checks, introspection, revocation, DPoP binding and grant-family
//! revocation work unchanged, whatever the string says. The string must therefore be unique
//! and unguessable: [`NewAccessToken::unique`] is 256 fresh random bits for the issuer to put in
//! it. What comes back is checked: 22 to 4096 characters of RFC 6750 §2.1's `b64token`
//! (`A-Z a-z 0-9 - . _ ~ + /`, then `=` padding only), else the token request fails as a server
//! error (the application's mistake, not the client's).
//!
//! [`AccessTokenFormat`]: crate::model::AccessTokenFormat
//! [`AccessTokenFormat::Application`]: crate::model::AccessTokenFormat::Application

use std::sync::Arc;

use doorward_proto::{ResourceUri, ScopeSet};
use uuid::Uuid;

use crate::claims::AccessTokenExtras;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::model::{AccessTokenFormat, Client};
use crate::opaque::OpaqueKind;
use crate::ports::StoreError;
use crate::Engine;

/// Makes the access tokens of the clients whose format is
/// [`AccessTokenFormat::Application`](crate::model::AccessTokenFormat::Application).
pub trait AccessTokenIssuer: Send + Sync {
    /// The token for `token`: a string the engine stores by hash and answers as
    /// `access_token`. An error fails the request as a server error.
    fn issue(&self, token: &NewAccessToken<'_>) -> Result<String, Error>;
}

/// What an access token is issued for.
#[derive(Clone, Copy, Debug)]
pub struct NewAccessToken<'a> {
    pub client: &'a Client,
    /// The user; `None` for a token whose subject is the client.
    pub user_id: Option<Uuid>,
    pub scopes: &'a ScopeSet,
    /// Its resources (RFC 8707); empty: the default audience.
    pub resources: &'a [ResourceUri],
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// The thumbprint of the DPoP key it is bound to (RFC 9449).
    pub dpop_jkt: Option<&'a str>,
    /// 256 random bits, base64url, fresh for this token: put them in the token.
    pub unique: &'a str,
}

/// Why an issued token was refused (a server error).
#[derive(Debug, thiserror::Error)]
#[error("the application's access token issuer made an unusable token: {0}")]
pub struct UnusableToken(&'static str);

impl Engine {
    /// Makes the access tokens of [`AccessTokenFormat::Application`] clients (module
    /// documentation).
    pub fn with_access_token_issuer(mut self, issuer: Arc<dyn AccessTokenIssuer>) -> Self {
        self.token_issuer = Some(issuer);
        self
    }

    /// A new access token for `client` in its format: opaque, an RFC 9068 JWT, or the
    /// application's. The one place that chooses.
    pub(crate) async fn mint_access_token(
        &self,
        client: &Client,
        user_id: Option<Uuid>,
        scopes: &ScopeSet,
        resources: &[ResourceUri],
        extras: AccessTokenExtras<'_>,
    ) -> Result<String, Error> {
        match (client.policy.access_token_format, &self.token_issuer) {
            (AccessTokenFormat::Jwt, _) => {
                self.jwt_access_token(client, user_id, scopes, resources, extras)
                    .await
            }
            (AccessTokenFormat::Application, Some(issuer)) => {
                let now = self.now();
                let mut random = [0u8; 32];
                self.random.fill(&mut random);
                let unique = {
                    use base64::Engine as _;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
                };
                let token = issuer.issue(&NewAccessToken {
                    client,
                    user_id,
                    scopes,
                    resources,
                    issued_at: now,
                    expires_at: extras
                        .expires_at
                        .unwrap_or(now + self.config.lifetimes.access_token),
                    dpop_jkt: extras.dpop_jkt,
                    unique: &unique,
                })?;
                check_token(&token).map_err(|e| StoreError::Other(Box::new(e)))?;
                Ok(token)
            }
            _ => Ok(self.new_credential(OpaqueKind::AccessToken)),
        }
    }
}

/// RFC 6750 §2.1 `b64token`, 22 to 4096 characters.
fn check_token(token: &str) -> Result<(), UnusableToken> {
    if !(22..=4096).contains(&token.len()) {
        return Err(UnusableToken("not 22 to 4096 characters"));
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(UnusableToken("not an RFC 6750 b64token"));
    }
    Ok(())
}
