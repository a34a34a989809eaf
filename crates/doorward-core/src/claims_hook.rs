//! Claims added to what Doorward signs and answers: the ID token (OIDC Core §2), the JWT access
//! token (RFC 9068 §2.2), introspection (RFC 7662 §2.2) and UserInfo (OIDC Core §5.3), for every
//! grant (code, refresh, `client_credentials`, device, token exchange, extension grants).
//!
//! Three sources, merged in this order, a later one winning over an earlier one:
//!
//! 1. the client's [`ClientPolicy::claims`] (`[clients.NAME] claims` in `doorward serve`);
//! 2. the user's [`User::claims`], kept in the store (`[seed.user.NAME] claims`), for the
//!    clients the operator registered only (configuration or `doorward clients`; never one
//!    that registered itself or that a metadata document describes);
//! 3. the application's [`ClaimsHook`] (`Engine::with_claims_hook`), which sees the client,
//!    the user (none for a `client_credentials` token) and the scopes, and can answer per
//!    target.
//!
//! None of them can change what Doorward writes itself: a [`RESERVED`] name is dropped
//! wherever it comes from (the configuration refuses one at start), and an added claim never
//! replaces one Doorward put in the answer (the user's `name` or `email`, say).
//!
//! [`ClientPolicy::claims`]: crate::model::ClientPolicy::claims
//! [`User::claims`]: crate::model::User::claims

use async_trait::async_trait;
use doorward_proto::ScopeSet;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::{Client, User};

/// The claims no source may write: those of JWT (RFC 7519 §4.1), OpenID Connect's ID token
/// (Core §2, §3.1.3.6, §3.3.2.11; Front-Channel and Back-Channel Logout `sid`, `events`), RFC
/// 9068 access tokens (`client_id`, `scope`), DPoP's `cnf` (RFC 9449 §6), token exchange's
/// `act` and `may_act` (RFC 8693 §4), and introspection's answer (RFC 7662 §2.2).
pub const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "events",
    "cnf",
    "act",
    "may_act",
    "client_id",
    "scope",
    "scp",
    "active",
    "token_type",
    "username",
    "typ",
];

/// Whether `name` is one of the [`RESERVED`] claims.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// Where added claims go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsTarget {
    IdToken,
    /// A JWT access token (RFC 9068); an opaque token carries no claims.
    AccessToken,
    Introspection,
    UserInfo,
}

/// What the claims are added to.
#[derive(Clone, Copy)]
pub struct ClaimsRequest<'a> {
    pub target: ClaimsTarget,
    /// The client the token was issued to.
    pub client: &'a Client,
    /// The token's user; `None` for a token whose subject is the client.
    pub user: Option<&'a User>,
    /// The token's scopes.
    pub scopes: &'a ScopeSet,
    /// What the application attached to the grant (`embedding::GrantTerms::data`; empty for
    /// most grants).
    pub grant_data: &'a Map<String, Value>,
}

/// The application's claims (the feature most asked of Hydra: roles, tenant, plan…).
#[async_trait]
pub trait ClaimsHook: Send + Sync {
    /// The claims to add. [`RESERVED`] names are dropped, and a name Doorward already wrote
    /// keeps Doorward's value. An error fails the request (a server error): answer an empty
    /// map to add nothing.
    async fn claims(&self, request: ClaimsRequest<'_>) -> Result<Map<String, Value>, Error>;
}
