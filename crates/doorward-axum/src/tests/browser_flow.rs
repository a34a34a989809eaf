//! The browser's way through the standalone server: sign-in, consent, the code, the token and
//! the API; a bad client or redirect URI is shown, never redirected to (RFC 6749 §4.1.2.1).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use super::support::standalone::*;
use super::support::*;

#[tokio::test]
async fn a_browser_signs_in_consents_and_the_client_gets_a_user() {
    let app = app().await;
    let (response, _) = send(&app, Request::get(AUTHORIZE).body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = header(&response, header::LOCATION).to_owned();
    assert!(login.starts_with("/login?next=%2Foauth%2Fauthorize"));

    let (response, page) = send(&app, Request::get(&login).body(Body::empty()).unwrap()).await;
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let set = header(&response, header::SET_COOKIE);
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"));
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("next", &hidden(&page, "next")),
        ("username", "alice"),
        ("password", "pw"),
    ]);
    let (response, _) = send(&app, form("/login", &csrf_cookie, body)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&response, header::LOCATION), AUTHORIZE);
    let cookies = format!(
        "{csrf_cookie}; {}",
        cookie(&response, "dw_session").unwrap()
    );

    let consent = Request::get(AUTHORIZE)
        .header(header::COOKIE, &cookies)
        .body(Body::empty())
        .unwrap();
    let (response, page) = send(&app, consent).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        page.contains("Python &lt;Client&gt;"),
        "display names are escaped"
    );
    assert!(header(&response, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("request", &hidden(&page, "request")),
        ("decision", "approve"),
    ]);
    let (response, _) = send(&app, form("/oauth/authorize", &cookies, body)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = header(&response, header::LOCATION);
    assert!(location.starts_with(&format!("{CALLBACK}?code=dwc_")));
    assert!(
        location.ends_with("&state=a+b%26c&iss=http%3A%2F%2Flocalhost"),
        "state, then the issuer (RFC 9207): {location}"
    );
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();

    // The eternaltwin client: raw `id:secret` Basic (the secret has ':' and ' '), JSON body.
    let request = token_request(
        "application/json",
        Some(&basic("python_client@clients", "dev:sec ret")),
        format!(r#"{{"grant_type":"authorization_code","code":"{code}"}}"#),
    );
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<_> = tokens.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );

    let me = Request::get("/api/v1/auth/self")
        .header(
            header::AUTHORIZATION,
            format!("bearer {}", tokens["access_token"].as_str().unwrap()),
        )
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&app, me).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["user"]["display_name"]["current"]["value"], "Alice");
    assert_eq!(me["client"]["key"], "python_client@clients");
}

#[tokio::test]
async fn a_bad_client_or_redirect_uri_is_shown_never_redirected() {
    let app = app().await;
    for query in [
        "response_type=code&client_id=nope%40clients",
        "response_type=code",
        "response_type=code&client_id=python_client%40clients&redirect_uri=http%3A%2F%2Fevil%2Fcb",
        "response_type=code&client_id=python_client%40clients&redirect_uri=javascript%3Aalert(1)",
    ] {
        let request = Request::get(format!("/oauth/authorize?{query}"))
            .body(Body::empty())
            .unwrap();
        let (response, page) = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(
            response.headers().get(header::LOCATION).is_none(),
            "{query}"
        );
        assert!(page.contains("<h1>"), "{query}");
    }
    let request = Request::get(
        "/oauth/authorize?response_type=token&client_id=python_client%40clients&state=x%20y",
    )
    .body(Body::empty())
    .unwrap();
    let (response, _) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        header(&response, header::LOCATION),
        format!("{CALLBACK}?error=unsupported_response_type&error_description=only+response_type%3Dcode+is+supported&state=x+y&iss=http%3A%2F%2Flocalhost")
    );
}

/// Signs `alice` in from a browser holding `cookies` (its CSRF cookie, maybe a session);
/// returns the new `dw_session=…` pair.
async fn sign_in(app: &axum::Router, cookies: &str) -> String {
    let request = Request::get("/login")
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap();
    let (_, page) = send(app, request).await;
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("username", "alice"),
        ("password", "pw"),
    ]);
    let (response, _) = send(app, form("/login", cookies, body)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookie(&response, "dw_session").unwrap()
}

async fn self_type(app: &axum::Router, cookies: &str) -> String {
    let request = Request::get("/api/v1/auth/self")
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap();
    let (_, body) = send(app, request).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sign_in_ends_the_browsers_previous_session() {
    let app = app().await;
    let (response, _) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let first = sign_in(&app, &csrf_cookie).await;
    assert_eq!(self_type(&app, &first).await, "User");
    // Signing in again from the same browser: a new session id, the old one ended.
    let second = sign_in(&app, &format!("{csrf_cookie}; {first}")).await;
    assert_ne!(first, second);
    assert_eq!(self_type(&app, &second).await, "User");
    assert_eq!(
        self_type(&app, &first).await,
        "Guest",
        "a copy of the old cookie is worth nothing after the sign-in"
    );
}

#[tokio::test]
async fn identity_answers_and_redirects_to_the_client_are_never_cached() {
    let app = app().await;
    let (response, _) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let session = sign_in(&app, &csrf_cookie).await;
    let cookies = format!("{csrf_cookie}; {session}");
    let get = |uri: &str| {
        Request::get(uri)
            .header(header::COOKIE, &cookies)
            .body(Body::empty())
            .unwrap()
    };
    for uri in [
        "/api/v1/auth/self",
        "/api/v1/users/00000000-0000-0000-0000-000000000000",
        "/api/v1/users/not-a-uuid",
    ] {
        let (response, _) = send(&app, get(uri)).await;
        assert_eq!(
            header(&response, header::CACHE_CONTROL),
            "no-store",
            "{uri}"
        );
    }
    // The consent, then the redirect carrying the code.
    let (_, page) = send(&app, get(AUTHORIZE)).await;
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("request", &hidden(&page, "request")),
        ("decision", "approve"),
    ]);
    let (response, _) = send(&app, form("/oauth/authorize", &cookies, body)).await;
    assert!(header(&response, header::LOCATION).contains("code=dwc_"));
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let (response, _) = send(&app, get(AUTHORIZE)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(header(&response, header::LOCATION).contains("code=dwc_"));
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    // An error redirect too; and a response_mode the server does not speak is one, in the
    // query, never a code (JARM's `query.jwt` is not implemented).
    let (response, _) = send(&app, get(&format!("{AUTHORIZE}&response_mode=query.jwt"))).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = header(&response, header::LOCATION);
    assert!(
        location.starts_with(&format!("{CALLBACK}?error=invalid_request&")),
        "{location}"
    );
    assert!(!location.contains("code="), "{location}");
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
}
