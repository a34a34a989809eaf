//! The HTML pages: forms refused without a valid CSRF token, a sign-in that never redirects off
//! site.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use super::support::standalone::*;
use super::support::*;

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = app().await;
    let body = encode(&[("username", "alice"), ("password", "pw")]);
    let (response, _) = send(&app, form("/login", "", body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = encode(&[
        ("username", "alice"),
        ("password", "pw"),
        ("csrf", "forged"),
    ]);
    let (response, _) = send(&app, form("/login", "dw_csrf=dwx_abc", body)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(cookie(&response, "dw_session").is_none());
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let app = app().await;
    let (response, page) = send(
        &app,
        Request::get("/login?next=//evil.example/x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    assert_eq!(hidden(&page, "next"), "/account");
    for next in [
        "/%09/evil.example",
        "/%09%5Cevil.example",
        "%2F%2Fevil",
        "/login",
    ] {
        let request = Request::get(format!("/login?next={next}"))
            .body(Body::empty())
            .unwrap();
        let (_, page) = send(&app, request).await;
        assert_eq!(hidden(&page, "next"), "/account", "{next}");
    }
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("next", "https://evil.example/"),
        ("username", "alice"),
        ("password", "pw"),
    ]);
    let (response, _) = send(&app, form("/login", &csrf_cookie, body)).await;
    assert_eq!(header(&response, header::LOCATION), "/account");
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("username", "alice"),
        ("password", "wrong"),
    ]);
    let (response, page) = send(&app, form("/login", &csrf_cookie, body)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(page.contains("Invalid username or password."));
}

/// RFC 6797 §7.1: an https issuer's answers carry `Strict-Transport-Security`, pages, token
/// answers and "not found" alike; an http issuer's never do (§7.2: not over plain HTTP).
#[tokio::test]
async fn hsts_only_when_the_issuer_is_https() {
    use std::sync::Arc;

    use doorward_core::memory::MemoryStore;
    use doorward_core::passwords::HashCost;

    for (issuer, expected) in [
        ("https://id.example", "max-age=31536000"),
        ("http://localhost:50320", ""),
    ] {
        let app = crate::Provider::builder(issuer)
            .config(crate::EngineConfig {
                issuer: issuer.into(),
                hash_cost: HashCost::InsecureFastForTests,
                ..crate::EngineConfig::default()
            })
            .store(Arc::new(MemoryStore::default()))
            .build()
            .await
            .unwrap()
            .standalone();
        let token = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=authorization_code"))
            .unwrap();
        for request in [
            Request::get("/login").body(Body::empty()).unwrap(),
            Request::get("/nowhere").body(Body::empty()).unwrap(),
            token,
        ] {
            let path = request.uri().path().to_owned();
            let (response, _) = send(&app, request).await;
            assert_eq!(
                header(&response, header::STRICT_TRANSPORT_SECURITY),
                expected,
                "{issuer}{path}: {}",
                response.status()
            );
            assert_eq!(header(&response, header::X_FRAME_OPTIONS), "DENY", "{path}");
        }
    }
}
