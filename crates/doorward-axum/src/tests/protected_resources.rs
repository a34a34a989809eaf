//! Bearer-protected resources (RFC 6750): the standalone server's API, and `ResourceServer` as a
//! sub-state of an application's own state.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::protect::{Authenticated, ResourceServer};

use super::support::embedded::ReadItems;
use super::support::standalone::*;
use super::support::*;

#[tokio::test]
async fn protected_resources_answer_rfc_6750() {
    let app = app().await;
    let get = |auth: Option<&str>| {
        let mut builder = Request::get("/api/v1/auth/self");
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(Body::empty()).unwrap()
    };
    let (response, body) = send(&app, get(None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, r#"{"scope":"Default","type":"Guest"}"#);
    let (response, _) = send(&app, get(Some("Bearer dwat_unknown"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&response, header::WWW_AUTHENTICATE).contains("error=\"invalid_token\""));
    let (response, _) = send(&app, get(Some("Bearer a b"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (response, _) = send(&app, get(Some("Basic abc"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, header::WWW_AUTHENTICATE),
        "Bearer realm=\"doorward\""
    );
    let (response, _) = send(&app, get(Some("bearé"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Another scheme that starts like Bearer is another scheme: 401 with a bare challenge.
    for other in ["Bearerx abc", "Bearer_abc", "Bearer-token abc"] {
        let (response, _) = send(&app, get(Some(other))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{other}");
        assert_eq!(
            header(&response, header::WWW_AUTHENTICATE),
            "Bearer realm=\"doorward\"",
            "{other}"
        );
    }
    // A Bearer header without a usable token: 400 invalid_request (RFC 6750 §3.1).
    for malformed in [
        "Bearer",
        "bearer ",
        "Bearer\tabc",
        "Bearer a b",
        "Bearer tok\"en",
    ] {
        let (response, body) = send(&app, get(Some(malformed))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{malformed:?}");
        assert!(
            header(&response, header::WWW_AUTHENTICATE).contains("error=\"invalid_request\""),
            "{malformed:?}"
        );
        assert_eq!(error_of(&body), "invalid_request", "{malformed:?}");
    }

    let (response, _) = send(
        &app,
        Request::get("/api/v1/users/not-a-uuid")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn resource_server_is_a_sub_state() {
    // ResourceServer: FromRef of a larger state, for apps with more in their state.
    #[derive(Clone)]
    struct State {
        resource: ResourceServer,
    }
    impl axum::extract::FromRef<State> for ResourceServer {
        fn from_ref(state: &State) -> Self {
            state.resource.clone()
        }
    }
    fn assert_handler<H: axum::handler::Handler<T, State>, T>(_: H) {}
    assert_handler(|_: Authenticated<ReadItems>| async { "ok" });
    let _ = |s: State| s.resource;
}

/// README, `GET /api/v1/auth/self`: "The session cookie gives `{"type":"User",…}`"; the same
/// request after signing out is a guest again.
#[tokio::test]
async fn auth_self_with_the_session_cookie_is_the_signed_in_user() {
    let app = app().await;
    let (response, page) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("username", "alice"),
        ("password", "pw"),
    ]);
    let (response, _) = send(&app, form("/login", &csrf_cookie, body)).await;
    let session = cookie(&response, "dw_session").unwrap();
    let me = |cookies: String| {
        Request::get("/api/v1/auth/self")
            .header(header::COOKIE, cookies)
            .body(Body::empty())
            .unwrap()
    };
    let (response, body) = send(&app, me(format!("{csrf_cookie}; {session}"))).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["type"], "User", "{body}");
    assert_eq!(json["scope"], "Default");
    assert_eq!(json["user"]["type"], "User");
    assert_eq!(json["user"]["display_name"]["current"]["value"], "Alice");
    assert!(json["user"]["id"].as_str().unwrap().len() == 36, "{body}");

    let (_, body) = send(&app, me(format!("{csrf_cookie}; dw_session=dws_forged"))).await;
    assert_eq!(
        body, r#"{"scope":"Default","type":"Guest"}"#,
        "an unknown session"
    );
}
