//! A client-authenticated request (RFC 6749 §2.3.1, §3.2): the token, introspection and
//! revocation endpoints read it the same way.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use doorward_core::dpop::DpopHeader;
use doorward_core::request::{BasicCredentials, TokenRequest};
use doorward_proto::{OAuthError, Secret};

use crate::body;
use crate::response::token::TokenError;

/// The request's HTTP Basic credentials (if any), its body's parameters (a form or JSON,
/// repeated names refused but `resource`'s, RFC 8707 §2) and the peer address (see [`super::ClientAddress`]).
pub(crate) struct ClientRequest(pub TokenRequest);

impl<S: Send + Sync> FromRequest<S> for ClientRequest {
    type Rejection = TokenError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let basic = basic_credentials(&parts.headers)?;
        let client_address = super::address::peer(&parts.extensions);
        let (params, resources) = body::parameters(&parts.headers, body).await?;
        Ok(Self(TokenRequest {
            params,
            resources,
            basic,
            client_address,
            dpop: DpopHeader::from_values(
                parts.headers.get_all("dpop").iter().map(|v| v.as_bytes()),
            ),
        }))
    }
}

/// `Authorization: Basic` credentials, split at the first `:` (a secret may contain `:`; the
/// Eternaltwin client does not form-encode it). Any other scheme is a failed client
/// authentication.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, OAuthError> {
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
