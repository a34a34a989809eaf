//! Access tokens in the application's own format (TxOAuth2's `TokenFactory`): opaque random
//! strings and RFC 9068 JWTs are the built-ins ([`AccessTokenFormat`]); a client whose format
//! is [`AccessTokenFormat::Application`] gets what the application's [`AccessTokenIssuer`]
//! makes (a PASETO, a macaroon, a token with a prefix its secret scanner knows).
//!
//! The engine stays in charge of the token's life: it stores the token's SHA-256 like an
//! opaque token's, so bearer checks, introspection, revocation, DPoP binding and grant-family
//! revocation work unchanged, whatever the string says. The string must therefore be unique
//! and unguessable: [`NewAccessToken::unique`] is 256 fresh random bits the issuer must put in
//! it as they are. What comes back is checked: it holds them, and is 22 to 4096 characters of
//! RFC 6750 §2.1's `b64token`
//! (`A-Z a-z 0-9 - . _ ~ + /`, then `=` padding only), else the token request fails as a server
//! error (the application's mistake, not the client's).
//!
//! [`AccessTokenFormat`]: crate::model::AccessTokenFormat
//! [`AccessTokenFormat::Application`]: crate::model::AccessTokenFormat::Application

use doorward_proto::{ResourceUri, ScopeSet};
use uuid::Uuid;

use crate::clock::UnixTime;
use crate::error::Error;
use crate::model::Client;

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
    /// 256 random bits, base64url, fresh for this token: the token must hold them as they
    /// are (a token without them is refused).
    pub unique: &'a str,
}

/// Why an issued token was refused (a server error).
#[derive(Debug, thiserror::Error)]
#[error("the application's access token issuer made an unusable token: {0}")]
pub struct UnusableToken(&'static str);

/// RFC 6750 §2.1 `b64token`, 22 to 4096 characters.
pub(crate) fn check_token(token: &str, unique: &str) -> Result<(), UnusableToken> {
    if !(22..=4096).contains(&token.len()) {
        return Err(UnusableToken("not 22 to 4096 characters"));
    }
    // Two equal tokens would share one stored record: the unique part makes each new.
    if !token.contains(unique) {
        return Err(UnusableToken("it does not hold NewAccessToken::unique"));
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
