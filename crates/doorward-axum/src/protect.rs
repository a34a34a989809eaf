//! Protecting an API with bearer tokens (RFC 6750): an extractor, [`Authenticated`], and a
//! tower layer, [`RequireBearer`], over a [`ResourceServer`] that verifies tokens
//!
//! - in the same process as the provider ([`ResourceServer::local`]: the engine's store, with a
//!   short cache),
//! - in another process, by introspection ([`ResourceServer::introspection`], RFC 7662) or by
//!   checking JWT access tokens against the provider's key set ([`ResourceServer::jwt`],
//!   RFC 9068), both through a `doorward_client::Client`.
//!
//! Failures are answered as RFC 6750 §3 says: no credentials → 401 with a bare
//! `WWW-Authenticate: Bearer realm=…`; a malformed header → 400 `invalid_request`; a bad,
//! expired, revoked or foreign token → 401 `invalid_token`; a missing scope → 403
//! `insufficient_scope` with the scope needed.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use doorward_axum::protect::{Authenticated, ResourceServer, Scopes};
//!
//! struct ReadItems;
//! impl Scopes for ReadItems {
//!     const SCOPES: &'static [&'static str] = &["items:read"];
//! }
//!
//! async fn items(auth: Authenticated<ReadItems>) -> String {
//!     format!("items of {}", auth.grant.subject)
//! }
//!
//! # fn app(resource: ResourceServer) -> Router {
//! Router::new().route("/items", get(items)).with_state(resource)
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::Engine;
use sha2::{Digest, Sha256};

use crate::api::bearer_token;

/// What a valid bearer token grants, as a protected handler sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccessGrant {
    /// The user the token stands for (`sub`): a Doorward user's UUID.
    pub subject: String,
    /// The client the token was issued to (its key, `NAME@clients`, or its id).
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// The resource servers the token is meant for (`aud`).
    pub audience: Vec<String>,
    /// Unix time.
    pub expires_at: i64,
}

impl AccessGrant {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Unknown, expired, revoked, badly signed or not meant for this resource.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The provider or the store could not be asked; the client should retry.
    #[error("the token could not be checked: {0}")]
    Unavailable(String),
}

/// Checks an access token. Implement it to verify tokens some other way.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AccessGrant, VerifyError>> + Send + 'a>>;
}

/// The scopes a route needs, as a type: `Authenticated<ReadItems>`.
pub trait Scopes: Send + Sync + 'static {
    const SCOPES: &'static [&'static str];
}

/// Any valid token, whatever its scopes.
pub struct AnyScope;

impl Scopes for AnyScope {
    const SCOPES: &'static [&'static str] = &[];
}

/// How a protected API checks tokens. Cheap to clone; put it in the router's state (or a
/// sub-state reachable with `FromRef`).
#[derive(Clone)]
pub struct ResourceServer {
    verifier: Arc<dyn TokenVerifier>,
    realm: Arc<str>,
    audience: Option<Arc<str>>,
}

impl ResourceServer {
    /// Tokens of the provider running in this process, read from its store. A verified token
    /// is cached for at most `cache_seconds` (0: no cache), so a revocation may take that long
    /// to reach this API.
    pub fn local(engine: Arc<Engine>, cache_seconds: u64) -> Self {
        let audience = engine.config().issuer.clone();
        Self::new(LocalVerifier {
            engine,
            ttl: cache_seconds as i64,
            cache: Mutex::new(HashMap::new()),
        })
        .with_audience(audience)
    }

    /// Tokens of a provider in another process, asked by introspection (RFC 7662) with the
    /// credentials of `client` (a client registered as a resource server).
    pub fn introspection(client: doorward_client::Client) -> Self {
        Self::new(IntrospectionVerifier { client })
    }

    /// JWT access tokens (RFC 9068) of a provider in another process, checked against its key
    /// set (fetched again once on an unknown key: rotation), for the resource `audience`.
    pub fn jwt(client: doorward_client::Client, audience: impl Into<String>) -> Self {
        let audience: String = audience.into();
        Self::new(JwtVerifier {
            client,
            audience: audience.clone(),
        })
        .with_audience(audience)
    }

