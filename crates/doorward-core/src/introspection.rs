//! Token introspection (RFC 7662): what a token is, told to the client it was issued to, or to
//! a client registered as a resource server.

use doorward_proto::OAuthError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clock::UnixTime;
use crate::error::Error;
use crate::model::RefreshTokenRecord;
use crate::opaque::TokenHash;
use crate::ports::ClientRef;
use crate::request::TokenRequest;
use crate::Engine;

/// The answer of the introspection endpoint (RFC 7662 §2.2): `{"active": false}` and nothing
/// else for any token that is not active, whatever the reason.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            details: Map::new(),
        }
    }
}

impl Engine {
    /// Token introspection (RFC 7662 §2): the client must authenticate (§2.1), and learns about
    /// tokens issued to itself only, unless it is registered as a resource server (§4: the
    /// server decides who may see what). Anything else is `{"active": false}`.
    pub async fn introspect(&self, request: &TokenRequest) -> Result<Introspection, Error> {
        let (caller, _) = self
            .authenticate_client(request, crate::request::ClientEndpoint::Introspection)
            .await?;
        let may_see = |owner: uuid::Uuid| caller.policy.resource_server || owner == caller.id;
        let Some(token) = request.params.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::invalid_request("token is missing").into());
        };
        let hash = TokenHash::of(token);
        let now = self.now();
        if let Some(bearer) = self.find_bearer(&hash).await? {
            let t = &bearer.token;
            if !bearer.is_live(now) || !may_see(t.client_id) {
                return Ok(Introspection::inactive());
            }
            let mut details = Map::new();
            details.insert("scope".into(), json!(t.scopes.to_string()));
            details.insert("client_id".into(), json!(bearer.client.key));
            // A `client_credentials` token has no user: its subject is the client, named as
            // in `client_id` (RFC 7662 §2.2), and it has no `username`.
            let sub = match &bearer.user {
                Some(user) => {
                    details.insert("username".into(), json!(user.username));
                    user.id.to_string()
                }
                None => bearer.client.key.clone(),
            };
            // RFC 8693 §4.1: who acts for the subject, on a token of an exchange.
            if let Some(act) = t
                .act
                .as_deref()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            {
                details.insert("act".into(), act);
            }
            // RFC 9449 §6.2: a DPoP-bound token says so, with its key's thumbprint.
            match &t.dpop_jkt {
                Some(jkt) => {
                    details.insert("token_type".into(), json!("DPoP"));
                    details.insert("cnf".into(), json!({ "jkt": jkt }));
                }
                None => {
                    details.insert("token_type".into(), json!("Bearer"));
                }
            }
            details.insert("exp".into(), json!(t.expires_at));
            details.insert("iat".into(), json!(t.issued_at));
            details.insert("sub".into(), json!(sub));
            details.insert("iss".into(), json!(self.config.issuer));
            // What the token is meant for (RFC 7662 §2.2): its resources (RFC 8707), else
            // the default audience, as in a JWT access token's `aud`.
            let audience = crate::resource_indicators::audience(
                &t.resources,
                &bearer.client,
                &self.config.issuer,
            );
            details.insert(
                "aud".into(),
                crate::resource_indicators::aud_value(&audience),
            );
            self.add_claims(
                &mut details,
                crate::claims_hook::ClaimsRequest {
                    target: crate::claims_hook::ClaimsTarget::Introspection,
                    client: &bearer.client,
                    user: bearer.user.as_deref(),
                    scopes: &t.scopes,
                    grant_data: &bearer.grant_data,
                },
            )
            .await?;
            return Ok(Introspection {
                active: true,
                details,
            });
        }
        if let Some(refresh) = self.store.find_refresh_token(&hash).await? {
            // A refresh token is only ever its own client's business.
            if refresh.client_id != caller.id {
                return Ok(Introspection::inactive());
            }
            return self.introspect_refresh(&refresh, now).await;
        }
        Ok(Introspection::inactive())
    }

    async fn introspect_refresh(
        &self,
        refresh: &RefreshTokenRecord,
        now: UnixTime,
    ) -> Result<Introspection, Error> {
        // A spent refresh token is no longer active (even within the grace window, which only
        // repeats an answer).
        if refresh.revoked || refresh.used_at.is_some() || refresh.expires_at <= now {
            return Ok(Introspection::inactive());
        }
        let Some(client) = self
            .store
            .find_client(ClientRef::Id(refresh.client_id))
            .await?
        else {
            return Ok(Introspection::inactive());
        };
        let mut details = Map::new();
        details.insert("scope".into(), json!(refresh.scopes.to_string()));
        details.insert("client_id".into(), json!(client.key));
        details.insert("token_type".into(), json!("refresh_token"));
        details.insert("exp".into(), json!(refresh.expires_at));
        details.insert("iat".into(), json!(refresh.issued_at));
        details.insert("sub".into(), json!(refresh.user_id.to_string()));
        details.insert("iss".into(), json!(self.config.issuer));
        Ok(Introspection {
            active: true,
            details,
        })
    }
}
