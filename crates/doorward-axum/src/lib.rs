//! Doorward's HTTP adapter for axum: the OAuth endpoints, the Eternaltwin-compatible API, the
//! HTML pages (sign-in, consent, account, sign-out), RFC-shaped error responses, and the
//! library face of the provider.
//!
//! - [`Provider`] embeds the provider in any axum app under a path of its choosing, with the
//!   application deciding who the user is ([`Authenticator`], [`Provider::resume`]).
//! - [`protect`] guards an API with bearer tokens: the [`protect::Authenticated`] extractor and
//!   the [`protect::RequireBearer`] layer.
//! - `fetch` (feature `fetch`): `fetch::HttpFetcher`, the engine's outbound port over HTTPS
//!   under an SSRF policy, for clients' `jwks_uri` and Client ID Metadata Documents
//!   ([`ProviderBuilder::fetcher`]).
//!
//! Handlers take extractors (a client-authenticated request, a CSRF-checked form, the
//! browser's cookies), call the engine, and return `Result<_, E>` where `E` is the one answer
//! type of their audience (token endpoints, pages, protected resources); the
//! protocol rules live in `doorward-core`.
//!
//! # Embedding a provider
//!
//! A whole application: the provider at `/auth`, the application's own login page, and an
//! API that wants the `items:read` scope (`examples/embedded` is the same with a store of its
//! own, consent, sign-out and tests).
//!
//! ```no_run
//! use std::{future::Future, pin::Pin, sync::Arc};
//! use axum::{extract::Query, routing::get, Router};
//! use doorward_axum::protect::{Authenticated, Scopes};
//! use doorward_axum::*;
//!
//! struct MyLogin; // Who is the user? Ask the application's login page.
//! impl Authenticator for MyLogin {
//!     fn authenticate<'a>(&'a self, request: LoginRequest<'a>)
//!         -> Pin<Box<dyn Future<Output = Authentication> + Send + 'a>> {
//!         let to = format!("/login?grant={}", request.grant_id);
//!         Box::pin(async move { Authentication::Redirect(to) })
//!     }
//! }
//!
//! struct ReadItems;
//! impl Scopes for ReadItems { const SCOPES: &'static [&'static str] = &["items:read"]; }
//!
//! async fn items(auth: Authenticated<ReadItems>) -> String {
//!     format!("items of {}", auth.grant.subject)
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Login { grant: String }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut config = EngineConfig::default();
//!     config.scopes = ScopeSet::parse("openid items:read")?;
//!     let provider = Provider::builder("http://localhost:3000/auth")
//!         .config(EngineConfig { issuer: "http://localhost:3000/auth".into(), ..config })
//!         .grants(Grants::CODE_AND_REFRESH)
//!         .store(Arc::new(doorward_core::memory::MemoryStore::default()))
//!         .authenticator(MyLogin)
//!         .client(ClientSpec {
//!             key: "my-client".into(),
//!             display_name: "My client".into(),
//!             app_uri: "http://localhost:8000".into(),
//!             redirect_uris: vec![RedirectUri::parse("http://localhost:8000/callback")?],
//!             secret: Secret::new("my-secret"),
//!             policy: Default::default(),
//!         })
//!         .build()
//!         .await?;
//!     let login = provider.clone(); // a real login page checks a password first
//!     let app = Router::new()
//!         .route("/items", get(items))
//!         .route("/login", get(move |Query(q): Query<Login>| async move {
//!             let user = AppUser { id: "ada".into(), display_name: "Ada".into(),
//!                                  email: None, email_verified: false };
//!             login.resume(&q.grant, Decision::Allow { user, consented: false }).await
//!         }))
//!         .with_state(provider.resource_server(5));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, provider.mount(app)).await?;
//!     Ok(())
//! }
//! ```

