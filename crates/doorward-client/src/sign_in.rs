//! Sign-in routes for an axum application (feature `axum`): Authlib's `authorize_redirect` and
//! `authorize_access_token` for Flask and Starlette, for every provider of a [`Registry`].
//!
//! - `GET /login/{provider}` starts an authorization with that provider (state, PKCE, nonce)
//!   and answers `303 See Other` to it. What the callback needs (the provider, the state, the
//!   redirect URI) travels in a cookie MACed with the application's [`StateKey`]: `HttpOnly`,
//!   `SameSite=Lax` (it must come back with the provider's top-level redirect), ten minutes,
//!   `Secure` and `__Host-` when the redirect URI is https. No server-side session is needed,
//!   and any process holding the key finishes the sign-in.
//! - `GET /callback/{provider}` finishes it: the cookie must be there, once, unaltered (its MAC
//!   covers its name), unexpired, for this provider, and the `__Host-` one when the redirect
//!   URI is https (else `400`: a callback this browser did not start is never redeemed, RFC
//!   9700 §4.7, and a cookie planted by a sibling host or over plain http does not count), the
//!   state must be the one sent, and the client validates the rest (the code, the ID token,
//!   `iss`, the callback's path). The application's handler then gets a [`SignedIn`] and
//!   answers; the cookie is cleared whatever the outcome. One sign-in waits per browser: a
//!   second `/login` replaces the first.
//! - The redirect URI is each client's configured one, or per request
//!   ([`SignInRoutes::redirect_uri`]: Authlib's `authorize_redirect(request, redirect_uri)`),
//!   for an application served under several names.
//! - [`SignedIn::keep_token`] saves the token in the registry's token store
//!   ([`Registry::set_token_store`]), where [`Registry::authorized`] finds it for API calls.
//!
//! ```
//! use std::sync::Arc;
//! use axum::response::IntoResponse;
//! use doorward_client::sign_in::{SignInRoutes, SignedIn};
//! use doorward_client::{Client, MemoryTokenStore, ProviderConfig, Registry, StateKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! let config = ProviderConfig::oidc("https://login.example", "my-app")
//!     .with_secret("my-secret")
//!     .with_redirect_uri("https://app.example/auth/callback/login".parse()?);
//! registry
//!     .register("login", Client::builder(config).build()?)
//!     .set_token_store(Arc::new(MemoryTokenStore::default()));
//! let routes = SignInRoutes::new(
//!     Arc::new(registry),
//!     StateKey::new([7; 32])?,
//!     |signed_in: SignedIn| async move {
//!         // An OpenID provider names the user; look a plain OAuth 2 provider's up in its API.
//!         let Some(user) = signed_in.subject().map(str::to_owned) else {
//!             return axum::http::StatusCode::BAD_GATEWAY.into_response();
//!         };
//!         let _ = signed_in.keep_token(&user).await;
//!         format!("welcome, {user}").into_response()
//!     },
//! );
//! let app: axum::Router = axum::Router::new().nest("/auth", routes.router());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::{AuthorizationOptions, Callback, SignIn};
use crate::error::FinishError;
use crate::id_token::IdTokenClaims;
use crate::registry::Registry;
use crate::state::StateKey;
use crate::tokens::TokenStoreError;

/// How long a sign-in may take, from `/login` to the callback.
pub const SIGN_IN_LIFETIME: i64 = 600;

const COOKIE_NAME: &str = "doorward_signin";
const SECURE_COOKIE_NAME: &str = "__Host-doorward_signin";
const MAC_LABEL: &str = "doorward-client sign-in cookie";

type Handler =
    Arc<dyn Fn(SignedIn) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;
type FailureHandler = Arc<dyn Fn(&str, FinishError) -> Response + Send + Sync>;
type RedirectChoice = Arc<dyn Fn(&Parts, &str) -> Option<Url> + Send + Sync>;

/// The sign-in routes of a registry's providers (module documentation).
#[derive(Clone)]
pub struct SignInRoutes {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    key: StateKey,
    signed_in: Handler,
    failed: FailureHandler,
    redirect_uri: Option<RedirectChoice>,
}

/// A user who just signed in with `provider`.
#[derive(Clone)]
pub struct SignedIn {
    /// The registry name of the provider.
    pub provider: String,
    /// The token and, with OpenID Connect, the validated ID token.
    pub sign_in: SignIn,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("provider", &self.provider)
            .field("sign_in", &self.sign_in)
            .finish_non_exhaustive()
    }
}

impl SignedIn {
    /// The ID token's claims, when the provider is an OpenID provider.
    pub fn id_token(&self) -> Option<&IdTokenClaims> {
        self.sign_in.id_token.as_ref()
    }

    /// The user's `sub` at the provider (from the ID token).
    pub fn subject(&self) -> Option<&str> {
        self.id_token().map(|claims| claims.subject.as_str())
    }

