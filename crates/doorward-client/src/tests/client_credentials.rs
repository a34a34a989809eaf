//! `Client::client_credentials` (RFC 6749 §4.4) against a loopback token endpoint that records
//! what it was sent.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use doorward_proto::ErrorCode;
use serde_json::json;

use crate::error::TokenError;
use crate::{Client, ProviderConfig};

use super::support::*;

type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

async fn token(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<serde_json::Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().unwrap().push((authorization, body.clone()));
    if body.contains("scope=openid") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_scope", "error_description": "no user, no openid"})),
        );
    }
    (
        StatusCode::OK,
        Json(
            json!({"access_token": "service-token", "token_type": "Bearer", "expires_in": 300,
                    "id_token": "not.for.a.service"}),
        ),
    )
}

#[tokio::test]
async fn a_service_token_with_client_authentication_and_no_user() {
    let seen: Seen = Arc::default();
    let origin = serve(
        Router::new()
            .route("/token", post(token))
            .with_state(seen.clone()),
    )
    .await;
    let config = ProviderConfig::oauth2(
        format!("{origin}/authorize").parse().unwrap(),
        format!("{origin}/token").parse().unwrap(),
        CLIENT_ID,
    )
    .with_secret("s3cret")
    .with_scopes(["openid"]);
    let client = Client::builder(config).clock(|| NOW).build().unwrap();

    let token = client
        .client_credentials(&["items:read", "items:write"])
        .await
        .unwrap();
    assert_eq!(token.access_token(), "service-token");
    assert_eq!(token.expires_at(), Some(NOW + 300));
    assert!(token.refresh_token().is_none() && token.id_token().is_none());
    let (authorization, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        authorization.as_deref(),
        Some(
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "client-1:s3cret"
                )
            )
            .as_str()
        )
    );
    assert_eq!(
        body,
        "grant_type=client_credentials&scope=items%3Aread+items%3Awrite"
    );

    // No scope asked: none sent (not the sign-in's configured `openid`).
    client.client_credentials(&[]).await.unwrap();
    assert_eq!(seen.lock().unwrap()[1].1, "grant_type=client_credentials");

    // An RFC 6749 §5.2 refusal comes back typed.
    match client.client_credentials(&["openid"]).await {
        Err(TokenError::Provider { status, error }) => {
            assert_eq!((status, error.code), (400, Some(ErrorCode::InvalidScope)))
        }
        other => panic!("expected invalid_scope, got {other:?}"),
    }
}
