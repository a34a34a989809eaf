//! The records the engine keeps through its storage ports.

use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ScopeSet};
use uuid::Uuid;

use crate::opaque::TokenHash;
use crate::ports::UnixTime;

/// A registered OAuth client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Stable across restarts (derived from the Key for clients declared in the config).
    pub id: Uuid,
    /// `NAME@clients`.
    pub key: String,
    pub display_name: String,
    pub app_uri: String,
    /// Compared as exact strings (RFC 6749 §3.1.2.3).
    pub redirect_uris: Vec<RedirectUri>,
    /// Argon2id PHC string of the client secret; `None` for a public client.
    pub secret_hash: Option<String>,
}

/// A resource owner.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixTime,
}

/// A user to create or update by username.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Used only when the user does not exist yet.
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: UnixTime,
}

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub hash: TokenHash,
    pub user_id: Uuid,
    /// When the user authenticated (OIDC `auth_time`).
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A user's approval of a client for some scopes.
#[derive(Clone, Debug)]
pub struct ConsentRecord {
    pub user_id: Uuid,
    pub client_id: Uuid,
    pub scopes: ScopeSet,
    pub granted_at: UnixTime,
}

/// An issued authorization code (stored by hash only).
#[derive(Clone, Debug)]
pub struct CodeRecord {
    pub hash: TokenHash,
    pub client_id: Uuid,
    pub user_id: Uuid,
    /// The redirect URI the code was delivered to; the token request must match it.
    pub redirect_uri: RedirectUri,
    pub scopes: ScopeSet,
    /// Whether the authorization request named its scopes (so that the token response can say
    /// `scope` only when it differs, RFC 6749 §5.1).
    pub scope_requested: bool,
    pub challenge: Option<(CodeChallenge, CodeChallengeMethod)>,
    /// The grant family that every token issued from this code belongs to.
    pub family_id: Uuid,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An issued access token (stored by hash only).
#[derive(Clone, Debug)]
pub struct AccessTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub scopes: ScopeSet,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
}

/// An access token with the user and the client it was issued to: what a protected resource
/// needs, read in one go.
#[derive(Clone, Debug)]
pub struct BearerRecord {
    pub token: AccessTokenRecord,
    pub user: User,
    pub client: Client,
}

/// An issued refresh token (stored by hash only). Each works once (RFC 9700 §4.14.2).
#[derive(Clone, Debug)]
pub struct RefreshTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub scopes: ScopeSet,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
}
