//! The provider as a library: [`Provider::builder`] assembles the engine, its store, clients,
//! users, keys, lifetimes and grant types; [`Provider::mount`] puts its routes in any axum
//! `Router` under the path of its issuer URL; an [`Authenticator`] lets the application decide
//! who the user is, and [`Provider::resume`] finishes a flow after the application's own login
//! page. `doorward serve` is built on exactly this.
//!
//! ```no_run
//! use std::sync::Arc;
//! use doorward_axum::{Provider, ClientSpec, Grants};
//!
//! # async fn demo(store: doorward_core::ports::SharedStore, client: ClientSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Provider::builder("http://localhost:3000/auth")   // mounted at /auth
//!     .store(store)
//!     .grants(Grants::CODE_AND_REFRESH)
//!     .client(client)
//!     .build()
//!     .await?;
//! let app = provider.mount(axum::Router::new() /* your routes */);
//! # let _ = app; Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use doorward_core::authorize::Interaction;
use doorward_core::embedding::AppUser;
use doorward_core::model::SignedIn;
use doorward_core::ports::{Clock, OsRandom, Random, SharedStore, SystemClock};
use doorward_core::request::AuthorizationRequest;
use doorward_core::{ClientSpec, Engine, EngineConfig, Grants, UserSpec};
use tokio::task::JoinHandle;

use crate::protect::ResourceServer;
use crate::session::{see_other, with_cookie};
use crate::{body, cookies, pages, AppState};

/// Decides who the user is when an authorization needs a signed-in user (TxOAuth2's
/// `onAuthenticate`). Called instead of Doorward's own sign-in page.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Authentication> + Send + 'a>>;
}

/// The authorization waiting for a user.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginRequest<'a> {
    /// Hand it back to [`Provider::resume`] after your own login page.
    pub grant_id: &'a str,
    /// The browser's request headers (your session cookie is there).
    pub headers: &'a HeaderMap,
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub scopes: Vec<String>,
    /// OIDC `login_hint`.
    pub login_hint: Option<&'a str>,
    /// The request asks the user to sign in again (`prompt=login`, `max_age`).
    pub reauthenticate: bool,
}

/// What the application answers.
#[derive(Debug)]
#[non_exhaustive]
pub enum Authentication {
    /// This user is signed in at the application: the flow goes on (to consent).
    User(AppUser),
    /// Send the browser to this URL (the application's login page, which keeps the grant id and
    /// calls [`Provider::resume`]).
    Redirect(String),
    /// Answer this page instead (it calls [`Provider::resume`] later, the same way).
    Page(Response),
    /// The user may not sign in here: the client gets `access_denied`.
    Deny,
}

/// The application's decision for [`Provider::resume`] (TxOAuth2's `grantAccess` /
/// `denyAccess`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Decision {
    /// The user signed in. With `consented`, the application asked for consent itself (it
    /// showed the client and scopes of [`Provider::pending`]) and the client gets its code at
    /// once; without, Doorward's consent page follows.
    ///
    /// A grant id is not proof of anything: anyone can start an authorization and get one.
    /// Resume with `consented: true` only after the signed-in user approved what `pending`
    /// shows, on a page protected against cross-site requests.
    Allow { user: AppUser, consented: bool },
    /// The client gets `access_denied`.
    Deny,
}

/// What an authorization waiting on the application's page asks for ([`Provider::pending`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PendingGrant {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub login_hint: Option<String>,
}

