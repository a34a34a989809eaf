//! Remote verifiers (feature `remote`): a resource server that checks the provider's tokens
//! over real loopback HTTP.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use doorward_core::memory::MemoryStore;
use doorward_core::passwords::HashCost;
use doorward_core::testing::{FixedClock, SeqRandom};
use doorward_core::{ClientSpec, EngineConfig, Grants};
use doorward_proto::{RedirectUri, Secret};

use crate::protect::ResourceServer;
use crate::Provider;

use super::support::embedded::*;
use super::support::*;

/// A resource server in another process: the provider on a real socket, the API asking it
/// by introspection (RFC 7662) or checking JWT access tokens against its JWKS (RFC 9068).
#[tokio::test]
async fn a_resource_server_elsewhere_checks_tokens_by_introspection_and_jwt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/auth");
    let now = 1_800_000_000;
    let provider = three_clients(&issuer, now, "https://api.example", Some(60)).await;
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
    let introspecting = api(ResourceServer::introspection(
        remote(
            doorward_client::ProviderConfig::oidc(&issuer, "api@clients")
                .with_secret("api@clients-secret"),
        ),
        issuer.clone(),
    ));
    let (status, body) = call(introspecting.clone(), opaque.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("read by "), "{body}");
    // The JWT client's tokens are for https://api.example, not this API (the issuer's
    // audience): introspection says they are active, the audience check refuses them.
    let (status, body) = call(introspecting.clone(), jwt.clone()).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "another audience, by introspection"
    );
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
    // A token that passed is kept (JWT_CACHE_SECONDS), never past its `exp`: on a clock
    // moved past it, the same token is refused.
    let moved = Arc::new(std::sync::atomic::AtomicI64::new(now));
    let clock = moved.clone();
    let clocked = api(ResourceServer::jwt(
        doorward_client::Client::builder(
            doorward_client::ProviderConfig::oidc(&issuer, "api@clients").with_secret("x"),
        )
        .clock(move || clock.load(std::sync::atomic::Ordering::SeqCst))
        .build()
        .unwrap(),
        "https://api.example",
    ));
    for _ in 0..2 {
        let (status, body) = call(clocked.clone(), jwt.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let exp = {
        use base64::Engine as _;
        let claims = jwt.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["exp"]
            .as_i64()
            .unwrap()
    };
    // The provider's access tokens live 60 s here: less than the cache keeps a token.
    assert!(exp - now < crate::protect::JWT_CACHE_SECONDS, "{exp}");
    // Past `exp` and the client's 60 s leeway (ProviderConfig::leeway).
    moved.store(exp + 61, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = call(clocked, jwt.clone()).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "expired, although it was checked before"
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

/// doorward-client's password grant (issue 19 item 9), against a provider that enables it for
/// the client: the token works; a wrong password is `invalid_grant`.
#[tokio::test]
async fn doorward_client_uses_the_password_grant_where_it_is_enabled() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/auth");
    let now = 1_800_000_000;
    let provider = three_clients(&issuer, now, "https://api.example", None).await;
    let served = provider.mount(Router::new());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let client = doorward_client::Client::builder(
        doorward_client::ProviderConfig::oidc(&issuer, "shop@clients")
            .with_secret("shop@clients-secret"),
    )
    .clock(move || now)
    .build()
    .unwrap();
    let token = client
        .insecure_password_grant("carol", "carol-pw", &["items:read"])
        .await
        .unwrap();
    assert_eq!(token.token_type(), "Bearer");
    let seen = reqwest_post(
        &format!("{issuer}/oauth/introspect"),
        &basic("shop@clients", "shop@clients-secret"),
        &format!("token={}", token.access_token()),
    )
    .await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["username"], "carol", "{seen}");
    match client
        .insecure_password_grant("carol", "wrong", &["items:read"])
        .await
    {
        Err(doorward_client::TokenError::Provider { error, .. }) => {
            assert_eq!(error.code, Some(doorward_proto::ErrorCode::InvalidGrant))
        }
        other => panic!("a wrong password: {other:?}"),
    }
}

/// A provider at `issuer` on a fixed clock at `now`, with the password grant and three
/// clients: `shop@clients` (opaque tokens), `jwt@clients` (JWT access tokens for
/// `jwt_audience`) and `api@clients` (a resource server), each with the secret `KEY-secret`;
/// access tokens live `access_lifetime` seconds (default: the engine's).
pub(super) async fn three_clients(
    issuer: &str,
    now: i64,
    jwt_audience: &str,
    access_lifetime: Option<i64>,
) -> Provider {
    use doorward_core::model::{AccessTokenFormat, ClientPolicy};
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
    let mut lifetimes = doorward_core::Lifetimes::default();
    if let Some(lifetime) = access_lifetime {
        lifetimes.access_token = lifetime;
    }
    Provider::builder(issuer.to_owned())
        .config(EngineConfig {
            issuer: issuer.to_owned(),
            hash_cost: HashCost::InsecureFastForTests,
            scopes: doorward_proto::ScopeSet::parse("base items:read").unwrap(),
            lifetimes,
            ..EngineConfig::default()
        })
        .grants(grants)
        .store(Arc::new(MemoryStore::default()))
        .clock_and_random(
            Arc::new(FixedClock::new(now)),
            Arc::new(SeqRandom::default()),
        )
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
                access_token_audience: Some(jwt_audience.into()),
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
        .unwrap()
}

/// A form POST over real HTTP, answered with JSON (or `null`).
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

/// Fuzzing (see `fuzz.rs`): JWT access tokens edited in their header, claims, signature or
/// shape, at a resource server that checks them against the provider's JWKS over HTTP. Never
/// a 5xx; an edited token is never accepted.
#[test]
fn fuzz_edited_jwt_access_tokens_at_a_remote_resource_server() {
    use doorward_core::model::{AccessTokenFormat, ClientPolicy};
    use proptest::prelude::*;

    use super::fuzz::{authorization, fuzz, request, runtime, STATUSES};

    let rt = runtime();
    let (checking, jwt) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/auth", listener.local_addr().unwrap());
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.insecure_password = true;
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
            .client(ClientSpec {
                key: "jwt@clients".into(),
                display_name: "JWT".into(),
                app_uri: "http://client.example".into(),
                redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
                secret: Secret::new("jwt-secret"),
                policy: ClientPolicy {
                    access_token_format: AccessTokenFormat::Jwt,
                    access_token_audience: Some("https://api.example".into()),
                    insecure_password: true,
                    ..ClientPolicy::default()
                },
            })
            .build()
            .await
            .unwrap();
        let served = provider.mount(Router::new());
        tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
        let response = reqwest_post(
            &format!("{issuer}/oauth/token"),
            &basic("jwt@clients", "jwt-secret"),
            "grant_type=password&username=carol&password=carol-pw&scope=items%3Aread",
        )
        .await;
        let jwt = response["access_token"].as_str().unwrap().to_owned();
        let client = doorward_client::Client::builder(
            doorward_client::ProviderConfig::oidc(&issuer, "api@clients").with_secret("x"),
        )
        .clock(|| 1_800_000_000)
        .build()
        .unwrap();
        let checking = Router::new()
            .route("/api/items", get(read))
            .with_state(ResourceServer::jwt(client, "https://api.example"));
        (checking, jwt)
    });
    let valid = format!("Bearer {jwt}");
    fuzz(
        "JWT access tokens at a remote resource server",
        1000,
        authorization(vec![jwt.clone()]),
        |auth| {
            let header = String::from_utf8_lossy(auth.as_deref().unwrap_or_default()).into_owned();
            let headers = [(axum::http::header::AUTHORIZATION, auth)];
            let Some(request) = request(axum::http::Method::GET, "/api/items", &headers, vec![])
            else {
                return Ok(());
            };
            rt.block_on(async {
                let (response, body) = send(&checking, request).await;
                let status = response.status();
                STATUSES.with(|s| *s.borrow_mut().entry(status.as_u16()).or_default() += 1);
                prop_assert!(status.as_u16() < 500, "{status}: {body}");
                if status == StatusCode::OK {
                    // Only the token as issued (the scheme's case and spaces may vary).
                    prop_assert!(
                        header.trim().eq_ignore_ascii_case(&valid)
                            || header.ends_with(&format!(" {jwt}")),
                        "accepted: {header}"
                    );
                }
                Ok(())
            })
        },
    );
}

