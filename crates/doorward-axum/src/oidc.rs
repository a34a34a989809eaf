//! OpenID Connect and its companions over HTTP: discovery (RFC 8414, OIDC Discovery), the JWK
//! Set, UserInfo (OIDC Core §5.3), introspection (RFC 7662), revocation (RFC 7009) and
//! RP-initiated logout.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::keys::RELOAD_INTERVAL;
use doorward_core::request::TokenRequest;
use doorward_proto::{ErrorCode, OAuthError};

use crate::api::bearer_token;
use crate::error::{bearer_challenge, body_error, internal_token_error, no_store, token_error};
use crate::session::{csrf, csrf_ok, read_form, signed_in, with_cookie};
use crate::token::basic_credentials;
use crate::{body, pages, AppState};

/// `Cache-Control` of the metadata and the JWK Set: short enough that a relying party sees a
/// new key well before it signs (the publish delay), at most five minutes.
fn public_cache(app: &AppState) -> HeaderValue {
    let delay = app.engine.config().keys.publish_delay;
    let max_age = (delay - RELOAD_INTERVAL).clamp(0, 300);
    HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
}

fn cached_json(app: &AppState, value: impl serde::Serialize) -> Response {
    let mut response = Json(value).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, public_cache(app));
    response
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn metadata(State(app): State<AppState>) -> Response {
    cached_json(&app, app.engine.metadata())
}

/// `GET /oauth/jwks`: every published key (RFC 7517 §5).
pub async fn jwks(State(app): State<AppState>) -> Response {
    cached_json(&app, app.engine.jwks())
}

/// `GET` and `POST /oauth/userinfo` with a bearer token in the `Authorization` header
/// (RFC 6750 §2.1; OIDC Core §5.3.1).
pub async fn userinfo(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = value.and_then(bearer_token) else {
        let error = value.map(|_| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "the Authorization header is malformed",
            )
        });
        return resource_error(StatusCode::UNAUTHORIZED, error.as_ref(), None);
    };
    match app.engine.userinfo(token).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            no_store(&mut response);
            response
        }
        Err(doorward_core::Error::OAuth(e)) if e.code == ErrorCode::InsufficientScope => {
            resource_error(StatusCode::FORBIDDEN, Some(&e), Some("openid"))
        }
        Err(doorward_core::Error::OAuth(e)) if e.code == ErrorCode::TemporarilyUnavailable => {
            token_error(&e)
        }
        Err(doorward_core::Error::OAuth(e)) => {
            resource_error(StatusCode::UNAUTHORIZED, Some(&e), None)
        }
        Err(e) => internal_token_error(&e),
    }
}

/// An RFC 6750 §3 error: the status, a `WWW-Authenticate` challenge (with the scope needed for
/// `insufficient_scope`), and the error as JSON.
fn resource_error(status: StatusCode, error: Option<&OAuthError>, scope: Option<&str>) -> Response {
    let mut challenge = bearer_challenge(error);
    if let Some(scope) = scope {
        if let Ok(with_scope) = HeaderValue::from_str(&format!(
            "{}, scope=\"{scope}\"",
            challenge.to_str().unwrap_or("Bearer")
        )) {
            challenge = with_scope;
        }
    }
    let body = match error {
        Some(e) => {
            serde_json::json!({"error": e.code.as_str(), "error_description": e.description})
        }
        None => {
            serde_json::json!({"error": "invalid_request", "error_description": "a bearer token is required"})
        }
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    no_store(&mut response);
    response
}

/// Reads a client-authenticated form request (introspection, revocation) like the token
/// endpoint does.
async fn client_request(headers: &HeaderMap, body: Body) -> Result<TokenRequest, Response> {
    let basic = basic_credentials(headers).map_err(|e| token_error(&e))?;
    let params = body::parameters(headers, body).await.map_err(body_error)?;
    Ok(TokenRequest { params, basic })
}

/// `POST /oauth/introspect` (RFC 7662 §2).
pub async fn introspect(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request = match client_request(&headers, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    match app.engine.introspect(&request).await {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            no_store(&mut response);
            response
        }
        Err(doorward_core::Error::OAuth(e)) => token_error(&e),
        Err(e) => internal_token_error(&e),
    }
}

/// `POST /oauth/revoke` (RFC 7009 §2): 200 with an empty body whether or not the token existed.
pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request = match client_request(&headers, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    match app.engine.revoke(&request).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(doorward_core::Error::OAuth(e)) => token_error(&e),
        Err(e) => internal_token_error(&e),
    }
}

/// `GET /oauth/end_session` (OpenID Connect RP-Initiated Logout 1.0 §2): a confirmation page,
/// so that a link cannot sign a user out behind their back. A browser with no session goes
/// straight on to the client.
pub async fn end_session_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let checked = match app
        .engine
        .check_end_session(&body::query_pairs(&query))
        .await
    {
        Ok(checked) => checked,
        Err(e) => return refused(&e),
    };
    let user = match signed_in(&app, &headers).await {
        Ok(user) => user,
        Err(e) => return pages::internal(&e),
    };
    let Some(user) = user else {
        return match checked.redirect {
            Some(location) => crate::session::see_other(&location),
            None => pages::respond(StatusCode::OK, pages::signed_out()),
        };
    };
    let (token, set_cookie) = csrf(&app, &headers);
    let client = checked.client.as_ref().map(|c| c.display_name.as_str());
    with_cookie(
        pages::respond(
            StatusCode::OK,
            pages::end_session(&user.user, client, &token, &query),
        ),
        set_cookie,
    )
}

/// The confirmation form of [`end_session_page`]; `request` is the original query, checked
/// again from scratch.
pub async fn end_session(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !csrf_ok(&app, &headers, &form) {
        return pages::csrf_failed();
    }
    let query = form.get("request").map(String::as_str).unwrap_or("");
    let checked = match app
        .engine
        .check_end_session(&body::query_pairs(query))
        .await
    {
        Ok(checked) => checked,
        Err(e) => return refused(&e),
    };
    match form.get("decision").map(String::as_str) {
        Some("approve") => {
            let then = match checked.redirect {
                Some(location) => crate::session::see_other(&location),
                None => pages::respond(StatusCode::OK, pages::signed_out()),
            };
            crate::session::signed_out(&app, &headers, then).await
        }
        Some("deny") => crate::session::see_other("/account"),
        _ => pages::respond(
            StatusCode::BAD_REQUEST,
            pages::message("Bad request", "Choose Sign out or Stay signed in."),
        ),
    }
}

fn refused(error: &doorward_core::Error) -> Response {
    match error {
        doorward_core::Error::EndSession(reason) => pages::respond(
            StatusCode::BAD_REQUEST,
            pages::message("This sign-out link is not valid", &reason.to_string()),
        ),
        other => pages::internal(other),
    }
}
