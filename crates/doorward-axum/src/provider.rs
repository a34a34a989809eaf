//! The provider as a library: [`Provider::builder`] assembles the engine, its store, clients,
//! users, keys, lifetimes and grant types; [`Provider::mount`] puts its routes in any axum
//! `Router` under the path of its issuer URL; an [`Authenticator`] lets the application decide
//! who the user is, and [`Provider::resume`] finishes a flow after the application's own login
//! page. `doorward serve` is built on exactly this.
//!
//! See [`Provider`] for an example.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use doorward_core::claims_hook::ClaimsHook;
use doorward_core::embedding::Resumed;
use doorward_core::extension_grant::ExtensionGrant;
use doorward_core::ports::{
    ChangeFeed, Clock, Fetcher, OsRandom, Random, SharedStore, SystemClock,
};
use doorward_core::token_format::AccessTokenIssuer;
use doorward_core::{ClientSpec, Engine, EngineConfig, Grants, UserSpec};
use tokio::task::JoinHandle;

use crate::authenticator::{Authenticator, Decision, PendingGrant};
use crate::authorize::rejected;
use crate::extract::session_cookie;
use crate::protect::ResourceServer;
use crate::response::page::{not_found, see_other, to_client, with_cookie, PageError};
use crate::state::AppState;

/// An assembled provider. Cheap to clone.
///
/// Built with [`Provider::builder`], served with [`Provider::standalone`] (the whole server,
/// as `doorward serve` does) or [`Provider::mount`] (under the issuer's path in your own
/// router):
///
/// ```
/// use std::sync::Arc;
/// use axum::{body::Body, http::Request, Router};
/// use doorward_axum::{ClientSpec, Grants, Provider, RedirectUri, Secret};
/// use doorward_core::memory::MemoryStore;
/// use tower::ServiceExt as _;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Provider::builder("https://example.com/auth") // mounted at /auth
///     .store(Arc::new(MemoryStore::default()))
///     .grants(Grants::CODE_AND_REFRESH)
///     .client(ClientSpec {
///         key: "shop@clients".into(),
///         display_name: "The shop".into(),
///         app_uri: "https://shop.example".into(),
///         redirect_uris: vec![RedirectUri::parse("https://shop.example/callback")?],
///         secret: Secret::new("a long random secret"),
///         policy: Default::default(),
///     })
/// #   .config(doorward_axum::EngineConfig {
/// #       issuer: "https://example.com/auth".into(),
/// #       hash_cost: doorward_core::passwords::HashCost::InsecureFastForTests,
/// #       ..Default::default()
/// #   })
///     .build()
///     .await?;
/// let app: Router = provider.mount(Router::new() /* your routes */);
///
/// let metadata = Request::get("/auth/.well-known/openid-configuration").body(Body::empty())?;
/// let response = app.oneshot(metadata).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Provider {
    state: AppState,
}

