//! The HTML pages: forms refused without a valid CSRF token, a sign-in that never redirects off
//! site.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use doorward_core::request::AuthorizationRequest;

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

#[test]
fn the_consent_page_links_only_to_a_web_page() {
    use doorward_core::model::{Client, User};
    let user = User {
        id: uuid::Uuid::nil(),
        username: "alice".into(),
        display_name: "Alice".into(),
        password_hash: String::new(),
        email: None,
        email_verified: false,
        created_at: 0,
        claims: Default::default(),
        admin: false,
        disabled_at: None,
        second_factor_required: false,
        source: Default::default(),
    };
    let client = |app_uri: &str| Client {
        id: uuid::Uuid::nil(),
        key: "app@clients".into(),
        display_name: "App".into(),
        app_uri: app_uri.into(),
        redirect_uris: vec![],
        secret_hash: None,
        previous_secret: None,
        policy: Default::default(),
        source: Default::default(),
        created_at: 0,
    };
    let page = |uri: &str| {
        crate::pages::consent(&user, &consent_request(client(uri)), "t", "q").into_string()
    };
    assert!(page("https://app.example/").contains(r#"href="https://app.example/""#));
    // An embedding application's client may carry any string: shown, never a link.
    for uri in [
        "javascript:alert(1)",
        "JaVaScRiPt:x",
        "data:text/html,x",
        "//evil",
    ] {
        let html = page(uri);
        assert!(!html.contains(&format!(r#"href="{uri}""#)), "{uri}: {html}");
    }
}

fn consent_request(client: doorward_core::model::Client) -> AuthorizationRequest {
    AuthorizationRequest {
        implicit: false,
        client,
        redirect_uri: doorward_proto::RedirectUri::parse("https://app.example:8443/cb").unwrap(),
        scopes: doorward_proto::ScopeSet::parse("base").unwrap(),
        scope_requested: true,
        state: None,
        challenge: None,
        nonce: None,
        prompt: Default::default(),
        max_age: None,
        acr_values: None,
        login_hint: None,
        hinted_subject: None,
        reauthenticated_since: None,
        resources: Vec::new(),
        response_mode: doorward_core::request::ResponseMode::Query,
        pushed: None,
        carry: None,
        dpop_jkt: None,
    }
}

/// Issue 14 item 8: a client no operator registered is marked unverified, with the URL it is
/// known by; every consent page names the host the browser is sent to.
#[test]
fn the_consent_page_tells_the_truth_about_the_client() {
    use doorward_core::model::{Client, ClientSource, User};
    let user = User {
        id: uuid::Uuid::nil(),
        username: "alice".into(),
        display_name: "Alice".into(),
        password_hash: String::new(),
        email: None,
        email_verified: false,
        created_at: 0,
        claims: Default::default(),
        admin: false,
        disabled_at: None,
        second_factor_required: false,
        source: Default::default(),
    };
    let client = |source: ClientSource| Client {
        id: uuid::Uuid::nil(),
        key: "https://app.example/client.json".into(),
        display_name: "<b>Bold</b> App".into(),
        app_uri: "javascript:alert(1)".into(),
        redirect_uris: vec![],
        secret_hash: None,
        previous_secret: None,
        policy: Default::default(),
        source,
        created_at: 0,
    };
    let page = |source| {
        crate::pages::consent(&user, &consent_request(client(source)), "t", "q").into_string()
    };
    let unverified = page(ClientSource::MetadataDocument);
    assert!(
        unverified.contains("Unverified application"),
        "{unverified}"
    );
    assert!(unverified.contains("<code>https://app.example/client.json</code>"));
    assert!(unverified.contains("<strong>app.example:8443</strong>"));
    assert!(!unverified.contains("<b>Bold</b>") && unverified.contains("&lt;b&gt;Bold"));
    assert!(!unverified.contains("href=\"javascript:"), "{unverified}");
    for verified in [ClientSource::Config, ClientSource::Cli] {
        let html = page(verified);
        assert!(!html.contains("Unverified"), "{html}");
        assert!(html.contains("<strong>app.example:8443</strong>"));
    }
}

/// Signs in at `/login` from `from` (the peer address the server's socket would give) with a
/// fresh CSRF cookie; the answer and its page.
async fn sign_in_from(
    app: &axum::Router,
    from: Option<&str>,
    username: &str,
    password: &str,
) -> (axum::response::Response, String) {
    let (response, page) = send(app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("username", username),
        ("password", password),
    ]);
    let mut request = form("/login", &csrf_cookie, body);
    if let Some(from) = from {
        let address: std::net::SocketAddr = format!("{from}:40000").parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(address));
    }
    send(app, request).await
}

/// RFC 6819 §4.4.3.6: after 5 wrong passwords the form comes back with 429, `Retry-After` and
/// the wait in words, even for the right password; an unknown username gets the same answers.
#[tokio::test]
async fn repeated_wrong_passwords_get_429_with_the_wait_shown() {
    let app = app().await;
    for username in ["alice", "nobody"] {
        for _ in 0..5 {
            let (response, page) = sign_in_from(&app, None, username, "wrong").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
            assert!(page.contains("Invalid username or password."));
        }
        for password in ["wrong", "pw"] {
            let (response, page) = sign_in_from(&app, None, username, password).await;
            assert_eq!(
                response.status(),
                StatusCode::TOO_MANY_REQUESTS,
                "{username}"
            );
            assert_eq!(header(&response, header::RETRY_AFTER), "30");
            assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
            assert!(cookie(&response, "dw_session").is_none());
            assert!(
                page.contains("Too many failed sign-ins. Try again in 30 seconds."),
                "{page}"
            );
            assert!(page.contains("name=\"csrf\""), "the form is shown again");
        }
    }
}

/// The peer address reaches the sign-in (axum `ConnectInfo`): one address guessing many
/// usernames is locked out, another address still signs in.
#[tokio::test]
async fn failures_are_counted_per_client_address() {
    let app = app().await;
    for i in 0..doorward_core::throttle::ADDRESS.free {
        let (response, _) = sign_in_from(&app, Some("192.0.2.1"), &format!("u{i}"), "x").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (response, _) = sign_in_from(&app, Some("192.0.2.1"), "alice", "pw").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (response, _) = sign_in_from(&app, Some("192.0.2.2"), "alice", "pw").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
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
