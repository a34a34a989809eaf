//! Protected Resource Metadata (RFC 9728): the document a resource server publishes so that a
//! client holding no token learns which authorization servers issue tokens for it, and the URL
//! of that document, which its `401` answers name (`resource_metadata`, §5.1).

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The well-known suffix of RFC 9728 §3 (registered in §8.3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata of a protected resource (RFC 9728 §2), built from its resource identifier.
///
/// ```
/// use doorward_axum::protect::ProtectedResource;
///
/// let metadata = ProtectedResource::new("https://api.example.com/mcp")?
///     .authorization_server("https://id.example.com")
///     .scopes(&["items:read"])
///     .name("Items API");
/// // §3.1: the well-known suffix goes between the host and the path.
/// assert_eq!(
///     metadata.metadata_url(),
///     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// # Ok::<(), doorward_axum::protect::InvalidResource>(())
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ProtectedResource {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
    /// Where the document is served on the resource's host: the well-known suffix, then the
    /// resource identifier's path (§3.1).
    #[serde(skip)]
    path: String,
    #[serde(skip)]
    url: String,
}

/// The resource identifier is not an `http` or `https` URL with a host and without a fragment
/// (RFC 9728 §1.2: "a URL that uses the https scheme", http allowed here for loopback tests).
#[derive(Debug, thiserror::Error)]
#[error("the resource identifier {0:?} is not an http(s) URL with a host and without a fragment or query")]
pub struct InvalidResource(String);

impl ProtectedResource {
    /// The metadata of the resource `resource`, its identifier: the `aud` its tokens must
    /// carry (RFC 8707) and the value clients send as `resource`. Bearer tokens are accepted
    /// in the `Authorization` header only (`bearer_methods_supported = ["header"]`).
    pub fn new(resource: impl Into<String>) -> Result<Self, InvalidResource> {
        let resource: String = resource.into();
        let invalid = || InvalidResource(resource.clone());
        let url = url::Url::parse(&resource).map_err(|_| invalid())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.fragment().is_none()
            && url.query().is_none()
            && !resource.contains('#')
            && !resource
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !plain {
            return Err(invalid());
        }
        // §3.1: a terminating slash of the path is dropped before the insertion.
        let tail = url.path().trim_end_matches('/');
        let path = format!("{WELL_KNOWN}{tail}");
        let origin = url.origin().ascii_serialization();
        Ok(Self {
            url: format!("{origin}{path}"),
            path,
            resource,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header"],
            resource_name: None,
            resource_documentation: None,
        })
    }

    /// An authorization server that issues tokens for this resource: its issuer identifier
    /// (RFC 8414), whose metadata the client reads next.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes this resource's routes ask for (`scopes_supported`).
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes_supported
            .extend(scopes.iter().map(|s| (*s).to_owned()));
        self
    }

    /// A name for people (`resource_name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// A page for developers (`resource_documentation`).
    pub fn documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The URL of the document (RFC 9728 §3.1), as `resource_metadata` names it.
    pub fn metadata_url(&self) -> &str {
        &self.url
    }

    /// The routes that serve the document, on the resource's host: the path-inserted
    /// well-known URL of §3.1 and, when the identifier has a path, also the bare well-known
    /// URL (where clients that know only the host look).
    pub(crate) fn routes<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        let document = self.clone();
        let serve = move || {
            let document = document.clone();
            async move { document.answer() }
        };
        let router = Router::new().route(&self.path, get(serve.clone()));
        if self.path == WELL_KNOWN {
            router
        } else {
            router.route(WELL_KNOWN, get(serve))
        }
    }

    fn answer(&self) -> Response {
        let mut response = Json(self).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }
}