    /// Keeps the token in the registry's token store for the application's `user`
    /// ([`Registry::save_token`]), where [`Registry::authorized`] finds it.
    pub async fn keep_token(&self, user: &str) -> Result<(), TokenStoreError> {
        self.registry
            .save_token(&self.provider, user, &self.sign_in.token)
            .await
    }
}

/// What the cookie carries from `/login` to the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    /// The provider.
    p: String,
    /// The state sent.
    s: String,
    /// The redirect URI sent, when it was not the configured one.
    r: Option<Url>,
    /// When it expires (Unix seconds).
    e: i64,
}

impl SignInRoutes {
    /// Routes for every provider of `registry`; `signed_in` answers the browser once a user
    /// has signed in. `key` MACs the sign-in cookie (a [`StateKey`]: at least 32 bytes, the same
    /// in every process that may receive a callback).
    pub fn new<F, Fut>(registry: Arc<Registry>, key: StateKey, signed_in: F) -> Self
    where
        F: Fn(SignedIn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                registry,
                key,
                signed_in: Arc::new(move |s| Box::pin(signed_in(s))),
                failed: Arc::new(default_failure),
                redirect_uri: None,
            }),
        }
    }

    /// The redirect URI of each sign-in, from the request to `/login/{provider}` and the
    /// provider's name (Authlib's `authorize_redirect(request, redirect_uri)`); `None` keeps
    /// the client's configured one. The provider must have registered it. Choose among the
    /// application's own origins: never build it from an unchecked `Host` or
    /// `X-Forwarded-Host`, which the browser's sender writes.
    pub fn redirect_uri(
        self,
        choose: impl Fn(&Parts, &str) -> Option<Url> + Send + Sync + 'static,
    ) -> Self {
        self.with(|inner| inner.redirect_uri = Some(Arc::new(choose)))
    }

    /// How a sign-in that did not finish is answered (the provider's `access_denied`, a
    /// forged or stale callback…); by default a short `400` page.
    pub fn on_failure(
        self,
        failed: impl Fn(&str, FinishError) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.with(|inner| inner.failed = Arc::new(failed))
    }

    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let Inner {
            registry,
            key,
            signed_in,
            failed,
            redirect_uri,
        } = &*self.inner;
        let mut inner = Inner {
            registry: Arc::clone(registry),
            key: key.clone(),
            signed_in: Arc::clone(signed_in),
            failed: Arc::clone(failed),
            redirect_uri: redirect_uri.clone(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// `GET /login/{provider}` and `GET /callback/{provider}`, to nest where the redirect
    /// URIs point.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/login/{provider}", get(login))
            .route("/callback/{provider}", get(callback))
            .with_state(Arc::clone(&self.inner))
    }
}

async fn login(
    State(inner): State<Arc<Inner>>,
    Path(provider): Path<String>,
    request: Request,
) -> Response {
    let Some(client) = inner.registry.get(&provider) else {
        return plain(StatusCode::NOT_FOUND, "No such sign-in provider.");
    };
    let (parts, _) = request.into_parts();
    let redirect_uri = inner
        .redirect_uri
        .as_ref()
        .and_then(|choose| choose(&parts, &provider));
    let options = AuthorizationOptions {
        redirect_uri: redirect_uri.clone(),
        ..AuthorizationOptions::default()
    };
    let authorization = match client.start_authorization_with(options).await {
        Ok(authorization) => authorization,
        Err(_) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                "The sign-in provider cannot be reached. Try again later.",
            )
        }
    };
    let secure = redirect_uri
        .as_ref()
        .or(client.config().redirect_uri.as_ref())
        .is_some_and(|uri| uri.scheme() == "https");
    let pending = Pending {
        p: provider,
        s: authorization.state,
        r: redirect_uri,
        e: client.now() + SIGN_IN_LIFETIME,
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(authorization.url.as_str()) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie(&inner.key, &pending, secure)) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

