//! "Shop", an axum application that embeds Doorward's provider under `/auth`, signs its users
//! in with its own login page, keeps Doorward's data in its own store (`store.rs`), and serves
//! an API protected by bearer tokens with two scopes.
//!
//! ```sh
//! cargo run -p doorward-example-embedded       # http://localhost:3000, provider at /auth
//! ```
//!
//! Settings (environment): `LISTEN` (`127.0.0.1:3000`), `EXTERNAL_URL`
//! (`http://localhost:3000`), and the one client: `CLIENT_ID` (`shop-client`), `CLIENT_SECRET`
//! (`shop-secret`), `REDIRECT_URI` (`http://localhost:8000/oauth/callback`);
//! `ACCESS_TOKEN_LIFETIME` in seconds (7200). Users: `ada` / `lovelace`, `alan` / `turing`.
//! The client may also trade a loyalty card's number (`1815-ADA`, `1912-ALAN`) for a token
//! that reads items, at the token endpoint: an extension grant of the shop's own.
//!
//! Kept short on purpose, and served over plain http on localhost: a real shop marks its
//! cookies `Secure` (and `__Host-`) over https, expires its sessions, and rate-limits its
//! login form.

mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use doorward_axum::protect::{Authenticated, ResourceServer, Scopes};
use doorward_axum::{
    AppUser, Authentication, Authenticator, ClientSpec, Decision, Grants, LoginRequest, Provider,
};
use doorward_core::extension_grant::{ExtensionGrant, ExtensionRequest, Granted, Subject};
use doorward_core::model::ClientPolicy;
use doorward_core::Engine;
use doorward_proto::{constant_time_eq, OAuthError, RedirectUri, ScopeSet, Secret};
use serde::Deserialize;

// ---- The embedding: provider, sign-in hook, protected API ------------------------------------

/// The shop's signed-in browsers: session id → user.
type Sessions = Arc<Mutex<HashMap<String, AppUser>>>;

/// Who is signed in at the shop decides who signs in at the provider.
struct ShopLogin(Sessions);

impl Authenticator for ShopLogin {
    fn authenticate<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Authentication> + Send + 'a>> {
        Box::pin(async move {
            let signed_in = cookie(request.headers, "shop_session")
                .and_then(|sid| self.0.lock().unwrap().get(&sid).cloned());
            match signed_in {
                Some(user) if !request.reauthenticate => Authentication::User(user),
                _ => Authentication::Redirect(format!("/login?grant={}", encode(request.grant_id))),
            }
        })
    }
}

struct ReadItems;
impl Scopes for ReadItems {
    const SCOPES: &'static [&'static str] = &["items:read"];
}
struct WriteItems;
impl Scopes for WriteItems {
    const SCOPES: &'static [&'static str] = &["items:write"];
}

async fn list_items(auth: Authenticated<ReadItems>) -> String {
    format!(
        "{{\"items\":[\"apple\",\"pear\"],\"user\":\"{}\"}}",
        auth.grant.subject
    )
}

async fn add_item(auth: Authenticated<WriteItems>) -> String {
    format!("{{\"added\":true,\"user\":\"{}\"}}", auth.grant.subject)
}

/// The shop's own grant type (RFC 6749 §4.5): the companion app trades a loyalty card's
/// number for a token of the card's holder that can only read.
const LOYALTY_CARD: &str = "https://shop.example/grants/loyalty-card";

struct LoyaltyCard;

#[async_trait::async_trait]
impl ExtensionGrant for LoyaltyCard {
    fn grant_type(&self) -> &str {
        LOYALTY_CARD
    }

    async fn decide(
        &self,
        engine: &Engine,
        request: ExtensionRequest<'_>,
    ) -> Result<Granted, doorward_core::Error> {
        let card = request
            .params
            .get("card")
            .ok_or_else(|| OAuthError::invalid_request("card is missing"))?;
        // A real shop looks the card up in its database.
        let holder = [("ada", "1815-ADA"), ("alan", "1912-ALAN")]
            .into_iter()
            .find(|(_, number)| constant_time_eq(number.as_bytes(), card.as_bytes()))
            .and_then(|(name, _)| known_user(name))
            .ok_or_else(|| OAuthError::invalid_grant("unknown loyalty card"))?;
        let user = engine.upsert_app_user(&holder).await?;
        Ok(Granted {
            subject: Subject::User(user.id),
            scopes: request.scopes.without("items:write"),
        })
    }
}