mod account;
mod admin;
mod authenticator;
mod authorize;
mod body;
mod cookies;
mod device;
mod discovery;
mod eternaltwin_api;
mod extract;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod health;
mod introspection;
mod login;
mod logout;
pub mod metrics;
mod pages;
mod passkeys;
mod paths;
pub mod protect;
mod provider;
mod pushed;
mod registration;
mod response;
mod revocation;
mod second_factor;
mod self_service;
mod state;
mod token;
mod userinfo;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{header, HeaderValue, Response};
use axum::routing::{get, post};
use axum::Router;
use doorward_core::config::{paths as paths_of, RegistrationMode};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use authenticator::{
    AppUser, Authentication, Authenticator, Decision, GrantTerms, LoginRequest, PendingGrant,
};
pub use doorward_core::{ClientSpec, EngineConfig, Grants, Lifetimes, UserSpec};
pub use doorward_proto::{RedirectUri, ScopeSet, Secret};
pub use provider::{BuildError, Provider, ProviderBuilder};

pub(crate) use state::AppState;

/// The content security policy of every response: nothing but the server's own stylesheet,
/// and never inside a frame (clickjacking on the consent page).
pub(crate) const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// HSTS (RFC 6797 §6.1) when the issuer is https: browsers then reach this host over https
/// only, for a year, so a network attacker cannot strip TLS from a later visit's first request.
/// Subdomains are not named: the issuer's host may share a parent with hosts Doorward does not
/// know.
const HSTS: &str = "max-age=31536000";

/// The whole application at the root, with the "not found" page (tests).
#[cfg(test)]
pub(crate) fn router(state: AppState) -> Router {
    routes(state).fallback(response::page::not_found)
}

/// The provider's routes, relative to its mount path, with its headers and request log.
pub(crate) fn routes(state: AppState) -> Router {
    let mount = state.mount.clone();
    let https = state.secure_cookies;
    let registration = state.engine.config().registration.mode != RegistrationMode::Off;
    let devices = state.engine.config().grants.device_code;
    let app = Router::new()
        .route("/", get(login::home))
        .route(
            "/oauth/authorize",
            get(authorize::show).post(authorize::decide),
        )
        .route("/oauth/token", post(token::token))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(discovery::resource_metadata),
        )
        .route("/oauth/jwks", get(discovery::jwks))
        .route(
            "/oauth/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/oauth/introspect", post(introspection::introspect))
        .route("/oauth/revoke", post(revocation::revoke))
        .route(paths_of::PAR, post(pushed::push))
        .route(
            "/oauth/end_session",
            get(logout::end_session_page).post(logout::end_session),
        )
        .route("/login", get(login::login_page).post(login::login))
        .route(
            "/login/second-factor",
            get(second_factor::prompt).post(second_factor::finish),
        )
        .route(
            "/login/enrol",
            get(second_factor::enrol_page).post(second_factor::enrol_and_sign_in),
        )
        .route("/account/second-factor", get(second_factor::settings))
        .route("/login/passkey", post(passkeys::sign_in))
        .route(
            "/login/second-factor/passkey",
            post(passkeys::second_factor),
        )
        .route(
            "/account/passkeys",
            get(passkeys::list).post(passkeys::register),
        )
        .route("/account/passkeys/new", post(passkeys::start))
        .route("/account/passkeys/remove", post(passkeys::remove))
        .route("/admin", get(admin::home))
        .route("/admin/events", get(admin::events))
        .route("/admin/users", get(admin::users))
        .route(
            "/admin/users/{id}",
            get(admin::user).post(admin::user_action),
        )
        .route(
            "/admin/clients",
            get(admin::clients).post(admin::add_client),
        )
        .route("/admin/clients/{id}/rotate", post(admin::rotate_client))
        .route("/admin/clients/{id}/remove", post(admin::remove_client))
        .route("/admin/keys", get(admin::keys))
        .route("/admin/keys/rotate", post(admin::rotate_key))
        .route(
            "/admin/invitations",
            get(admin::invitations).post(admin::invite),
        )
        .route("/admin/invitations/{id}/withdraw", post(admin::withdraw))
        .route("/account/second-factor/enrol", post(second_factor::enrol))
        .route(
            "/account/second-factor/recovery-codes",
            post(second_factor::renew_codes),
        )
        .route("/account/second-factor/remove", post(second_factor::remove))
        .route("/logout", get(login::logout_page).post(login::logout))
        .route("/account", get(account::account))
        .route(
            "/account/password",
            get(self_service::password_page).post(self_service::change_password),
        )
        .route(
            "/account/delete",
            get(self_service::delete_page).post(self_service::delete),
        )
        .route("/account/revoke", post(account::revoke))
        .route(
            "/account/delegations/revoke",
            post(account::revoke_delegation),
        )
        .route(eternaltwin_api::AUTH_SELF, get(eternaltwin_api::auth_self))
        .route("/api/v1/users/{id}", get(eternaltwin_api::user))
        .route("/assets/doorward.css", get(pages::stylesheet));
    // The sign-up page: only when `[accounts] sign_up` lets someone in.
    let app = if state.engine.config().sign_up != doorward_core::config::SignUpMode::Off {
        app.route(
            "/signup",
            get(self_service::sign_up_page).post(self_service::sign_up),
        )
    } else {
        app
    };
    // Dynamic client registration (RFC 7591, RFC 7592): only when on.
    let app = if registration {
        app.route(paths_of::REGISTER, post(registration::register))
            .route(
                "/oauth/register/{client_id}",
                get(registration::read)
                    .put(registration::update)
                    .delete(registration::delete),
            )
    } else {
        app
    };
    // The device authorization grant (RFC 8628): only when on.
    let app = if devices {
        app.route(
            paths_of::DEVICE_AUTHORIZATION,
            post(device::authorize_device),
        )
        .route(paths_of::DEVICE, get(device::show).post(device::answer))
    } else {
        app
    };
    let app = app.with_state(state);
    // Mounted under a path: pages and redirects learn it per request. At the root (`doorward
    // serve`) there is nothing to add, and no layer on the hot paths.
    let app = if mount.is_empty() {
        app
    } else {
        app.layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| {
                paths::scoped(mount.clone(), next.run(request))
            },
        ))
    };
    with_request_log(with_headers(app, https))
}

