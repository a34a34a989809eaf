//! The refusals of a bearer-protected resource (RFC 6750 §3; RFC 9449 §7.1 for DPoP), and the
//! one reader of its `Authorization: Bearer` or `DPoP` credentials (§2.1; RFC 9449 §7.1). Used by the provider's own resources (the
//! Eternaltwin API, UserInfo) and by every API behind [`crate::protect`].

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorward_core::dpop::{DpopHeader, Scheme, DPOP_ALGS};
use doorward_proto::ErrorCode;

use super::{no_store, retry_soon, Failure};

/// The realm of the provider's own resources.
pub const REALM: &str = "doorward";

/// What a request's `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// `Bearer <token>` with a token of the `b64token` syntax.
    Token(&'a str),
    /// `DPoP <token>` (RFC 9449 §7.1), the same syntax: a DPoP-bound token, whose proof is in
    /// the `DPoP` header.
    Dpop(&'a str),
    /// No header, or another scheme: no Bearer credentials (§3.1, no error code).
    Absent,
    /// A Bearer header that does not parse: `invalid_request` (§3.1).
    Malformed,
}

/// The credentials of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1
/// `b64token` syntax).
pub fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::Absent;
    };
    let bytes = value.as_bytes();
    // RFC 9110 §11.4: the scheme is a whole token, followed by a space or nothing
    // (`Bearerx abc` is another scheme, not a malformed Bearer header).
    let is_scheme = |name: &[u8]| {
        bytes.len() >= name.len()
            && bytes[..name.len()].eq_ignore_ascii_case(name)
            && matches!(bytes.get(name.len()), None | Some(b' ' | b'\t'))
    };
    let (scheme_len, dpop) = if is_scheme(b"bearer") {
        (6, false)
    } else if is_scheme(b"dpop") {
        (4, true)
    } else {
        return Credentials::Absent;
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v[scheme_len..].strip_prefix(' '))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter(|t| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
        });
    match token {
        Some(token) if dpop => Credentials::Dpop(token),
        Some(token) => Credentials::Token(token),
        None => Credentials::Malformed,
    }
}

/// A bearer token found outside the `Authorization` header: in a form body (RFC 6750 §2.2)
/// or in the query (§2.3), where the resource accepts them.
#[derive(Debug, Default)]
pub(crate) struct OtherPlaces {
    /// `access_token` of an `application/x-www-form-urlencoded` body (not with GET).
    pub(crate) body: Option<String>,
    /// `access_token` of the query.
    pub(crate) query: Option<String>,
    /// More than one `access_token` in one of them: malformed.
    pub(crate) repeated: bool,
}

impl OtherPlaces {
    /// The `access_token` of a form `body` of a request with `method` and `headers` (§2.2:
    /// the form content type, a method with a body, one part).
    pub(crate) fn body(
        mut self,
        method: &axum::http::Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if form && *method != axum::http::Method::GET {
            let found = Self::access_tokens(body);
            self.repeated |= found.len() > 1;
            self.body = found.into_iter().next();
        }
        self
    }

    /// The `access_token` of the query (§2.3).
    pub(crate) fn query(mut self, uri: &axum::http::Uri) -> Self {
        let found = Self::access_tokens(uri.query().unwrap_or("").as_bytes());
        self.repeated |= found.len() > 1;
        self.query = found.into_iter().next();
        self
    }

    fn access_tokens(form: &[u8]) -> Vec<String> {
        url::form_urlencoded::parse(form)
            .filter(|(name, _)| name == "access_token")
            .map(|(_, value)| value.into_owned())
            .collect()
    }
}

