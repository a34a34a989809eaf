//! Extension grants (RFC 6749 §4.5): grant types an application defines, named by an absolute
//! URI, answered at the token endpoint like the built-in ones. TxOAuth2's
//! `onCustomGrantTypeRequest`; the JWT bearer grant ([`crate::jwt_bearer`]) is built on it.
//!
//! An [`ExtensionGrant`] decides; the engine issues. The grant reads the request's parameters
//! and answers who the token is for ([`Granted::subject`]) and its scope, or an RFC 6749 §5.2
//! error. The engine does everything else as for its own grants, so that no extension can
//! weaken it:
//!
//! - the client authenticates as at every grant (RFC 6749 §3.2.1), unless the grant itself
//!   proves which client sends the request ([`ExtensionGrant::client_of`]: an assertion the
//!   client signed, RFC 7523 §3.1);
//! - the client's [`ClientPolicy::extension_grants`] must name the grant type, else
//!   `unauthorized_client`;
//! - the scope is kept within what the client may have ([`ExtensionRequest::scopes`] is the
//!   request's, already checked), and `resource` (RFC 8707) within the client's resources;
//! - a DPoP proof binds the token (RFC 9449);
//! - one access token, opaque or RFC 9068 JWT as the client's format says; no refresh token
//!   and no ID token: nobody signed in here, and the client can present a fresh assertion
//!   when the token expires (RFC 7521 §4.1 expects short-lived tokens). Each token has a
//!   family of its own, so revoking it touches nothing else; a user's is a grant of that user
//!   and client, ended with the others when the user's grants of the client are revoked.
//!
//! [`ClientPolicy::extension_grants`]: crate::model::ClientPolicy::extension_grants

use std::collections::HashMap;
use std::sync::Arc;

use doorward_proto::{OAuthError, ScopeSet, TokenResponse};

use crate::error::Error;
use crate::grant::AuthenticatedClient;
use crate::model::{Client, CodeRecord, GrantType, DEVICE_REDIRECT};

pub use crate::engine::ExtensionGrant;
pub use crate::grant::{ExtensionRequest, Granted, RegisterError, Subject};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::{Issue, Redemption};
use crate::Engine;

impl Engine {
    /// Adds an extension grant ([`Engine::add_extension_grant`]).
    pub fn with_extension_grant(
        mut self,
        grant: Arc<dyn ExtensionGrant>,
    ) -> Result<Self, RegisterError> {
        self.add_extension_grant(grant)?;
        Ok(self)
    }

