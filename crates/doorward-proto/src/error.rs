use std::borrow::Cow;
use std::fmt;

/// The error codes of RFC 6749 §4.1.2.1 (authorization endpoint), §5.2 (token endpoint) and
/// RFC 6750 §3.1 (protected resources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A parameter is missing, repeated, malformed or not supported (§4.1.2.1, §5.2).
    InvalidRequest,
    /// Client authentication failed (§5.2). Answered with 401 and `WWW-Authenticate`.
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked, spent, or was issued to another
    /// client or for another redirect URI (§5.2).
    InvalidGrant,
    /// The client may not use this grant or response type (§4.1.2.1, §5.2).
    UnauthorizedClient,
    /// The grant type is not supported by this server (§5.2).
    UnsupportedGrantType,
    /// The resource owner or the server denied the request (§4.1.2.1).
    AccessDenied,
    /// The response type is not supported by this server (§4.1.2.1).
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown or malformed (§4.1.2.1, §5.2).
    InvalidScope,
    /// The server met an unexpected condition (§4.1.2.1).
    ServerError,
    /// The server is overloaded or in maintenance (§4.1.2.1).
    TemporarilyUnavailable,
    /// The access token is expired, revoked, malformed or invalid (RFC 6750 §3.1).
    InvalidToken,
    /// The access token lacks a scope the resource needs (RFC 6750 §3.1).
    InsufficientScope,
    /// `prompt=none` and the user is not signed in (OIDC Core §3.1.2.6).
    LoginRequired,
    /// `prompt=none` and the user has not approved the client (OIDC Core §3.1.2.6).
    ConsentRequired,
    /// `prompt=none` and the user must interact in another way (OIDC Core §3.1.2.6).
    InteractionRequired,
    /// The token type hint names a type this server cannot revoke (RFC 7009 §2.2.1).
    UnsupportedTokenType,
    /// The server does not support the `request` parameter (OIDC Core §3.1.2.6, §6).
    RequestNotSupported,
    /// The server does not support the `request_uri` parameter (OIDC Core §3.1.2.6, §6).
    RequestUriNotSupported,
    /// The `request_uri` is unknown, expired, of another client or used already (OIDC Core
    /// §3.1.2.6, RFC 9126 §4).
    InvalidRequestUri,
    /// The request object is not signed by the client, not for this server, expired or
    /// malformed (OIDC Core §3.1.2.6, RFC 9101 §6.3).
    InvalidRequestObject,
    /// The user has not answered the device authorization yet: poll again (RFC 8628 §3.5).
    AuthorizationPending,
    /// The device code expired: start again (RFC 8628 §3.5).
    ExpiredToken,
    /// Back off before retrying (RFC 8628 §3.5): Doorward's answer, with 429 and
    /// `Retry-After`, to a client refused by its throttle after too many failed
    /// authentications (RFC 6749 §10.10).
    SlowDown,
    /// A `resource` is not an absolute URI without a fragment, or names a resource this
    /// server or client may not get tokens for (RFC 8707 §2, §2.2).
    InvalidTarget,
    /// A redirect URI of a client registration is refused (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// A member of a client registration's metadata is refused (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// The DPoP proof is missing where required, malformed, badly signed, for another
    /// request, outside its time window or replayed (RFC 9449 §5, §7.1).
    InvalidDpopProof,
    /// The DPoP proof lacks the server's current nonce, sent in the `DPoP-Nonce` header of
    /// this answer: retry with it (RFC 9449 §8, §9).
    UseDpopNonce,
}

impl ErrorCode {
    /// Every code, for lookups by wire name.
    const ALL: [ErrorCode; 28] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::AccessDenied,
        Self::UnsupportedResponseType,
        Self::InvalidScope,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InteractionRequired,
        Self::UnsupportedTokenType,
        Self::RequestNotSupported,
        Self::RequestUriNotSupported,
        Self::InvalidRequestUri,
        Self::InvalidRequestObject,
        Self::AuthorizationPending,
        Self::ExpiredToken,
        Self::SlowDown,
        Self::InvalidTarget,
        Self::InvalidRedirectUri,
        Self::InvalidClientMetadata,
        Self::InvalidDpopProof,
        Self::UseDpopNonce,
    ];

    /// The code named `value` on the wire, if it is one of the registered codes above.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == value)
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::AuthorizationPending => "authorization_pending",
            Self::ExpiredToken => "expired_token",
            Self::SlowDown => "slow_down",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request parameter's name as it may appear in `error_description`, whose characters
/// RFC 6749 §5.2 limits to printable ASCII without `"` and `\`: a name that is not a plain
/// token is not echoed.
pub fn parameter_for_description(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        format!("`{name}`")
    } else {
        "(unnamed)".to_owned()
    }
}

/// An OAuth error: a code and a human-readable description for the client developer
/// (`error_description`, RFC 6749 §5.2). The description never carries secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server met an unexpected condition",
        )
    }
}
