//! doorward-client's sign-in routes (feature `axum`) in a real axum application on loopback,
//! against `doorward serve` (its sign-in and consent pages, pushed requests required) and
//! node-oidc-provider (its development interactions): `/login/{provider}` with a redirect URI
//! chosen per request, the provider's pages, `/callback/{provider}` handing the application a
//! `SignedIn`, the token kept in the registry's token store and found again for API calls. A
//! replayed callback, one from a browser that did not start the sign-in, and a cancelled
//! sign-in are refused with `400`.

use std::sync::Arc;

use axum::response::IntoResponse;
use doorward_client::sign_in::{SignInRoutes, SignedIn};
use doorward_client::{Client, MemoryTokenStore, ProviderConfig, Registry, StateKey};
use serde_json::{json, Value};
use url::Url;

use super::{browser, location};

/// The application: its sign-in routes for `registry`, its redirect URIs on its own origin.
async fn start_app(registry: Arc<Registry>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let own = origin.clone();
    let routes = SignInRoutes::new(
        registry,
        StateKey::generate(),
        |signed_in: SignedIn| async move {
            let user = format!(
                "{}:{}",
                signed_in.provider,
                signed_in.subject().unwrap_or_default()
            );
            signed_in.keep_token(&user).await.unwrap();
            axum::Json(json!({ "provider": signed_in.provider, "user": user })).into_response()
        },
    )
    .redirect_uri(move |_request, provider| format!("{own}/callback/{provider}").parse().ok());
    let app: axum::Router = routes.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// `/login/{provider}` in `user`'s browser: the provider's authorization URL.
async fn login(user: &reqwest::Client, app: &str, provider: &str) -> Url {
    let started = user
        .get(format!("{app}/login/{provider}"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let cookie = started.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    location(&started)
}

/// The callback in `user`'s browser: the application's answer.
async fn callback(user: &reqwest::Client, url: &Url) -> (u16, String) {
    let answer = user.get(url.clone()).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn sign_in_routes_against_doorward_serve_and_node_oidc_provider() {
    let Some(doorward) = super::doorward::start_doorward().await else {
        return;
    };
    let Some(node) = super::start_node_oidc().await else {
        return;
    };
    let mut registry = Registry::new();
    registry
        .register(
            "doorward",
            Client::builder(
                ProviderConfig::oidc(&doorward.origin, "webapp@clients")
                    .with_secret("webapp_secret_0123456789")
                    .with_scopes(["openid", "profile"]),
            )
            .build()
            .unwrap(),
        )
        .register(
            "node",
            Client::builder(
                ProviderConfig::oidc(&node.issuer, "rp-web")
                    .with_secret("rp-secret-0123456789-0123456789-0123456789")
                    .with_scopes(["openid", "profile"]),
            )
            .build()
            .unwrap(),
        )
        .set_token_store(Arc::new(MemoryTokenStore::default()));
    let registry = Arc::new(registry);
    let app = start_app(Arc::clone(&registry)).await;

    // Doorward: its pages, then the callback at the application.
    let user = browser();
    let start = login(&user, &app, "doorward").await;
    assert!(start.as_str().starts_with(&doorward.origin), "{start}");
    let back = super::doorward::approved_location(&user, &doorward.origin, &start, "Web app").await;
    assert!(
        back.as_str()
            .starts_with(&format!("{app}/callback/doorward?")),
        "{back}"
    );
    let (status, body) = callback(&user, &back).await;
    assert_eq!(status, 200, "{body}");
    let signed_in: Value = serde_json::from_str(&body).unwrap();
    let key = signed_in["user"].as_str().unwrap();
    // The token was kept; API calls find it.
    let (_, sub) = key.split_once(':').unwrap();
    let api = registry
        .authorized("doorward", key)
        .await
        .unwrap()
        .expect("the token was kept");
    let me = api.userinfo().await.unwrap();
    assert_eq!(me.subject, sub);
    assert_eq!(me.claims["preferred_username"], "tess");
    // The same callback again: the sign-in cookie is gone.
    assert_eq!(callback(&user, &back).await.0, 400);
    // A callback reaching a browser that did not start it (login CSRF, RFC 9700 §4.7).
    let victim = browser();
    let start = login(&user, &app, "doorward").await;
    let forced =
        super::doorward::approved_location(&user, &doorward.origin, &start, "Web app").await;
    assert_eq!(callback(&victim, &forced).await.0, 400);
    // An unknown provider.
    let unknown = user
        .get(format!("{app}/login/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // node-oidc-provider: its development login and consent, then the callback.
    let user = browser();
    let start = login(&user, &app, "node").await;
    assert!(start.as_str().starts_with(&node.issuer), "{start}");
    let back = super::node_sign_in_until(
        &user,
        &start,
        "nina",
        super::Decision::Approve,
        &format!("{app}/callback/node"),
    )
    .await;
    let (status, body) = callback(&user, &back).await;
    assert_eq!(status, 200, "{body}");
    let signed_in: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(signed_in["user"], "node:nina");
    let api = registry
        .authorized("node", "node:nina")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(api.userinfo().await.unwrap().claims["name"], "User nina");
    // Cancelled at the provider: access_denied comes back, and nothing is signed in.
    let user = browser();
    let start = login(&user, &app, "node").await;
    let back = super::node_sign_in_until(
        &user,
        &start,
        "nina",
        super::Decision::Abort,
        &format!("{app}/callback/node"),
    )
    .await;
    let (status, body) = callback(&user, &back).await;
    assert_eq!(status, 400);
    assert!(body.contains("cancelled"), "{body}");
}