/// An assembled provider. Cheap to clone.
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
        let engine = Engine::new(store, self.clock, self.random, config)
            .await
            .map_err(BuildError::Engine)?;
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
                    axum::routing::get(crate::oidc::metadata).with_state(self.state.clone()),
                ),
        }
    }

    /// The provider alone, with its "not found" page for every other path (`doorward serve`).
    pub fn standalone(&self) -> Router {
        self.mount(Router::new()).fallback(pages::not_found)
    }

    /// A [`ResourceServer`] for APIs in this process, caching verified tokens `cache_seconds`.
    pub fn resource_server(&self, cache_seconds: u64) -> ResourceServer {
        ResourceServer::local(self.state.engine.clone(), cache_seconds)
    }

    /// Runs the periodic work of a provider: the purge of expired rows (every 10 min) and
    /// signing-key maintenance (every `keys::RELOAD_INTERVAL`).
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
                every.tick().await;
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
        let query = self.state.engine.open_grant_id(grant_id)?;
        let request = self
            .state
            .engine
            .check_authorization(&body::query_pairs(&query))
            .await
            .ok()?;
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
            let Some(query) = app.engine.open_grant_id(grant_id) else {
                return pages::respond(
                    StatusCode::BAD_REQUEST,
                    pages::message(
                        "This sign-in expired",
                        "Go back to the application and sign in again.",
                    ),
                );
            };
            let request = match app
                .engine
                .check_authorization(&body::query_pairs(&query))
                .await
            {
                Ok(request) => request,
                Err(e) => return crate::authorize::rejected(&e),
            };
            let (user, consented) = match decision {
                Decision::Deny => {
                    return crate::authorize::redirect(
                        StatusCode::SEE_OTHER,
                        &app.engine.deny(&request),
                    )
                }
                Decision::Allow { user, consented } => (user, consented),
            };
            let (cookie, signed_in) = match app.engine.sign_in_app_user(&user).await {
                Ok(done) => done,
                Err(e) => return pages::internal(&e),
            };
            let set_cookie = session_cookie(app, &cookie);
            // The request's own conditions hold for this user too (an `id_token_hint` naming
            // someone else is `login_required`, OIDC Core §3.1.2.2).
            if let Some(instead) = app.engine.check_sign_in(&request, &signed_in) {
                let location = match instead {
                    Interaction::Redirect(location) => location,
                    _ => request.error_redirect(
                        &doorward_proto::OAuthError::new(
                            doorward_proto::ErrorCode::LoginRequired,
                            "the user who signed in is not the one the request asks for",
                        ),
                        &app.engine.config().issuer,
                    ),
                };
                return with_cookie(
                    crate::authorize::redirect(StatusCode::SEE_OTHER, &location),
                    Some(session_cookie(app, &cookie)),
                );
            }
            let response = if consented {
                match app.engine.approve(&signed_in, &request).await {
                    Ok(location) => crate::authorize::redirect(StatusCode::SEE_OTHER, &location),
                    Err(e) => pages::internal(&e),
                }
            } else {
                see_other(&format!("/oauth/authorize?{query}"))
            };
            with_cookie(response, Some(set_cookie))
        })
        .await
    }
}

fn session_cookie(app: &AppState, value: &str) -> axum::http::HeaderValue {
    let name = cookies::session_name(app.secure_cookies);
    cookies::set(
        name,
        value,
        app.engine.config().lifetimes.session,
        app.secure_cookies,
    )
}

/// The authorization endpoint's sign-in step when the application decides who the user is.
/// The application is asked on every authorization (not only when Doorward has no session):
/// its answer decides, so a provider session left by another user of the browser never signs
/// the wrong user in. `None`: go on with the provider's session as it is.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn consult(
    app: &AppState,
    authenticator: &dyn Authenticator,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    pairs: &[(String, String)],
    query: &str,
    session: Option<&SignedIn>,
    interaction: &Result<Interaction, doorward_core::ports::StoreError>,
) -> Option<Response> {
    // A protocol answer (an error redirect of prompt=none, a store failure) needs no user.
    let needs_login = matches!(interaction, Ok(Interaction::Login { .. }));
    if !needs_login
        && !matches!(
            interaction,
            Ok(Interaction::Consent) | Ok(Interaction::Redirect(_))
        )
    {
        return None;
    }
    // Signed in, but asked to sign in again (prompt=login, max_age, id_token_hint): the
    // request comes back marked with when, as from Doorward's own page.
    let reauthenticate = needs_login && session.is_some();
    let return_query = if reauthenticate {
        app.engine.reauth_return_query(pairs)
    } else {
        query.to_owned()
    };
    let grant_id = app.engine.grant_id(&return_query);
    let scopes: Vec<String> = request
        .scopes
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let answer = authenticator
        .authenticate(LoginRequest {
            grant_id: &grant_id,
            headers,
            client_id: &request.client.key,
            client_name: &request.client.display_name,
            scopes,
            login_hint: request.login_hint.as_deref(),
            reauthenticate,
        })
        .await;
    let interactive = !request.prompt.none;
    let login_required = || {
        crate::authorize::redirect(
            StatusCode::FOUND,
            &request.error_redirect(
                &doorward_proto::OAuthError::new(
                    doorward_proto::ErrorCode::LoginRequired,
                    "the user is not signed in",
                ),
                &app.engine.config().issuer,
            ),
        )
    };
    Some(match answer {
        Authentication::User(user) => {
            let same = session.is_some_and(|s| s.user.username == user.id);
            if same && !reauthenticate {
                // The provider's session is this user's: on with the flow.
                return None;
            }
            match app.engine.sign_in_app_user(&user).await {
                Ok((cookie, _)) => with_cookie(
                    see_other(&format!("/oauth/authorize?{return_query}")),
                    Some(session_cookie(app, &cookie)),
                ),
                Err(e) => pages::internal(&e),
            }
        }
        // prompt=none: no page may be shown (OIDC Core §3.1.2.6).
        Authentication::Redirect(_) | Authentication::Page(_) if !interactive => login_required(),
        Authentication::Redirect(location) => {
            crate::authorize::redirect(StatusCode::SEE_OTHER, &location)
        }
        Authentication::Page(page) => page,
        Authentication::Deny => {
            crate::authorize::redirect(StatusCode::FOUND, &app.engine.deny(request))
        }
    })
}
