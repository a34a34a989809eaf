//! One error enum per operation, each `#[non_exhaustive]`, with variants named after the check
//! that failed. Sources are chained (`std::error::Error::source`); no variant prints a secret.

use std::fmt;

use doorward_proto::ErrorCode;

/// An error document sent by a provider in the RFC 6749 shape (`error`, `error_description`,
/// `error_uri`), on a redirect (§4.1.2.1) or in a token response body (§5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    /// The `error` value exactly as sent.
    pub error: String,
    /// `error` when it is a registered code.
    pub code: Option<ErrorCode>,
    pub description: Option<String>,
    pub uri: Option<String>,
}

impl ProviderError {
    pub(crate) fn new(error: String, description: Option<String>, uri: Option<String>) -> Self {
        Self {
            code: ErrorCode::parse(&error),
            error,
            description,
            uri,
        }
    }

    /// Whether the provider answered `access_denied` (the user or the provider refused).
    pub fn is_access_denied(&self) -> bool {
        self.code == Some(ErrorCode::AccessDenied)
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// A request that did not get an HTTP response: connection, timeout, TLS, body too large.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the response from {url} is larger than {limit} bytes")]
    BodyTooLarge { url: String, limit: usize },
}

/// The authorization-server metadata or its key set could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    #[error("no issuer is configured, so there is nothing to discover")]
    NoIssuer,
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The document is not JSON (Eternaltwin, for one, answers its web page at `/.well-known/*`).
    #[error("{url} did not answer a JSON document (content type {content_type:?}); is discovery supported by this provider?")]
    NotJson { url: String, content_type: String },
    #[error("{url} answered a document that is not valid metadata")]
    InvalidDocument {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// OIDC Discovery §4.3 / RFC 8414 §3.3: the document must name the issuer it was fetched for.
    #[error("the metadata names issuer {got:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, got: String },
    #[error("the provider has no {0} (not configured and not in its metadata)")]
    MissingEndpoint(&'static str),
}

/// Why a `state` returned to the callback was refused (seed 000's `InvalidStateError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidState {
    #[error("no state came back to the callback")]
    Missing,
    #[error("the returned state does not match the one sent")]
    Mismatch,
    /// The state sent to this browser was not given, so the callback cannot be tied to it
    /// (RFC 9700 §4.7.1); see `ClientBuilder::insecure_unbound_callbacks`.
    #[error("the state sent to this browser was not given: the callback cannot be bound to it")]
    NotBound,
    #[error("the state is not a compact JWS")]
    NotAJws,
    #[error("the state is signed with {0:?}, only HS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the state's signature is not valid")]
    BadSignature,
    #[error("the state lacks or has a malformed {0:?} claim")]
    MalformedClaim(&'static str),
    #[error("the state is for the action {0:?}, not \"authorize\"")]
    WrongAction(String),
    #[error("the authorization expired")]
    Expired,
    #[error("the state was issued in the future")]
    IssuedInFuture,
    #[error("expected authorization server {expected:?}, got {got:?}")]
    OtherAuthorizationServer { expected: String, got: String },
    /// Opaque states: the store does not know it (never issued, or already used).
    #[error("the state is unknown or was already used")]
    Unknown,
    #[error("the state store failed: {0}")]
    Store(String),
}

/// Starting an authorization failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("no redirect_uri is configured for this provider")]
    MissingRedirectUri,
    #[error("the state store failed")]
    StateStore(#[source] StateStoreError),
    /// Pushing the request (RFC 9126) failed: the provider's error, or an unusable answer.
    #[error("the pushed authorization request failed")]
    Push(#[source] TokenError),
}

/// Finishing an authorization from the callback failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinishError {
    /// The provider redirected back with `error=` (RFC 6749 §4.1.2.1): `access_denied` when the
    /// user refused. See [`ProviderError::is_access_denied`].
    #[error("the provider refused the authorization: {0}")]
    Authorization(ProviderError),
    #[error("the callback's state was refused: {0}")]
    InvalidState(#[from] InvalidState),
    #[error("the callback has neither code nor error")]
    MissingCode,
    /// RFC 9700 §4.4.2: the callback came to another redirect URI than this provider's (a
    /// mix-up attack, or the application finished with the wrong client).
    #[error("the callback came to {got:?}, this provider's redirect URI path is {expected:?}")]
    WrongCallbackPath { expected: String, got: String },
    /// The client requires the callback's path ([`ClientBuilder::require_callback_path`]) and
    /// the [`Callback`] does not carry it: build it with [`Callback::from_uri`] or
    /// [`Callback::at_path`].
    ///
    /// [`ClientBuilder::require_callback_path`]: crate::ClientBuilder::require_callback_path
    /// [`Callback`]: crate::Callback
    /// [`Callback::from_uri`]: crate::Callback::from_uri
    /// [`Callback::at_path`]: crate::Callback::at_path
    #[error("the callback's path is unknown; this provider needs it to defend against mix-up")]
    UnknownCallbackPath,
    /// RFC 9207 §2.4: the `iss` parameter names another authorization server (mix-up attack).
    #[error("the callback comes from issuer {got:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, got: String },
    /// RFC 9207 §2.4: the provider says it sends `iss`, and this callback has none.
    #[error("the callback lacks the iss parameter that the provider's metadata promises")]
    MissingIssuer,
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("the code could not be redeemed")]
    Token(#[from] TokenError),
    /// `openid` was requested and the token response has no ID token (OIDC Core §3.1.3.3).
    #[error("openid was requested but the token response has no id_token")]
    MissingIdToken,
    #[error("the ID token was refused")]
    IdToken(#[from] IdTokenError),
}

/// A call to the token endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// An RFC 6749 §5.2 error body (`invalid_grant`, `invalid_client`, …).
    #[error("the provider answered HTTP {status}: {error}")]
    Provider { status: u16, error: ProviderError },
    /// An answer that is not an RFC error body, kept whole (Eternaltwin answers 422
    /// `{"code","message","extra"}`).
    #[error("the provider answered HTTP {status}: {body}")]
    UnexpectedResponse { status: u16, body: String },
    /// Token calls never follow redirects.
    #[error(
        "the provider answered a redirect (HTTP {status}) to {location:?}, which is not followed"
    )]
    Redirected { status: u16, location: String },
    #[error("the token response is not usable: {reason} (body: {body})")]
    InvalidResponse { reason: String, body: String },
    /// Only bearer tokens (RFC 6750) and DPoP-bound ones (RFC 9449) are supported.
    #[error("the token type {0:?} is not supported (only Bearer and DPoP)")]
    UnsupportedTokenType(String),
    #[error("the client is not configured for this: {0}")]
    Configuration(String),
}

/// The device authorization grant (RFC 8628) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The request for a device code, or a poll, failed (an RFC 6749 §5.2 error among them:
    /// `invalid_client`, `invalid_scope`, `invalid_grant` …).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The user refused (`access_denied`, RFC 8628 §3.5).
    #[error("the user denied the device's request")]
    Denied,
    /// The device code expired before the user answered (`expired_token`, or its
    /// `expires_in` passed): start again.
    #[error("the device code expired before the user answered")]
    Expired,
    /// The ID token that came with the tokens is not valid.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The answer of the device authorization endpoint is not usable.
    #[error("the device authorization response is not usable: {reason} (body: {body})")]
    InvalidResponse { reason: String, body: String },
}

