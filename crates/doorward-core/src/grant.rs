//! What a grant issues, as the flows that issue tokens share it: the grant family's common
//! values, the authenticated client, and the tokens built for a response before the store
//! keeps them.

use std::collections::HashMap;

use doorward_proto::{ResourceUri, ScopeSet, TokenResponse, TokenType};
use uuid::Uuid;

use crate::model::{AccessTokenRecord, Client, CodeRecord, RefreshTokenRecord};
use crate::ports::Issue;

/// What every token of one grant family shares.
pub(crate) struct Grant<'a> {
    pub(crate) user_id: Uuid,
    pub(crate) family_id: Uuid,
    pub(crate) scopes: &'a ScopeSet,
    pub(crate) auth_time: i64,
    pub(crate) nonce: Option<&'a str>,
    /// The resources of the authorization request (RFC 8707 §2.1), which its refresh tokens
    /// keep so that a later token request may narrow them (§2.2).
    pub(crate) resources: &'a [ResourceUri],
    /// What the application attached to the grant ([`CodeRecord::grant_data`]).
    pub(crate) data: &'a serde_json::Map<String, serde_json::Value>,
    /// How the user authenticated ([`CodeRecord::amr`]).
    pub(crate) amr: &'a [String],
}

/// A grant without data (device, legacy and extension grants).
pub(crate) static NO_DATA: std::sync::LazyLock<serde_json::Map<String, serde_json::Value>> =
    std::sync::LazyLock::new(serde_json::Map::new);

impl<'a> Grant<'a> {
    /// The grant of an authorization code (OIDC Core §3.1.3.3: its nonce goes in the ID token).
    pub(crate) fn of_code(code: &'a CodeRecord) -> Self {
        Self {
            user_id: code.user_id,
            family_id: code.family_id,
            scopes: &code.scopes,
            auth_time: code.auth_time,
            nonce: code.nonce.as_deref(),
            resources: &code.resources,
            data: &code.grant_data,
            amr: &code.amr,
        }
    }

    /// The grant of a refresh token (OIDC Core §12.2: no nonce in a refreshed ID token).
    pub(crate) fn of_refresh(refresh: &'a RefreshTokenRecord) -> Self {
        Self {
            user_id: refresh.user_id,
            family_id: refresh.family_id,
            scopes: &refresh.scopes,
            auth_time: refresh.auth_time,
            nonce: None,
            resources: &refresh.resources,
            data: &refresh.grant_data,
            amr: &refresh.amr,
        }
    }
}

impl Grant<'_> {
    /// When the grant family started: the time in its `family_id`, a UUIDv7 the engine made
    /// from its clock when the code was issued (`Engine::new_time_ordered_uuid`), the same
    /// instant the stores keep as the grant's `created_at`. Read from the id, it needs no
    /// store read and no port; an id without a time (made by no engine) counts from
    /// `auth_time`, which is never later.
    pub(crate) fn started_at(&self) -> i64 {
        match self.family_id.get_timestamp() {
            Some(ts) => i64::try_from(ts.to_unix().0).unwrap_or(self.auth_time),
            None => self.auth_time,
        }
    }
}

/// An authenticated client and the `client_id` it used.
#[derive(Clone, Copy)]
pub(crate) struct AuthenticatedClient<'a> {
    pub(crate) client: &'a Client,
    pub(crate) audience: &'a str,
    /// The thumbprint of the key of the request's DPoP proof (RFC 9449): the tokens issued
    /// are bound to it. `None`: bearer tokens.
    pub(crate) dpop_jkt: Option<&'a str>,
}

/// `DPoP` for tokens bound to a key (RFC 9449 §5), else `Bearer`.
pub(crate) fn token_type(dpop_jkt: Option<&str>) -> TokenType {
    match dpop_jkt {
        Some(_) => TokenType::DPoP,
        None => TokenType::Bearer,
    }
}

/// Tokens built for a response, to be stored with the redemption that issues them.
pub(crate) struct Built {
    pub(crate) response: TokenResponse,
    pub(crate) access: AccessTokenRecord,
    pub(crate) refresh: Option<RefreshTokenRecord>,
}

impl Built {
    pub(crate) fn issue(&self) -> Issue<'_> {
        Issue {
            access: &self.access,
            refresh: self.refresh.as_ref(),
        }
    }

    /// The same tokens without the refresh token (the implicit grant issues none, RFC 6749
    /// §4.2.2).
    pub(crate) fn without_refresh(mut self) -> Self {
        self.refresh = None;
        self.response.refresh_token = None;
        self
    }
}

/// A token request of an extension grant, as the engine hands it to the grant.
#[derive(Clone, Copy)]
pub struct ExtensionRequest<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    /// The client authenticated only through [`ExtensionGrant::client_of`](crate::extension_grant::ExtensionGrant::client_of): the grant's
    /// parameters are all there is to prove who it is, and `decide` must check them so.
    pub client_proven_by_grant: bool,
    /// Every form parameter of the request, `grant_type` included.
    pub params: &'a HashMap<String, String>,
    /// The scope asked for, within what the client may have; the server's default scopes
    /// (within the client's) when the request names none (RFC 6749 §3.3).
    pub scopes: &'a ScopeSet,
}

/// What an extension grant grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    pub subject: Subject,
    /// The token's scope: [`ExtensionRequest::scopes`] or fewer. Anything beyond what the
    /// client may have is dropped; `openid` only with a user.
    pub scopes: ScopeSet,
}

/// Whom a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The client itself, as with `client_credentials` (RFC 9068 §2.2: `sub` is the client).
    Client,
    /// A user of this server, by id.
    User(Uuid),
}

/// Why an extension grant could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the grant type `{0}` is not an absolute URI (RFC 6749 section 4.5)")]
    NotAbsoluteUri(String),
    #[error("the grant type `{0}` is one of the server's own")]
    BuiltIn(String),
    #[error("the grant type `{0}` is registered twice")]
    Duplicate(String),
}

/// What the application grants when it approves a request itself (TxOAuth2's
/// `grantAccess(scope=…, additionalData=…)`; `Decision::Grant`): fewer scopes than asked, and
/// data that travels with the grant.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GrantTerms {
    /// The scopes granted, within the request's (narrowing only: what the request did not ask
    /// for is dropped); `None`: as asked. The token response then says the scope (RFC 6749
    /// §5.1).
    pub scopes: Option<ScopeSet>,
    /// A JSON object kept with the grant family: every token of the grant, refreshes included,
    /// carries it to the claims hook (`ClaimsRequest::grant_data`) and to resource servers
    /// that check tokens in the store (`TokenInfo::grant_data`).
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl GrantTerms {
    /// The request's scopes, within `scopes`.
    pub fn narrowed_to(mut self, scopes: ScopeSet) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// `data` travels with the grant.
    pub fn with_data(mut self, data: serde_json::Map<String, serde_json::Value>) -> Self {
        self.data = data;
        self
    }

    /// The scopes granted of those `asked`.
    pub(crate) fn granted(&self, asked: &ScopeSet) -> ScopeSet {
        match &self.scopes {
            Some(scopes) => scopes.intersection(asked),
            None => asked.clone(),
        }
    }
}
