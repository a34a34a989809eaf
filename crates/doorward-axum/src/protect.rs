//! Past 700 lines, still one idea: what a protected API checks of a request (credentials,
//! the verifier, DPoP binding, audience and scopes) and the two ways to ask it (the extractor
//! and the layer), which share that one path.
//!
//! Protecting an API with bearer tokens (RFC 6750): an extractor, [`Authenticated`], and a
//! tower layer, [`RequireBearer`], over a [`ResourceServer`] that verifies tokens
//!
//! - in the same process as the provider ([`ResourceServer::local`]: the engine's store, with a
//!   short cache),
//! - in another process, by introspection (`ResourceServer::introspection`, RFC 7662) or by
//!   checking JWT access tokens against the provider's key set (`ResourceServer::jwt`,
//!   RFC 9068), both through a `doorward_client::Client`: with the `remote` feature, so that a
//!   provider that does not need them does not link an HTTP client.
//!
//! A token bound to a DPoP key (RFC 9449) is accepted only as `Authorization: DPoP` with a
//! proof by that key for the request (`protect/dpop.rs`); a bearer token only as `Bearer`.
//!
//! Failures are answered as RFC 6750 §3 says: no credentials → 401 with a bare
//! `WWW-Authenticate: Bearer realm=…`; a malformed header → 400 `invalid_request`; a bad,
//! expired, revoked or foreign token → 401 `invalid_token`; a missing scope → 403
//! `insufficient_scope` with the scope needed.
//!
//! With [`ResourceServer::with_metadata`] the API also publishes its Protected Resource
//! Metadata (RFC 9728, [`ProtectedResource`]; routes from [`ResourceServer::metadata_routes`]),
//! names it in every challenge (`resource_metadata="…"`, §5.1), and accepts only tokens whose
//! audience names its resource identifier (RFC 8707, RFC 9068 §4).
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

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};

pub use async_trait::async_trait;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use doorward_core::Engine;

use crate::response::bearer::{presented_anywhere, Credentials, OtherPlaces, Refusal};

/// The refusal of a protected request, answered per RFC 6750 §3 (the extractor's and the
/// layer's rejection).
pub use crate::response::bearer::BearerError;

mod cache;
mod dpop;
mod metadata;
#[cfg(feature = "remote")]
mod remote;

pub use metadata::{InvalidResource, ProtectedResource, WELL_KNOWN};
#[cfg(feature = "remote")]
pub use remote::JWT_CACHE_SECONDS;

/// What a valid bearer token grants, as a protected handler sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccessGrant {
    /// The token's subject (`sub`): a Doorward user's UUID, or for a token a client got for
    /// itself (`client_credentials`, RFC 6749 §4.4) the client's id, as in `client_id`.
    pub subject: String,
    /// The user the token stands for, `None` for a `client_credentials` token: a handler
    /// that acts for a user must refuse a grant without one. Verifiers that read `sub` from
    /// elsewhere (introspection, JWT) count a token whose `sub` equals its `client_id` as
    /// the client's own, Doorward's convention.
    pub user: Option<String>,
    /// The client the token was issued to (its key, `NAME@clients`, or its id).
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// The resource servers the token is meant for (`aud`).
    pub audience: Vec<String>,
    /// Unix time.
    pub expires_at: i64,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to (`cnf.jkt`, RFC 9449
    /// §6); `None` for a bearer token.
    pub dpop_jkt: Option<String>,
    /// What the application attached to the grant (TxOAuth2's `additionalData`;
    /// `GrantTerms::data` at `Provider::resume`): known to the `local` verifier only, empty
    /// with the others (a claims hook can put it in JWTs and introspection).
    pub grant_data: serde_json::Map<String, serde_json::Value>,
}

impl AccessGrant {
    /// A grant, for a [`TokenVerifier`] of your own. Its [`AccessGrant::user`] is `subject`,
    /// unless `subject` equals `client_id` (a client's own token).
    pub fn new(
        subject: impl Into<String>,
        client_id: Option<String>,
        scopes: Vec<String>,
        audience: Vec<String>,
        expires_at: i64,
    ) -> Self {
        let subject = subject.into();
        let user = (client_id.as_deref() != Some(subject.as_str())).then(|| subject.clone());
        Self {
            subject,
            user,
            client_id,
            scopes,
            audience,
            expires_at,
            dpop_jkt: None,
            grant_data: serde_json::Map::new(),
        }
    }