/// Refreshing a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("the token has no refresh token")]
    NoRefreshToken,
    #[error("the refresh request failed")]
    Token(#[from] TokenError),
    #[error("the ID token returned with the refreshed tokens was refused")]
    IdToken(#[from] IdTokenError),
    /// OIDC Core §12.2: a refreshed ID token must be about the same user.
    #[error("the refreshed ID token is about another subject")]
    SubjectChanged,
}

/// Why an ID token (OIDC Core §3.1.3.7) or a JWT access token (RFC 9068 §4) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// ID tokens are checked against the configured issuer: a provider without one (a plain
    /// OAuth 2.0 preset) cannot have its ID tokens validated.
    #[error("no issuer is configured for this provider, so its ID token cannot be validated")]
    NoIssuer,
    #[error("the ID token is not a compact JWS")]
    Malformed,
    #[error("the ID token is signed with {0:?}, which is not allowed")]
    UnsupportedAlgorithm(String),
    #[error("no key in the provider's JWKS matches (kid {kid:?}, alg {alg})")]
    NoMatchingKey { kid: Option<String>, alg: String },
    #[error("the provider's keys could not be fetched")]
    Jwks(#[from] DiscoveryError),
    #[error("the ID token's signature is not valid")]
    BadSignature,
    #[error("the ID token lacks or has a malformed {0:?} claim")]
    MissingClaim(&'static str),
    #[error("the ID token's issuer is {got:?}, expected {expected:?}")]
    WrongIssuer { expected: String, got: String },
    #[error("the ID token's audience {audience:?} does not include this client ({client_id:?})")]
    WrongAudience {
        client_id: String,
        audience: Vec<String>,
    },
    #[error("the ID token has several audiences and no azp")]
    MissingAzp,
    #[error("the ID token's azp is {got:?}, not this client")]
    WrongAzp { got: String },
    #[error("the ID token expired at {exp} (now {now}, leeway {leeway} s)")]
    Expired { exp: i64, now: i64, leeway: u64 },
    #[error("the ID token was issued in the future (iat {iat}, now {now})")]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("the ID token has no nonce, one was sent")]
    MissingNonce,
    #[error("the ID token's nonce is not the one sent")]
    WrongNonce,
    #[error("the ID token's at_hash does not match the access token")]
    WrongAtHash,
    /// OIDC Core §3.1.3.7: the user signed in longer ago than the `max_age` sent.
    #[error("the user signed in at {auth_time}, longer ago than max_age {max_age} s")]
    AuthTooOld { auth_time: i64, max_age: u64 },
    /// RFC 9068 §4: a JWT access token's header says `typ: at+jwt`.
    #[error("the token's typ is {got:?}, not at+jwt")]
    WrongType { got: Option<String> },
}

/// A call with a bearer token (API, userinfo, Eternaltwin profile) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the token could not be refreshed before the call")]
    Refresh(#[from] RefreshError),
    #[error("{0} is not a valid URL or path for this provider's API")]
    BadPath(String),
    /// RFC 6750 §3.1 `invalid_token`, or a provider's own way of saying it (Eternaltwin's
    /// `200 {"type":"Guest"}`).
    #[error("the provider did not accept the access token")]
    InvalidToken,
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the response body is not the expected JSON")]
    Json(#[source] serde_json::Error),
    #[error("the userinfo response is about subject {got:?}, the ID token about {expected:?}")]
    SubjectMismatch { expected: String, got: String },
    #[error("the response is not usable: {0}")]
    UnexpectedResponse(String),
}

/// Revocation (RFC 7009) or introspection (RFC 7662) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenManagementError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the introspection response is not valid JSON")]
    InvalidResponse(#[source] serde_json::Error),
}

/// Configuration that cannot work (TOML registry, builder).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("the configuration is not valid TOML for a provider registry")]
    Toml(#[from] toml::de::Error),
    #[error("provider {provider:?}: {reason}")]
    Invalid { provider: String, reason: String },
    #[error("the state key must be at least 32 bytes")]
    StateKeyTooShort,
    #[error("the HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

/// What a [`StateStore`](crate::StateStore) implementation reports when it fails.
pub type StateStoreError = Box<dyn std::error::Error + Send + Sync>;
