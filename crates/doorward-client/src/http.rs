//! The HTTP layer: every request the client sends goes through [`Http::send`], which applies the
//! provider's compliance hooks, never follows redirects, has a timeout, and caps response bodies.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
pub use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::TransportError;

/// Largest response body read, in bytes: metadata, key sets, tokens and API answers are small.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A request about to be sent, as a compliance hook sees and may rewrite it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A response as received, before the client parses it; a compliance hook may rewrite it.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The media type without parameters, lower-cased (`application/json`).
    pub fn media_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// The body as text, invalid UTF-8 replaced (for error messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub(crate) fn is_json(&self) -> bool {
        let media = self.media_type();
        media == "application/json" || media.ends_with("+json")
    }
}

type RequestHook = Arc<dyn Fn(&mut RawRequest) + Send + Sync>;
type ResponseHook = Arc<dyn Fn(&mut RawResponse) + Send + Sync>;

/// Compliance hooks (Authlib's `register_compliance_hook`): rewrite what a provider that strays
/// from the RFCs needs or sends, before the client sends or parses it.
#[derive(Clone, Default)]
pub struct Hooks {
    pub(crate) token_request: Option<RequestHook>,
    pub(crate) token_response: Option<ResponseHook>,
    pub(crate) api_request: Option<RequestHook>,
    pub(crate) api_response: Option<ResponseHook>,
}

impl Hooks {
    /// Called on every token-endpoint request (code, refresh, revocation, introspection).
    pub fn on_token_request(
        mut self,
        hook: impl Fn(&mut RawRequest) + Send + Sync + 'static,
    ) -> Self {
        self.token_request = Some(Arc::new(hook));
        self
    }

    /// Called on every token-endpoint response before it is parsed, e.g. to add a missing
    /// `token_type`.
    pub fn on_token_response(
        mut self,
        hook: impl Fn(&mut RawResponse) + Send + Sync + 'static,
    ) -> Self {
        self.token_response = Some(Arc::new(hook));
        self
    }

    /// Called on every API / userinfo request made with a bearer token.
    pub fn on_api_request(
        mut self,
        hook: impl Fn(&mut RawRequest) + Send + Sync + 'static,
    ) -> Self {
        self.api_request = Some(Arc::new(hook));
        self
    }

    /// Called on every API / userinfo response.
    pub fn on_api_response(
        mut self,
        hook: impl Fn(&mut RawResponse) + Send + Sync + 'static,
    ) -> Self {
        self.api_response = Some(Arc::new(hook));
        self
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("token_request", &self.token_request.is_some())
            .field("token_response", &self.token_response.is_some())
            .field("api_request", &self.api_request.is_some())
            .field("api_response", &self.api_response.is_some())
            .finish()
    }
}

/// Which hooks apply to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    /// Token, revocation and introspection endpoints.
    Token,
    /// Calls made with a bearer token.
    Api,
    /// Discovery and key sets: no hooks.
    Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    hooks: Hooks,
}

impl Http {
    pub(crate) fn new(
        client: Option<reqwest::Client>,
        timeout: Duration,
        hooks: Hooks,
    ) -> Result<Self, reqwest::Error> {
        let client = match client {
            Some(client) => client,
            None => default_client(timeout)?,
        };
        Ok(Self { client, hooks })
    }

    pub(crate) fn request(method: Method, url: Url) -> RawRequest {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        RawRequest {
            method,
            url,
            headers,
            body: Vec::new(),
        }
    }

    pub(crate) async fn send(
        &self,
        channel: Channel,
        mut request: RawRequest,
    ) -> Result<RawResponse, TransportError> {
        let (request_hook, response_hook) = match channel {
            Channel::Token => (&self.hooks.token_request, &self.hooks.token_response),
            Channel::Api => (&self.hooks.api_request, &self.hooks.api_response),
            Channel::Metadata => (&None, &None),
        };
        if let Some(hook) = request_hook {
            hook(&mut request);
        }
        let url = request.url.to_string();
        let http_error = |source| TransportError::Http {
            url: url.clone(),
            source,
        };
        let mut response = self
            .client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(TransportError::BodyTooLarge {
                    url,
                    limit: MAX_BODY,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut raw = RawResponse {
            status,
            headers,
            body,
        };
        if let Some(hook) = response_hook {
            hook(&mut raw);
        }
        Ok(raw)
    }
}

/// reqwest with no redirects (RFC 9700 §4.11: a token request must not be replayed elsewhere),
/// a whole-request timeout and a shorter connect timeout.
fn default_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("doorward-client/", env!("CARGO_PKG_VERSION")))
        .build()
}