/// Builds a [`Provider`]. Every grant type is off unless named with [`ProviderBuilder::grants`].
pub struct ProviderBuilder {
    config: EngineConfig,
    store: Option<SharedStore>,
    clients: Vec<ClientSpec>,
    users: Vec<UserSpec>,
    authenticator: Option<Arc<dyn Authenticator>>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    fetcher: Option<Arc<dyn Fetcher>>,
    change_feed: Option<Arc<dyn ChangeFeed>>,
    extension_grants: Vec<Arc<dyn ExtensionGrant>>,
    claims_hook: Option<Arc<dyn ClaimsHook>>,
    token_issuer: Option<Arc<dyn AccessTokenIssuer>>,
    audit: bool,
}

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("no store: call ProviderBuilder::store")]
    NoStore,
    #[error("the issuer {0:?} is not an absolute http(s) URL without query or fragment")]
    Issuer(String),
    #[error("the engine could not start")]
    Engine(#[source] doorward_core::Error),
    #[error("the client {key} could not be registered")]
    Client {
        key: String,
        #[source]
        source: doorward_core::ports::StoreError,
    },
    #[error("the user {username} could not be created")]
    User {
        username: String,
        #[source]
        source: doorward_core::ports::StoreError,
    },
    #[error("an extension grant could not be registered")]
    ExtensionGrant(#[source] doorward_core::extension_grant::RegisterError),
}

impl ProviderBuilder {
    /// The engine's settings (issuer included). The grant types are not taken from it: they
    /// stay off unless named with [`ProviderBuilder::grants`].
    pub fn config(mut self, config: EngineConfig) -> Self {
        let grants = self.config.grants;
        self.config = EngineConfig { grants, ..config };
        self
    }

    /// The store: `doorward_store`'s SQLite or PostgreSQL adapters, or your own implementation
    /// of the ports (prove it with `doorward_core::testkit`).
    pub fn store(mut self, store: SharedStore) -> Self {
        self.store = Some(store);
        self
    }

    pub fn grants(mut self, grants: Grants) -> Self {
        self.config.grants = grants;
        self
    }

    pub fn lifetimes(mut self, lifetimes: doorward_core::Lifetimes) -> Self {
        self.config.lifetimes = lifetimes;
        self
    }

    pub fn keys(mut self, keys: doorward_core::config::KeyPolicy) -> Self {
        self.config.keys = keys;
        self
    }

    /// Registers (or updates) a client at build time.
    pub fn client(mut self, client: ClientSpec) -> Self {
        self.clients.push(client);
        self
    }

    /// Creates (or updates) a user with a password at build time.
    pub fn user(mut self, user: UserSpec) -> Self {
        self.users.push(user);
        self
    }

    /// The application decides who the user is; Doorward's sign-in page is not used.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// How the engine fetches clients' `jwks_uri` key sets and Client ID Metadata Documents
    /// (`EngineConfig::client_documents`): `fetch::HttpFetcher` (feature `fetch`), or your
    /// own implementation of the port. Without one, such clients are refused.
    pub fn fetcher(mut self, fetcher: Arc<dyn Fetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Keeps access tokens and clients in memory, so that bearer checks, introspection and
    /// client authentication read no database once warm; `feed` (the store itself, for
    /// `doorward_store`'s adapters) tells of the changes other instances and the `doorward`
    /// command line make, which reach this instance within
    /// `doorward_core::cache::STALENESS_BOUND` (this instance's own changes at once). `build`
    /// spawns the task that follows the feed on the current runtime. Without a feed nothing is
    /// cached.
    pub fn change_feed(mut self, feed: Arc<dyn ChangeFeed>) -> Self {
        self.change_feed = Some(feed);
        self
    }

    /// Answers an application-defined grant type at the token endpoint (RFC 6749 §4.5;
    /// `doorward_core::extension_grant`), for the clients whose
    /// `ClientPolicy::extension_grants` name it. `doorward_core::jwt_bearer::JwtBearerGrant` is
    /// the JWT bearer grant (RFC 7523).
    pub fn extension_grant(mut self, grant: impl ExtensionGrant + 'static) -> Self {
        self.extension_grants.push(Arc::new(grant));
        self
    }

    /// Adds the application's claims to ID tokens, JWT access tokens, introspection and
    /// UserInfo (`doorward_core::claims_hook`; reserved claims are never replaced).
    pub fn claims_hook(mut self, hook: impl ClaimsHook + 'static) -> Self {
        self.claims_hook = Some(Arc::new(hook));
        self
    }

    /// Makes the access tokens of the clients whose `ClientPolicy::access_token_format` is
    /// `AccessTokenFormat::Application` (`doorward_core::token_format`; TxOAuth2's
    /// `TokenFactory`).
    pub fn access_token_issuer(mut self, issuer: impl AccessTokenIssuer + 'static) -> Self {
        self.token_issuer = Some(Arc::new(issuer));
        self
    }

    /// Keeps an audit trail of sign-ins, consents and tokens (`doorward_core::audit`): the
    /// events wait in a bounded queue for the writer that `Provider::engine().audit_writer()`
    /// hands out, which the application spawns. Admin changes are recorded either way.
    pub fn audit(mut self) -> Self {
        self.audit = true;
        self
    }

    /// Time and randomness (tests inject fixed ones).
    pub fn clock_and_random(mut self, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        self.clock = clock;
        self.random = random;
        self
    }

    pub async fn build(self) -> Result<Provider, BuildError> {
        let store = self.store.ok_or(BuildError::NoStore)?;
        let issuer = self.config.issuer.trim_end_matches('/').to_owned();
        let url = url::Url::parse(&issuer).map_err(|_| BuildError::Issuer(issuer.clone()))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(BuildError::Issuer(issuer));
        }
        let mount: Arc<str> = url.path().trim_end_matches('/').into();
        let secure_cookies = url.scheme() == "https";
        let config = EngineConfig {
            issuer,
            ..self.config
        };
        let mut engine = Engine::new(store, self.clock, self.random, config)
            .await
            .map_err(BuildError::Engine)?;
        if let Some(fetcher) = self.fetcher {
            engine = engine.with_fetcher(fetcher);
        }
        if self.audit {
            engine = engine.with_audit();
        }
        if let Some(hook) = self.claims_hook {
            engine = engine.with_claims_hook(hook);
        }
        if let Some(issuer) = self.token_issuer {
            engine = engine.with_access_token_issuer(issuer);
        }
        for grant in self.extension_grants {
            engine
                .add_extension_grant(grant)
                .map_err(BuildError::ExtensionGrant)?;
        }
        if let Some(feed) = self.change_feed {
            engine = engine.with_change_feed(feed);
            if let Some(follower) = engine.change_follower() {
                tokio::spawn(follower);
            }
        }
        for client in self.clients {
            let key = client.key.clone();
            engine
                .register_client(client)
                .await
                .map_err(|source| BuildError::Client { key, source })?;
        }
        for user in &self.users {
            engine
                .seed_user(user)
                .await
                .map_err(|source| BuildError::User {
                    username: user.username.clone(),
                    source,
                })?;
        }
        Ok(Provider {
            state: AppState {
                engine: Arc::new(engine),
                secure_cookies,
                mount,
                authenticator: self.authenticator,
            },
        })
    }
}

impl Provider {
    /// A builder for the provider whose issuer (external URL) is `issuer`; its path is where
    /// [`Provider::mount`] puts the routes.
    pub fn builder(issuer: impl Into<String>) -> ProviderBuilder {
        ProviderBuilder {
            config: EngineConfig {
                issuer: issuer.into(),
                grants: Grants::NONE,
                ..EngineConfig::default()
            },
            store: None,
            clients: Vec::new(),
            users: Vec::new(),
            authenticator: None,
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            fetcher: None,
            change_feed: None,
            extension_grants: Vec::new(),
            claims_hook: None,
            token_issuer: None,
            audit: false,
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.state.engine
    }

    /// The provider's routes under the issuer's path, added to `app` (whose own fallback, if
    /// any, stays).
    pub fn mount(&self, app: Router) -> Router {
        let routes = crate::routes(self.state.clone());
        match &*self.state.mount {
            "" => app.merge(routes),
            path => app
                .nest(path, routes)
                // RFC 8414 §3.1: the metadata of an issuer with a path is also found at the
                // root, with the path after the well-known name.
                .route(
                    &format!("/.well-known/oauth-authorization-server{path}"),
                    axum::routing::get(crate::discovery::metadata).with_state(self.state.clone()),
                ),
        }
    }

    /// The provider alone, with its "not found" page (and the provider's headers) for every
    /// other path (`doorward serve`).
    pub fn standalone(&self) -> Router {
        let fallback =
            crate::with_headers(Router::new().fallback(not_found), self.state.secure_cookies);
        self.mount(Router::new()).fallback_service(fallback)
    }

    /// A [`ResourceServer`] for APIs in this process, caching verified tokens `cache_seconds`.
    pub fn resource_server(&self, cache_seconds: u64) -> ResourceServer {
        ResourceServer::local(self.state.engine.clone(), cache_seconds)
    }

    /// Runs the periodic work of a provider: the purge of expired rows (every 10 min) and
    /// signing-key maintenance (every `keys::RELOAD_INTERVAL`, and when the change feed says
    /// the keys changed: a rotation made by another process is seen within the cache's
    /// staleness bound).
    pub fn spawn_maintenance(&self) -> [JoinHandle<()>; 2] {
        let engine = self.state.engine.clone();
        let purge = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                match engine.purge_expired().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "purged expired rows"),
                    Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
                }
            }
        });
        let engine = self.state.engine.clone();
        let keys = tokio::spawn(async move {
            let period = u64::try_from(doorward_core::keys::RELOAD_INTERVAL).unwrap_or(30);
            let mut every = tokio::time::interval(std::time::Duration::from_secs(period));
            every.tick().await;
            loop {
                let changed = async {
                    match engine.read_cache() {
                        Some(cache) => cache.keys_changed().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = every.tick() => {}
                    () = changed => {}
                }
                if let Err(e) = engine.maintain_keys().await {
                    tracing::warn!(error = ?e, "signing-key maintenance failed");
                }
            }
        });
        [purge, keys]
    }

    /// What a grant id asks for, for the application's own login or consent page: the client
    /// and the scopes (show them before resuming with `consented: true`). `None` for a grant id
    /// that is forged, expired, or whose request no longer holds.
    pub async fn pending(&self, grant_id: &str) -> Option<PendingGrant> {
        let (_, request) = self.state.engine.pending_request(grant_id).await?.ok()?;
        Some(PendingGrant {
            client_id: request.client.key.clone(),
            client_name: request.client.display_name.clone(),
            scopes: request
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            login_hint: request.login_hint.clone(),
        })
    }

    /// Finishes an authorization after the application's own login page: signs the user in at
    /// the provider (a session cookie), then goes on to consent, or straight back to the client
    /// when the application asked for consent itself. An unknown or expired grant id is
    /// answered with a page, never a redirect.
    pub async fn resume(&self, grant_id: &str, decision: Decision) -> Response {
        let app = &self.state;
        crate::paths::scoped(app.mount.clone(), async move {
            let resumed = match app.engine.resume(grant_id, decision).await {
                Ok(resumed) => resumed,
                Err(e) => return PageError::from(e).into_response(),
            };
            let cookie = |value: &str| Some(session_cookie(app, value));
            match resumed {
                Resumed::Expired => PageError::invalid(
                    "This sign-in expired",
                    "Go back to the application and sign in again.",
                )
                .into_response(),
                Resumed::Rejected(e) => rejected(e).unwrap_or_else(IntoResponse::into_response),
                Resumed::Redirect {
                    answer,
                    cookie: value,
                } => with_cookie(
                    to_client(&answer, StatusCode::SEE_OTHER),
                    value.as_deref().and_then(cookie),
                ),
                Resumed::Consent {
                    location,
                    cookie: value,
                } => with_cookie(see_other(&location), cookie(&value)),
            }
        })
        .await
    }
}