async fn callback(
    State(inner): State<Arc<Inner>>,
    Path(provider): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let Some((pending, secure)) = read_cookie(&inner.key, &headers) else {
        // No sign-in of this browser is waiting: the callback is not bound to it (RFC 9700
        // §4.7), whatever its state says. A waiting one (for another tab) is left alone.
        return (inner.failed)(
            &provider,
            FinishError::InvalidState(crate::InvalidState::NotBound),
        );
    };
    let mut response = match finish(&inner, &provider, &uri.to_string(), pending, secure).await {
        Ok(signed_in) => (inner.signed_in)(signed_in).await,
        Err(error) => (inner.failed)(&provider, error),
    };
    // Spent, whatever happened: a sign-in is started again from `/login`.
    for name in [COOKIE_NAME, SECURE_COOKIE_NAME] {
        let secure = if name == SECURE_COOKIE_NAME {
            "; Secure"
        } else {
            ""
        };
        if let Ok(clear) = HeaderValue::from_str(&format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
        )) {
            response.headers_mut().append(SET_COOKIE, clear);
        }
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn finish(
    inner: &Inner,
    provider: &str,
    target: &str,
    pending: Pending,
    secure: bool,
) -> Result<SignedIn, FinishError> {
    let not_bound = || FinishError::InvalidState(crate::InvalidState::NotBound);
    let client = inner.registry.get(provider).ok_or_else(not_bound)?;
    if pending.p != provider || pending.e <= client.now() {
        return Err(not_bound());
    }
    // Over https only the `__Host-` cookie, which no sibling host and no plain-http answer can
    // set, stands for this browser's sign-in.
    let https = pending
        .r
        .as_ref()
        .or(client.config().redirect_uri.as_ref())
        .is_some_and(|uri| uri.scheme() == "https");
    if https && !secure {
        return Err(not_bound());
    }
    let callback = Callback::from_uri(target);
    let sign_in = match &pending.r {
        Some(redirect_uri) => {
            client
                .finish_authorization_at(&callback, Some(&pending.s), redirect_uri)
                .await?
        }
        None => {
            client
                .finish_authorization(&callback, Some(&pending.s))
                .await?
        }
    };
    Ok(SignedIn {
        provider: provider.to_owned(),
        sign_in,
        registry: Arc::clone(&inner.registry),
    })
}

fn default_failure(provider: &str, error: FinishError) -> Response {
    let why = match &error {
        FinishError::Authorization(e) if e.code == Some(crate::ErrorCode::AccessDenied) => {
            "The sign-in was cancelled."
        }
        FinishError::InvalidState(_) => {
            "This sign-in expired or was started in another browser. Start it again."
        }
        _ => "The sign-in did not finish. Start it again.",
    };
    let _ = provider;
    plain(StatusCode::BAD_REQUEST, why)
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn set_cookie(key: &StateKey, pending: &Pending, secure: bool) -> String {
    // Invariant: a struct of strings and a number serializes.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(pending).unwrap_or_default());
    let (name, attributes) = if secure {
        (SECURE_COOKIE_NAME, "; Secure")
    } else {
        (COOKIE_NAME, "")
    };
    let mac = cookie_mac(key, name, &payload);
    format!(
        "{name}={payload}.{mac}; Path=/; Max-Age={SIGN_IN_LIFETIME}; HttpOnly; SameSite=Lax{attributes}"
    )
}

/// The MAC of a cookie's value, over its name too: a value is good under the name it was set
/// with only.
fn cookie_mac(key: &StateKey, name: &str, payload: &str) -> String {
    key.derive(MAC_LABEL, &format!("{name}\0{payload}"))
}

/// The pending sign-in of the request's cookie, and whether it came as the `__Host-` one. Two
/// cookies of these names (one planted beside the browser's own) are refused.
fn read_cookie(key: &StateKey, headers: &HeaderMap) -> Option<(Pending, bool)> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SECURE_COOKIE_NAME || *name == COOKIE_NAME);
    let (name, value) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let (payload, mac) = value.split_once('.')?;
    let expected = cookie_mac(key, name, payload);
    if !doorward_proto::constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
        return None;
    }
    let pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((pending, name == SECURE_COOKIE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        Pending {
            p: "login".into(),
            s: "state".into(),
            r: None,
            e: 2_000_000_000,
        }
    }

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    /// The name=value part of a Set-Cookie.
    fn pair(set_cookie: &str) -> &str {
        set_cookie.split(';').next().unwrap()
    }

    #[test]
    fn a_cookie_counts_once_under_its_own_name_with_its_mac() {
        let key = StateKey::new([9; 32]).unwrap();
        let secure = set_cookie(&key, &pending(), true);
        let plain = set_cookie(&key, &pending(), false);
        let (found, is_secure) = read_cookie(&key, &headers(&[pair(&secure)])).unwrap();
        assert!(is_secure && found.s == "state");
        let (_, is_secure) = read_cookie(&key, &headers(&[pair(&plain)])).unwrap();
        assert!(!is_secure);
        // The `__Host-` value under the plain name (planted by a sibling host): its MAC
        // covers the name.
        let renamed = pair(&secure).replacen(SECURE_COOKIE_NAME, COOKIE_NAME, 1);
        assert!(read_cookie(&key, &headers(&[&renamed])).is_none());
        // Two of them, one planted beside the browser's own: neither counts.
        let both = format!("{}; {}", pair(&secure), pair(&plain));
        assert!(read_cookie(&key, &headers(&[&both])).is_none());
        assert!(read_cookie(&key, &headers(&[pair(&secure), pair(&plain)])).is_none());
        // Another key, an altered value, another cookie only.
        let other = StateKey::new([8; 32]).unwrap();
        assert!(read_cookie(&other, &headers(&[pair(&secure)])).is_none());
        let altered = pair(&plain).replacen('.', "A.", 1);
        assert!(read_cookie(&key, &headers(&[&altered])).is_none());
        assert!(read_cookie(&key, &headers(&["session=abc"])).is_none());
    }
}