/// The headers of every answer: CSP (unless the answer set its own), no framing, no sniffing,
/// no referrer, and HSTS when the issuer is https.
///
/// One layer sets them all: each `Router::layer` wraps every route in a boxed service of its
/// own, cloned per request, so one layer instead of five took allocations and future moves off
/// every request (BENCHMARKS.md, 2026-12-05).
pub(crate) fn with_headers(app: Router, https: bool) -> Router {
    /// Set on every answer, over whatever the handler wrote.
    const ALWAYS: [(header::HeaderName, &str); 3] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    app.layer(tower::util::MapResponseLayer::new(
        move |mut response: axum::response::Response| {
            let headers = response.headers_mut();
            headers
                .entry(header::CONTENT_SECURITY_POLICY)
                .or_insert(HeaderValue::from_static(CSP));
            for (name, value) in ALWAYS {
                headers.insert(name, HeaderValue::from_static(value));
            }
            if https {
                headers.insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            response
        },
    ))
}

/// One log line per request: method, path, the client's address (when the server passes it
/// as `ConnectInfo<SocketAddr>`, as `doorward serve` does), status and latency. The query
/// string is never logged: it carries codes and state.
fn with_request_log(router: Router) -> Router {
    router.layer(
        TraceLayer::new_for_http()
            // The fields are borrowed, not copied: when the span is off (the level below
            // `info`), a request allocates nothing for its log line.
            .make_span_with(|request: &Request| {
                let path = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or_else(|| request.uri().path(), MatchedPath::as_str);
                let client = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(address)| tracing::field::display(address.ip()));
                tracing::info_span!("request", method = %request.method(), path = %path, client)
            })
            .on_request(())
            .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_us = latency.as_micros() as u64,
                    "served"
                );
            }),
    )
}
