//! "Sign in with Eternaltwin": an axum app that signs its users in with doorward-client.
//!
//! The button POSTs to the app, which answers 302 to the provider (seed 002's recommended
//! flow); the callback finishes the authorization; the home page shows the signed-in user.
//! Against `doorward serve` with the repository's dev config, no setting is needed:
//!
//! ```sh
//! cargo run -p doorward -- serve --config config/dev.toml      # provider on :50320
//! cargo run -p doorward-client --example eternaltwin_signin    # this app on :8000
//! ```
//!
//! Settings (environment): `PROVIDER` = `eternaltwin` (default) or `oidc`; `PROVIDER_URL`
//! (Eternaltwin URL or OIDC issuer, default `http://localhost:50320`); `CLIENT_ID`
//! (`python_client@clients`); `CLIENT_SECRET` (`dev_secret`); `REDIRECT_URI`
//! (`http://localhost:8000/oauth/callback`); `LISTEN` (`127.0.0.1:8000`); `STATE_KEY` (32+
//! bytes shared by every instance; random when unset).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use doorward_client::eternaltwin::current_user;
use doorward_client::{Callback, Client, ProviderConfig, StateKey};
use serde::Deserialize;

#[derive(Clone)]
struct App {
    client: Client,
    oidc: bool,
    /// Signed-in users by session id (a real app keeps these in its database).
    sessions: Arc<Mutex<HashMap<String, String>>>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let provider_url = setting("PROVIDER_URL", "http://localhost:50320");
    let oidc = setting("PROVIDER", "eternaltwin") == "oidc";
    let config = if oidc {
        ProviderConfig::oidc(provider_url, setting("CLIENT_ID", "python_client"))
            .with_scopes(["openid", "profile", "email"])
    } else {
        ProviderConfig::eternaltwin(
            &provider_url.parse()?,
            setting("CLIENT_ID", "python_client@clients"),
        )
    }
    .with_secret(setting("CLIENT_SECRET", "dev_secret"))
    .with_redirect_uri(setting("REDIRECT_URI", "http://localhost:8000/oauth/callback").parse()?);
    let state_key = match std::env::var("STATE_KEY") {
        Ok(key) => StateKey::new(key)?,
        Err(_) => StateKey::generate(),
    };
    let client = Client::builder(config).state_key(state_key).build()?;
    let app = App {
        client,
        oidc,
        sessions: Arc::default(),
    };

    let router = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/oauth/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(app);
    let listen = setting("LISTEN", "127.0.0.1:8000");
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("example listening on http://{listen}");
    axum::serve(listener, router).await?;
    Ok(())
}

/// The home page: who is signed in, or the sign-in button (with a double-submit CSRF token).
async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    let signed_in =
        cookie(&headers, "rp_sid").and_then(|sid| app.sessions.lock().unwrap().get(&sid).cloned());
    let csrf = cookie(&headers, "rp_csrf").unwrap_or_else(random);
    let body = match signed_in {
        Some(user) => format!(
            "<p>Signed in as <strong id=\"user\">{}</strong>.</p>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button>Sign out</button></form>",
            escape(&user)
        ),
        None => format!(
            "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button>Sign in with {}</button></form>",
            if app.oidc { "your provider" } else { "Eternaltwin" }
        ),
    };
    let set_csrf = format!("rp_csrf={csrf}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, set_csrf)], page("Example app", &body)).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The button: start an authorization, keep its state in a cookie, 302 to the provider.
async fn login(State(app): State<App>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if cookie(&headers, "rp_csrf").as_deref() != Some(form.csrf.as_str()) {
        return error(
            StatusCode::FORBIDDEN,
            "The form expired; go back and try again.",
        );
    }
    match app.client.start_authorization().await {
        Ok(authorization) => {
            let state = format!(
                "rp_state={}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=600",
                authorization.state
            );
            (
                [(header::SET_COOKIE, state)],
                Redirect::to(authorization.url.as_str()),
            )
                .into_response()
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!("Cannot reach the provider: {e}"),
        ),
    }
}

/// The callback: finish the authorization (path, state, code, PKCE, ID token), find out who
/// signed in, open a session. The path lets the client check that the callback came to its own
/// redirect URI (the mix-up defence of a provider without an issuer, RFC 9700 §4.4.2).
async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<Callback>,
) -> Response {
    let sent = cookie(&headers, "rp_state");
    let sign_in = match app
        .client
        .finish_authorization(&query.at_path(uri.path()), sent.as_deref())
        .await
    {
        Ok(sign_in) => sign_in,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Sign-in failed: {e}")),
    };
    let user = if let Some(claims) = &sign_in.id_token {
        let name = claims
            .get_str("name")
            .or(claims.get_str("preferred_username"));
        format!(
            "{} ({})",
            name.unwrap_or(&claims.subject),
            claims.get_str("email").unwrap_or("no e-mail")
        )
    } else {
        match current_user(&app.client.authorized(sign_in.token)).await {
            Ok(user) => format!("{} ({})", user.display_name, user.id),
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    &format!("Cannot read the profile: {e}"),
                )
            }
        }
    };
    let sid = random();
    app.sessions.lock().unwrap().insert(sid.clone(), user);
    let headers = AppendHeaders([
        (
            header::SET_COOKIE,
            format!("rp_sid={sid}; Path=/; HttpOnly; SameSite=Lax"),
        ),
        (
            header::SET_COOKIE,
            "rp_state=; Path=/oauth/callback; Max-Age=0".to_owned(),
        ),
    ]);
    (headers, Redirect::to("/")).into_response()
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if cookie(&headers, "rp_csrf").as_deref() != Some(form.csrf.as_str()) {
        return error(
            StatusCode::FORBIDDEN,
            "The form expired; go back and try again.",
        );
    }
    if let Some(sid) = cookie(&headers, "rp_sid") {
        app.sessions.lock().unwrap().remove(&sid);
    }
    (
        [(header::SET_COOKIE, "rp_sid=; Path=/; Max-Age=0")],
        Redirect::to("/"),
    )
        .into_response()
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
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            "Sign-in problem",
            &format!(
                "<p id=\"error\">{}</p><p><a href=\"/\">Back</a></p>",
                escape(message)
            ),
        ),
    )
        .into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