    /// The same grant bound to the DPoP key of thumbprint `jkt` (RFC 9449 §6).
    pub fn bound_to(mut self, jkt: impl Into<String>) -> Self {
        self.dpop_jkt = Some(jkt.into());
        self
    }

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

/// Checks an access token. Implement it (with [`async_trait`], re-exported here) to verify
/// tokens some other way.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    async fn verify(&self, token: &str) -> Result<AccessGrant, VerifyError>;
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
///
/// ```
/// use std::sync::Arc;
/// use axum::{body::Body, http::{header, Request}, routing::get, Router};
/// use doorward_axum::protect::{Authenticated, ResourceServer, Scopes};
/// use doorward_axum::{Grants, Provider};
/// use tower::ServiceExt as _;
///
/// struct ReadItems;
/// impl Scopes for ReadItems {
///     const SCOPES: &'static [&'static str] = &["items:read"];
/// }
///
/// async fn items(auth: Authenticated<ReadItems>) -> String {
///     format!("items of {}", auth.grant.subject)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Provider::builder("https://example.com")
///     .store(Arc::new(doorward_core::memory::MemoryStore::default()))
///     .grants(Grants::CODE_AND_REFRESH)
///     .build()
///     .await?;
/// // Tokens of the provider in this process, a verified token cached for 5 s.
/// let resource: ResourceServer = provider.resource_server(5);
/// let api = Router::new().route("/items", get(items)).with_state(resource);
///
/// // No token: 401 and an RFC 6750 challenge.
/// let response = api.oneshot(Request::get("/items").body(Body::empty())?).await?;
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"doorward\"");
/// # Ok(()) }
/// ```
///
/// The same check as a tower layer, for a whole router: [`ResourceServer::require`].
#[derive(Clone)]
pub struct ResourceServer {
    verifier: Arc<dyn TokenVerifier>,
    realm: Arc<str>,
    audience: Option<Arc<str>>,
    metadata: Option<Arc<ProtectedResource>>,
    metadata_url: Option<Arc<str>>,
    /// Where DPoP proofs' `jti`s are recorded.
    replay: dpop::Replay,
    /// The URL the API is reached at, for DPoP proofs' `htu`.
    public_url: Option<Arc<str>>,
    /// Bearer tokens in a form body too (RFC 6750 §2.2; the `require` layer only).
    form_body_tokens: bool,
    /// Bearer tokens in the query too (RFC 6750 §2.3).
    insecure_query_tokens: bool,
}

impl ResourceServer {
    /// Tokens of the provider running in this process, read from its store. A verified token
    /// is cached for at most `cache_seconds` (0: no cache), so a revocation may take that long
    /// to reach this API.
    pub fn local(engine: Arc<Engine>, cache_seconds: u64) -> Self {
        let audience = engine.config().issuer.clone();
        let mut resource = Self::new(LocalVerifier {
            engine: engine.clone(),
            ttl: cache_seconds as i64,
            cache: cache::GrantCache::default(),
        })
        .with_audience(audience);
        resource.replay = dpop::Replay::Engine(engine);
        resource
    }

