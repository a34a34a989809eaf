//! The `form_post` answer (OAuth 2.0 Form Post Response Mode) as the router writes it, and the
//! pushed authorization request endpoint (RFC 9126) over HTTP.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;

use super::support::standalone::*;
use super::support::*;

/// Signs alice in; the browser's cookies.
async fn signed_in(app: &Router) -> String {
    let (response, _) = send(app, Request::get(AUTHORIZE).body(Body::empty()).unwrap()).await;
    let login = header(&response, header::LOCATION).to_owned();
    let (response, page) = send(app, Request::get(&login).body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("next", &hidden(&page, "next")),
        ("username", "alice"),
        ("password", "pw"),
    ]);
    let (response, _) = send(app, form("/login", &csrf_cookie, body)).await;
    format!(
        "{csrf_cookie}; {}",
        cookie(&response, "dw_session").unwrap()
    )
}

fn get_with(uri: &str, cookies: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_form_post_answer_is_a_page_that_posts_it_and_runs_one_known_script() {
    let app = app().await;
    let cookies = signed_in(&app).await;
    let hostile = "\"><script>alert(1)</script>";
    let uri = format!(
        "{AUTHORIZE}&response_mode=form_post&nonce={}",
        form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
    )
    .replace(
        "state=a+b%26c",
        "state=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    let (_, consent) = send(&app, get_with(&uri, &cookies)).await;
    let body = encode(&[
        ("csrf", &hidden(&consent, "csrf")),
        ("request", &hidden(&consent, "request")),
        ("decision", "approve"),
    ]);
    let (response, page) = send(&app, form("/oauth/authorize", &cookies, body)).await;
    assert_eq!(response.status(), StatusCode::OK, "{page}");
    assert!(response.headers().get(header::LOCATION).is_none());
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    assert_eq!(header(&response, header::PRAGMA), "no-cache");
    assert_eq!(header(&response, header::X_FRAME_OPTIONS), "DENY");
    // The page's one script, allowed by its hash and by nothing else.
    let csp = header(&response, header::CONTENT_SECURITY_POLICY);
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(crate::pages::FORM_POST_SCRIPT))
    };
    assert!(
        csp.ends_with(&format!("; script-src 'sha256-{hash}'")),
        "{csp}"
    );
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(page.matches("<script>").count(), 1, "{page}");
    assert!(page.contains(&format!(
        "<script>{}</script>",
        crate::pages::FORM_POST_SCRIPT
    )));
    // A form posting code, state and iss to the redirect URI; the state escaped.
    assert!(
        page.contains(&format!(r#"<form method="post" action="{CALLBACK}">"#)),
        "{page}"
    );
    assert!(hidden(&page, "code").starts_with("dwc_"));
    assert_eq!(hidden(&page, "iss"), "http://localhost");
    assert!(
        page.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    // The code is good.
    let token = token_request(
        "application/x-www-form-urlencoded",
        Some(&basic("python_client@clients", "dev:sec ret")),
        encode(&[
            ("grant_type", "authorization_code"),
            ("code", &hidden(&page, "code")),
            ("redirect_uri", CALLBACK),
        ]),
    );
    let (response, body) = send(&app, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_pushed_request_is_answered_201_and_opened_by_its_request_uri() {
    let app = app().await;
    let par = |auth: &str, body: String| {
        Request::post("/oauth/par")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, auth)
            .body(Body::from(body))
            .unwrap()
    };
    let auth = basic("python_client@clients", "dev:sec ret");
    let pushed = encode(&[
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("state", "pushed"),
        ("response_mode", "form_post"),
    ]);
    let (response, body) = send(&app, par(&auth, pushed.clone())).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["expires_in"], 300);
    let request_uri = answer["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    let cookies = signed_in(&app).await;
    let front = format!(
        "/oauth/authorize?client_id=python_client%40clients&request_uri={}",
        form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    );
    let (response, consent) = send(&app, get_with(&front, &cookies)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(consent.contains("Python &lt;Client&gt;"));
    let body = encode(&[
        ("csrf", &hidden(&consent, "csrf")),
        ("request", &hidden(&consent, "request")),
        ("decision", "approve"),
    ]);
    let (response, page) = send(&app, form("/oauth/authorize", &cookies, body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hidden(&page, "state"), "pushed");
    assert!(hidden(&page, "code").starts_with("dwc_"));

    // A wrong secret: invalid_client, 401.
    let (response, body) = send(&app, par(&basic("python_client@clients", "wrong"), pushed)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&body), "invalid_client");
}
