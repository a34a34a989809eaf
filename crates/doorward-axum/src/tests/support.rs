//! What the tests share: requests sent through the router with `oneshot` (no socket), and what
//! is read back from pages, cookies and JSON; then the two servers under test: `standalone`,
//! the whole router at the root with Doorward's own sign-in pages, and `embedded`, a
//! `Provider` mounted in an application that decides who the user is.

use axum::body::Body;
use axum::http::{header, Request};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(super) async fn send(app: &Router, request: Request<Body>) -> (Response, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub(super) fn header(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

pub(super) fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub(super) fn error_of(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["error"].as_str().unwrap().to_owned()
}

/// Extracts `name="…" value="…"` from a page.
pub(super) fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

pub(super) fn cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

pub(super) fn form(uri: &str, cookies: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body))
        .unwrap()
}

pub(super) fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (n, v) in pairs {
        s.append_pair(n, v);
    }
    s.finish()
}

/// The standalone server: `router` at the root over `AppState`, with the Python client and
/// alice (password `pw`).
pub(super) mod standalone {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{header, Request};
    use axum::Router;
    use doorward_core::testing::{self, FixedClock};
    use doorward_core::EngineConfig;

    use crate::{router, AppState};

    pub(in crate::tests) const CALLBACK: &str = "http://localhost:8000/oauth/callback";
    pub(in crate::tests) const AUTHORIZE: &str =
        "/oauth/authorize?response_type=code&client_id=python_client%40clients\
        &redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback&scope=base&state=a+b%26c";

    pub(in crate::tests) async fn app() -> Router {
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let engine = testing::engine(clock, EngineConfig::default()).await;
        engine
            .register_client(testing::client(
                "python_client@clients",
                "Python <Client>",
                CALLBACK,
                "dev:sec ret",
            ))
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

    pub(in crate::tests) fn token_request(
        content_type: &str,
        auth: Option<&str>,
        body: impl Into<Body>,
    ) -> Request<Body> {
        let mut builder = Request::post("/oauth/token").header(header::CONTENT_TYPE, content_type);
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(body.into()).unwrap()
    }
}

/// The library: a provider mounted under /auth in an application's router, the application
/// deciding who the user is, and its API protected by bearer tokens.
pub(super) mod embedded {
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use doorward_core::memory::MemoryStore;
    use doorward_core::passwords::HashCost;
    use doorward_core::testing::{FixedClock, SeqRandom};
    use doorward_core::{ClientSpec, EngineConfig, Grants};
    use doorward_proto::{RedirectUri, Secret};

    use super::{basic, encode, header, send};
    use crate::protect::{Authenticated, Scopes};
    use crate::{AppUser, Authentication, Authenticator, LoginRequest, Provider};

    pub(in crate::tests) const ISSUER: &str = "http://app.example/auth";
    pub(in crate::tests) const CALLBACK: &str = "http://client.example/cb";

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

    pub(in crate::tests) fn app_user(id: &str) -> AppUser {
        AppUser {
            id: id.to_owned(),
            display_name: format!("App user {id}"),
            email: Some(format!("{id}@app.example")),
            email_verified: true,
        }
    }

    pub(in crate::tests) struct ReadItems;
    impl Scopes for ReadItems {
        const SCOPES: &'static [&'static str] = &["items:read"];
    }

    struct WriteItems;
    impl Scopes for WriteItems {
        const SCOPES: &'static [&'static str] = &["items:write"];
    }

    pub(in crate::tests) async fn read(auth: Authenticated<ReadItems>) -> String {
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

    /// [`provider`] with the shop client under `policy`.
    pub(in crate::tests) async fn provider_with_policy(
        grants: Grants,
        clock: Arc<FixedClock>,
        policy: doorward_core::model::ClientPolicy,
    ) -> Provider {
        builder(grants, clock, policy).build().await.unwrap()
    }

    pub(in crate::tests) async fn provider(grants: Grants, clock: Arc<FixedClock>) -> Provider {
        builder(grants, clock, Default::default())
            .build()
            .await
            .unwrap()
    }

    pub(in crate::tests) fn application(provider: &Provider) -> Router {
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

    pub(in crate::tests) fn authorize(scope: &str) -> String {
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

    pub(in crate::tests) fn code_of(location: &str) -> String {
        assert!(location.starts_with(CALLBACK), "{location}");
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    pub(in crate::tests) async fn redeem(app: &Router, code: &str) -> serde_json::Value {
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

    pub(in crate::tests) fn get_with(
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Request<axum::body::Body> {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(axum::body::Body::empty()).unwrap()
    }

    pub(in crate::tests) fn password_request(
        username: &str,
        password: &str,
    ) -> Request<axum::body::Body> {
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

    pub(in crate::tests) async fn legacy_provider(grants: Grants) -> (Provider, Router) {
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
}