    pub fn new(verifier: impl TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            realm: "doorward".into(),
            audience: None,
        }
    }

    /// The realm named in `WWW-Authenticate`.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into().replace(['"', '\\'], "").into();
        self
    }

    /// Tokens must name this resource in their audience.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into().into());
        self
    }

    /// A tower layer that lets through only requests with a valid token holding `scopes`,
    /// and puts the [`AccessGrant`] in the request's extensions.
    pub fn require(&self, scopes: &[&str]) -> RequireBearer {
        RequireBearer {
            resource: self.clone(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The grant of the request's bearer token, holding every scope of `scopes`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<AccessGrant, BearerError> {
        let token = match headers.get(header::AUTHORIZATION) {
            None => return Err(self.error(Failure::NoCredentials)),
            Some(value) => {
                let Ok(value) = value.to_str() else {
                    return Err(self.error(Failure::Malformed));
                };
                match bearer_token(value) {
                    Some(token) => token,
                    None if value.len() >= 6 && value[..6].eq_ignore_ascii_case("bearer") => {
                        return Err(self.error(Failure::Malformed))
                    }
                    // Another scheme: no Bearer credentials (§3.1, no error code).
                    None => return Err(self.error(Failure::NoCredentials)),
                }
            }
        };
        let grant = match self.verifier.verify(token).await {
            Ok(grant) => grant,
            Err(VerifyError::Invalid(why)) => return Err(self.error(Failure::InvalidToken(why))),
            Err(VerifyError::Unavailable(why)) => {
                tracing::warn!(error = %why, "bearer token check unavailable");
                return Err(self.error(Failure::Unavailable));
            }
        };
        self.admit(&grant, scopes)?;
        Ok(grant)
    }

    /// Whether a verified grant may use this resource: meant for it (when an audience is set)
    /// and holding every scope of `scopes`.
    fn admit(&self, grant: &AccessGrant, scopes: &[&str]) -> Result<(), BearerError> {
        if let Some(audience) = &self.audience {
            if !grant.audience.iter().any(|a| a.as_str() == &**audience) {
                return Err(self.error(Failure::InvalidToken(
                    "the token is not meant for this resource".into(),
                )));
            }
        }
        if scopes.iter().any(|s| !grant.has_scope(s)) {
            return Err(self.error(Failure::InsufficientScope(
                scopes.iter().map(|s| (*s).to_owned()).collect(),
            )));
        }
        Ok(())
    }

    fn error(&self, failure: Failure) -> BearerError {
        BearerError {
            realm: self.realm.clone(),
            failure,
        }
    }
}

/// The extractor: the grant of a valid bearer token holding `S`'s scopes (or the answer that
/// says why not). Reuses the grant a [`RequireBearer`] layer put in the request.
pub struct Authenticated<S: Scopes = AnyScope> {
    pub grant: AccessGrant,
    _scopes: PhantomData<fn() -> S>,
}

impl<S: Scopes> std::fmt::Debug for Authenticated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("grant", &self.grant)
            .finish()
    }
}

impl<St, S> FromRequestParts<St> for Authenticated<S>
where
    ResourceServer: FromRef<St>,
    St: Send + Sync,
    S: Scopes,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let resource = ResourceServer::from_ref(state);
        let grant = match parts.extensions.get::<AccessGrant>() {
            // Put there by a `RequireBearer` layer; it must also suit this resource server.
            Some(grant) => {
                resource.admit(grant, S::SCOPES)?;
                grant.clone()
            }
            None => resource.authorize(&parts.headers, S::SCOPES).await?,
        };
        Ok(Self {
            grant,
            _scopes: PhantomData,
        })
    }
}

#[derive(Debug)]
enum Failure {
    NoCredentials,
    Malformed,
    InvalidToken(String),
    InsufficientScope(Vec<String>),
    Unavailable,
}

/// A refused request, answered per RFC 6750 §3.
#[derive(Debug)]
pub struct BearerError {
    realm: Arc<str>,
    failure: Failure,
}

impl BearerError {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self.failure {
            Failure::NoCredentials | Failure::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Failure::Malformed => StatusCode::BAD_REQUEST,
            Failure::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.failure)
    }
}

