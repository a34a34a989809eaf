//! Dynamic client registration (RFC 7591 §3) at `POST /oauth/register`, and each registered
//! client's configuration endpoint (RFC 7592 §2) at `GET|PUT|DELETE /oauth/register/{client_id}`.
//! Mounted only when registration is on. The engine decides (`doorward_core::registration`);
//! this reads the Bearer token and the JSON body, and answers through `response::token`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use doorward_core::registration::RegistrationRequest;
use doorward_proto::OAuthError;
use serde_json::Value;

use crate::body;
use crate::extract::ClientAddress;
use crate::response::bearer::{credentials, Credentials};
use crate::response::token::{NoStore, TokenError};
use crate::state::AppState;

/// `POST /oauth/register`: 201 with the client information response (RFC 7591 §3.2.1).
pub(crate) async fn register(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Result<NoStore<(StatusCode, Json<Value>)>, TokenError> {
    let token = bearer(&headers)?;
    let bytes = json_body(&headers, body).await?;
    let answer = app
        .engine
        .register(RegistrationRequest {
            body: &bytes,
            token,
            from,
        })
        .await?;
    Ok(NoStore((StatusCode::CREATED, Json(answer))))
}

/// `GET /oauth/register/{client_id}` (RFC 7592 §2.1).
pub(crate) async fn read(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<NoStore<Json<Value>>, TokenError> {
    let answer = app
        .engine
        .read_registration(&client_id, bearer(&headers)?)
        .await?;
    Ok(NoStore(Json(answer)))
}

/// `PUT /oauth/register/{client_id}` (RFC 7592 §2.2).
pub(crate) async fn update(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Result<NoStore<Json<Value>>, TokenError> {
    let token = bearer(&headers)?;
    let bytes = json_body(&headers, body).await?;
    let answer = app
        .engine
        .update_registration(
            &client_id,
            RegistrationRequest {
                body: &bytes,
                token,
                from,
            },
        )
        .await?;
    Ok(NoStore(Json(answer)))
}

/// `DELETE /oauth/register/{client_id}` (RFC 7592 §2.3): 204.
pub(crate) async fn delete(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<NoStore<StatusCode>, TokenError> {
    app.engine
        .delete_registration(&client_id, bearer(&headers)?)
        .await?;
    Ok(NoStore(StatusCode::NO_CONTENT))
}

/// The Bearer token of the request, if any; a malformed Bearer header is `invalid_request`
/// (RFC 6750 §3.1).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, TokenError> {
    match credentials(headers) {
        Credentials::Token(token) => Ok(Some(token)),
        Credentials::Absent | Credentials::Dpop(_) => Ok(None),
        Credentials::Malformed => Err(OAuthError::invalid_request(
            "the Authorization header is not a valid Bearer header (RFC 6750 section 2.1)",
        )
        .into()),
    }
}

/// The body, `application/json` (RFC 7591 §3.1), at most 64 KiB.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, TokenError> {
    if !body::is_json(headers) {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/json (RFC 7591 section 3.1)",
        )
        .into());
    }
    Ok(body::read(body).await?)
}
