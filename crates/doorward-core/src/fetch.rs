//! The outbound port: documents the engine reads from other servers — a client's key set
//! (`jwks_uri`, RFC 7523 §2.2, OIDC Core §10.1.1) and Client ID Metadata Documents
//! (draft-ietf-oauth-client-id-metadata-document). The engine does no I/O: an adapter
//! implements [`Fetcher`] (doorward-axum's `fetch::HttpFetcher`, feature `fetch`) and owns the
//! SSRF policy (which addresses may be reached, timeouts, the size cap, no redirects).
//!
//! The engine only decides *what* to fetch and *how long* to trust it; without a fetcher
//! ([`crate::Engine::with_fetcher`]) every fetch fails and clients that need one are refused.

use std::time::Duration;

use url::Url;

/// The default cap on a fetched body: 64 KiB, far above any key set or metadata document.
pub const MAX_BODY: usize = 64 * 1024;

/// The default total time a fetch may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A fetched JSON document: its body (not yet parsed) and its freshness lifetime.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The response's freshness lifetime in seconds (RFC 9111 §4.2.1: `Cache-Control:
    /// max-age` less `Age`; `no-store` and `no-cache` count as 0), `None` when it names none.
    /// The engine bounds it ([`crate::client_keys`]).
    pub max_age: Option<u64>,
}

/// Why a fetch failed. The engine turns each into `invalid_client` (or a stage-1 error page),
/// never a server error: the document's server is the client's, not ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is outside the policy (`http` without the insecure switch, user info, a host
    /// that is a private, loopback or otherwise special address). A name that resolves only to
    /// such addresses is [`FetchError::Unreachable`], worded as a failed connection, so that
    /// the requester cannot tell which names resolve privately.
    #[error("the URL is refused by the fetch policy: {0}")]
    Refused(String),
    #[error("the server answered with a redirect, which is not followed")]
    Redirect,
    #[error("the server answered with status {0}")]
    Status(u16),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the document could not be fetched: {0}")]
    Unreachable(String),
    /// No fetcher is configured (an engine built without one).
    #[error("this server fetches no documents")]
    Disabled,
}

/// Fetches a JSON document over HTTPS for the engine (see the module documentation).
///
/// # Security
/// An implementation reaches URLs that clients choose. It must refuse private, loopback and
/// link-local destinations (after resolving names itself, so that DNS cannot point a public
/// name at them), follow no redirect, cap the body and the time, and send no credentials.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync + 'static {
    /// `GET url` with `Accept: application/json`; a `200` answer's body and lifetime.
    async fn fetch_json(&self, url: &Url) -> Result<Fetched, FetchError>;
}

/// A fetcher that fetches nothing, the engine's default.
pub(crate) struct NoFetcher;

#[async_trait::async_trait]
impl Fetcher for NoFetcher {
    async fn fetch_json(&self, _url: &Url) -> Result<Fetched, FetchError> {
        Err(FetchError::Disabled)
    }
}
