//! Key rotation through the client, against a loopback provider that counts its key-set
//! fetches: refetch on an unknown `kid` (at most once per cooldown), expiry of the cached set
//! after its HTTP lifetime. Time is the client's injected clock, moved by the tests.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::client::JWKS_COOLDOWN;
use crate::discovery::{
    key_set_lifetime, JWKS_DEFAULT_LIFETIME, JWKS_MAX_LIFETIME, JWKS_MIN_LIFETIME,
};
use crate::error::{DiscoveryError, IdTokenError};
use crate::{Client, ProviderConfig};

use super::support::*;

/// A loopback OIDC provider whose key set (and its `Cache-Control`) can be replaced, counting
/// key-set fetches; and the clock of the clients it makes.
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    cache_control: Arc<Mutex<Option<String>>>,
    now: Arc<AtomicI64>,
    jwks_fetches: Arc<AtomicUsize>,
    metadata_fetches: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Provider {
    async fn start(jwks: Value) -> Self {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
        });
        let jwks = Arc::new(Mutex::new(jwks));
        let cache_control = Arc::new(Mutex::new(None::<String>));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let metadata_fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", {
                let fetches = metadata_fetches.clone();
                get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let metadata = metadata.clone();
                    async move { axum::Json(metadata) }
                })
            })
            .route(
                "/broken",
                get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
            )
            .route("/jwks", {
                let (jwks, fetches) = (jwks.clone(), jwks_fetches.clone());
                let cache_control = cache_control.clone();
                get(move || {
                    use axum::response::IntoResponse as _;
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let document = jwks.lock().unwrap().clone();
                    let cache_control = cache_control.lock().unwrap().clone();
                    async move {
                        let mut response = axum::Json(document).into_response();
                        if let Some(value) = cache_control {
                            response
                                .headers_mut()
                                .insert(axum::http::header::CACHE_CONTROL, value.parse().unwrap());
                        }
                        response
                    }
                })
            });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            jwks,
            cache_control,
            now: Arc::new(AtomicI64::new(NOW)),
            jwks_fetches,
            metadata_fetches,
            server,
        }
    }

    fn set_keys(&self, keys: &[&Value]) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn set_cache_control(&self, value: &str) {
        *self.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Moves the clients' clock to `NOW + seconds`.
    fn at(&self, seconds: i64) {
        self.now.store(NOW + seconds, Ordering::SeqCst);
    }

    fn client(&self) -> Client {
        let now = self.now.clone();
        Client::builder(ProviderConfig::oidc(&self.issuer, CLIENT_ID).with_secret("s"))
            .clock(move || now.load(Ordering::SeqCst))
            .build()
            .expect("client")
    }

    fn claims(&self, alg: Algorithm) -> Value {
        with(good_claims(alg), |c| {
            c.insert("iss".into(), json!(self.issuer));
        })
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn key_rotation_refetches_the_key_set_once() {
    let key1 = es256_key("key-1");
    let key2 = eddsa_key("key-2");
    let provider = Provider::start(json!({ "keys": [key1.jwk] })).await;
    let client = provider.client();
    assert_eq!(
        provider.jwks_fetches(),
        0,
        "nothing is fetched before it is needed"
    );

    // Key 1: first validation fetches the key set.
    let token1 = sign(&key1, &provider.claims(Algorithm::ES256));
    let claims = client
        .validate_id_token(&token1, Some(NONCE), None)
        .await
        .expect("token signed by key 1");
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.issuer, provider.issuer);
    assert_eq!(provider.jwks_fetches(), 1);

    // Known kid again: from the cache.
    client
        .validate_id_token(&token1, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 1, "a known kid causes no fetch");

    // Rotation: the provider now publishes key 2 only; the cooldown since the first fetch
    // has passed.
    provider.set_keys(&[&key2.jwk]);
    provider.at(JWKS_COOLDOWN);
    let token2 = sign(&key2, &provider.claims(Algorithm::EdDSA));
    let claims = client
        .validate_id_token(&token2, Some(NONCE), Some(ACCESS_TOKEN))
        .await
        .expect("token signed by the new key 2");
    assert_eq!(claims.subject, "user-1");
    assert_eq!(provider.jwks_fetches(), 2, "one fetch for the new kid");

    client
        .validate_id_token(&token2, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 2, "key 2 is now cached");

    // A kid the provider does not have, right after a fetch: no refetch (the cooldown).
    let token3 = sign_as(
        &key2,
        Algorithm::EdDSA,
        Some("key-3"),
        &provider.claims(Algorithm::EdDSA),
    );
    let result = client.validate_id_token(&token3, Some(NONCE), None).await;
    assert_err!(result, IdTokenError::NoMatchingKey { .. });
    assert_eq!(provider.jwks_fetches(), 2, "no refetch within the cooldown");

    // After the cooldown: one refetch, then NoMatchingKey (no loop).
    provider.at(2 * JWKS_COOLDOWN);
    let result = client.validate_id_token(&token3, Some(NONCE), None).await;
    match result {
        Err(IdTokenError::NoMatchingKey { kid, alg }) => {
            assert_eq!(kid.as_deref(), Some("key-3"));
            assert_eq!(alg, "EdDSA");
        }
        other => panic!("expected NoMatchingKey, got {other:?}"),
    }
    assert_eq!(
        provider.jwks_fetches(),
        3,
        "exactly one refetch for an unknown kid"
    );

    // Key 1 was retired: its tokens are now refused the same way.
    provider.at(3 * JWKS_COOLDOWN);
    let result = client.validate_id_token(&token1, Some(NONCE), None).await;
    assert_err!(result, IdTokenError::NoMatchingKey { .. });
    assert_eq!(provider.jwks_fetches(), 4);

    // A known kid after all that: still no fetch.
    client
        .validate_id_token(&token2, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 4, "a known kid causes no fetch");

    // A correct kid with a bad signature is BadSignature, not a refetch.
    let forged = sign_as(
        &eddsa_key("x"),
        Algorithm::EdDSA,
        Some("key-2"),
        &provider.claims(Algorithm::EdDSA),
    );
    let result = client.validate_id_token(&forged, Some(NONCE), None).await;
    assert_err!(result, IdTokenError::BadSignature);
    assert_eq!(provider.jwks_fetches(), 4);

    // Claims are checked against the discovered issuer.
    let result = client
        .validate_id_token(
            &sign(&key2, &good_claims(Algorithm::EdDSA)),
            Some(NONCE),
            None,
        )
        .await;
    assert_err!(result, IdTokenError::WrongIssuer { .. });
    assert_eq!(
        provider.metadata_fetches.load(Ordering::SeqCst),
        1,
        "metadata fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_validations_after_rotation_share_one_fetch() {
    let key1 = es256_key("key-1");
    let key2 = es256_key("key-2");
    let provider = Provider::start(json!({ "keys": [key1.jwk] })).await;
    let client = provider.client();
    let token1 = sign(&key1, &provider.claims(Algorithm::ES256));
    client
        .validate_id_token(&token1, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 1);

    provider.set_keys(&[&key1.jwk, &key2.jwk]);
    provider.at(JWKS_COOLDOWN);
    let token2 = sign(&key2, &provider.claims(Algorithm::ES256));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, token) = (client.clone(), token2.clone());
            tokio::spawn(async move { client.validate_id_token(&token, Some(NONCE), None).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("token signed by key 2");
    }
    assert_eq!(
        provider.jwks_fetches(),
        2,
        "concurrent callers share one refetch"
    );
}

#[tokio::test]
async fn key_set_without_keys_or_unreachable() {
    let key = es256_key("k");
    let provider = Provider::start(json!({ "keys": [key.jwk] })).await;
    // The jwks_uri answers HTTP 500: a Jwks error naming the status.
    let mut config = ProviderConfig::oidc(&provider.issuer, CLIENT_ID).with_secret("s");
    config.endpoints.jwks_uri = Some(format!("{}/broken", provider.issuer).parse().unwrap());
    let broken = Client::builder(config).clock(|| NOW).build().unwrap();
    let token = sign(&key, &provider.claims(Algorithm::ES256));
    let result = broken.validate_id_token(&token, Some(NONCE), None).await;
    assert_err!(
        result,
        IdTokenError::Jwks(DiscoveryError::Status { status: 500, .. })
    );
    assert_eq!(provider.jwks_fetches(), 0);

    // The jwks_uri answers a JSON document that is not a key set.
    let client = provider.client();
    *provider.jwks.lock().unwrap() = json!("not a key set");
    let token = sign(&key, &provider.claims(Algorithm::ES256));
    let result = client.validate_id_token(&token, Some(NONCE), None).await;
    // A JSON string is a JSON document without keys: no key matches.
    assert_err!(result, IdTokenError::NoMatchingKey { .. });
    // Alg none never reaches the network.
    let before = provider.jwks_fetches();
    let none = raw_jws(
        &json!({"alg": "none"}),
        &provider.claims(Algorithm::ES256),
        b"",
    );
    let result = client.validate_id_token(&none, Some(NONCE), None).await;
    assert_err!(result, IdTokenError::UnsupportedAlgorithm(ref a) if a == "none");
    assert_eq!(provider.jwks_fetches(), before);
}

#[tokio::test]
async fn withdrawn_key_stops_verifying_when_the_key_set_expires() {
    let key1 = es256_key("key-1");
    let key2 = es256_key("key-2");
    let provider = Provider::start(json!({ "keys": [key1.jwk] })).await;
    provider.set_cache_control("public, max-age=120");
    let client = provider.client();
    let token1 = sign(&key1, &provider.claims(Algorithm::ES256));
    client
        .validate_id_token(&token1, Some(NONCE), None)
        .await
        .expect("key 1 is published");
    assert_eq!(provider.jwks_fetches(), 1);

    // The provider withdraws key 1. Within the key set's lifetime the cached set still holds it.
    provider.set_keys(&[&key2.jwk]);
    provider.at(119);
    client
        .validate_id_token(&token1, Some(NONCE), None)
        .await
        .expect("the cached key set is fresh for max-age");
    assert_eq!(provider.jwks_fetches(), 1, "a fresh key set is not fetched");

    // Once max-age has passed the set is fetched again and key 1 no longer verifies.
    provider.at(120);
    let result = client.validate_id_token(&token1, Some(NONCE), None).await;
    assert_err!(result, IdTokenError::NoMatchingKey { .. });
    assert_eq!(provider.jwks_fetches(), 2, "one fetch at expiry, none more");
    let token2 = sign(&key2, &provider.claims(Algorithm::ES256));
    client
        .validate_id_token(&token2, Some(NONCE), None)
        .await
        .expect("key 2 came with the new set");
    assert_eq!(provider.jwks_fetches(), 2);
}

#[tokio::test]
async fn key_set_lifetime_is_bounded_and_has_a_default() {
    let key1 = es256_key("key-1");
    let key2 = es256_key("key-2");
    let long_lived = |provider: &Provider| {
        with(provider.claims(Algorithm::ES256), |c| {
            c.insert("exp".into(), json!(NOW + 10 * JWKS_MAX_LIFETIME));
        })
    };
    // (Cache-Control, how long a withdrawn key is still trusted)
    for (cache_control, lifetime) in [
        (None, JWKS_DEFAULT_LIFETIME),
        (Some("public, max-age=31536000"), JWKS_MAX_LIFETIME),
        (Some("no-store"), JWKS_MIN_LIFETIME),
        (Some("max-age=0"), JWKS_MIN_LIFETIME),
    ] {
        let provider = Provider::start(json!({ "keys": [key1.jwk] })).await;
        if let Some(value) = cache_control {
            provider.set_cache_control(value);
        }
        let client = provider.client();
        let token1 = sign(&key1, &long_lived(&provider));
        client
            .validate_id_token(&token1, Some(NONCE), None)
            .await
            .unwrap();
        provider.set_keys(&[&key2.jwk]);
        provider.at(lifetime - 1);
        client
            .validate_id_token(&token1, Some(NONCE), None)
            .await
            .unwrap_or_else(|e| panic!("{cache_control:?}: fresh until {lifetime} s: {e:?}"));
        provider.at(lifetime);
        let result = client.validate_id_token(&token1, Some(NONCE), None).await;
        assert!(
            matches!(result, Err(IdTokenError::NoMatchingKey { .. })),
            "{cache_control:?}: expired after {lifetime} s: {result:?}"
        );
        assert_eq!(provider.jwks_fetches(), 2, "{cache_control:?}");
    }
}

#[test]
fn key_set_lifetime_reads_cache_control_and_age() {
    use reqwest::header::{HeaderMap, HeaderValue, AGE, CACHE_CONTROL};
    let lifetime = |cache_control: &[&str], age: Option<&str>| {
        let mut headers = HeaderMap::new();
        for value in cache_control {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        if let Some(age) = age {
            headers.insert(AGE, HeaderValue::from_str(age).unwrap());
        }
        key_set_lifetime(&headers)
    };
    assert_eq!(lifetime(&[], None), JWKS_DEFAULT_LIFETIME);
    assert_eq!(lifetime(&["public"], None), JWKS_DEFAULT_LIFETIME);
    assert_eq!(lifetime(&["public, max-age=300"], None), 300);
    assert_eq!(lifetime(&["Max-Age=\"300\""], None), 300);
    assert_eq!(lifetime(&["public", "max-age=300"], None), 300);
    assert_eq!(lifetime(&["max-age=300"], Some("100")), 200);
    assert_eq!(lifetime(&["max-age=300"], Some("290")), JWKS_MIN_LIFETIME);
    assert_eq!(
        lifetime(&["max-age=300, no-cache"], None),
        JWKS_MIN_LIFETIME
    );
    assert_eq!(lifetime(&["max-age=-5"], None), JWKS_DEFAULT_LIFETIME);
    assert_eq!(lifetime(&["max-age=abc"], None), JWKS_DEFAULT_LIFETIME);
    assert_eq!(
        lifetime(&["max-age=99999999999999999999999"], None),
        JWKS_MAX_LIFETIME
    );
}

#[tokio::test]
async fn forged_kids_cause_at_most_one_fetch_per_cooldown() {
    let key = es256_key("key-1");
    let provider = Provider::start(json!({ "keys": [key.jwk] })).await;
    let client = provider.client();
    let forged = |n: usize| {
        sign_as(
            &key,
            Algorithm::ES256,
            Some(&format!("forged-{n}")),
            &provider.claims(Algorithm::ES256),
        )
    };
    let genuine = sign(&key, &provider.claims(Algorithm::ES256));
    client
        .validate_id_token(&genuine, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 1);
    for n in 0..50 {
        let result = client
            .validate_id_token(&forged(n), Some(NONCE), None)
            .await;
        assert_err!(result, IdTokenError::NoMatchingKey { .. });
    }
    assert_eq!(provider.jwks_fetches(), 1, "no fetch within the cooldown");

    provider.at(JWKS_COOLDOWN);
    for n in 50..100 {
        let result = client
            .validate_id_token(&forged(n), Some(NONCE), None)
            .await;
        assert_err!(result, IdTokenError::NoMatchingKey { .. });
        let result = client
            .validate_jwt_access_token(&forged(n), "https://api.example")
            .await;
        assert_err!(result, IdTokenError::NoMatchingKey { .. });
    }
    assert_eq!(provider.jwks_fetches(), 2, "one fetch per cooldown");
    client
        .validate_id_token(&genuine, Some(NONCE), None)
        .await
        .unwrap();
    assert_eq!(provider.jwks_fetches(), 2);
}
