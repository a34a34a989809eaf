//! OpenID Connect on top of the OAuth flows: ID tokens (OIDC Core §2, §3.1.3.6), the claims of
//! the `profile` and `email` scopes (§5.4), UserInfo (§5.3), JWT access tokens (RFC 9068),
//! introspection (RFC 7662), revocation (RFC 7009), and the server's metadata (RFC 8414,
//! OIDC Discovery §3).

use doorward_proto::{OAuthError, ScopeSet};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::engine::Error;
use crate::keys::{half_hash, SigningAlg};
use crate::model::{AccessTokenFormat, Client, RefreshTokenRecord, User};
use crate::opaque::TokenHash;
use crate::ports::UnixTime;
use crate::token::TokenRequest;
use crate::Engine;

/// The paths of the endpoints, below the issuer.
pub mod paths {
    pub const AUTHORIZE: &str = "/oauth/authorize";
    pub const TOKEN: &str = "/oauth/token";
    pub const USERINFO: &str = "/oauth/userinfo";
    pub const JWKS: &str = "/oauth/jwks";
    pub const INTROSPECT: &str = "/oauth/introspect";
    pub const REVOKE: &str = "/oauth/revoke";
    pub const END_SESSION: &str = "/oauth/end_session";
}

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
struct IdTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    auth_time: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    /// The user signed in with a password (RFC 8176 §2).
    amr: [&'static str; 1],
    #[serde(flatten)]
    user: Map<String, Value>,
}

/// What an ID token is issued for.
pub(crate) struct IdTokenInput<'a> {
    pub client: &'a Client,
    /// The `client_id` the client named itself with: the `aud` it checks.
    pub audience: &'a str,
    pub user: &'a User,
    pub scopes: &'a ScopeSet,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
}

