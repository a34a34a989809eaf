//! [`ClientBuilder`]: a [`Client`] from a [`ProviderConfig`] and the choices that go with it
//! (state mode, HTTP client, hooks, clock).

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, RwLock};

use super::{Client, Clock, Inner, TokenHook, TokenUpdate};
use crate::config::ProviderConfig;
use crate::discovery::JwksCache;
use crate::error::ConfigError;
use crate::http::{Hooks, Http};
use crate::state::{StateKey, StateMode, StateStore};
use crate::DpopKey;

/// Builds a [`Client`].
///
/// ```
/// use doorward_client::{Client, ConfigError, ProviderConfig, StateKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProviderConfig::oidc("https://login.example", "my-app").with_secret("my-secret");
/// let client = Client::builder(config)
///     .name("login")
///     // The same key in every process that may receive the callback.
///     .state_key(StateKey::new([7; 32])?)
///     .build()?;
/// assert_eq!(client.name(), "login");
///
/// // A configuration that cannot work is refused here, not at the first sign-in.
/// let no_secret = ProviderConfig::oidc("https://login.example", "my-app");
/// assert!(matches!(
///     Client::builder(no_secret).build(),
///     Err(ConfigError::Invalid { .. })
/// ));
/// # Ok(())
/// # }
/// ```
pub struct ClientBuilder {
    name: String,
    config: ProviderConfig,
    state: Option<StateMode>,
    http: Option<reqwest::Client>,
    hooks: Hooks,
    clock: Option<Clock>,
    on_token_updated: Option<TokenHook>,
    unbound_callbacks: bool,
    require_callback_path: bool,
    dpop: Option<DpopKey>,
}

impl Client {
    pub fn builder(config: ProviderConfig) -> ClientBuilder {
        ClientBuilder {
            name: config.client_id.clone(),
            config,
            state: None,
            http: None,
            hooks: Hooks::default(),
            clock: None,
            on_token_updated: None,
            unbound_callbacks: false,
            require_callback_path: false,
            dpop: None,
        }
    }
}

impl ClientBuilder {
    /// Lets [`Client::finish_authorization`] accept a callback without the state sent to the
    /// browser (`sent_state: None`), checking the returned state alone, as seed 000's client
    /// does with `expected_state=None`.
    ///
    /// # Security
    /// Nothing then ties the callback to the browser that started the sign-in: an attacker can
    /// send a victim to the callback URL of the attacker's own sign-in and the victim ends up
    /// signed in as the attacker (login CSRF, RFC 6749 §10.12, RFC 9700 §4.7.1). PKCE does not
    /// help: a signed state's verifier is derived from the state itself.
    pub fn insecure_unbound_callbacks(mut self) -> Self {
        self.unbound_callbacks = true;
        self
    }

    /// Makes [`Client::finish_authorization`] refuse a [`Callback`](crate::Callback) that does
    /// not say which path it came to, so that the redirect-URI check of the mix-up defence
    /// (RFC 9700 §4.4.2) always runs. For a provider without an issuer (no RFC 9207 `iss`)
    /// used beside other providers; a [`Registry`](crate::Registry) sets it for those.
    pub fn require_callback_path(mut self) -> Self {
        self.require_callback_path = true;
        self
    }

    /// Binds the client's tokens to `key` (DPoP, RFC 9449): every token and pushed request
    /// carries a proof made with it, authorization requests name it (`dpop_jkt`), and tokens
    /// the provider bound to it are presented with proofs. Keep the key as long as the tokens.
    pub fn dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// A name for messages and the registry (default: the client id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Signed states (the default) with this key. Without it a random key is made, which only
    /// the current process knows: set one when callbacks may reach another process.
    pub fn state_key(mut self, key: StateKey) -> Self {
        self.state = Some(StateMode::Signed(key));
        self
    }

    /// Opaque random states, kept in `store` until the callback.
    pub fn opaque_state(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = Some(StateMode::Opaque(store));
        self
    }

    /// A reqwest client of your own (proxies, TLS roots). Configure it not to follow redirects:
    /// the default client never does.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Compliance hooks that rewrite requests or responses for a provider that needs it.
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Unix time in seconds (tests inject a fixed clock).
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Called after every refresh with the old and new tokens, to persist the new one.
    pub fn on_token_updated<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(TokenUpdate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_token_updated = Some(Arc::new(move |update| Box::pin(hook(update))));
        self
    }

    pub fn build(self) -> Result<Client, ConfigError> {
        self.config.check().map_err(|reason| ConfigError::Invalid {
            provider: self.name.clone(),
            reason,
        })?;
        let http = Http::new(self.http, self.config.timeout, self.hooks)
            .map_err(ConfigError::HttpClient)?;
        Ok(Client {
            inner: Arc::new(Inner {
                name: self.name,
                state: self
                    .state
                    .unwrap_or_else(|| StateMode::Signed(StateKey::generate())),
                http,
                clock: self.clock.unwrap_or_else(|| Arc::new(system_now)),
                on_token_updated: self.on_token_updated,
                unbound_callbacks: self.unbound_callbacks,
                require_callback_path: self.require_callback_path,
                metadata: RwLock::new(None),
                metadata_fetch: Mutex::new(()),
                jwks: JwksCache::default(),
                dpop: self
                    .dpop
                    .or_else(|| self.config.dpop.then(DpopKey::generate)),
                dpop_nonces: Default::default(),
                config: self.config,
            }),
        })
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