    pub fn new(verifier: impl TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            realm: "doorward".into(),
            audience: None,
            metadata: None,
            metadata_url: None,
            replay: dpop::Replay::Memory(Arc::default()),
            public_url: None,
            form_body_tokens: false,
            insecure_query_tokens: false,
        }
    }

    /// Also takes a bearer token as `access_token` in an `application/x-www-form-urlencoded`
    /// body of a request that is not a GET (RFC 6750 §2.2), through the
    /// [`ResourceServer::require`] layer, which reads the body (at most 64 KiB) and hands it on
    /// unchanged; the [`Authenticated`] extractor alone sees headers only.
    pub fn accept_form_body_tokens(mut self) -> Self {
        self.form_body_tokens = true;
        self
    }

    /// Also takes a bearer token as `access_token` in the query (RFC 6750 §2.3).
    ///
    /// # Security
    /// The token then lands in server and proxy logs, browser history and `Referer` headers
    /// (RFC 6750 §5.3, RFC 9700 §4.3.2): for clients that can do nothing else.
    pub fn insecure_accept_query_tokens(mut self) -> Self {
        self.insecure_query_tokens = true;
        self
    }

    /// The URL this API is reached at, of which the origin (scheme, host, port) counts: a DPoP
    /// proof's `htu` names it and the request's path as the client sent it, before any `nest`
    /// (RFC 9449 §4.3). Without it,
    /// the origin of the resource identifier ([`ResourceServer::with_metadata`]) or of the
    /// audience when that is an http(s) URL; never the request's `Host`.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().into());
        self
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

    /// Publishes `metadata` (RFC 9728): its document at [`ResourceServer::metadata_routes`],
    /// its URL in every challenge (`resource_metadata`, §5.1), and its resource identifier as
    /// the audience every token must name (in place of any [`ResourceServer::with_audience`]):
    /// a token another resource asked for (RFC 8707) is refused with 401 `invalid_token`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{body::Body, http::{header, Request}, routing::get, Router};
    /// use doorward_axum::protect::{Authenticated, ProtectedResource, ResourceServer};
    /// use doorward_axum::{Grants, Provider};
    /// use tower::ServiceExt as _;
    ///
    /// async fn items(auth: Authenticated) -> String {
    ///     format!("items of {}", auth.grant.subject)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let provider = Provider::builder("https://id.example.com")
    ///     .store(Arc::new(doorward_core::memory::MemoryStore::default()))
    ///     .grants(Grants::CODE_AND_REFRESH)
    ///     .build()
    ///     .await?;
    /// let resource = provider.resource_server(5).with_metadata(
    ///     ProtectedResource::new("https://api.example.com/items")?
    ///         .authorization_server("https://id.example.com")
    ///         .scopes(&["items:read"]),
    /// );
    /// let api = Router::new()
    ///     .route("/items", get(items))
    ///     .merge(resource.metadata_routes())
    ///     .with_state(resource);
    ///
    /// let response = api.oneshot(Request::get("/items").body(Body::empty())?).await?;
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(
    ///     response.headers()[header::WWW_AUTHENTICATE],
    ///     "Bearer realm=\"doorward\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/items\""
    /// );
    /// # Ok(()) }
    /// ```
    pub fn with_metadata(mut self, metadata: ProtectedResource) -> Self {
        self.audience = Some(metadata.resource().into());
        self.metadata_url = Some(metadata.metadata_url().into());
        self.metadata = Some(Arc::new(metadata));
        self
    }

    /// The routes serving the metadata document of [`ResourceServer::with_metadata`] (none
    /// without it), to merge into the router at the root of the resource's host: at
    /// `/.well-known/oauth-protected-resource` followed by the identifier's path (RFC 9728
    /// §3.1), and at the bare well-known path too.
    pub fn metadata_routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        match &self.metadata {
            Some(metadata) => metadata.routes(),
            None => axum::Router::new(),
        }
    }

    /// The metadata of [`ResourceServer::with_metadata`].
    pub fn metadata(&self) -> Option<&ProtectedResource> {
        self.metadata.as_deref()
    }

    /// A tower layer that lets through only requests with a valid token holding `scopes`,
    /// and puts the [`AccessGrant`] in the request's extensions.
    pub fn require(&self, scopes: &[&str]) -> RequireBearer {
        RequireBearer {
            resource: self.clone(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The grant of the request's bearer token, holding every scope of `scopes`. Without
    /// the request's method and URI, no DPoP proof can be checked: a DPoP-bound token is
    /// refused ([`ResourceServer::authorize_request`] checks it).
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<AccessGrant, BearerError> {
        self.check(headers, OtherPlaces::default(), None, scopes)
            .await
    }

    /// The grant of the request's access token, holding every scope of `scopes`: a bearer
    /// token, or a DPoP-bound one with its proof for this `method` and `uri` (RFC 9449 §7).
    pub async fn authorize_request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<AccessGrant, BearerError> {
        self.authorize_with_body(method, uri, headers, None, scopes)
            .await
    }

    /// [`ResourceServer::authorize_request`] with the request's body, where a bearer token may
    /// be too ([`ResourceServer::accept_form_body_tokens`]).
    pub async fn authorize_with_body(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        scopes: &[&str],
    ) -> Result<AccessGrant, BearerError> {
        let mut other = OtherPlaces::default();
        if self.insecure_query_tokens {
            other = other.query(uri);
        }
        if let (true, Some(body)) = (self.form_body_tokens, body) {
            other = other.body(method, headers, body);
        }
        let target = dpop::Target {
            method,
            uri,
            headers,
        };
        self.check(headers, other, Some(target), scopes).await
    }

    async fn check(
        &self,
        headers: &HeaderMap,
        other: OtherPlaces,
        target: Option<dpop::Target<'_>>,
        scopes: &[&str],
    ) -> Result<AccessGrant, BearerError> {
        let (token, scheme) = presented_anywhere(headers, other, &self.realm)
            .map_err(|e| e.with_resource_metadata(self.metadata_url.clone()))?;
        let token = token.as_str();
        let grant = match self.verifier.verify(token).await {
            Ok(grant) => grant,
            Err(VerifyError::Invalid(why)) => {
                return Err(self.error(Refusal::InvalidToken(why)).with_scheme(scheme))
            }
            Err(VerifyError::Unavailable(why)) => {
                tracing::warn!(error = %why, "bearer token check unavailable");
                return Err(self.error(Refusal::Unavailable));
            }
        };
        dpop::check(
            &self.replay,
            self.dpop_base(),
            token,
            scheme,
            grant.dpop_jkt.as_deref(),
            target,
        )
        .await
        .map_err(|refusal| self.error(refusal).with_scheme(scheme))?;
        self.admit(&grant, scopes)?;
        Ok(grant)
    }

    /// The origin DPoP proofs name (before the request's path): the configured public URL's,
    /// else the resource identifier's or the audience's when an http(s) URL.
    fn dpop_base(&self) -> Option<String> {
        let named = self.public_url.as_deref().or_else(|| {
            self.metadata
                .as_deref()
                .map(ProtectedResource::resource)
                .or(self.audience.as_deref())
        })?;
        url::Url::parse(named)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
    }

    /// Whether a verified grant may use this resource: meant for it (when an audience is set)
    /// and holding every scope of `scopes`.
    fn admit(&self, grant: &AccessGrant, scopes: &[&str]) -> Result<(), BearerError> {
        if let Some(audience) = &self.audience {
            if !grant.audience.iter().any(|a| a.as_str() == &**audience) {
                return Err(self.error(Refusal::InvalidToken(
                    "the token is not meant for this resource".into(),
                )));
            }
        }
        if scopes.iter().any(|s| !grant.has_scope(s)) {
            return Err(self.error(Refusal::InsufficientScope(
                scopes.iter().map(|s| (*s).to_owned()).collect(),
            )));
        }
        Ok(())
    }

    fn error(&self, refusal: Refusal) -> BearerError {
        BearerError::new(self.realm.clone(), refusal)
            .with_resource_metadata(self.metadata_url.clone())
    }
}

/// The extractor: the grant of a valid bearer token holding `S`'s scopes (or the answer that
/// says why not). Reuses the grant a [`RequireBearer`] layer put in the request.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use doorward_axum::protect::*;
/// use tower::ServiceExt as _;
///
/// struct WriteItems;
/// impl Scopes for WriteItems {
///     const SCOPES: &'static [&'static str] = &["items:write"];
/// }
///
/// async fn add_item(auth: Authenticated<WriteItems>) -> String {
///     format!("added for {}", auth.grant.subject)
/// }
///
/// // Tokens checked some other way (here, one fixed token that may only read).
/// struct OneToken;
/// #[async_trait]
/// impl TokenVerifier for OneToken {
///     async fn verify(&self, token: &str) -> Result<AccessGrant, VerifyError> {
///         match token {
///             "reader" => Ok(AccessGrant::new("ada", None, vec!["items:read".into()],
///                                             vec![], i64::MAX)),
///             _ => Err(VerifyError::Invalid("unknown token".into())),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let api = Router::new()
///     .route("/items", get(add_item))
///     .with_state(ResourceServer::new(OneToken));
/// let call = |token: &str| {
///     Request::get("/items").header("authorization", format!("Bearer {token}")).body(Body::empty())
/// };
/// // A valid token without the scope: 403 insufficient_scope (RFC 6750 §3.1).
/// assert_eq!(api.clone().oneshot(call("reader")?).await?.status(), 403);
/// // An unknown token: 401 invalid_token.
/// assert_eq!(api.oneshot(call("forged")?).await?.status(), 401);
/// # Ok(()) }
/// ```
pub struct Authenticated<S: Scopes = AnyScope> {
    pub grant: AccessGrant,
    _scopes: PhantomData<fn() -> S>,
}

impl<S: Scopes> Authenticated<S> {
    /// The user the token stands for; `None` for a token a client got for itself
    /// (`client_credentials`).
    pub fn user(&self) -> Option<&str> {
        self.grant.user.as_deref()
    }
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
            None => {
                // The URI as the client sent it, before any `nest` stripped a prefix.
                let uri = parts
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or(&parts.uri, |original| &original.0);
                resource
                    .authorize_request(&parts.method, uri, &parts.headers, S::SCOPES)
                    .await?
            }
        };
        Ok(Self {
            grant,
            _scopes: PhantomData,
        })
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
            // RFC 6750 §2.2: a form body may carry the token; read it (bounded) and put it back.
            // Only a form is read: another body (a large JSON upload) passes untouched.
            let form = request
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| {
                    v.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                });
            let wants_body = layer.resource.form_body_tokens
                && form
                && !request
                    .headers()
                    .contains_key(axum::http::header::AUTHORIZATION)
                && request.method() != Method::GET;
            let body = if wants_body {
                let (parts, body) = request.into_parts();
                let bytes = match crate::body::read(body).await {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        let refused = BearerError::for_credentials(
                            layer.resource.realm.clone(),
                            &Credentials::Malformed,
                        );
                        return Ok(refused.into_response());
                    }
                };
                request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
                Some(bytes)
            } else {
                None
            };
            let uri = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or(request.uri(), |original| &original.0);
            let checked = layer
                .resource
                .authorize_with_body(
                    request.method(),
                    uri,
                    request.headers(),
                    body.as_deref(),
                    &scopes,
                )
                .await;
            match checked {
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
    cache: cache::GrantCache,
}

