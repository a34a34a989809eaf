//! The answers of the token-style endpoints (token, introspection, revocation, and dynamic
//! client registration): RFC 6749 §5.1 success JSON and §5.2 error JSON (RFC 7591 §3.2 for
//! registration), never cached.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::registration::RegistrationError;
use doorward_core::throttle::Throttled;
use doorward_proto::{parameter_for_description, ErrorCode, OAuthError};

use super::{no_store, retry_soon, Failure};
use crate::body::BodyError;

/// A success of a token-style endpoint: `T` with `Cache-Control: no-store` and
/// `Pragma: no-cache` (RFC 6749 §5.1).
pub struct NoStore<T>(pub T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        no_store(&mut response);
        response
    }
}

/// An answer of the token or pushed-request endpoint with the server's current DPoP nonce in
/// `DPoP-Nonce` when it requires nonces (RFC 9449 §8): with a `use_dpop_nonce` refusal the
/// client retries with it, and with a success it has it for its next request.
pub struct WithDpopNonce<T>(pub T, pub Option<String>);

impl<T: IntoResponse> IntoResponse for WithDpopNonce<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        if let Some(value) = self.1.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("dpop-nonce", value);
        }
        response
    }
}

/// A refusal of a token-style endpoint (RFC 6749 §5.2): 401 with `WWW-Authenticate` for
/// `invalid_client`, 413 for a body over the limit, 429 with `Retry-After` after too many
/// failures, 500 for `server_error`, 503 with `Retry-After` when the server is busy or its
/// store unreachable, 400 otherwise.
#[derive(Debug)]
pub enum TokenError {
    OAuth(OAuthError),
    Body(BodyError),
    Failure(Failure),
    /// Too many wrong secrets for this client, or wrong passwords at the password grant
    /// (RFC 6749 §10.10, [`doorward_core::throttle`]): answered `429 Too Many Requests` with
    /// `Retry-After` and the error code `slow_down`.
    ///
    /// Why `slow_down` (RFC 8628 §3.5, registered for the token endpoint): the request was
    /// refused before its credentials were looked at, so no code that speaks of them fits.
    /// `invalid_client` would tell a correctly configured client whose counter an attacker
    /// ran up that its secret is wrong (and send its operators hunting for a bad secret);
    /// `temporarily_unavailable` (§4.1.2.1) is not a token-endpoint code and says the server
    /// is at fault. `slow_down` says what is true, "back off, then retry", and with 429 and
    /// `Retry-After` a generic client treats it as a rate limit.
    Throttled(Throttled),
    /// Dynamic client registration is off: 404, as for any path the server does not serve.
    RegistrationOff,
    /// Registration refused by the server's policy, not by the metadata (the cap on
    /// registered clients): 403 with `access_denied`. RFC 7591 §3.2.2 has no code for it, and
    /// `invalid_client_metadata` would send the developer looking for a mistake in metadata
    /// that is fine.
    Forbidden(OAuthError),
    /// Too many registrations from one address within the hour: 429 with `Retry-After` and
    /// `slow_down`, like [`TokenError::Throttled`] and for the same reason: the metadata is
    /// not at fault (a 400 would say it is), and a generic client backs off on a 429.
    RateLimited(Throttled),
}

impl From<RegistrationError> for TokenError {
    fn from(error: RegistrationError) -> Self {
        match error {
            RegistrationError::Disabled => Self::RegistrationOff,
            // RFC 7591 §3 (initial access token) and RFC 7592 §2 (registration access token)
            // are OAuth bearer tokens: RFC 6750 §3.1 `invalid_token`.
            RegistrationError::InvalidToken => Self::OAuth(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token is missing, unknown, expired or spent",
            )),
            RegistrationError::Metadata(e) => Self::OAuth(e),
            RegistrationError::Full => Self::Forbidden(OAuthError::new(
                ErrorCode::AccessDenied,
                "this server registers no more clients",
            )),
            RegistrationError::RateLimited(t) => Self::RateLimited(t),
            RegistrationError::Engine(e) => e.into(),
            other => Self::Failure(Failure::of(&other)),
        }
    }
}

impl From<OAuthError> for TokenError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<BodyError> for TokenError {
    fn from(error: BodyError) -> Self {
        Self::Body(error)
    }
}

impl From<doorward_core::Error> for TokenError {
    fn from(error: doorward_core::Error) -> Self {
        match error {
            doorward_core::Error::OAuth(e) => Self::OAuth(e),
            doorward_core::Error::Throttled(t) => Self::Throttled(t),
            other => Self::Failure(Failure::of(&other)),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(error) => oauth(&error),
            Self::Body(BodyError::TooLarge) => with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                &OAuthError::invalid_request("the request body is larger than 64 KiB"),
            ),
            Self::Body(BodyError::Unreadable) => oauth(&OAuthError::invalid_request(
                "the request body could not be read",
            )),
            Self::Body(BodyError::UnsupportedType) => oauth(&OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded or application/json",
            )),
            Self::Body(BodyError::Malformed(why)) => oauth(&OAuthError::invalid_request(why)),
            Self::Body(BodyError::Repeated(name)) => oauth(&OAuthError::invalid_request(format!(
                "the parameter {} is repeated (RFC 6749 section 3.2)",
                parameter_for_description(&name)
            ))),
            // RFC 6749 §5.2 has no code for it; temporarily_unavailable (§4.1.2.1) with 503
            // and Retry-After says what a client needs to know: nothing happened, retry.
            Self::Failure(Failure::Unavailable) => oauth(&OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the database is unavailable; retry in a moment",
            )),
            Self::Failure(Failure::Internal) => oauth(&OAuthError::server_error()),
            Self::Throttled(Throttled { retry_after }) => too_many(
                retry_after,
                format!("too many failed attempts; retry in {retry_after} s"),
            ),
            Self::RateLimited(Throttled { retry_after }) => too_many(
                retry_after,
                format!("too many registrations from this address; retry in {retry_after} s"),
            ),
            Self::RegistrationOff => with_status(
                StatusCode::NOT_FOUND,
                &OAuthError::invalid_request("dynamic client registration is off"),
            ),
            Self::Forbidden(error) => with_status(StatusCode::FORBIDDEN, &error),
        }
    }
}

/// 429 with `Retry-After` and `slow_down`.
fn too_many(retry_after: u64, description: String) -> Response {
    let error = OAuthError::new(ErrorCode::SlowDown, description);
    let mut response = with_status(StatusCode::TOO_MANY_REQUESTS, &error);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

fn oauth(error: &OAuthError) -> Response {
    let status = match error.code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = with_status(status, error);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_soon(&mut response);
    }
    response
}

fn with_status(status: StatusCode, error: &OAuthError) -> Response {
    let body = serde_json::json!({
        "error": error.code.as_str(),
        "error_description": error.description,
    });
    let mut response = (status, Json(body)).into_response();
    if error.code == ErrorCode::InvalidClient {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"doorward\", charset=\"UTF-8\""),
        );
    }
    // The registration endpoints' bearer tokens (RFC 6750 §3).
    if error.code == ErrorCode::InvalidToken {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"doorward\", error=\"invalid_token\""),
        );
    }
    no_store(&mut response);
    response
}
