//! Discovery (OIDC Discovery, RFC 8414) and the TOML registry.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::error::{ConfigError, DiscoveryError};
use crate::{Client, ProviderConfig};

use super::support::*;

fn oidc_client(issuer: &str) -> Client {
    Client::builder(
        ProviderConfig::oidc(issuer, "client-1")
            .with_secret("s")
            .with_redirect_uri("http://localhost:8000/cb".parse().unwrap()),
    )
    .build()
    .unwrap()
}

#[tokio::test]
async fn discovery_of_a_web_page_is_a_clear_error() {
    // A site whose every path answers its HTML page (Eternaltwin with its front-end).
    let origin = serve(
        axum::Router::new()
            .fallback(|| async { axum::response::Html("<!doctype html><title>app</title>") }),
    )
    .await;
    match oidc_client(&origin).metadata().await {
        Err(DiscoveryError::NotJson { url, content_type }) => {
            assert_eq!(url, format!("{origin}/.well-known/openid-configuration"));
            assert_eq!(content_type, "text/html");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn discovery_falls_back_to_rfc8414_with_the_issuer_path() {
    use axum::routing::get;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server/tenant",
            get(
                |axum::extract::State(issuer): axum::extract::State<String>| async move {
                    axum::Json(json!({
                        "issuer": issuer,
                        "authorization_endpoint": format!("{issuer}/authorize"),
                        "token_endpoint": format!("{issuer}/token"),
                    }))
                },
            ),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                log.lock().unwrap().push(request.uri().path().to_owned());
                next.run(request)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/tenant");
    let router = router.with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let client = oidc_client(&issuer);
    let authorization = client.start_authorization().await.unwrap();
    assert_eq!(
        authorization.url.as_str().split('?').next(),
        Some(format!("{issuer}/authorize").as_str())
    );
    client.start_authorization().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "/tenant/.well-known/openid-configuration".to_owned(),
            "/.well-known/oauth-authorization-server/tenant".to_owned(),
        ],
        "OIDC location first, then RFC 8414 §3.1; then cached"
    );
}

#[tokio::test]
async fn discovery_refuses_metadata_of_another_issuer() {
    let router = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(|| async { axum::Json(json!({"issuer": "https://evil.example"})) }),
    );
    let origin = serve(router).await;
    match oidc_client(&origin).metadata().await {
        Err(DiscoveryError::IssuerMismatch { expected, got }) => {
            assert_eq!(expected, origin);
            assert_eq!(got, "https://evil.example");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn registry_from_toml() {
    let key = crate::StateKey::new([1u8; 32]).unwrap();
    let registry = crate::Registry::from_toml(
        r#"
[providers.eternaltwin]
preset = "eternaltwin"
url = "https://eternaltwin.example/some/path"
client_id = "app@clients"
client_secret = "s"
redirect_uri = "https://app.example/cb"

[providers.login]
issuer = "https://login.example"
client_id = "app"
client_secret = "s"
token_endpoint_auth_method = "client_secret_post"
scopes = ["openid", "email"]
leeway = 5

[providers.plain]
authorization_endpoint = "https://plain.example/auth"
token_endpoint = "https://plain.example/token"
client_id = "app"
token_endpoint_auth_method = "none"
token_request_format = "json"
extra_authorize_params = { audience = "api" }
"#,
        &key,
    )
    .unwrap();
    assert_eq!(
        registry.names().collect::<Vec<_>>(),
        ["eternaltwin", "login", "plain"]
    );

    let etw = registry.get("eternaltwin").unwrap();
    assert_eq!(etw.name(), "eternaltwin");
    let authorization = etw.start_authorization().await.unwrap();
    assert!(authorization.url.as_str().starts_with(
        "https://eternaltwin.example/oauth/authorize?response_type=code&client_id=app%40clients"
    ));
    assert!(authorization.url.as_str().contains("&access_type=offline"));
    assert_eq!(etw.config().body_format, crate::BodyFormat::Json);
    assert_eq!(etw.config().basic_encoding, crate::BasicEncoding::Raw);

    let login = registry.get("login").unwrap().config();
    assert!(login.discovery);
    assert!(matches!(
        login.auth_method,
        crate::AuthMethod::ClientSecretPost
    ));
    assert_eq!(login.leeway, 5);

    let plain = registry.get("plain").unwrap();
    assert!(matches!(
        plain.config().auth_method,
        crate::AuthMethod::None
    ));
    match plain.start_authorization().await {
        Err(crate::StartError::MissingRedirectUri) => {}
        other => panic!("{other:?}"),
    }

    let invalid = |text: &str| match crate::Registry::from_toml(text, &key) {
        Err(ConfigError::Invalid { provider, reason }) => format!("{provider}: {reason}"),
        Err(ConfigError::Toml(e)) => format!("toml: {e}"),
        other => panic!("{other:?}"),
    };
    assert!(
        invalid("[providers.x]\npreset = \"eternaltwin\"\nclient_id = \"a\"").contains("needs url")
    );
    assert!(invalid(
        "[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"\nclient_sekret = \"s\""
    )
    .starts_with("toml:"));
    assert!(
        invalid("[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"")
            .contains("needs a client secret")
    );
    assert!(invalid(
        "[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"\nclient_secret = \"s\"\nid_token_algorithms = [\"HS256\"]"
    )
    .contains("HMAC"));
}
