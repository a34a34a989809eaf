//! The one place where errors become responses: RFC 6749 §5.2 JSON for the token endpoint,
//! RFC 6750 §3 `WWW-Authenticate` for protected resources, HTML pages for people. Internal
//! errors reach the client as an opaque 500 and the log in full.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_proto::{parameter_for_description, ErrorCode, OAuthError};

use crate::body::BodyError;

/// `Cache-Control: no-store` and `Pragma: no-cache`: token responses and errors must not be
/// cached (RFC 6749 §5.1).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A token-endpoint error (RFC 6749 §5.2): 401 with `WWW-Authenticate` for `invalid_client`,
/// 500 for `server_error`, 503 with `Retry-After` when the server is busy, 400 otherwise.
pub fn token_error(error: &OAuthError) -> Response {
    let status = match error.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = token_error_with_status(status, error);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn token_error_with_status(status: StatusCode, error: &OAuthError) -> Response {
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
    no_store(&mut response);
    response
}

/// A body that could not be read, as a token-endpoint error.
pub fn body_error(error: BodyError) -> Response {
    match error {
        BodyError::TooLarge => token_error_with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            &OAuthError::invalid_request("the request body is larger than 64 KiB"),
        ),
        BodyError::Unreadable => token_error(&OAuthError::invalid_request(
            "the request body could not be read",
        )),
        BodyError::UnsupportedType => token_error(&OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
        BodyError::Malformed(why) => token_error(&OAuthError::invalid_request(why)),
        BodyError::Repeated(name) => token_error(&OAuthError::invalid_request(format!(
            "the parameter {} is repeated (RFC 6749 section 3.2)",
            parameter_for_description(&name)
        ))),
    }
}

/// Logs an internal failure in full and answers the token endpoint with an opaque
/// `server_error`.
pub fn internal_token_error(error: &(dyn std::error::Error + 'static)) -> Response {
    log_internal(error);
    if doorward_core::ports::StoreError::is_unavailable_in(error) {
        // RFC 6749 §5.2 has no code for it; temporarily_unavailable (§4.1.2.1) with 503 and
        // Retry-After says what a client needs to know: nothing happened, retry.
        return token_error(&OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the database is unavailable; retry in a moment",
        ));
    }
    token_error(&OAuthError::server_error())
}

pub fn log_internal(error: &dyn std::error::Error) {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %message, "internal error");
}

/// The `WWW-Authenticate` challenge of a protected resource (RFC 6750 §3). With no error, the
/// request carried no usable credentials and gets no error code (§3.1).
pub fn bearer_challenge(error: Option<&OAuthError>) -> HeaderValue {
    let value = match error {
        None => "Bearer realm=\"doorward\"".to_owned(),
        Some(e) => format!(
            "Bearer realm=\"doorward\", error=\"{}\", error_description=\"{}\"",
            e.code.as_str(),
            e.description.replace(['"', '\\'], "'")
        ),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}
