//! The Eternaltwin-compatible API: `GET /api/v1/auth/self` and `GET /api/v1/users/{id}`, in
//! the shapes the `eternaltwin` Python client parses.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::model::{Client, User};
use doorward_proto::{ErrorCode, OAuthError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{bearer_challenge, log_internal};
use crate::session::signed_in;
use crate::AppState;

/// Who is asking: a bearer token's user and client, a signed-in browser's user, or a guest.
///
/// Unlike Eternaltwin, which answers a bad token with a silent `Guest`, a bad, expired or
/// revoked token gets 401 `invalid_token` (RFC 6750 §3.1).
pub async fn auth_self(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().unwrap_or("");
            match bearer_token(value) {
                Some(token) => match app.engine.check_access_token(token).await {
                    Ok(info) => Json(json!({
                        "type": "AccessToken",
                        "scope": "Default",
                        "client": client_json(&info.client),
                        "user": short_user_json(&info.user),
                    }))
                    .into_response(),
                    Err(doorward_core::Error::OAuth(e)) => unauthorized(Some(&e)),
                    Err(e) => internal(&e),
                },
                None if is_bearer(value) => unauthorized(Some(&OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "the Authorization header is malformed",
                ))),
                None => unauthorized(None),
            }
        }
        None => match signed_in(&app, &headers).await {
            Ok(Some(user)) => Json(json!({
                "type": "User",
                "scope": "Default",
                "user": short_user_json(&user.user),
                "is_administrator": false,
            }))
            .into_response(),
            Ok(None) => Json(json!({"type": "Guest", "scope": "Default"})).into_response(),
            Err(e) => internal(&e),
        },
    }
}

pub async fn user(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "message": "no user has this id"})),
        )
            .into_response()
    };
    let Ok(id) = Uuid::try_parse(&id) else {
        return not_found();
    };
    match app.engine.store().find_user(id).await {
        Ok(Some(user)) => Json(full_user_json(&user)).into_response(),
        Ok(None) => not_found(),
        Err(e) => internal(&e),
    }
}

fn is_bearer(value: &str) -> bool {
    value
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1 `b64token` syntax).
pub fn bearer_token(value: &str) -> Option<&str> {
    if !is_bearer(value) || !value[6..].starts_with(' ') {
        return None;
    }
    let token = value[7..].trim();
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (!token.is_empty() && token.chars().all(b64token)).then_some(token)
}

fn unauthorized(error: Option<&OAuthError>) -> Response {
    let status = match error.map(|e| e.code) {
        Some(ErrorCode::InvalidRequest) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    let body = match error {
        Some(e) => json!({"error": e.code.as_str(), "error_description": e.description}),
        None => json!({"error": "unauthorized", "error_description": "use a Bearer access token"}),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, bearer_challenge(error));
    response
}

fn internal(error: &(dyn std::error::Error + 'static)) -> Response {
    log_internal(error);
    if doorward_core::ports::StoreError::is_unavailable_in(error) {
        return crate::error::token_error(&OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the database is unavailable; retry in a moment",
        ));
    }
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "server_error"})),
    )
        .into_response()
}

fn client_json(client: &Client) -> Value {
    json!({
        "type": "OauthClient",
        "id": client.id,
        "key": client.key,
        "display_name": client.display_name,
    })
}

fn short_user_json(user: &User) -> Value {
    json!({
        "type": "User",
        "id": user.id,
        "display_name": {"current": {"value": user.display_name}},
    })
}

fn full_user_json(user: &User) -> Value {
    let created_at = time::OffsetDateTime::from_unix_timestamp(user.created_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    json!({
        "type": "User",
        "id": user.id,
        "created_at": created_at,
        "deleted_at": null,
        "display_name": {"current": {"value": user.display_name}},
        "is_administrator": false,
    })
}
