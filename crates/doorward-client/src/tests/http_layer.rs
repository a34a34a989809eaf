//! The HTTP layer: compliance hooks, no redirects, timeouts, API verbs.

use reqwest::header::{HeaderValue, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::error::TokenError;
use crate::{Client, ProviderConfig};

use super::support::*;

/// A provider whose token endpoint omits `token_type`, wants a header of its own, and whose
/// API echoes what it received.
async fn quirky_provider() -> String {
    use axum::http::HeaderMap as Headers;
    use axum::routing::{any, post};
    let router = axum::Router::new()
        .route(
            "/token",
            post(|headers: Headers| async move {
                if headers.get("x-quirk").is_none() {
                    return axum::Json(
                        json!({"error": "invalid_request", "error_description": "x-quirk"}),
                    )
                    .into_response_with(StatusCode::BAD_REQUEST);
                }
                axum::Json(json!({"access_token": "fresh-access", "expires_in": "60"}))
                    .into_response_with(StatusCode::OK)
            }),
        )
        .route(
            "/moved",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, "/token")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/api/{*rest}",
            any(
                |method: axum::http::Method, headers: Headers, body: String| async move {
                    axum::Json(json!({
                        "method": method.as_str(),
                        "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()),
                        "content_type": headers.get("content-type").and_then(|v| v.to_str().ok()),
                        "body": body,
                    }))
                },
            ),
        );
    serve(router).await
}

trait WithStatus {
    fn into_response_with(self, status: StatusCode) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> WithStatus for T {
    fn into_response_with(self, status: StatusCode) -> axum::response::Response {
        let mut response = self.into_response();
        *response.status_mut() = status;
        response
    }
}

/// A client of the quirky provider whose token endpoint is `token_path`. The `/slow` endpoint
/// gets a 300 ms timeout (it answers after 5 s); the others the default, so that a busy test
/// machine cannot time out a request the test expects an answer to.
fn quirky_client(origin: &str, token_path: &str, hooks: crate::Hooks) -> Client {
    let url = |path: &str| format!("{origin}{path}").parse().unwrap();
    let mut config =
        ProviderConfig::oauth2(url("/authorize"), url(token_path), "app").with_secret("s");
    config.api_base = Some(url("/api/"));
    if token_path == "/slow" {
        config.timeout = std::time::Duration::from_millis(300);
    }
    Client::builder(config).hooks(hooks).build().unwrap()
}

fn old_token() -> crate::Token {
    crate::Token::new("old-access", Some(0)).with_refresh_token("old-refresh")
}

#[tokio::test]
async fn compliance_hooks_rewrite_requests_and_responses() {
    let origin = quirky_provider().await;
    // Without hooks: the provider refuses the request, and would send no token_type.
    match quirky_client(&origin, "/token", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Provider { status: 400, error })) => {
            assert_eq!(error.description.as_deref(), Some("x-quirk"))
        }
        other => panic!("{other:?}"),
    }
    let request_only = crate::Hooks::default().on_token_request(|request| {
        request
            .headers
            .insert("x-quirk", HeaderValue::from_static("1"));
    });
    match quirky_client(&origin, "/token", request_only)
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::InvalidResponse { reason, .. })) => {
            assert!(reason.contains("token_type"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let hooks = crate::Hooks::default()
        .on_token_request(|request| {
            request
                .headers
                .insert("x-quirk", HeaderValue::from_static("1"));
        })
        .on_token_response(|response| {
            let mut body: Value = serde_json::from_slice(&response.body).unwrap();
            body["token_type"] = json!("Bearer");
            response.body = serde_json::to_vec(&body).unwrap();
        });
    let fresh = quirky_client(&origin, "/token", hooks)
        .refresh(&old_token())
        .await
        .unwrap();
    assert_eq!(fresh.access_token(), "fresh-access");
    assert_eq!(
        fresh.refresh_token(),
        Some("old-refresh"),
        "no new refresh token: the old one is kept"
    );
    assert!(fresh.expires_at().unwrap() > 0, "expires_in as a string");
}

#[tokio::test]
async fn token_calls_never_follow_redirects_and_time_out() {
    let origin = quirky_provider().await;
    match quirky_client(&origin, "/moved", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Redirected { status, location })) => {
            assert_eq!((status, location.as_str()), (307, "/token"))
        }
        other => panic!("{other:?}"),
    }
    match quirky_client(&origin, "/slow", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Transport(crate::TransportError::Http {
            source,
            ..
        }))) => {
            assert!(source.is_timeout(), "{source:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn api_verbs_carry_the_bearer_token_and_body() {
    let origin = quirky_provider().await;
    let client = quirky_client(&origin, "/token", crate::Hooks::default());
    let api = client.authorized(crate::Token::new("the-access", None));
    let echo = |response: crate::ApiResponse| response.json::<Value>().unwrap();
    let got = echo(api.get("/api/items").await.unwrap());
    assert_eq!(
        (got["method"].as_str(), got["authorization"].as_str()),
        (Some("GET"), Some("Bearer the-access"))
    );
    let got = echo(
        api.post("items", crate::Body::json(&json!({"a": 1})).unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(got["method"], "POST");
    assert_eq!(got["content_type"], "application/json");
    assert_eq!(got["body"], r#"{"a":1}"#);
    let got = echo(
        api.put("items/1", crate::Body::form(&[("b", "2 3")]))
            .await
            .unwrap(),
    );
    assert_eq!(got["method"], "PUT");
    assert_eq!(got["body"], "b=2+3");
    let got = echo(api.delete(&format!("{origin}/api/items/1")).await.unwrap());
    assert_eq!(got["method"], "DELETE");
    // The token never goes to another origin.
    for elsewhere in ["http://evil.example/api/x", "//evil.example/x"] {
        match api.get(elsewhere).await {
            Err(crate::ApiError::BadPath(path)) => assert_eq!(path, elsewhere),
            other => panic!("{elsewhere}: {other:?}"),
        }
    }
    // An expired token without a refresh token is sent as is; the API decides.
    let expired = client.authorized(crate::Token::new("stale", Some(0)));
    assert_eq!(
        echo(expired.get("x").await.unwrap())["authorization"],
        "Bearer stale"
    );
}
