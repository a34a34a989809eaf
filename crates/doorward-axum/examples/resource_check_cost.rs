//! The cost of one bearer check at a resource server in this process (issue 18's in-process
//! benchmark): `ResourceServer::jwt` (RFC 9068 JWT access tokens against the provider's key
//! set, which the client caches) and `ResourceServer::local` (opaque tokens of a provider in
//! the same process, over the in-memory store), each cold (every token checked once: a
//! signature, or a store read) and cached (one token checked again and again); then a
//! DPoP-bound token (RFC 9449), cached, with a new proof at each check: the cost of the
//! proof (an ES256 signature, `htm`/`htu`/`ath`, its `jti` recorded: in memory for `jwt`, in
//! the store for `local`).
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

/// Checks each request of `proven` once, with its method and URI (DPoP); prints as `measure`.
async fn measure_proven(label: &str, resource: &ResourceServer, proven: &[HeaderMap]) {
    let method = axum::http::Method::GET;
    let uri: axum::http::Uri = "/items".parse().expect("a URI");
    let start = Instant::now();
    for headers in proven {
        let grant = resource
            .authorize_request(&method, &uri, headers, &[])
            .await;
        assert!(grant.is_ok(), "{label}: {grant:?}");
    }
    let per = start.elapsed().as_secs_f64() / proven.len() as f64;
    println!(
        "{label:<38} {:>8}  {:>9.2}  {:>12.0}",
        proven.len(),
        per * 1e6,
        1.0 / per
    );
}

/// `n` requests presenting the DPoP-bound `token` with a new proof each, for `GET /items`.
fn proven(key: &doorward_client::DpopKey, token: &str, n: usize) -> Vec<HeaderMap> {
    let url: url::Url = format!("{API}/items").parse().expect("a URL");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (0..n)
        .map(|_| {
            let mut headers = HeaderMap::new();
            let value = HeaderValue::from_str(&format!("DPoP {token}")).expect("a header value");
            headers.insert(header::AUTHORIZATION, value);
            let proof = key
                .proof("GET", &url, Some(token), None, now)
                .expect("a proof");
            headers.insert(
                "dpop",
                HeaderValue::from_str(&proof).expect("a header value"),
            );
            headers
        })
        .collect()
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
    let local = ResourceServer::local(engine, 5)
        .with_audience(API)
        .with_public_url(API);
    measure(
        "local opaque, one token again (cached)",
        &local,
        &opaque[..1],
        checks,
    )
    .await;

    // DPoP-bound tokens, each check with a new proof (made before the clock starts).
    let key = doorward_client::DpopKey::generate();
    let bound = |client_id: &'static str| {
        let issuer = issuer.clone();
        let key = key.clone();
        async move {
            let config = doorward_client::ProviderConfig::oidc(issuer, client_id)
                .with_secret(format!("{client_id}-secret"));
            let client = doorward_client::Client::builder(config).dpop(key).build()?;
            let token = client.client_credentials(&["base"]).await?;
            assert_eq!(token.token_type(), "DPoP");
            Ok::<_, Box<dyn std::error::Error>>(token.access_token().to_owned())
        }
    };
    let proofs = (checks / 20).clamp(100, 10_000);
    let jwt_bound = bound("jwt@clients").await?;
    let jwt_server = jwt_server.with_public_url(API);
    measure_proven(
        "jwt cached + DPoP proof (memory jti)",
        &jwt_server,
        &proven(&key, &jwt_bound, proofs),
    )
    .await;
    let opaque_bound = bound("opaque@clients").await?;
    measure_proven(
        "local cached + DPoP proof (store jti)",
        &local,
        &proven(&key, &opaque_bound, proofs),
    )
    .await;
    Ok(())
}