async fn provider(
    external: &str,
    sessions: Sessions,
    setting: impl Fn(&str, &str) -> String,
) -> Result<Provider, Box<dyn std::error::Error>> {
    let mut config = doorward_axum::EngineConfig {
        issuer: format!("{external}/auth"),
        scopes: ScopeSet::parse("openid profile items:read items:write")?,
        default_scopes: ScopeSet::parse("items:read")?,
        ..Default::default()
    };
    config.lifetimes.access_token = setting("ACCESS_TOKEN_LIFETIME", "7200").parse()?;
    Ok(Provider::builder(config.issuer.clone())
        .config(config)
        .grants(Grants::CODE_AND_REFRESH)
        .store(Arc::new(store::ExampleStore::new()))
        .authenticator(ShopLogin(sessions))
        .extension_grant(LoyaltyCard)
        .client(ClientSpec {
            key: setting("CLIENT_ID", "shop-client"),
            display_name: "Shop companion app".into(),
            app_uri: "http://localhost:8000".into(),
            redirect_uris: vec![RedirectUri::parse(&setting(
                "REDIRECT_URI",
                "http://localhost:8000/oauth/callback",
            ))?],
            secret: Secret::new(setting("CLIENT_SECRET", "shop-secret")),
            policy: ClientPolicy {
                extension_grants: vec![LOYALTY_CARD.into()],
                ..ClientPolicy::default()
            },
        })
        .build()
        .await?)
}

// ---- The rest of the shop: its own login page ------------------------------------------------

#[derive(Clone)]
struct Shop {
    provider: Provider,
    resource: ResourceServer,
    sessions: Sessions,
}

impl axum::extract::FromRef<Shop> for ResourceServer {
    fn from_ref(shop: &Shop) -> Self {
        shop.resource.clone()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let external = setting("EXTERNAL_URL", "http://localhost:3000");
    let sessions = Sessions::default();
    let provider = provider(&external, sessions.clone(), setting).await?;
    provider.spawn_maintenance();
    let shop = Shop {
        resource: provider.resource_server(5),
        provider: provider.clone(),
        sessions,
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async { Html("<h1>Shop</h1><p><a href=\"/login\">Sign in</a></p>") }),
        )
        .route("/login", get(login_page).post(login))
        .route("/api/items", get(list_items).post(add_item))
        .with_state(shop);
    let app = provider.mount(app);
    let listen = setting("LISTEN", "127.0.0.1:3000");
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("shop listening on http://{listen}, provider at {external}/auth");
    axum::serve(listener, app).await?;
    Ok(())
}

/// The shop's users and passwords (a real shop checks its database).
fn known_user(name: &str) -> Option<AppUser> {
    ["ada", "alan"].contains(&name).then(|| AppUser {
        id: name.to_owned(),
        display_name: format!("{}{}", name[..1].to_uppercase(), &name[1..]),
        email: Some(format!("{name}@shop.example")),
        email_verified: true,
    })
}

fn password_ok(name: &str, password: &str) -> bool {
    matches!((name, password), ("ada", "lovelace") | ("alan", "turing"))
}

#[derive(Deserialize)]
struct LoginQuery {
    grant: Option<String>,
}

/// The shop's login page, with a double-submit CSRF token.
async fn login_page(headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    let csrf = cookie(&headers, "shop_csrf").unwrap_or_else(random);
    let grant = escape(query.grant.as_deref().unwrap_or(""));
    let page = format!(
        "<!doctype html><title>Shop sign-in</title><h1>Sign in to the shop</h1>\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"grant\" value=\"{grant}\">\
         <label>Username <input name=\"username\"></label> <label>Password <input name=\"password\" type=\"password\"></label>\
         <button name=\"decision\" value=\"sign-in\">Sign in</button> <button name=\"decision\" value=\"cancel\">Cancel</button></form>"
    );
    let set = format!("shop_csrf={csrf}; Path=/; HttpOnly; SameSite=Lax");
    (
        [
            (header::SET_COOKIE, set),
            // A password form: never cached, never framed (clickjacking).
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_FRAME_OPTIONS, "DENY".to_owned()),
        ],
        Html(page),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    grant: String,
    username: String,
    password: String,
    decision: String,
}

/// Checks the shop's password, then hands the pending authorization back to the provider.
async fn login(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, "shop_csrf").unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return (StatusCode::FORBIDDEN, "the form expired; reload the page").into_response();
    }
    if form.decision == "cancel" {
        return shop.provider.resume(&form.grant, Decision::Deny).await;
    }
    let user =
        match known_user(&form.username) {
            Some(user) if password_ok(&form.username, &form.password) => user,
            _ => return (
                StatusCode::UNAUTHORIZED,
                Html("Wrong username or password. <a href=\"javascript:history.back()\">Back</a>"),
            )
                .into_response(),
        };
    let sid = random();
    shop.sessions
        .lock()
        .unwrap()
        .insert(sid.clone(), user.clone());
    let signed_in = format!("shop_session={sid}; Path=/; HttpOnly; SameSite=Lax");
    if form.grant.is_empty() {
        return ([(header::SET_COOKIE, signed_in)], Redirect::to("/")).into_response();
    }
    let mut response = shop
        .provider
        .resume(
            &form.grant,
            Decision::Allow {
                user,
                consented: false,
            },
        )
        .await;
    if let Ok(value) = signed_in.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn random() -> String {
    // 122 random bits from the operating system.
    uuid::Uuid::new_v4().simple().to_string()
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