#[async_trait]
impl TokenVerifier for LocalVerifier {
    async fn verify(&self, token: &str) -> Result<AccessGrant, VerifyError> {
        let now = self.engine.now();
        let key = cache::GrantCache::key(token);
        if self.ttl > 0 {
            if let Some(grant) = self.cache.get(&key, now) {
                return Ok(grant);
            }
        }
        // Any audience: `admit` checks it against this resource's.
        let info = match self.engine.resolve_access_token(token).await {
            Ok(info) => info,
            Err(doorward_core::Error::OAuth(e)) => {
                return Err(VerifyError::Invalid(e.description.into_owned()))
            }
            Err(e) => return Err(VerifyError::Unavailable(e.to_string())),
        };
        let user = info.user.as_ref().map(|u| u.id.to_string());
        let grant = AccessGrant {
            subject: user.clone().unwrap_or_else(|| info.client.key.clone()),
            user,
            client_id: Some(info.client.key.clone()),
            scopes: info.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            audience: info.audience.clone(),
            expires_at: info.expires_at,
            dpop_jkt: info.dpop_jkt.clone(),
            grant_data: (*info.grant_data).clone(),
        };
        if self.ttl > 0 {
            self.cache.put(key, &grant, now + self.ttl, now);
        }
        Ok(grant)
    }
}