#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    jti: String,
    client_id: &'a str,
    scope: String,
    auth_time: UnixTime,
}

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
    /// The algorithm of `client`'s ID tokens.
    pub fn id_token_alg(&self, client: &Client) -> SigningAlg {
        self.effective_alg(client.policy.id_token_alg.unwrap_or(SigningAlg::Rs256))
    }

    pub(crate) fn id_token(&self, input: IdTokenInput<'_>) -> Result<String, Error> {
        let alg = self.id_token_alg(input.client);
        let now = self.now();
        let claims = IdTokenClaims {
            iss: &self.config.issuer,
            aud: input.audience,
            exp: now + self.config.lifetimes.id_token,
            iat: now,
            auth_time: input.auth_time,
            nonce: input.nonce,
            at_hash: half_hash(alg, input.access_token),
            amr: ["pwd"],
            user: user_claims(input.user, input.scopes),
        };
        self.sign_jws(alg, None, &claims)
    }

    /// A JWT access token (RFC 9068 §2) signed with the server's first algorithm.
    pub(crate) fn jwt_access_token(
        &self,
        client: &Client,
        user_id: uuid::Uuid,
        scopes: &ScopeSet,
        auth_time: UnixTime,
    ) -> Result<String, Error> {
        let now = self.now();
        let first = self.config.keys.algorithms.first().copied();
        let alg = self.effective_alg(first.unwrap_or(SigningAlg::Es256));
        let claims = AccessTokenClaims {
            iss: &self.config.issuer,
            sub: user_id.to_string(),
            aud: client
                .policy
                .access_token_audience
                .as_deref()
                .unwrap_or(&self.config.issuer),
            exp: now + self.config.lifetimes.access_token,
            iat: now,
            jti: self.new_uuid().to_string(),
            client_id: &client.key,
            scope: scopes.to_string(),
            auth_time,
        };
        self.sign_jws(alg, Some("at+jwt"), &claims)
    }

    /// Whether `client` gets JWT access tokens.
    pub(crate) fn wants_jwt(client: &Client) -> bool {
        client.policy.access_token_format == AccessTokenFormat::Jwt
    }

    /// The UserInfo response (OIDC Core §5.3.2) for a bearer token: its user's claims for its
    /// scopes. The token must hold `openid` (§5.3: "the Access Token obtained from an OpenID
    /// Connect Authentication Request").
    pub async fn userinfo(&self, token: &str) -> Result<Map<String, Value>, Error> {
        let info = self.check_access_token(token).await?;
        if !info.scopes.contains("openid") {
            return Err(OAuthError::new(
                doorward_proto::ErrorCode::InsufficientScope,
                "the access token was not issued for the openid scope",
            )
            .into());
        }
        Ok(user_claims(&info.user, &info.scopes))
    }

    /// Token introspection (RFC 7662 §2): the client must authenticate (§2.1), and learns about
    /// tokens issued to itself only, unless it is registered as a resource server (§4: the
    /// server decides who may see what). Anything else is `{"active": false}`.
    pub async fn introspect(&self, request: &TokenRequest) -> Result<Introspection, Error> {
        let (caller, _) = self.authenticate_client(request).await?;
        let may_see = |owner: uuid::Uuid| caller.policy.resource_server || owner == caller.id;
        let Some(token) = request.params.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::invalid_request("token is missing").into());
        };
        let hash = TokenHash::of(token);
        let now = self.now();
        if let Some(bearer) = self.store.find_bearer(&hash).await? {
            let t = &bearer.token;
            if t.revoked || t.expires_at <= now || !may_see(t.client_id) {
                return Ok(Introspection::inactive());
            }
            let mut details = Map::new();
            details.insert("scope".into(), json!(t.scopes.to_string()));
            details.insert("client_id".into(), json!(bearer.client.key));
            details.insert("username".into(), json!(bearer.user.username));
            details.insert("token_type".into(), json!("Bearer"));
            details.insert("exp".into(), json!(t.expires_at));
            details.insert("iat".into(), json!(t.issued_at));
            details.insert("sub".into(), json!(bearer.user.id.to_string()));
            details.insert("iss".into(), json!(self.config.issuer));
            if Self::wants_jwt(&bearer.client) {
                let aud = bearer.client.policy.access_token_audience.as_deref();
                details.insert("aud".into(), json!(aud.unwrap_or(&self.config.issuer)));
            }
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
            .find_client(crate::ports::ClientRef::Id(refresh.client_id))
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

    /// Token revocation (RFC 7009 §2.1): the client authenticates; a token it does not own,
    /// or that does not exist, is answered the same as a revoked one (§2.2: "invalid tokens do
    /// not cause an error response"). Revoking a refresh token revokes its whole grant family
    /// (§2.1: "SHOULD also invalidate all access tokens based on the same authorization grant").
    pub async fn revoke(&self, request: &TokenRequest) -> Result<(), Error> {
        let (client, _) = self.authenticate_client(request).await?;
        let Some(token) = request.params.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::invalid_request("token is missing").into());
        };
        let hash = TokenHash::of(token);
        let now = self.now();
        if let Some(refresh) = self.store.find_refresh_token(&hash).await? {
            if refresh.client_id == client.id {
                self.store.revoke_family(refresh.family_id, now).await?;
            }
            return Ok(());
        }
        if let Some(access) = self.store.find_access_token(&hash).await? {
            if access.client_id == client.id {
                self.store.revoke_access_token(&hash, now).await?;
            }
        }
        Ok(())
    }

    /// The authorization server metadata (RFC 8414 §2) that is also the OpenID Provider
    /// metadata (OIDC Discovery §3): generated from what is enabled, nothing more.
    pub fn metadata(&self) -> Value {
        let issuer = &self.config.issuer;
        let url = |path: &str| format!("{issuer}{path}");
        let algs: Vec<&str> = self
            .config
            .keys
            .algorithms
            .iter()
            .map(|a| a.as_str())
            .collect();
        let mut pkce = vec!["S256"];
        if self.config.allow_plain_pkce {
            pkce.push("plain");
        }
        let scopes: Vec<&str> = self.config.scopes.iter().map(|s| s.as_str()).collect();
        let auth_methods = ["client_secret_basic", "client_secret_post"];
        json!({
            "issuer": issuer,
            "authorization_endpoint": url(paths::AUTHORIZE),
            "token_endpoint": url(paths::TOKEN),
            "userinfo_endpoint": url(paths::USERINFO),
            "jwks_uri": url(paths::JWKS),
            "introspection_endpoint": url(paths::INTROSPECT),
            "revocation_endpoint": url(paths::REVOKE),
            "end_session_endpoint": url(paths::END_SESSION),
            "scopes_supported": scopes,
            "response_types_supported": self.supported_response_types(),
            "response_modes_supported": ["query"],
            "grant_types_supported": self.supported_grant_types(),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "code_challenge_methods_supported": pkce,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr",
                "name", "preferred_username", "email", "email_verified"
            ],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })
    }
}