/// The token of a request and its scheme: from the `Authorization` header, or from one of the
/// `other` places; two methods at once (or a repeated `access_token`) are `invalid_request`
/// (RFC 6750 §2: "MUST NOT use more than one method"), none is a bare challenge.
pub(crate) fn presented_anywhere(
    headers: &HeaderMap,
    other: OtherPlaces,
    realm: &Arc<str>,
) -> Result<(String, Scheme), BearerError> {
    let elsewhere = [other.body, other.query]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    let malformed = || BearerError::for_credentials(realm.clone(), &Credentials::Malformed);
    if other.repeated || elsewhere.len() > 1 {
        return Err(malformed());
    }
    match (credentials(headers), elsewhere.into_iter().next()) {
        (Credentials::Absent, Some(token)) => Ok((token, Scheme::Bearer)),
        (Credentials::Token(_) | Credentials::Dpop(_), Some(_)) => Err(malformed()),
        (Credentials::Token(token), None) => Ok((token.to_owned(), Scheme::Bearer)),
        (Credentials::Dpop(token), None) => Ok((token.to_owned(), Scheme::Dpop)),
        (other, None) => Err(BearerError::for_credentials(realm.clone(), &other)),
        (Credentials::Malformed, Some(_)) => Err(malformed()),
    }
}

/// The `DPoP` header(s) of a request (RFC 9449 §4.1).
pub fn dpop_header(headers: &HeaderMap) -> DpopHeader {
    DpopHeader::from_values(headers.get_all("dpop").iter().map(|v| v.as_bytes()))
}

/// The access token of a request and the scheme it came with, or the refusal of a request
/// without one (`realm` names the resource).
pub(crate) fn presented_token<'h>(
    headers: &'h HeaderMap,
    realm: &Arc<str>,
) -> Result<(&'h str, Scheme), BearerError> {
    match credentials(headers) {
        Credentials::Token(token) => Ok((token, Scheme::Bearer)),
        Credentials::Dpop(token) => Ok((token, Scheme::Dpop)),
        other => Err(BearerError::for_credentials(realm.clone(), &other)),
    }
}

/// Why a request to a protected resource was refused, answered per RFC 6750 §3: no
/// credentials → 401 with a bare challenge; a malformed header → 400 `invalid_request`; a bad,
/// expired, revoked or foreign token → 401 `invalid_token`; a missing scope → 403
/// `insufficient_scope` with the scope needed; an unreachable provider or store → 503 with
/// `Retry-After`.
#[derive(Debug)]
pub struct BearerError {
    realm: Arc<str>,
    refusal: Refusal,
    /// The URL of the resource's metadata (RFC 9728 §5.1), named in every challenge.
    resource_metadata: Option<Arc<str>>,
    /// The scheme of the challenge: `DPoP` for a request that used it, or a refused proof.
    scheme: Scheme,
}

/// What failed.
#[derive(Debug)]
pub(crate) enum Refusal {
    NoCredentials,
    Malformed,
    InvalidToken(String),
    InsufficientScope(Vec<String>),
    /// A DPoP proof missing, malformed, for another request or key, or replayed (RFC 9449
    /// §7.1): 401 `invalid_dpop_proof` with a `DPoP` challenge.
    InvalidProof(String),
    /// A valid token without a user (`client_credentials`) at a resource about a user: 403
    /// `insufficient_scope` (RFC 6750 §3.1), since the token is valid but grants nothing here
    /// (`invalid_token` would send the client to get another token of the same kind).
    NoUser,
    Unavailable,
    Internal,
}

impl BearerError {
    pub(crate) fn new(realm: Arc<str>, refusal: Refusal) -> Self {
        let scheme = match refusal {
            Refusal::InvalidProof(_) => Scheme::Dpop,
            _ => Scheme::Bearer,
        };
        Self {
            realm,
            refusal,
            resource_metadata: None,
            scheme,
        }
    }

    /// The same refusal challenging with `scheme`, the one the request used (RFC 9449 §7.1).
    pub(crate) fn with_scheme(mut self, scheme: Scheme) -> Self {
        if !matches!(self.refusal, Refusal::InvalidProof(_)) {
            self.scheme = scheme;
        }
        self
    }

    /// The same refusal naming the resource's metadata URL (RFC 9728 §5.1) in its challenge.
    pub(crate) fn with_resource_metadata(mut self, url: Option<Arc<str>>) -> Self {
        self.resource_metadata = url;
        self
    }

    /// A refusal of one of the provider's own resources.
    pub(crate) fn provider(refusal: Refusal) -> Self {
        Self::new(REALM.into(), refusal)
    }