/// Resource indicators (RFC 8707) at a resource server elsewhere with Protected Resource
/// Metadata (RFC 9728): it accepts a JWT access token whose `aud` names it (alone or in an
/// array) and an introspected token whose `aud` does, and refuses the others with 401.
#[tokio::test]
async fn a_remote_resource_server_checks_the_audience_of_resource_tokens() {
    use doorward_core::model::{AccessTokenFormat, ClientPolicy, GrantType};
    use doorward_proto::ResourceUri;

    use crate::protect::ProtectedResource;

    const MCP: &str = "https://mcp.example/mcp";
    const OTHER: &str = "https://other.example/";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let now = 1_800_000_000;
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.client_credentials = true;
    let machine = |key: &str, format: AccessTokenFormat, resource_server: bool| ClientSpec {
        key: key.into(),
        display_name: key.into(),
        app_uri: "http://client.example".into(),
        redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
        secret: Secret::new(format!("{key}-secret")),
        policy: ClientPolicy {
            access_token_format: format,
            grant_types: Some(vec![GrantType::ClientCredentials]),
            resource_server,
            ..ClientPolicy::default()
        },
    };
    let provider = Provider::builder(issuer.clone())
        .config(EngineConfig {
            issuer: issuer.clone(),
            hash_cost: HashCost::InsecureFastForTests,
            resources: vec![
                ResourceUri::parse(MCP).unwrap(),
                ResourceUri::parse(OTHER).unwrap(),
            ],
            ..EngineConfig::default()
        })
        .grants(grants)
        .store(Arc::new(MemoryStore::default()))
        .clock_and_random(
            Arc::new(FixedClock::new(now)),
            Arc::new(SeqRandom::default()),
        )
        .client(machine("jwt@clients", AccessTokenFormat::Jwt, false))
        .client(machine("opaque@clients", AccessTokenFormat::Opaque, true))
        .build()
        .await
        .unwrap();
    let served = provider.standalone();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });

    let token_for = |client: &'static str, resources: &'static [&'static str]| {
        let issuer = issuer.clone();
        async move {
            let mut body = "grant_type=client_credentials".to_owned();
            for r in resources {
                body.push_str(&format!("&{}", encode(&[("resource", r)])));
            }
            let response = reqwest_post(
                &format!("{issuer}/oauth/token"),
                &basic(client, &format!("{client}-secret")),
                &body,
            )
            .await;
            response["access_token"].as_str().unwrap().to_owned()
        }
    };
    let remote = |config: doorward_client::ProviderConfig| {
        doorward_client::Client::builder(config)
            .clock(move || now)
            .build()
            .unwrap()
    };
    let metadata = || {
        ProtectedResource::new(MCP)
            .unwrap()
            .authorization_server(&issuer)
    };
    let api = |resource: ResourceServer| {
        Router::new()
            .route("/mcp", get(read_any))
            .with_state(resource)
    };
    let status_of = |app: Router, token: String| async move {
        let (response, body) = send(
            &app,
            get_with("/mcp", &[("authorization", &format!("Bearer {token}"))]),
        )
        .await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status(), body, challenge)
    };

    let jwt_api = api(ResourceServer::jwt(
        remote(doorward_client::ProviderConfig::oidc(&issuer, "jwt@clients").with_secret("x")),
        MCP,
    )
    .with_metadata(metadata()));
    for resources in [&[MCP][..], &[OTHER, MCP][..]] {
        let (status, body, _) =
            status_of(jwt_api.clone(), token_for("jwt@clients", resources).await).await;
        assert_eq!(status, StatusCode::OK, "{resources:?}: {body}");
    }
    for resources in [&[OTHER][..], &[][..]] {
        let (status, body, challenge) =
            status_of(jwt_api.clone(), token_for("jwt@clients", resources).await).await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{resources:?}"
        );
        assert!(challenge.contains("resource_metadata="), "{challenge}");
    }

    let introspecting = api(ResourceServer::introspection(
        remote(
            doorward_client::ProviderConfig::oidc(&issuer, "opaque@clients")
                .with_secret("opaque@clients-secret"),
        ),
        "unused: with_metadata names the resource",
    )
    .with_metadata(metadata()));
    let (status, body, _) = status_of(
        introspecting.clone(),
        token_for("opaque@clients", &[MCP]).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for resources in [&[OTHER][..], &[][..]] {
        let (status, body, _) = status_of(
            introspecting.clone(),
            token_for("opaque@clients", resources).await,
        )
        .await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{resources:?}"
        );
    }
}

async fn read_any(auth: crate::protect::Authenticated) -> String {
    format!("read by {}", auth.grant.subject)
}