/// A checked RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 §2, §3).
#[derive(Debug)]
pub struct EndSession {
    /// The client that asked, when it said who it is.
    pub client: Option<Client>,
    /// Where to send the browser afterwards: the registered `post_logout_redirect_uri` with
    /// `state`, or `None` for Doorward's own page.
    pub redirect: Option<String>,
}

/// Why a logout request is refused. Shown on a page, never redirected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndSessionError {
    #[error("The id_token_hint is not an ID token issued by this server ({0}).")]
    BadHint(crate::keys::JwsError),
    #[error("No application is registered under this client_id.")]
    UnknownClient,
    #[error("The client_id does not match the audience of the id_token_hint.")]
    ClientMismatch,
    #[error("A post_logout_redirect_uri needs client_id or id_token_hint to say whose it is.")]
    NoClient,
    #[error("The post_logout_redirect_uri is not registered for this application.")]
    UnregisteredRedirect,
}

#[derive(Deserialize)]
struct HintClaims {
    aud: Audience,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Engine {
    /// Checks a logout request. The `id_token_hint` may be expired (§2: the OP "SHOULD accept
    /// ID Tokens when the RP identified by the ID Token's aud claim … had a recent session",
    /// even when `exp` has passed) but must carry this server's signature. The
    /// `post_logout_redirect_uri` must be registered for the client, compared as an exact
    /// string (§3, RFC 9700 §4.11: no open redirect).
    pub async fn check_end_session(
        &self,
        params: &[(String, String)],
    ) -> Result<EndSession, Error> {
        let single = |name: &str| {
            params
                .iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let refuse = |e: EndSessionError| Error::EndSession(e);
        let hinted = match single("id_token_hint") {
            None => None,
            // An ID token signed by a key removed since (rotation) cannot be checked: it
            // counts as no hint, so that signing out still works days after a rotation; a
            // post_logout_redirect_uri then needs client_id. A bad signature is refused.
            Some(hint) => match self.verify_own_jws::<HintClaims>(hint, true) {
                Ok(claims) => Some(match claims.aud {
                    Audience::One(aud) => aud,
                    Audience::Many(mut auds) => auds.drain(..).next().unwrap_or_default(),
                }),
                Err(crate::keys::JwsError::UnknownKey) => None,
                Err(e) => return Err(refuse(EndSessionError::BadHint(e))),
            },
        };
        let find = |id: String| async move {
            self.find_client(&id)
                .await?
                .ok_or(refuse(EndSessionError::UnknownClient))
        };
        let client = match (single("client_id"), hinted) {
            (Some(id), Some(aud)) => {
                let client = find(id.to_owned()).await?;
                let by_hint = find(aud).await?;
                if client.id != by_hint.id {
                    return Err(refuse(EndSessionError::ClientMismatch));
                }
                Some(client)
            }
            (Some(id), None) => Some(find(id.to_owned()).await?),
            (None, Some(aud)) => Some(find(aud).await?),
            (None, None) => None,
        };
        let redirect = match single("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let client = client.as_ref().ok_or(refuse(EndSessionError::NoClient))?;
                let registered = client
                    .policy
                    .post_logout_redirect_uris
                    .iter()
                    .find(|u| u.as_str() == uri)
                    .ok_or(refuse(EndSessionError::UnregisteredRedirect))?;
                let state = single("state").map(|s| ("state", s));
                Some(registered.with_params(state))
            }
        };
        Ok(EndSession { client, redirect })
    }
}
