//! The Eternaltwin-compatible API: `GET /api/v1/auth/self` and `GET /api/v1/users/{id}`, in
//! the shapes the `eternaltwin` Python client parses. Both answer who someone is, so no cache
//! may keep them (`Cache-Control: no-store`, as RFC 6749 §5.1 asks of token answers).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::dpop::Presentation;
use doorward_core::model::{Client, User};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::extract::Browser;
use crate::response::bearer::{dpop_header, presented_token, BearerError, Refusal, REALM};

/// Who is asking (Eternaltwin's `GET /api/v1/auth/self`).
pub(crate) const AUTH_SELF: &str = "/api/v1/auth/self";
use crate::state::AppState;

/// Who is asking: a bearer token's user and client, a signed-in browser's user, or a guest.
///
/// Unlike Eternaltwin, which answers a bad token with a silent `Guest`, a bad, expired or
/// revoked token gets 401 `invalid_token` (RFC 6750 §3.1).
pub(crate) async fn auth_self(
    State(app): State<AppState>,
    browser: Browser,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    self_json(&app, &browser, &headers).await.map(identity)
}

/// An answer about someone's identity, kept by no cache.
fn identity(mut response: Response) -> Response {
    crate::response::no_store(&mut response);
    response
}

async fn self_json(
    app: &AppState,
    browser: &Browser,
    headers: &HeaderMap,
) -> Result<Response, BearerError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let (token, scheme) = presented_token(headers, &REALM.into())?;
        let dpop = dpop_header(headers);
        let url = app.engine.endpoint_url(AUTH_SELF);
        let presented = Presentation {
            token,
            scheme,
            dpop: &dpop,
            method: "GET",
            url: &url,
        };
        let info = app
            .engine
            .check_presented_token(&presented)
            .await
            .map_err(|e| BearerError::from_engine(e).with_scheme(scheme))?;
        let user = info
            .require_user()
            .map_err(|_| BearerError::provider(Refusal::NoUser))?;
        // Written from borrowed fields, not through a `serde_json::Value` tree: this is the
        // hot path of a bearer-protected call (BENCHMARKS.md, W3).
        return Ok(Json(AccessTokenSelf {
            client: ClientJson::of(&info.client),
            scope: "Default",
            kind: "AccessToken",
            user: ShortUser::of(user),
        })
        .into_response());
    }
    match browser.signed_in().await {
        Ok(Some(user)) => Ok(Json(json!({
            "type": "User",
            "scope": "Default",
            "user": ShortUser::of(&user.user),
            "is_administrator": false,
        }))
        .into_response()),
        Ok(None) => Ok(Json(json!({"type": "Guest", "scope": "Default"})).into_response()),
        Err(e) => Err(BearerError::from_engine(e.into())),
    }
}

pub(crate) async fn user(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, BearerError> {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "message": "no user has this id"})),
        )
            .into_response()
    };
    let Ok(id) = Uuid::try_parse(&id) else {
        return Ok(identity(not_found()));
    };
    match app.engine.store().find_user(id).await {
        Ok(Some(user)) => Ok(identity(Json(full_user_json(&user)).into_response())),
        Ok(None) => Ok(identity(not_found())),
        Err(e) => Err(BearerError::from_engine(e.into())),
    }
}

/// `auth/self` for a bearer token. Fields in alphabetical order, as `serde_json::Value` (a
/// B-tree) wrote them before: the same bytes.
#[derive(Serialize)]
struct AccessTokenSelf<'a> {
    client: ClientJson<'a>,
    scope: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    user: ShortUser<'a>,
}

#[derive(Serialize)]
struct ClientJson<'a> {
    display_name: &'a str,
    id: Uuid,
    key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> ClientJson<'a> {
    fn of(client: &'a Client) -> Self {
        Self {
            display_name: &client.display_name,
            id: client.id,
            key: &client.key,
            kind: "OauthClient",
        }
    }
}

/// `{"current": {"value": NAME}}`: Eternaltwin's versioned display name.
#[derive(Serialize)]
struct DisplayName<'a> {
    current: CurrentName<'a>,
}

#[derive(Serialize)]
struct CurrentName<'a> {
    value: &'a str,
}

#[derive(Serialize)]
struct ShortUser<'a> {
    display_name: DisplayName<'a>,
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> ShortUser<'a> {
    fn of(user: &'a User) -> Self {
        Self {
            display_name: DisplayName {
                current: CurrentName {
                    value: &user.display_name,
                },
            },
            id: user.id,
            kind: "User",
        }
    }
}

fn full_user_json(user: &User) -> serde_json::Value {
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
