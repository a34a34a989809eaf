//! The cost of one bearer check at a resource server in this process (issue 18's in-process
//! benchmark): `ResourceServer::jwt` (RFC 9068 JWT access tokens against the provider's key
//! set, which the client caches) and `ResourceServer::local` (opaque tokens of a provider in
//! the same process, over the in-memory store), each cold (every token checked once: a
//! signature, or a store read) and cached (one token checked again and again).
//!
//! ```sh
//! cargo build --release -p doorward-axum --features remote --example resource_check_cost
//! taskset -c 1 target/release/examples/resource_check_cost [CHECKS]
//! ```
//!
//! One thread (a current-thread runtime), the provider on loopback in the same runtime for
//! minting tokens and serving its key set; nothing is timed but the checks.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::Router;
use doorward_axum::protect::ResourceServer;
use doorward_axum::{ClientSpec, EngineConfig, Grants, Provider, RedirectUri, ScopeSet, Secret};
use doorward_core::memory::MemoryStore;
use doorward_core::model::{AccessTokenFormat, ClientPolicy, GrantType};

const API: &str = "https://api.example";

fn client(key: &str, format: AccessTokenFormat) -> ClientSpec {
    ClientSpec {
        key: key.into(),
        display_name: key.into(),
        app_uri: "http://client.example".into(),
        redirect_uris: vec![RedirectUri::parse("http://client.example/cb").expect("a URI")],
        secret: Secret::new(format!("{key}-secret")),
        policy: ClientPolicy {
            access_token_format: format,
            access_token_audience: Some(API.into()),
            grant_types: Some(vec![GrantType::ClientCredentials]),
            ..ClientPolicy::default()
        },
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    headers.insert(header::AUTHORIZATION, value);
    headers
}

/// Checks each of `tokens` (cycling) `checks` times in all; prints µs per check and checks/s.
async fn measure(label: &str, resource: &ResourceServer, tokens: &[HeaderMap], checks: usize) {
    let start = Instant::now();
    for i in 0..checks {
        let grant = resource.authorize(&tokens[i % tokens.len()], &[]).await;
        assert!(grant.is_ok(), "{label}: {grant:?}");
    }
    let per = start.elapsed().as_secs_f64() / checks as f64;
    println!(
        "{label:<38} {checks:>8}  {:>9.2}  {:>12.0}",
        per * 1e6,
        1.0 / per
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checks: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.client_credentials = true;
    let provider = Provider::builder(issuer.clone())
        .config(EngineConfig {
            issuer: issuer.clone(),
            scopes: ScopeSet::parse("base")?,
            ..EngineConfig::default()
        })
        .grants(grants)
        .store(Arc::new(MemoryStore::default()))
        .client(client("jwt@clients", AccessTokenFormat::Jwt))
        .client(client("opaque@clients", AccessTokenFormat::Opaque))
        .build()
        .await?;
    let engine = provider.engine().clone();
    let app = provider.mount(Router::new());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mint = |key: &'static str, n: usize| {
        let issuer = issuer.clone();
        async move {
            let config = doorward_client::ProviderConfig::oidc(issuer, key)
                .with_secret(format!("{key}-secret"));
            let client = doorward_client::Client::builder(config).build()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(bearer(
                    client.client_credentials(&["base"]).await?.access_token(),
                ));
            }
            Ok::<_, Box<dyn std::error::Error>>(out)
        }
    };
    let cold = (checks / 20).clamp(100, 5_000);
    let jwts = mint("jwt@clients", cold).await?;
    let opaque = mint("opaque@clients", cold).await?;

    let remote = doorward_client::Client::builder(
        doorward_client::ProviderConfig::oidc(issuer.clone(), "api@clients").with_secret("x"),
    )
    .build()?;
    println!(
        "check                                    checks  µs/check      checks/s  (one thread)"
    );
    // The key set is fetched by the first check; one token is left out of the cold runs
    // for it.
    let jwt_server = ResourceServer::jwt(remote, API);
    jwt_server.authorize(&jwts[0], &[]).await?;
    measure(
        "jwt, each token once (signature)",
        &jwt_server,
        &jwts[1..],
        cold - 1,
    )
    .await;
    measure(
        "jwt, one token again (cached)",
        &jwt_server,
        &jwts[..1],
        checks,
    )
    .await;
    let local_cold = ResourceServer::local(engine.clone(), 0).with_audience(API);
    measure(
        "local opaque, no cache (store read)",
        &local_cold,
        &opaque,
        cold,
    )
    .await;
    let local = ResourceServer::local(engine, 5).with_audience(API);
    measure(
        "local opaque, one token again (cached)",
        &local,
        &opaque[..1],
        checks,
    )
    .await;
    Ok(())
}
