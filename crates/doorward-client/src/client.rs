//! [`Client`]: one provider, one concrete type to keep in application state.
//!
//! This file holds the client and what every operation shares (its state, the clock, the
//! provider's metadata and endpoints); the operations live beside it, one room each:
//! - `builder`: [`ClientBuilder`], how a client is made;
//! - `client_auth`: back-channel requests with client authentication (RFC 6749 §2.3, RFC 7523);
//! - `validation`: the JWTs the provider signs (ID tokens, JWT access tokens) and its key set;
//! - `flow`: the authorization code flow (authorization URL, callback, code exchange);
//! - `management`: refresh, revocation and introspection of a token;
//! - `service`: a token for the client itself (`client_credentials`), and token exchange
//!   (RFC 8693) for a service acting for a user;
//! - `authorized`: [`Authorized`] and bearer calls (userinfo, the provider's API), with DPoP
//!   proofs for DPoP-bound tokens (RFC 9449 §7);
//! - `device`: the device flow (RFC 8628).
//!
//! The DPoP key and the proofs are in `crate::dpop`; `client_auth` adds a proof to every
//! token-endpoint and pushed request when the client has a key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{Mutex, RwLock};
use url::Url;

use crate::config::ProviderConfig;
use crate::discovery::{fetch_metadata, JwksCache, Metadata};
use crate::error::DiscoveryError;
use crate::http::Http;
use crate::state::StateMode;
use crate::token::Token;

mod authorized;
mod builder;
mod client_auth;
mod device;
mod flow;
mod management;
mod service;
mod validation;

pub use authorized::{ApiResponse, Authorized, Body, UserInfo};
pub use builder::ClientBuilder;
pub use device::{DeviceAuthorization, DevicePoll};
pub use flow::{Authorization, AuthorizationOptions, Callback, SignIn};
pub use management::{Introspection, TokenTypeHint};
pub use service::{JwtBearer, TokenExchange, ACCESS_TOKEN_TYPE, JWT_BEARER_GRANT};
#[cfg(test)]
pub(crate) use validation::JWKS_COOLDOWN;

/// A client of one provider. Cheap to clone (an `Arc`); keep it in your application state.
///
/// ```
/// use doorward_client::{Client, ProviderConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProviderConfig::oauth2(
///     "https://auth.example/authorize".parse()?,
///     "https://auth.example/token".parse()?,
///     "my-app",
/// )
/// .with_secret("my-secret")
/// .with_redirect_uri("https://app.example/callback".parse()?)
/// .with_scopes(["read"]);
/// let client = Client::builder(config).build()?;
///
/// // Sign-in button: redirect the browser there, keep `state` in its session.
/// let authorization = client.start_authorization().await?;
/// let url = &authorization.url;
/// assert_eq!(url.path(), "/authorize");
/// let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v);
/// assert_eq!(param("client_id").as_deref(), Some("my-app"));
/// assert_eq!(param("state").as_deref(), Some(authorization.state.as_str()));
/// assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Unix time in seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The future a token-update hook returns.
pub type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) type TokenHook = Arc<dyn Fn(TokenUpdate) -> HookFuture + Send + Sync>;

/// A refresh replaced a token (Authlib's `update_token`): persist `current` where `previous`
/// was kept.
#[derive(Clone, Debug)]
pub struct TokenUpdate {
    pub previous: Token,
    pub current: Token,
}

impl Client {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The provider's metadata (fetched once, then cached).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, DiscoveryError> {
        if let Some(metadata) = self.inner.metadata.read().await.clone() {
            return Ok(metadata);
        }
        let _one_fetch = self.inner.metadata_fetch.lock().await;
        if let Some(metadata) = self.inner.metadata.read().await.clone() {
            return Ok(metadata);
        }
        let issuer = self
            .inner
            .config
            .issuer
            .as_deref()
            .ok_or(DiscoveryError::NoIssuer)?;
        let metadata = Arc::new(fetch_metadata(&self.inner.http, issuer).await?);
        *self.inner.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// The client's clock (Unix seconds): the one its token and key-set checks use.
    pub fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// An endpoint's URL: the configured one, else the one the provider's metadata names.
    async fn endpoint(&self, which: Endpoint) -> Result<Url, DiscoveryError> {
        let configured = &self.inner.config.endpoints;
        let (name, configured) = match which {
            Endpoint::Authorization => ("authorization endpoint", &configured.authorization),
            Endpoint::Token => ("token endpoint", &configured.token),
            Endpoint::Userinfo => ("userinfo endpoint", &configured.userinfo),
            Endpoint::Jwks => ("jwks_uri", &configured.jwks_uri),
            Endpoint::Revocation => ("revocation endpoint", &configured.revocation),
            Endpoint::Introspection => ("introspection endpoint", &configured.introspection),
            Endpoint::DeviceAuthorization => (
                "device authorization endpoint",
                &configured.device_authorization,
            ),
            Endpoint::PushedAuthorization => (
                "pushed authorization request endpoint",
                &configured.pushed_authorization_request,
            ),
        };
        if let Some(url) = configured {
            return Ok(url.clone());
        }
        if !self.inner.config.discovery {
            return Err(DiscoveryError::MissingEndpoint(name));
        }
        let metadata = self.metadata().await?;
        let discovered = match which {
            Endpoint::Authorization => &metadata.authorization_endpoint,
            Endpoint::Token => &metadata.token_endpoint,
            Endpoint::Userinfo => &metadata.userinfo_endpoint,
            Endpoint::Jwks => &metadata.jwks_uri,
            Endpoint::Revocation => &metadata.revocation_endpoint,
            Endpoint::Introspection => &metadata.introspection_endpoint,
            Endpoint::DeviceAuthorization => &metadata.device_authorization_endpoint,
            Endpoint::PushedAuthorization => &metadata.pushed_authorization_request_endpoint,
        };
        discovered
            .clone()
            .ok_or(DiscoveryError::MissingEndpoint(name))
    }
}

struct Inner {
    name: String,
    config: ProviderConfig,
    state: StateMode,
    http: Http,
    clock: Clock,
    on_token_updated: Option<TokenHook>,
    unbound_callbacks: bool,
    require_callback_path: bool,
    metadata: RwLock<Option<Arc<Metadata>>>,
    metadata_fetch: Mutex<()>,
    jwks: JwksCache,
    /// The key tokens are bound to (RFC 9449), and the nonces servers sent.
    dpop: Option<crate::DpopKey>,
    dpop_nonces: crate::dpop::Nonces,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The provider endpoints a client calls.
#[derive(Clone, Copy)]
enum Endpoint {
    Authorization,
    Token,
    Userinfo,
    Jwks,
    Revocation,
    Introspection,
    DeviceAuthorization,
    PushedAuthorization,
}
