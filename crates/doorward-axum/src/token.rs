//! `POST /oauth/token` (RFC 6749 §3.2).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use doorward_core::request::{BasicCredentials, TokenRequest};
use doorward_proto::{OAuthError, Secret};

use crate::error::{body_error, internal_token_error, no_store, token_error};
use crate::{body, AppState};

pub async fn token(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let basic = match basic_credentials(&headers) {
        Ok(basic) => basic,
        Err(e) => return token_error(&e),
    };
    let params = match body::parameters(&headers, body).await {
        Ok(params) => params,
        Err(e) => return body_error(e),
    };
    match app.engine.token(&TokenRequest { params, basic }).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            no_store(&mut response);
            response
        }
        Err(doorward_core::Error::OAuth(e)) => token_error(&e),
        Err(e) => internal_token_error(&e),
    }
}

/// `Authorization: Basic` credentials, split at the first `:` (a secret may contain `:`; the
/// Eternaltwin client does not form-encode it). Any other scheme is a failed client
/// authentication.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<BasicCredentials>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || OAuthError::invalid_client("the Authorization header is not valid HTTP Basic");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "the token endpoint accepts HTTP Basic client authentication only",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some(BasicCredentials {
        id: id.to_owned(),
        secret: Secret::new(secret),
    }))
}
