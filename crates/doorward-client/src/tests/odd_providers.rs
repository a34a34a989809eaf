//! What a client of an odd provider sets (issue 19, item 10): the lenient mode for a token
//! answer without `token_type`, where the token goes on API calls (RFC 6750 §2), and a key set
//! given in the configuration instead of fetched.

use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::json;

use crate::{Body, Client, ProviderConfig, Token, TokenPlacement};

use super::support::*;

/// An API that says where it found the token.
fn echo_api() -> axum::Router {
    async fn found(
        headers: HeaderMap,
        Query(query): Query<std::collections::HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> String {
        if let Some(value) = headers.get("authorization") {
            return format!("header {}", value.to_str().unwrap());
        }
        if let Some(token) = query.get("access_token") {
            let no_store = headers
                .get("cache-control")
                .is_some_and(|v| v == "no-store");
            return format!("uri {token} no-store={no_store}");
        }
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        format!("body {form:?}")
    }
    axum::Router::new()
        .route("/api/me", get(found).post(found))
        .route(
            "/token",
            post(|| async { axum::Json(json!({"access_token": "bare-token"})) }),
        )
}

fn config(origin: &str) -> ProviderConfig {
    let mut config = ProviderConfig::oauth2(
        format!("{origin}/authorize").parse().unwrap(),
        format!("{origin}/token").parse().unwrap(),
        "odd-client",
    )
    .with_secret("odd-secret");
    config.api_base = Some(format!("{origin}/api/").parse().unwrap());
    config
}

#[tokio::test]
async fn a_token_answer_without_token_type_is_refused_unless_lenient() {
    let origin = serve(echo_api()).await;
    let strict = Client::builder(config(&origin)).build().unwrap();
    assert!(
        strict.client_credentials(&[]).await.is_err(),
        "RFC 6749 §5.1: token_type is required"
    );
    let mut lenient = config(&origin);
    lenient.lenient_token_type = true;
    let lenient = Client::builder(lenient).build().unwrap();
    let token = lenient.client_credentials(&[]).await.unwrap();
    assert_eq!(token.access_token(), "bare-token");
    assert_eq!(token.token_type(), "Bearer");
}

#[tokio::test]
async fn the_token_goes_where_the_provider_wants_it() {
    let origin = serve(echo_api()).await;
    let call = |placement: TokenPlacement| {
        let mut config = config(&origin);
        config.token_placement = placement;
        Client::builder(config)
            .build()
            .unwrap()
            .authorized(Token::new("tok", None))
    };
    let header = call(TokenPlacement::Header).get("me").await.unwrap().text();
    assert_eq!(header, "header Bearer tok");
    let uri = call(TokenPlacement::Uri).get("me").await.unwrap().text();
    assert_eq!(uri, "uri tok no-store=true");
    let body = call(TokenPlacement::Body)
        .post("me", Body::form(&[("q", "1")]))
        .await
        .unwrap()
        .text();
    assert_eq!(
        body, r#"body [("q", "1"), ("access_token", "tok")]"#,
        "added to the form"
    );
    // RFC 6750 §2.2: never with GET, never in a JSON body.
    assert!(call(TokenPlacement::Body).get("me").await.is_err());
    let json_body = Body::json(&json!({"q": 1})).unwrap();
    assert!(call(TokenPlacement::Body)
        .post("me", json_body)
        .await
        .is_err());
}

#[tokio::test]
async fn id_tokens_are_checked_against_a_configured_key_set_without_a_fetch() {
    let key = es256_key("pinned");
    let stranger = es256_key("pinned");
    let mut config = ProviderConfig::oauth2(
        "http://127.0.0.1:9/authorize".parse().unwrap(),
        "http://127.0.0.1:9/token".parse().unwrap(),
        CLIENT_ID,
    )
    .with_secret("s");
    config.issuer = Some(ISSUER.into());
    config.jwks = Some(serde_json::from_value(json!({ "keys": [key.jwk] })).unwrap());
    let client = Client::builder(config).clock(|| NOW).build().unwrap();
    let claims = good_claims(key.alg);
    let good = sign(&key, &claims);
    let checked = client
        .validate_id_token(&good, Some(NONCE), Some(ACCESS_TOKEN))
        .await
        .unwrap();
    assert_eq!(checked.subject, "user-1");
    // Signed by another key of the same kid: nothing is fetched, the token is refused.
    let forged = sign(&stranger, &claims);
    assert!(client
        .validate_id_token(&forged, Some(NONCE), Some(ACCESS_TOKEN))
        .await
        .is_err());
}
