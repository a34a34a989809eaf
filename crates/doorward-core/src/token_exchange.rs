//! Token exchange (RFC 8693) for delegation: a service that received a user's access token
//! trades it for a narrower one to call another service for the user.
//!
//! What this server decides, where the RFC leaves it to policy:
//! - **Who may exchange**: a confidential client whose `grant_types` name the grant (a public
//!   client cannot: [`crate::model::ClientPolicy::allows_grant`]); another client's token only
//!   a resource server (`resource_server`, the operator's word that tokens are sent to it).
//! - **Whose tokens**: a user's (a `client_credentials` token acts for no one).
//! - **For which audiences**: the `resource` (RFC 8707) and `audience` values it sends, each
//!   one of the resources this client may name ([`crate::model::ClientPolicy::resources`]
//!   within the server's, else `invalid_target`); none: the default audience.
//! - **What**: an access token of this server (`subject_token_type`
//!   `urn:ietf:params:oauth:token-type:access_token`), live; one bound to a DPoP key only with a
//!   proof of that key. An access token is issued (`requested_token_type` absent or that
//!   type), never a refresh token.
//! - **Down-scoping only**: the scope is within the subject token's and the client's; the
//!   lifetime ends no later than the subject token's.
//! - **`act`** (§4.1): the exchanging client, with the subject token's own `act` nested in it,
//!   so that a chain of services shows every step; at most [`MAX_ACT_DEPTH`] deep. A client
//!   that narrows its own token (no `act` before) gets no `act`.
//! - **Revocation**: the token belongs to the subject token's grant family, so withdrawing
//!   the original approval revokes it too; the user's account page lists the delegated tokens
//!   and revokes them per acting client (`account.rs`). `actor_token` is refused: the actor is
//!   the authenticated client.

use std::collections::HashMap;

use doorward_proto::{ErrorCode, OAuthError, ScopeSet, TokenResponse};
use serde_json::{json, Value};

use crate::claims::AccessTokenExtras;
use crate::error::Error;
use crate::grant::{token_type, AuthenticatedClient};
use crate::model::AccessTokenRecord;
use crate::opaque::TokenHash;
use crate::Engine;

/// RFC 8693 §3: an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How many actors an `act` chain may hold.
pub const MAX_ACT_DEPTH: usize = 8;

fn invalid_request(why: &str) -> Error {
    OAuthError::invalid_request(why.to_owned()).into()
}

