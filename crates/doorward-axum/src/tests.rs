//! HTTP tests through the router (`oneshot`, no socket), over the in-memory store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use doorward_core::testing::{self, FixedClock};
use doorward_core::{ClientSpec, EngineConfig};
use doorward_proto::{RedirectUri, Secret};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{router, AppState};

const CALLBACK: &str = "http://localhost:8000/oauth/callback";
const AUTHORIZE: &str = "/oauth/authorize?response_type=code&client_id=python_client%40clients\
    &redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback&scope=base&state=a+b%26c";

async fn app() -> Router {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let engine = testing::engine(clock, EngineConfig::default()).await;
    engine
        .register_client(ClientSpec {
            key: "python_client@clients".into(),
            display_name: "Python <Client>".into(),
            app_uri: "http://localhost:8000".into(),
            redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
            secret: Secret::new("dev:sec ret"),
            policy: Default::default(),
        })
        .await
        .unwrap();
    engine
        .seed_user(&testing::user("alice", "Alice", "pw"))
        .await
        .unwrap();
    router(AppState {
        engine: Arc::new(engine),
        secure_cookies: false,
        mount: "".into(),
        authenticator: None,
    })
}

async fn send(app: &Router, request: Request<Body>) -> (Response, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn header(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn token_request(content_type: &str, auth: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/oauth/token").header(header::CONTENT_TYPE, content_type);
    if let Some(auth) = auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    builder.body(body.into()).unwrap()
}

fn error_of(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["error"].as_str().unwrap().to_owned()
}

/// Extracts `name="…" value="…"` from a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

fn cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn form(uri: &str, cookies: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body))
        .unwrap()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (n, v) in pairs {
        s.append_pair(n, v);
    }
    s.finish()
}

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
async fn the_token_endpoint_answers_bad_input_with_rfc_errors() {
    let app = app().await;
    let auth = basic("python_client@clients", "dev:sec ret");
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            token_request("text/plain", Some(&auth), "grant_type=x"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/json", Some(&auth), "{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/json", Some(&auth), "[1]"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/json",
                Some(&auth),
                r#"{"grant_type":"authorization_code","code":1}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/json",
                Some(&auth),
                r#"{"code":"a","code":"b","grant_type":"authorization_code"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded; charset=UTF-8",
                Some(&auth),
                "grant_type=authorization_code&code=a&code=b",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/x-www-form-urlencoded", Some(&auth), "x=1"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=password",
            ),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=authorization_code&code=nope",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&basic("python_client@clients", "wrong")),
                "grant_type=authorization_code&code=x",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some("Basic !!!"),
                "grant_type=authorization_code",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some("Bearer abc"),
                "grant_type=authorization_code",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                None,
                "grant_type=authorization_code&code=x",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=authorization_code&client_secret=x",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                vec![b'a'; 70 * 1024],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
    ];
    for (request, status, error) in cases {
        let (response, body) = send(&app, request).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_of(&body), error, "{body}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
        if status == StatusCode::UNAUTHORIZED {
            assert!(header(&response, header::WWW_AUTHENTICATE).starts_with("Basic"));
        }
    }
    let (response, _) = send(
        &app,
        Request::get("/oauth/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
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

    let (response, _) = send(
        &app,
        Request::get("/api/v1/users/not-a-uuid")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// The library: a provider mounted under /auth in an application's router, the application
// deciding who the user is, and its API protected by bearer tokens.

mod embedded {
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use doorward_core::memory::MemoryStore;
    use doorward_core::passwords::HashCost;
    use doorward_core::testing::{FixedClock, SeqRandom};
    use doorward_core::{ClientSpec, EngineConfig, Grants};
    use doorward_proto::{RedirectUri, Secret};

    use super::{basic, cookie, encode, error_of, form, header, hidden, send};
    use crate::protect::{Authenticated, ResourceServer, Scopes};
    use crate::{AppUser, Authentication, Authenticator, Decision, LoginRequest, Provider};

    const ISSUER: &str = "http://app.example/auth";
    const CALLBACK: &str = "http://client.example/cb";

    /// Signs in whoever sends `x-app-user`; sends everyone else to the app's login page;
    /// refuses `mallory`.
    struct HeaderAuthenticator;

    impl Authenticator for HeaderAuthenticator {
        fn authenticate<'a>(
            &'a self,
            request: LoginRequest<'a>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Authentication> + Send + 'a>>
        {
            Box::pin(async move {
                match request
                    .headers
                    .get("x-app-user")
                    .map(|v| v.to_str().unwrap())
                {
                    Some("mallory") => Authentication::Deny,
                    Some(id) => Authentication::User(app_user(id)),
                    None => Authentication::Redirect(format!(
                        "/app-login?grant={}",
                        form_urlencoded::byte_serialize(request.grant_id.as_bytes())
                            .collect::<String>()
                    )),
                }
            })
        }
    }

    fn app_user(id: &str) -> AppUser {
        AppUser {
            id: id.to_owned(),
            display_name: format!("App user {id}"),
            email: Some(format!("{id}@app.example")),
            email_verified: true,
        }
    }

    struct ReadItems;
    impl Scopes for ReadItems {
        const SCOPES: &'static [&'static str] = &["items:read"];
    }
    struct WriteItems;
    impl Scopes for WriteItems {
        const SCOPES: &'static [&'static str] = &["items:write"];
    }

    async fn read(auth: Authenticated<ReadItems>) -> String {
        format!("read by {}", auth.grant.subject)
    }

    async fn write(auth: Authenticated<WriteItems>) -> String {
        format!("written by {}", auth.grant.subject)
    }

    /// A provider at /auth with the shop client (`policy`) and the header authenticator.
    fn builder(
        grants: Grants,
        clock: Arc<FixedClock>,
        policy: doorward_core::model::ClientPolicy,
    ) -> crate::ProviderBuilder {
        let scopes = doorward_proto::ScopeSet::parse("base openid items:read items:write").unwrap();
        Provider::builder(ISSUER)
            .config(EngineConfig {
                issuer: ISSUER.into(),
                hash_cost: HashCost::InsecureFastForTests,
                scopes,
                ..EngineConfig::default()
            })
            .grants(grants)
            .store(Arc::new(MemoryStore::default()))
            .clock_and_random(clock, Arc::new(SeqRandom::default()))
            .authenticator(HeaderAuthenticator)
            .client(ClientSpec {
                key: "shop@clients".into(),
                display_name: "Shop".into(),
                app_uri: "http://client.example".into(),
                redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
                secret: Secret::new("shop-secret"),
                policy,
            })
    }

    async fn provider(grants: Grants, clock: Arc<FixedClock>) -> Provider {
        builder(grants, clock, Default::default())
            .build()
            .await
            .unwrap()
    }

    fn application(provider: &Provider) -> Router {
        let api = Router::new()
            .route("/api/items", get(read).post(write))
            .route(
                "/api/layered",
                get(|| async { "through the layer" })
                    .layer(provider.resource_server(0).require(&["items:write"])),
            )
            .with_state(provider.resource_server(0));
        provider.mount(api)
    }

    fn authorize(scope: &str) -> String {
        format!(
            "/auth/oauth/authorize?{}",
            encode(&[
                ("response_type", "code"),
                ("client_id", "shop@clients"),
                ("redirect_uri", CALLBACK),
                ("scope", scope),
                ("state", "s1"),
            ])
        )
    }

    fn code_of(location: &str) -> String {
        assert!(location.starts_with(CALLBACK), "{location}");
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    async fn redeem(app: &Router, code: &str) -> serde_json::Value {
        let request = Request::post("/auth/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
            .body(axum::body::Body::from(encode(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
            ])))
            .unwrap();
        let (response, body) = send(app, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<axum::body::Body> {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(axum::body::Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn the_application_signs_the_user_in_and_its_api_checks_scopes() {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let provider = provider(Grants::CODE_AND_REFRESH, clock.clone()).await;
        let app = application(&provider);

        // The authenticator knows the user: a session at the provider, back to the request.
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("x-app-user", "u-42")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(header(&response, header::LOCATION), authorize("items:read"));
        let session = cookie(&response, "dw_session").expect("a session cookie");

        // Doorward's consent page, with every link under /auth.
        let (response, page) = send(
            &app,
            get_with(
                &authorize("items:read"),
                &[("cookie", &session), ("x-app-user", "u-42")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert!(page.contains("action=\"/auth/oauth/authorize\""), "{page}");
        assert!(
            page.contains("href=\"/auth/assets/doorward.css\""),
            "{page}"
        );
        let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
        let cookies = format!("{session}; {csrf_cookie}");
        let body = encode(&[
            ("csrf", &hidden(&page, "csrf")),
            ("request", &hidden(&page, "request")),
            ("decision", "approve"),
        ]);
        let (response, _) = send(&app, form("/auth/oauth/authorize", &cookies, body)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let tokens = redeem(&app, &code_of(header(&response, header::LOCATION))).await;
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());

        // Discovery under the mount path names the mounted endpoints.
        let (_, metadata) = send(
            &app,
            get_with("/auth/.well-known/openid-configuration", &[]),
        )
        .await;
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
        assert_eq!(metadata["issuer"], ISSUER);
        assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/oauth/token"));

        // The API: the right scope passes, the other is 403 insufficient_scope with the scope.
        let (response, body) =
            send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let subject = body.trim_start_matches("read by ").to_owned();
        assert_eq!(subject.len(), 36, "the user's UUID: {body}");
        let (response, body) = send(
            &app,
            Request::post("/api/items")
                .header("authorization", &bearer)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
        assert_eq!(error_of(&body), "insufficient_scope");
        let challenge = header(&response, header::WWW_AUTHENTICATE);
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("scope=\"items:write\""),
            "{challenge}"
        );
        let (response, _) = send(
            &app,
            get_with("/api/layered", &[("authorization", &bearer)]),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "the layer checks scopes too"
        );

        // No token: 401 with a bare challenge; a bad one: invalid_token; a malformed header: 400.
        let (response, _) = send(&app, get_with("/api/items", &[])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, header::WWW_AUTHENTICATE),
            "Bearer realm=\"doorward\""
        );
        let (response, body) = send(
            &app,
            get_with("/api/items", &[("authorization", "Bearer nope")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&body), "invalid_token");
        let (response, body) = send(
            &app,
            get_with("/api/items", &[("authorization", "Bearer a b")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body), "invalid_request");

        // Expired: 401 invalid_token.
        clock.advance(7200 + 1);
        let (response, body) =
            send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_of(&body), "invalid_token");
    }

    #[tokio::test]
    async fn the_applications_login_page_resumes_the_flow() {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let provider = provider(Grants::CODE_AND_REFRESH, clock.clone()).await;
        let app = application(&provider);

        // No user known: the authenticator sends the browser to the app's page with a grant id.
        let (response, _) = send(&app, get_with(&authorize("items:read"), &[])).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let login = header(&response, header::LOCATION).to_owned();
        let grant = url::Url::parse(&format!("http://app.example{login}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "grant")
            .unwrap()
            .1
            .into_owned();

        // The app asked for consent itself: straight back to the client with a code.
        let response = provider
            .resume(
                &grant,
                Decision::Allow {
                    user: app_user("u-7"),
                    consented: true,
                },
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = header(&response, header::LOCATION).to_owned();
        assert!(location.contains("state=s1"), "{location}");
        let tokens = redeem(&app, &code_of(&location)).await;
        assert_eq!(tokens["token_type"], "Bearer");

        // Without the app's consent, Doorward's consent page follows (303 to the request).
        let response = provider
            .resume(
                &grant,
                Decision::Allow {
                    user: app_user("u-8"),
                    consented: false,
                },
            )
            .await;
        assert_eq!(header(&response, header::LOCATION), authorize("items:read"));
        assert!(cookie(&response, "dw_session").is_some());

        // Denied: access_denied to the client, with its state.
        let response = provider.resume(&grant, Decision::Deny).await;
        let location = header(&response, header::LOCATION);
        assert!(
            location.starts_with(CALLBACK)
                && location.contains("error=access_denied")
                && location.contains("state=s1"),
            "{location}"
        );

        // A forged or expired grant id: a page, never a redirect.
        let (forged, _) = grant.rsplit_once('.').unwrap();
        let response = provider
            .resume(
                &format!("{forged}.AAAA"),
                Decision::Allow {
                    user: app_user("u-9"),
                    consented: true,
                },
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(header::LOCATION).is_none());
        clock.advance(601);
        let response = provider
            .resume(
                &grant,
                Decision::Allow {
                    user: app_user("u-9"),
                    consented: true,
                },
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        // The authenticator refuses: access_denied.
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("x-app-user", "mallory")]),
        )
        .await;
        let location = header(&response, header::LOCATION);
        assert!(location.contains("error=access_denied"), "{location}");
    }

    #[tokio::test]
    async fn the_application_is_asked_every_time_and_its_answer_decides() {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let provider = provider(Grants::CODE_AND_REFRESH, clock).await;
        let app = application(&provider);
        // u-1 signs in through the application: a provider session for u-1.
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("x-app-user", "u-1")]),
        )
        .await;
        let first = cookie(&response, "dw_session").unwrap();
        // The application now says u-2 (another user of the same browser): the provider session
        // of u-1 is not used; u-2 gets one of their own.
        let (response, _) = send(
            &app,
            get_with(
                &authorize("items:read"),
                &[("cookie", &first), ("x-app-user", "u-2")],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let second = cookie(&response, "dw_session").expect("a new session for u-2");
        assert_ne!(first, second);
        let (_, page) = send(
            &app,
            get_with(
                &authorize("items:read"),
                &[("cookie", &second), ("x-app-user", "u-2")],
            ),
        )
        .await;
        assert!(
            page.contains("App user u-2"),
            "the consent page is u-2's: {page}"
        );
        // Signed out at the application: its login page, whatever the provider session.
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("cookie", &second)]),
        )
        .await;
        assert!(header(&response, header::LOCATION).starts_with("/app-login?grant="));
        // prompt=none and no user at the application: login_required, no page.
        let (response, _) = send(
            &app,
            get_with(
                &format!("{}&prompt=none", authorize("items:read")),
                &[("cookie", &second)],
            ),
        )
        .await;
        assert!(header(&response, header::LOCATION).contains("error=login_required"));

        // What a grant id asks for, for the application's own consent page.
        let (response, _) = send(&app, get_with(&authorize("items:read"), &[])).await;
        let location = header(&response, header::LOCATION).to_owned();
        let grant = url::Url::parse(&format!("http://app.example{location}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "grant")
            .unwrap()
            .1
            .into_owned();
        let pending = provider.pending(&grant).await.unwrap();
        assert_eq!(
            (pending.client_id.as_str(), pending.client_name.as_str()),
            ("shop@clients", "Shop")
        );
        assert_eq!(pending.scopes, vec!["items:read".to_owned()]);
        assert!(provider.pending("1.bm9wZQ.AAAA").await.is_none());

        // RFC 8414 §3.1: the metadata at the root, with the issuer's path after the name.
        let (response, body) = send(
            &app,
            get_with("/.well-known/oauth-authorization-server/auth", &[]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        assert!(body.contains(&format!("\"issuer\":\"{ISSUER}\"")), "{body}");
    }

    #[tokio::test]
    async fn an_application_user_never_takes_over_a_password_user() {
        let (_, app) = legacy_provider(Grants::CODE_AND_REFRESH).await;
        // carol signs in with a password (configuration); the application names a user carol.
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("x-app-user", "carol")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(cookie(&response, "dw_session").is_none());
    }

    #[tokio::test]
    async fn grant_types_are_off_unless_named() {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let provider = provider(Grants::NONE, clock).await;
        let app = application(&provider);
        let (response, _) = send(
            &app,
            get_with(&authorize("items:read"), &[("x-app-user", "u-1")]),
        )
        .await;
        let location = header(&response, header::LOCATION);
        assert!(
            location.contains("error=unsupported_response_type"),
            "{location}"
        );
        let request = Request::post("/auth/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
            .body(axum::body::Body::from(
                "grant_type=refresh_token&refresh_token=x",
            ))
            .unwrap();
        let (response, body) = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body), "unsupported_grant_type");
        let (_, metadata) = send(
            &app,
            get_with("/auth/.well-known/openid-configuration", &[]),
        )
        .await;
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
        assert_eq!(metadata["grant_types_supported"], serde_json::json!([]));
    }

    fn password_request(username: &str, password: &str) -> Request<axum::body::Body> {
        Request::post("/auth/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
            .body(axum::body::Body::from(encode(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", "items:read"),
            ])))
            .unwrap()
    }

    async fn legacy_provider(grants: Grants) -> (Provider, Router) {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let policy = doorward_core::model::ClientPolicy {
            insecure_implicit: true,
            insecure_password: true,
            ..Default::default()
        };
        let provider = builder(grants, clock, policy)
            .user(doorward_core::testing::user("carol", "Carol", "carol-pw"))
            .build()
            .await
            .unwrap();
        let app = application(&provider);
        (provider, app)
    }

    #[tokio::test]
    async fn legacy_grants_are_off_by_default() {
        let (_, app) = legacy_provider(Grants::CODE_AND_REFRESH).await;
        let (response, body) = send(&app, password_request("carol", "carol-pw")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body), "unsupported_grant_type");
        let implicit = authorize("items:read").replace("response_type=code", "response_type=token");
        let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-1")])).await;
        let location = header(&response, header::LOCATION);
        assert!(
            location.starts_with(&format!("{CALLBACK}?error=unsupported_response_type")),
            "{location}"
        );
    }

    #[tokio::test]
    async fn legacy_grants_need_the_clients_switch_too() {
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.insecure_password = true;
        grants.insecure_implicit = true;
        let (provider, app) = legacy_provider(grants).await;
        provider
            .engine()
            .register_client(ClientSpec {
                key: "plain@clients".into(),
                display_name: "Plain".into(),
                app_uri: "http://client.example".into(),
                redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
                secret: Secret::new("plain-secret"),
                policy: Default::default(),
            })
            .await
            .unwrap();
        let mut request = password_request("carol", "carol-pw");
        request.headers_mut().insert(
            header::AUTHORIZATION,
            basic("plain@clients", "plain-secret").parse().unwrap(),
        );
        let (_, body) = send(&app, request).await;
        assert_eq!(error_of(&body), "unsupported_grant_type");
        let implicit = authorize("items:read")
            .replace("response_type=code", "response_type=token")
            .replace("shop%40clients", "plain%40clients");
        let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-1")])).await;
        assert!(header(&response, header::LOCATION).contains("?error=unsupported_response_type"));
    }

    #[tokio::test]
    async fn the_insecure_password_grant_works_when_switched_on() {
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.insecure_password = true;
        let (_, app) = legacy_provider(grants).await;
        let (response, body) = send(&app, password_request("carol", "carol-pw")).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
        let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(tokens["refresh_token"].is_string());
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
        let (response, body) =
            send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let (response, body) = send(&app, password_request("carol", "wrong")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&body), "invalid_grant");
        let (_, body) = send(&app, password_request("nobody", "carol-pw")).await;
        assert_eq!(error_of(&body), "invalid_grant");
        // Brute force (RFC 6749 §4.3.2): after 5 failures, even the right password is refused.
        for _ in 0..4 {
            send(&app, password_request("carol", "wrong")).await;
        }
        let (_, body) = send(&app, password_request("carol", "carol-pw")).await;
        assert!(body.contains("too many failed attempts"), "{body}");
        // Client authentication is still required.
        let mut anonymous = password_request("carol", "carol-pw");
        anonymous.headers_mut().remove(header::AUTHORIZATION);
        let (response, body) = send(&app, anonymous).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
    }

    #[tokio::test]
    async fn the_insecure_implicit_grant_answers_in_the_fragment() {
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.insecure_implicit = true;
        let (_, app) = legacy_provider(grants).await;
        let implicit = authorize("items:read").replace("response_type=code", "response_type=token");
        let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-5")])).await;
        let session = cookie(&response, "dw_session").unwrap();
        let (response, page) = send(
            &app,
            get_with(&implicit, &[("cookie", &session), ("x-app-user", "u-5")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let cookies = format!("{session}; {}", cookie(&response, "dw_csrf").unwrap());
        let body = encode(&[
            ("csrf", &hidden(&page, "csrf")),
            ("request", &hidden(&page, "request")),
            ("decision", "approve"),
        ]);
        let (response, _) = send(&app, form("/auth/oauth/authorize", &cookies, body)).await;
        let location = header(&response, header::LOCATION).to_owned();
        let (base, fragment) = location.split_once('#').expect("a fragment");
        assert_eq!(base, CALLBACK, "nothing in the query");
        let params: std::collections::HashMap<String, String> =
            form_urlencoded::parse(fragment.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(params["token_type"], "Bearer");
        assert_eq!(params["state"], "s1");
        assert_eq!(params["iss"], ISSUER);
        assert!(
            !params.contains_key("refresh_token"),
            "never a refresh token (RFC 6749 §4.2.2)"
        );
        let bearer = format!("Bearer {}", params["access_token"]);
        let (response, body) =
            send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        // Errors of an implicit request go in the fragment too.
        let bad = implicit.replace("scope=items%3Aread", "scope=nope");
        let (response, _) = send(
            &app,
            get_with(&bad, &[("cookie", &session), ("x-app-user", "u-5")]),
        )
        .await;
        let location = header(&response, header::LOCATION);
        assert!(
            location.starts_with(&format!("{CALLBACK}#error=invalid_scope")),
            "{location}"
        );
    }

    /// A resource server in another process: the provider on a real socket, the API asking it
    /// by introspection (RFC 7662) or checking JWT access tokens against its JWKS (RFC 9068).
    #[cfg(feature = "remote")]
    #[tokio::test]
    async fn a_resource_server_elsewhere_checks_tokens_by_introspection_and_jwt() {
        use doorward_core::model::{AccessTokenFormat, ClientPolicy};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{origin}/auth");
        let now = 1_800_000_000;
        let clock = Arc::new(FixedClock::new(now));
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.insecure_password = true;
        let client = |key: &str, policy: ClientPolicy| ClientSpec {
            key: key.into(),
            display_name: key.into(),
            app_uri: "http://client.example".into(),
            redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
            secret: Secret::new(format!("{key}-secret")),
            policy,
        };
        let provider = Provider::builder(issuer.clone())
            .config(EngineConfig {
                issuer: issuer.clone(),
                hash_cost: HashCost::InsecureFastForTests,
                scopes: doorward_proto::ScopeSet::parse("base items:read").unwrap(),
                ..EngineConfig::default()
            })
            .grants(grants)
            .store(Arc::new(MemoryStore::default()))
            .clock_and_random(clock, Arc::new(SeqRandom::default()))
            .user(doorward_core::testing::user("carol", "Carol", "carol-pw"))
            .client(client(
                "shop@clients",
                ClientPolicy {
                    insecure_password: true,
                    ..ClientPolicy::default()
                },
            ))
            .client(client(
                "jwt@clients",
                ClientPolicy {
                    access_token_format: AccessTokenFormat::Jwt,
                    access_token_audience: Some("https://api.example".into()),
                    insecure_password: true,
                    ..ClientPolicy::default()
                },
            ))
            .client(client(
                "api@clients",
                ClientPolicy {
                    resource_server: true,
                    ..ClientPolicy::default()
                },
            ))
            .build()
            .await
            .unwrap();
        let served = provider.mount(Router::new());
        tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });

        let token_for = |client: &'static str| {
            let origin = origin.clone();
            async move {
                let response = reqwest_post(
                    &format!("{origin}/auth/oauth/token"),
                    &basic(client, &format!("{client}-secret")),
                    "grant_type=password&username=carol&password=carol-pw&scope=items%3Aread",
                )
                .await;
                response["access_token"].as_str().unwrap().to_owned()
            }
        };
        let opaque = token_for("shop@clients").await;
        let jwt = token_for("jwt@clients").await;
        assert_eq!(jwt.split('.').count(), 3, "a JWT access token");

        let remote = |config: doorward_client::ProviderConfig| {
            doorward_client::Client::builder(config)
                .clock(move || now)
                .build()
                .unwrap()
        };
        let api = |resource: ResourceServer| {
            Router::new()
                .route("/api/items", get(read))
                .with_state(resource)
        };
        let call = |app: Router, token: String| async move {
            let (response, body) = send(
                &app,
                get_with(
                    "/api/items",
                    &[("authorization", &format!("Bearer {token}"))],
                ),
            )
            .await;
            (response.status(), body)
        };

        // Introspection with the resource server's own credentials.
        let introspecting = api(ResourceServer::introspection(remote(
            doorward_client::ProviderConfig::oidc(&issuer, "api@clients")
                .with_secret("api@clients-secret"),
        )));
        let (status, body) = call(introspecting.clone(), opaque.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.starts_with("read by "), "{body}");
        let (status, body) = call(introspecting.clone(), "unknown".into()).await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );

        // JWT access tokens against the provider's key set, for the audience of this API.
        let checking = api(ResourceServer::jwt(
            remote(doorward_client::ProviderConfig::oidc(&issuer, "api@clients").with_secret("x")),
            "https://api.example",
        ));
        let (status, body) = call(checking.clone(), jwt.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(checking.clone(), opaque.clone()).await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        let elsewhere = api(ResourceServer::jwt(
            remote(doorward_client::ProviderConfig::oidc(&issuer, "api@clients").with_secret("x")),
            "https://other-api.example",
        ));
        let (status, body) = call(elsewhere, jwt.clone()).await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "another audience"
        );

        // Revoked at the provider: introspection sees it at once.
        reqwest_post(
            &format!("{origin}/auth/oauth/revoke"),
            &basic("shop@clients", "shop@clients-secret"),
            &format!("token={opaque}"),
        )
        .await;
        let (status, _) = call(introspecting, opaque).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    /// A form POST over real HTTP, answered with JSON (or `null`).
    #[cfg(feature = "remote")]
    async fn reqwest_post(url: &str, authorization: &str, body: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(url)
            .header("authorization", authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
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
}