impl std::error::Error for BearerError {}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let realm = &self.realm;
        let (code, description, extra) = match &self.failure {
            Failure::NoCredentials => (
                None,
                "a Bearer access token is needed".to_owned(),
                String::new(),
            ),
            Failure::Malformed => (
                Some("invalid_request"),
                "the Authorization header is malformed".to_owned(),
                String::new(),
            ),
            Failure::InvalidToken(why) => (Some("invalid_token"), why.clone(), String::new()),
            Failure::InsufficientScope(scopes) => {
                let scope = scopes.join(" ");
                (
                    Some("insufficient_scope"),
                    format!("the token needs the scope {scope}"),
                    format!(", scope=\"{scope}\""),
                )
            }
            Failure::Unavailable => (
                Some("temporarily_unavailable"),
                "the token cannot be checked now; retry".to_owned(),
                String::new(),
            ),
        };
        // RFC 6750 §3: printable ASCII without `"` and `\` (descriptions may quote what a
        // client sent).
        let clean: String = description
            .chars()
            .map(|c| {
                if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let challenge = match code {
            None => format!("Bearer realm=\"{realm}\""),
            Some("temporarily_unavailable") => format!("Bearer realm=\"{realm}\""),
            Some(code) => {
                format!("Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{clean}\"{extra}")
            }
        };
        let body = serde_json::json!({
            "error": code.unwrap_or("unauthorized"),
            "error_description": description,
        });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(self.failure, Failure::Unavailable) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The tower layer of [`ResourceServer::require`].
#[derive(Clone)]
pub struct RequireBearer {
    resource: ResourceServer,
    scopes: Arc<[String]>,
}

impl<Svc> tower::Layer<Svc> for RequireBearer {
    type Service = RequireBearerService<Svc>;

    fn layer(&self, inner: Svc) -> Self::Service {
        RequireBearerService {
            layer: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct RequireBearerService<Svc> {
    layer: RequireBearer,
    inner: Svc,
}

impl<Svc> tower::Service<Request> for RequireBearerService<Svc>
where
    Svc: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    Svc::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone is the one that was polled ready; the original is left for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let scopes: Vec<&str> = layer.scopes.iter().map(String::as_str).collect();
            match layer.resource.authorize(request.headers(), &scopes).await {
                Ok(grant) => {
                    request.extensions_mut().insert(grant);
                    inner.call(request).await
                }
                Err(refused) => Ok(refused.into_response()),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Verifiers

struct LocalVerifier {
    engine: Arc<Engine>,
    ttl: i64,
    cache: Mutex<HashMap<[u8; 32], (AccessGrant, i64)>>,
}

/// The most tokens kept in a local verifier's cache.
const CACHE_CAPACITY: usize = 10_000;

impl TokenVerifier for LocalVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AccessGrant, VerifyError>> + Send + 'a>> {
        Box::pin(async move {
            let now = self.engine.now();
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if self.ttl > 0 {
                let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((grant, until)) = cache.get(&key) {
                    if now < *until && now < grant.expires_at {
                        return Ok(grant.clone());
                    }
                }
            }
            let info = match self.engine.check_access_token(token).await {
                Ok(info) => info,
                Err(doorward_core::Error::OAuth(e)) => {
                    return Err(VerifyError::Invalid(e.description.into_owned()))
                }
                Err(e) => return Err(VerifyError::Unavailable(e.to_string())),
            };
            let audience = info
                .client
                .policy
                .access_token_audience
                .clone()
                .unwrap_or_else(|| self.engine.config().issuer.clone());
            let grant = AccessGrant {
                subject: info.user.id.to_string(),
                client_id: Some(info.client.key.clone()),
                scopes: info.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                audience: vec![audience],
                expires_at: info.expires_at,
            };
            if self.ttl > 0 {
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.retain(|_, (g, until)| now < *until && now < g.expires_at);
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                }
                cache.insert(key, (grant.clone(), now + self.ttl));
            }
            Ok(grant)
        })
    }
}

struct IntrospectionVerifier {
    client: doorward_client::Client,
}

impl TokenVerifier for IntrospectionVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AccessGrant, VerifyError>> + Send + 'a>> {
        Box::pin(async move {
            let answer = self
                .client
                .introspect(token)
                .await
                .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
            if !answer.active {
                return Err(VerifyError::Invalid("the token is not active".into()));
            }
            if answer
                .token_type
                .as_deref()
                // Only access tokens: RFC 7662 §2.2's `token_type` is absent or a bearer token
                // type; anything else (a refresh token, however a provider names it) is refused.
                .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
            {
                return Err(VerifyError::Invalid(
                    "the token is not a bearer access token".into(),
                ));
            }
            let audience = match answer.extra.get("aud") {
                Some(serde_json::Value::String(one)) => vec![one.clone()],
                Some(serde_json::Value::Array(many)) => many
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => answer.iss.clone().into_iter().collect(),
            };
            Ok(AccessGrant {
                subject: answer
                    .sub
                    .clone()
                    .ok_or_else(|| VerifyError::Invalid("the token has no subject".into()))?,
                client_id: answer.client_id.clone(),
                scopes: answer
                    .scope
                    .as_deref()
                    .unwrap_or("")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                audience,
                expires_at: answer.exp.unwrap_or(i64::MAX),
            })
        })
    }
}

struct JwtVerifier {
    client: doorward_client::Client,
    audience: String,
}

impl TokenVerifier for JwtVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AccessGrant, VerifyError>> + Send + 'a>> {
        Box::pin(async move {
            use doorward_client::IdTokenError;
            let claims = match self
                .client
                .validate_jwt_access_token(token, &self.audience)
                .await
            {
                Ok(claims) => claims,
                Err(IdTokenError::Jwks(e)) => return Err(VerifyError::Unavailable(e.to_string())),
                Err(e) => return Err(VerifyError::Invalid(e.to_string())),
            };
            Ok(AccessGrant {
                subject: claims.subject,
                client_id: claims.client_id,
                scopes: claims.scopes,
                audience: claims.audience,
                expires_at: claims.expires_at,
            })
        })
    }
}
