//! The claims Doorward signs and releases: a user's claims per scope (OIDC Core §5.4), the
//! claims of an ID token (OIDC Core §2) and of a JWT access token (RFC 9068 §2.2). Values only;
//! the token flow fills and signs them.

use doorward_proto::ScopeSet;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock::UnixTime;
use crate::model::{Client, User};

/// The claims of `user` that `scopes` release (OIDC Core §5.4), `sub` included.
pub fn user_claims(user: &User, scopes: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id.to_string()));
    if scopes.contains("profile") {
        claims.insert("name".into(), json!(user.display_name));
        claims.insert("preferred_username".into(), json!(user.username));
    }
    if scopes.contains("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    claims
}

#[derive(Serialize)]
pub(crate) struct IdTokenClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) exp: UnixTime,
    pub(crate) iat: UnixTime,
    pub(crate) auth_time: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<&'a str>,
    /// Left out of `Ed25519` ID tokens (RFC 9864): OIDC Core §3.1.3.6 makes it optional in
    /// the code flow, and Authlib (1.6) finds no hash for that name (`sha25519`) and refuses
    /// the token; every other alg carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) at_hash: Option<String>,
    /// How the user authenticated (RFC 8176 §2); left out when the sign-in did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) amr: Option<&'a [String]>,
    /// The class of that authentication ([`crate::acr`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) acr: Option<&'static str>,
    #[serde(flatten)]
    pub(crate) user: Map<String, Value>,
}

/// What an ID token is issued for.
pub(crate) struct IdTokenInput<'a> {
    pub client: &'a Client,
    /// The `client_id` the client named itself with: the `aud` it checks.
    pub audience: &'a str,
    pub user: &'a User,
    pub scopes: &'a ScopeSet,
    pub auth_time: UnixTime,
    /// How the user authenticated (RFC 8176).
    pub amr: &'a [String],
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    /// What the application attached to the grant.
    pub grant_data: &'a Map<String, Value>,
}

#[derive(Serialize)]
pub(crate) struct AccessTokenClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: String,
    /// One string, or an array for several resources (RFC 9068 §2.2, RFC 8707).
    pub(crate) aud: Value,
    pub(crate) exp: UnixTime,
    pub(crate) iat: UnixTime,
    pub(crate) jti: String,
    pub(crate) client_id: &'a str,
    pub(crate) scope: String,
    /// Left out of a `client_credentials` token: no user authenticated (RFC 9068 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<UnixTime>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1: `{"jkt": …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cnf: Option<Value>,
    /// Who acts for the subject (RFC 8693 §4.1), on a token issued by an exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) act: Option<Value>,
    /// Added claims ([`crate::claims_hook`]): never a name above (all reserved).
    #[serde(flatten)]
    pub(crate) added: Map<String, Value>,
}

/// What a JWT access token may carry beyond its grant: `auth_time`, its DPoP key, its actor.
#[derive(Clone, Copy, Default)]
pub(crate) struct AccessTokenExtras<'a> {
    /// Left out for a token without a user (RFC 9068 §2.2.1).
    pub(crate) auth_time: Option<UnixTime>,
    /// `cnf.jkt` (RFC 9449 §6.1).
    pub(crate) dpop_jkt: Option<&'a str>,
    /// `act` as JSON (RFC 8693 §4.1).
    pub(crate) act: Option<&'a str>,
    /// When the token expires; `None`: the access-token lifetime from now. A token exchange
    /// ends no later than its subject token.
    pub(crate) expires_at: Option<UnixTime>,
    /// What the application attached to the grant, for the claims hook.
    pub(crate) grant_data: Option<&'a Map<String, Value>>,
    /// The token's user when the caller has read it already (a JWT reads it for its claims).
    pub(crate) user: Option<&'a User>,
}
