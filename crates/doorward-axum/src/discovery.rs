//! Discovery (RFC 8414, OIDC Discovery): `GET /.well-known/openid-configuration`,
//! `/.well-known/oauth-authorization-server`, and the JWK Set (RFC 7517 §5); and the Protected
//! Resource Metadata of the provider's own API (RFC 9728), `/.well-known/oauth-protected-resource`.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::keys::RELOAD_INTERVAL;

use crate::state::AppState;

/// The server's metadata.
pub(crate) async fn metadata(State(app): State<AppState>) -> Response {
    cached_json(&app, app.engine.metadata())
}

/// `GET /.well-known/oauth-protected-resource`: the metadata of the provider's own API
/// (RFC 9728 §3), whose resource identifier is the issuer.
pub(crate) async fn resource_metadata(State(app): State<AppState>) -> Response {
    cached_json(&app, app.engine.resource_metadata())
}

/// `GET /oauth/jwks`: every published key.
pub(crate) async fn jwks(State(app): State<AppState>) -> Response {
    cached_json(&app, app.engine.jwks())
}

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