impl Engine {
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693 §2.1).
    pub(crate) async fn token_exchange(
        &self,
        authenticated: AuthenticatedClient<'_>,
        params: &HashMap<String, String>,
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let client = authenticated.client;
        let param = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let subject =
            param("subject_token").ok_or_else(|| invalid_request("subject_token is missing"))?;
        match param("subject_token_type") {
            None => return Err(invalid_request("subject_token_type is missing")),
            Some(ACCESS_TOKEN_TYPE) => {}
            Some(_) => {
                return Err(invalid_request(
                    "only access tokens of this server can be exchanged \
                     (subject_token_type urn:ietf:params:oauth:token-type:access_token)",
                ))
            }
        }
        if param("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(invalid_request(
                "only an access token can be issued (requested_token_type)",
            ));
        }
        if param("actor_token").is_some() || param("actor_token_type").is_some() {
            return Err(invalid_request(
                "actor_token is not accepted: the authenticated client is the actor",
            ));
        }
        let now = self.now();
        let record = self
            .find_bearer(&TokenHash::of(subject))
            .await?
            .filter(|b| b.is_live(now))
            .ok_or_else(|| invalid_request("subject_token is not an active access token"))?;
        let token = &record.token;
        // Delegation acts for a user: a client's own token (client_credentials) stays its own.
        if record.user.is_none() {
            return Err(invalid_request(
                "subject_token stands for no user: only a user's token can be exchanged",
            ));
        }
        // A token issued to another client reaches this one only as the API it was sent to:
        // only a client the operator made a resource server may exchange it (the trust it has
        // to introspect other clients' tokens). Its own tokens any exchanging client may.
        let own_token = record.client.id == client.id;
        if !own_token && !client.policy.resource_server {
            return Err(invalid_request(
                "subject_token was issued to another client: only a resource server \
                 (resource_server = true) exchanges the tokens sent to it",
            ));
        }
        // A bound token proves nothing without its key (RFC 9449 §7): exchanged without a
        // proof of it, a stolen bound token would become an unbound one.
        if let Some(bound) = &token.dpop_jkt {
            if authenticated.dpop_jkt != Some(bound.as_str()) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "subject_token is bound to a DPoP key: the exchange must prove that key",
                )
                .into());
            }
        }
        let scopes = self.exchanged_scopes(client, &token.scopes, param("scope"))?;
        // `audience` names a resource here (RFC 8693 §2.1 lets the server decide what a
        // logical name means); both go through the client's resource policy.
        let mut targets: Vec<&str> = resources.to_vec();
        targets.extend(param("audience"));
        // A client narrowing its own token stays within that token's resources (RFC 8707
        // §2.2, as a refresh); a resource server passing a token on names its own targets.
        let granted: &[_] = if own_token { &token.resources } else { &[] };
        let audience =
            crate::resource_indicators::narrowed(&self.config, client, granted, &targets)?;
        let act = actor_chain(&client.key, own_token, token)?;
        let expires_at = (now + self.config.lifetimes.access_token).min(token.expires_at);
        let access = self
            .mint_access_token(
                client,
                token.user_id,
                &scopes,
                &audience,
                AccessTokenExtras {
                    dpop_jkt: authenticated.dpop_jkt,
                    act: act.as_deref(),
                    // The token ends no later than its subject token, in its `exp` too.
                    expires_at: Some(expires_at),
                    // It belongs to the subject token's grant, and carries its data.
                    grant_data: Some(&record.grant_data),
                    user: record.user.as_deref(),
                    ..AccessTokenExtras::default()
                },
            )
            .await?;
        let issued = AccessTokenRecord {
            hash: TokenHash::of(&access),
            family_id: token.family_id,
            client_id: client.id,
            user_id: token.user_id,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at,
            revoked: false,
            resources: audience,
            dpop_jkt: authenticated.dpop_jkt.map(str::to_owned),
            act,
        };
        self.store.insert_tokens(&issued, None).await?;
        self.note_issued(
            crate::model::GrantType::TokenExchange.as_str(),
            client,
            token.user_id,
            &scopes,
        );
        let asked = param("scope").map(ScopeSet::parse).and_then(Result::ok);
        Ok(TokenResponse {
            access_token: access,
            token_type: token_type(authenticated.dpop_jkt),
            expires_in: (expires_at - now).max(0) as u64,
            refresh_token: None,
            scope: (asked.as_ref() != Some(&scopes)).then(|| scopes.to_string()),
            id_token: None,
            issued_token_type: Some(ACCESS_TOKEN_TYPE.to_owned()),
        })
    }

    /// The scope of the exchanged token: what was asked (else everything the subject token
    /// had), within the subject token's and the client's scopes.
    fn exchanged_scopes(
        &self,
        client: &crate::model::Client,
        subject: &ScopeSet,
        asked: Option<&str>,
    ) -> Result<ScopeSet, Error> {
        let allowed = self.allowed_scopes(client);
        let within = subject.intersection(&allowed);
        let scopes = match asked.map(ScopeSet::parse) {
            None => within,
            Some(Err(e)) => return Err(OAuthError::invalid_scope(e.to_string()).into()),
            Some(Ok(asked)) if asked.is_subset(&within) => asked,
            Some(Ok(_)) => {
                return Err(OAuthError::invalid_scope(
                    "an exchange can only narrow: ask for scopes the subject token has and \
                     this client may use",
                )
                .into())
            }
        };
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope(
                "nothing of the subject token's scope is left for this client",
            )
            .into());
        }
        Ok(scopes)
    }
}

/// The `act` of the exchanged token: the exchanging client over the subject token's chain.
/// A client narrowing its own token without a chain acts for no one else: no `act`.
fn actor_chain(
    actor: &str,
    own_token: bool,
    subject: &AccessTokenRecord,
) -> Result<Option<String>, Error> {
    let previous: Option<Value> = match &subject.act {
        Some(act) => Some(
            serde_json::from_str(act)
                .map_err(|_| invalid_request("subject_token has an unreadable act"))?,
        ),
        None if own_token => return Ok(None),
        None => None,
    };
    let mut depth = 1;
    let mut walk = previous.as_ref();
    while let Some(step) = walk {
        depth += 1;
        walk = step.get("act");
    }
    if depth > MAX_ACT_DEPTH {
        return Err(invalid_request("the delegation chain is too long"));
    }
    let mut act = json!({ "sub": actor });
    if let Some(previous) = previous {
        act["act"] = previous;
    }
    Ok(Some(act.to_string()))
}