    /// Adds an extension grant. Its type must be an absolute URI (RFC 6749 §4.5: `urn:…`,
    /// `https://…`), not one of the built-in types, and registered once.
    pub fn add_extension_grant(
        &mut self,
        grant: Arc<dyn ExtensionGrant>,
    ) -> Result<(), RegisterError> {
        let name = grant.grant_type().to_owned();
        if GrantType::parse(&name).is_some() || ["password", "implicit"].contains(&name.as_str()) {
            return Err(RegisterError::BuiltIn(name));
        }
        let absolute = url::Url::parse(&name).is_ok();
        if !absolute || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RegisterError::NotAbsoluteUri(name));
        }
        if self.extension(&name).is_some() {
            return Err(RegisterError::Duplicate(name));
        }
        self.extension_grants.push(grant);
        Ok(())
    }

    /// The registered extension grant of this type.
    pub(crate) fn extension(&self, grant_type: &str) -> Option<&Arc<dyn ExtensionGrant>> {
        self.extension_grants
            .iter()
            .find(|g| g.grant_type() == grant_type)
    }

    /// The client a request without client authentication names through its extension
    /// grant ([`ExtensionGrant::client_of`]).
    pub(crate) async fn client_by_grant(
        &self,
        params: &HashMap<String, String>,
    ) -> Result<Option<Client>, Error> {
        let Some(grant) = params.get("grant_type").and_then(|g| self.extension(g)) else {
            return Ok(None);
        };
        let grant = Arc::clone(grant);
        let client = grant.client_of(self, params).await?;
        Ok(client.filter(|c| c.policy.allows_extension_grant(grant.grant_type())))
    }

    /// Answers a token request of a registered extension grant (module documentation).
    pub(crate) async fn extension_grant(
        &self,
        grant: Arc<dyn ExtensionGrant>,
        authenticated: AuthenticatedClient<'_>,
        proven_by_grant: bool,
        params: &HashMap<String, String>,
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let client = authenticated.client;
        if !client.policy.allows_extension_grant(grant.grant_type()) {
            return Err(OAuthError::new(
                doorward_proto::ErrorCode::UnauthorizedClient,
                format!("this client may not use the {} grant", grant.grant_type()),
            )
            .into());
        }
        // RFC 6749 §3.3: the scope named, within the client's; none named: the defaults.
        let (scopes, named) =
            self.requested_scopes(client, params.get("scope").map(String::as_str))?;
        let requested = if named {
            scopes.clone()
        } else {
            ScopeSet::default()
        };
        let audience = crate::resource_indicators::narrowed(&self.config, client, &[], resources)?;
        let granted = grant
            .decide(
                self,
                ExtensionRequest {
                    client,
                    client_proven_by_grant: proven_by_grant,
                    params,
                    scopes: &scopes,
                },
            )
            .await?;
        // What the grant answers, within what was asked (itself within the client's).
        let mut scopes = granted.scopes.intersection(&scopes);
        // No `auth_time`: nobody signed in here (RFC 9068 §2.2.1 leaves it out then).
        let user = match granted.subject {
            Subject::Client => {
                scopes = scopes.without("openid");
                None
            }
            Subject::User(id) => Some(
                self.store
                    .find_user(id)
                    .await?
                    .filter(|user| !user.is_disabled())
                    .ok_or_else(|| {
                        OAuthError::invalid_grant("the user of this grant does not exist")
                    })?,
            ),
        };
        if scopes.is_empty() && !requested.is_empty() {
            return Err(
                OAuthError::invalid_scope("nothing of the scope asked for is granted").into(),
            );
        }
        let built = self
            .lone_access_token(authenticated, user.as_ref(), &scopes, &requested, audience)
            .await?;
        let now = self.now();
        let record = &built.access;
        match user.map(|user| user.id) {
            // A user's token belongs to a grant family of that user and client, so that what
            // revokes the user's grants of the client revokes it too: opened by a code record
            // (a sentinel redirect URI: no token request can redeem it) spent at once with the
            // token, in one transaction, as the legacy grants do.
            Some(user_id) => {
                let code = CodeRecord {
                    hash: TokenHash::of(&self.new_credential(OpaqueKind::AuthorizationCode)),
                    client_id: client.id,
                    user_id,
                    // Invariant: a constant absolute URI.
                    redirect_uri: doorward_proto::RedirectUri::parse(DEVICE_REDIRECT)
                        .expect("a valid URI"),
                    scopes: scopes.clone(),
                    scope_requested: true,
                    challenge: None,
                    nonce: None,
                    family_id: record.family_id,
                    auth_time: now,
                    issued_at: now,
                    expires_at: now,
                    resources: record.resources.clone(),
                    dpop_jkt: None,
                    scope_narrowed: false,
                    grant_data: serde_json::Map::new(),
                    // Nobody signed in here.
                    amr: Vec::new(),
                };
                self.store.insert_code(&code).await?;
                let issue = Issue {
                    access: record,
                    refresh: None,
                };
                match self
                    .store
                    .redeem_code(&code.hash, client.id, now, Some(issue))
                    .await?
                {
                    Redemption::Fresh(_) => {}
                    _ => return Err(OAuthError::server_error().into()),
                }
            }
            None => self.store.insert_tokens(record, None).await?,
        }
        self.note_issued(grant.grant_type(), client, record.user_id, &scopes);
        Ok(built.response)
    }
}
