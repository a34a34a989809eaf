//! Dynamic client registration through the router: mounted only when on, 201 with `no-store`,
//! `invalid_token` with a Bearer challenge, RFC 7591 errors, 413 for a body past 64 KiB, and
//! the RFC 7592 routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use doorward_core::config::{RegistrationMode, RegistrationPolicy};
use doorward_core::testing::{self, FixedClock};
use doorward_core::EngineConfig;

use super::support::*;
use crate::{router, AppState};

async fn app(mode: RegistrationMode) -> (Router, String) {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let config = EngineConfig {
        registration: RegistrationPolicy {
            mode,
            ..RegistrationPolicy::default()
        },
        ..EngineConfig::default()
    };
    let engine = testing::engine(clock, config).await;
    let token = engine
        .issue_initial_token(60, 10, &doorward_core::audit::Actor::System)
        .await
        .unwrap();
    let app = router(AppState {
        engine: Arc::new(engine),
        secure_cookies: false,
        mount: "".into(),
        authenticator: None,
    });
    (app, token.token.secret().to_owned())
}

fn post(token: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post("/oauth/register").header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(body.into()).unwrap()
}

const WEB: &str = r#"{"redirect_uris":["https://app.example/cb"],"client_name":"App"}"#;

#[tokio::test]
async fn registration_is_not_served_when_off() {
    let (app, token) = app(RegistrationMode::Off).await;
    let (response, _) = send(&app, post(Some(&token), "application/json", WEB)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registration_answers_201_no_store_and_rfc_errors() {
    let (app, token) = app(RegistrationMode::Token).await;
    let (response, body) = send(&app, post(Some(&token), "application/json", WEB)).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let uri = answer["registration_client_uri"].as_str().unwrap();
    let path = uri.strip_prefix("http://localhost").unwrap().to_owned();
    let access = answer["registration_access_token"].as_str().unwrap();

    for wrong in [None, Some("dwia_wrong")] {
        let (response, body) = send(&app, post(wrong, "application/json", WEB)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&body), "invalid_token");
        assert!(header(&response, header::WWW_AUTHENTICATE).starts_with("Bearer "));
    }
    let cases = [
        (
            r#"{"redirect_uris":["javascript:alert(1)"]}"#.to_owned(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":7}"#.to_owned(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        ),
        (
            WEB.to_owned(),
            "application/x-www-form-urlencoded",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            format!(r#"{{"pad":"{}"}}"#, "p".repeat(70 * 1024)),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
    ];
    for (body, content_type, status, error) in cases {
        let (response, answer) = send(&app, post(Some(&token), content_type, body)).await;
        assert_eq!(response.status(), status, "{answer}");
        assert_eq!(error_of(&answer), error);
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    }

    let read = Request::get(&path)
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&app, read).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = access["registration_access_token"].as_str().unwrap();
    let delete = |token: &str| {
        Request::delete(&path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (response, _) = send(&app, delete(access)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (response, _) = send(&app, delete(access)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