    /// The engine's answer to a token check, as a refusal of the provider's resources.
    pub(crate) fn from_engine(error: doorward_core::Error) -> Self {
        Self::provider(match error {
            doorward_core::Error::OAuth(e) => match e.code {
                ErrorCode::TemporarilyUnavailable => Refusal::Unavailable,
                ErrorCode::InvalidRequest => Refusal::Malformed,
                ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => {
                    Refusal::InvalidProof(e.description.into_owned())
                }
                _ => Refusal::InvalidToken(e.description.into_owned()),
            },
            other => match Failure::of(&other) {
                Failure::Unavailable => Refusal::Unavailable,
                Failure::Internal => Refusal::Internal,
            },
        })
    }

    /// The refusal of a request without usable credentials: none, or a malformed header.
    pub(crate) fn for_credentials(realm: Arc<str>, credentials: &Credentials<'_>) -> Self {
        Self::new(
            realm,
            match credentials {
                Credentials::Malformed => Refusal::Malformed,
                _ => Refusal::NoCredentials,
            },
        )
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self.refusal {
            Refusal::NoCredentials | Refusal::InvalidToken(_) | Refusal::InvalidProof(_) => {
                StatusCode::UNAUTHORIZED
            }
            Refusal::Malformed => StatusCode::BAD_REQUEST,
            Refusal::InsufficientScope(_) | Refusal::NoUser => StatusCode::FORBIDDEN,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.refusal)
    }
}

impl std::error::Error for BearerError {}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let realm = &self.realm;
        let (code, description, extra) = match &self.refusal {
            Refusal::NoCredentials => (
                None,
                "a Bearer access token is needed".to_owned(),
                String::new(),
            ),
            Refusal::Malformed => (
                Some("invalid_request"),
                "the Authorization header is malformed".to_owned(),
                String::new(),
            ),
            Refusal::InvalidToken(why) => (Some("invalid_token"), why.clone(), String::new()),
            Refusal::InvalidProof(why) => (Some("invalid_dpop_proof"), why.clone(), String::new()),
            Refusal::InsufficientScope(scopes) => {
                let scope = scopes.join(" ");
                (
                    Some("insufficient_scope"),
                    format!("the token needs the scope {scope}"),
                    format!(", scope=\"{scope}\""),
                )
            }
            Refusal::NoUser => (
                Some("insufficient_scope"),
                "this resource needs a token issued for a user, not one a client got for itself"
                    .to_owned(),
                String::new(),
            ),
            Refusal::Unavailable => (
                Some("temporarily_unavailable"),
                "the token cannot be checked now; retry".to_owned(),
                String::new(),
            ),
            Refusal::Internal => (
                Some("server_error"),
                "the server met an unexpected error".to_owned(),
                String::new(),
            ),
        };
        // RFC 6750 §3: printable ASCII without `"` and `\` (descriptions may quote what a
        // client sent).
        let clean: String = description
            .chars()
            .map(|c| {
                if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let scheme = self.scheme.as_str();
        // RFC 9449 §7.1: a DPoP challenge names the proof algorithms accepted.
        let algs = match self.scheme {
            Scheme::Dpop => format!(", algs=\"{}\"", DPOP_ALGS.join(" ")),
            Scheme::Bearer => String::new(),
        };
        let mut challenge = match code {
            None | Some("temporarily_unavailable") | Some("server_error") => {
                format!("{scheme} realm=\"{realm}\"{algs}")
            }
            Some(code) => format!(
                "{scheme} realm=\"{realm}\"{algs}, error=\"{code}\", error_description=\"{clean}\"{extra}"
            ),
        };
        // RFC 9728 §5.1: where a client finds out which authorization server to ask.
        if let Some(url) = &self.resource_metadata {
            let url = url.replace(['"', '\\'], "");
            challenge.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        let body = serde_json::json!({
            "error": code.unwrap_or("unauthorized"),
            "error_description": description,
        });
        let mut response = (self.status(), Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(self.refusal, Refusal::Unavailable) {
            retry_soon(&mut response);
        }
        no_store(&mut response);
        response
    }
}
