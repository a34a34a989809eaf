//! Client authentication with a JWT (`private_key_jwt`, `client_secret_jwt`; RFC 7523 §3):
//! what is accepted, and each check refusing what it must.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{ErrorCode, Secret, TokenResponse};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::client_assertion::JWT_BEARER;
use crate::jose::{self, SigningAlg};
use crate::model::{AuthMethod, ClientPolicy};
use crate::request::{BasicCredentials, TokenRequest};
use crate::testing;
use crate::Error;

use super::support::*;

pub(super) const PK_CLIENT: &str = "pk_client@clients";
pub(super) const HS_CLIENT: &str = "hs_client@clients";
const URI_CLIENT: &str = "uri_client@clients";
pub(super) const HS_SECRET: &str = "an HMAC secret of at least 32 bytes, for HS256";
pub(super) const ISSUER: &str = "http://localhost";
pub(super) const TOKEN_URL: &str = "http://localhost/oauth/token";
pub(super) const NOW: i64 = 1_800_000_000;

pub(super) struct Keys {
    der: Vec<u8>,
    alg: SigningAlg,
    kid: String,
}

pub(super) fn key(alg: SigningAlg, seed: u8) -> Keys {
    let random = testing::SeqRandom::default();
    // Distinct keys per seed: draw `seed` keys and keep the last.
    let mut der = jose::generate_der(alg, &random);
    for _ in 1..seed {
        der = jose::generate_der(alg, &random);
    }
    Keys {
        der,
        alg,
        kid: format!("key-{seed}"),
    }
}

pub(super) fn jwks(keys: &[&Keys]) -> JwkSet {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut jwk = serde_json::to_value(jose::public_jwk(k.alg, &k.der).unwrap()).unwrap();
            jwk["kid"] = json!(k.kid);
            jwk
        })
        .collect();
    jose::parse_client_jwks(&json!({ "keys": keys }).to_string()).unwrap()
}

pub(super) fn claims(client: &str, jti: &str) -> Value {
    json!({
        "iss": client, "sub": client, "aud": TOKEN_URL,
        "exp": NOW + 60, "iat": NOW, "jti": jti,
    })
}

pub(super) fn signed(keys: &Keys, claims: &Value) -> String {
    let mut header = Header::new(keys.alg.jwt());
    header.kid = Some(keys.kid.clone());
    jsonwebtoken::encode(&header, claims, &jose::encoding_key(keys.alg, &keys.der)).unwrap()
}

pub(super) fn maced(secret: &str, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub(super) fn request(assertion: &str, extra: &[(&str, &str)]) -> TokenRequest {
    let mut params: HashMap<String, String> = [
        ("grant_type", "password"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]
    .iter()
    .chain(extra)
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    params.retain(|_, v| !v.is_empty());
    TokenRequest {
        resources: Vec::new(),
        params,
        basic: None,
        client_address: None,
        dpop: Default::default(),
    }
}

/// Authentication passed when the grant type is what is refused (the password grant is off).
fn passed(result: Result<TokenResponse, Error>) -> bool {
    match code_of(result) {
        ErrorCode::UnsupportedGrantType => true,
        ErrorCode::InvalidClient => false,
        other => panic!("unexpected {other:?}"),
    }
}

/// Refused with `invalid_client`; the client's failure counter is then cleared, so that the
/// next check is not throttled (the throttle has a test of its own below).
async fn refused(h: &Harness, result: Result<TokenResponse, Error>) -> bool {
    let refused = !passed(result);
    for client in [PK_CLIENT, HS_CLIENT, KEY, URI_CLIENT] {
        let id = crate::Engine::client_id_for_key(client);
        let key = crate::throttle::Counter::client(id).key().to_owned();
        h.engine.store().clear_failures(&key).await.unwrap();
    }
    refused
}

pub(super) async fn with_jwt_clients(pk: &Keys) -> Harness {
    let h = harness_with(crate::EngineConfig {
        key_encryption_secret: Some(Secret::new("a key-encryption secret for tests")),
        ..crate::EngineConfig::default()
    })
    .await;
    let mut spec = testing::client(PK_CLIENT, "pk", CALLBACK, "unused_secret");
    spec.policy = ClientPolicy {
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(jwks(&[pk])),
        ..ClientPolicy::default()
    };
    h.engine.register_client(spec).await.unwrap();
    let mut spec = testing::client(HS_CLIENT, "hs", CALLBACK, HS_SECRET);
    spec.policy.auth_method = Some(AuthMethod::ClientSecretJwt);
    h.engine.register_client(spec).await.unwrap();
    h
}

#[tokio::test]
async fn a_good_assertion_authenticates_and_each_check_refuses() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let token = |assertion: String| {
        let engine = &h.engine;
        async move { engine.token(&request(&assertion, &[])).await }
    };
    assert!(passed(token(signed(&pk, &claims(PK_CLIENT, "good"))).await));
    // By Id too, and with `aud` the issuer, or a list holding it.
    let by_id = crate::Engine::client_id_for_key(PK_CLIENT).to_string();
    assert!(passed(token(signed(&pk, &claims(&by_id, "by-id"))).await));
    let mut c = claims(PK_CLIENT, "aud-issuer");
    c["aud"] = json!(ISSUER);
    assert!(passed(token(signed(&pk, &c)).await));
    let mut c = claims(PK_CLIENT, "aud-list");
    c["aud"] = json!(["https://elsewhere", TOKEN_URL]);
    assert!(passed(token(signed(&pk, &c)).await));

    // Replayed.
    assert!(refused(&h, token(signed(&pk, &claims(PK_CLIENT, "good"))).await).await);
    // Another audience.
    for aud in [
        json!("https://other.example/oauth/token"),
        json!([]),
        json!("http://localhost/oauth/introspect"),
    ] {
        let mut c = claims(PK_CLIENT, &format!("aud-{aud}"));
        c["aud"] = aud;
        assert!(
            refused(&h, token(signed(&pk, &c)).await).await,
            "aud accepted"
        );
    }
    // Expired (beyond the skew), and far in the future.
    let mut c = claims(PK_CLIENT, "expired");
    c["exp"] = json!(NOW - 31);
    assert!(refused(&h, token(signed(&pk, &c)).await).await);
    let mut c = claims(PK_CLIENT, "an-hour");
    c["exp"] = json!(NOW + 3600);
    assert!(
        passed(token(signed(&pk, &c)).await),
        "an hour ahead is the bound"
    );
    let mut c = claims(PK_CLIENT, "far");
    c["exp"] = json!(NOW + 3600 + 31);
    assert!(refused(&h, token(signed(&pk, &c)).await).await);
    let mut c = claims(PK_CLIENT, "nbf");
    c["nbf"] = json!(NOW + 600);
    assert!(refused(&h, token(signed(&pk, &c)).await).await);
    let mut c = claims(PK_CLIENT, "iat");
    c["iat"] = json!(NOW + 600);
    assert!(refused(&h, token(signed(&pk, &c)).await).await);
    // Required claims.
    for missing in ["exp", "jti", "aud", "iss"] {
        let mut c = claims(PK_CLIENT, &format!("missing-{missing}"));
        c.as_object_mut().unwrap().remove(missing);
        assert!(
            refused(&h, token(signed(&pk, &c)).await).await,
            "{missing} not required"
        );
    }
    // iss ≠ sub, and an assertion naming another client.
    let mut c = claims(PK_CLIENT, "iss");
    c["iss"] = json!(KEY);
    assert!(refused(&h, token(signed(&pk, &c)).await).await);
    // Signed with a key the client did not register (same kid).
    let stranger = key(SigningAlg::Es256, 2);
    let forged = Keys {
        kid: pk.kid.clone(),
        ..stranger
    };
    assert!(
        refused(
            &h,
            token(signed(&forged, &claims(PK_CLIENT, "forged"))).await
        )
        .await
    );
    // `none`, and HS256 MACed with the public key (algorithm confusion).
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims(PK_CLIENT, "none").to_string())
    );
    assert!(refused(&h, token(none).await).await);
    let public = serde_json::to_string(&jose::public_jwk(pk.alg, &pk.der).unwrap()).unwrap();
    let confused = maced(
        &public,
        jsonwebtoken::Algorithm::HS256,
        &claims(PK_CLIENT, "hs"),
    );
    assert!(refused(&h, token(confused).await).await);
    // Each failure cleared above: a good assertion still passes.
    assert!(passed(
        token(signed(&pk, &claims(PK_CLIENT, "good-2"))).await
    ));
}

#[tokio::test]
async fn client_secret_jwt_macs_with_the_sealed_secret() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let token = |assertion: String| {
        let engine = &h.engine;
        async move { engine.token(&request(&assertion, &[])).await }
    };
    let hs = jsonwebtoken::Algorithm::HS256;
    assert!(passed(
        token(maced(HS_SECRET, hs, &claims(HS_CLIENT, "1"))).await
    ));
    assert!(
        refused(
            &h,
            token(maced(HS_SECRET, hs, &claims(HS_CLIENT, "1"))).await
        )
        .await,
        "replay"
    );
    assert!(
        refused(
            &h,
            token(maced(
                "another secret of at least 32 bytes!!",
                hs,
                &claims(HS_CLIENT, "2")
            ))
            .await
        )
        .await
    );
    // HS512 needs a 64-byte secret; this one is shorter.
    let hs512 = jsonwebtoken::Algorithm::HS512;
    assert!(
        refused(
            &h,
            token(maced(HS_SECRET, hs512, &claims(HS_CLIENT, "3"))).await
        )
        .await
    );
    // Not a public-key client: an ES256 assertion is refused.
    assert!(refused(&h, token(signed(&pk, &claims(HS_CLIENT, "4"))).await).await);
    // The stored policy holds the secret sealed, never in the clear.
    let stored = h.engine.find_client(HS_CLIENT).await.unwrap().unwrap();
    let sealed = stored.policy.sealed_jwt_secret.clone().unwrap();
    assert!(!sealed
        .windows(HS_SECRET.len())
        .any(|w| w == HS_SECRET.as_bytes()));
    let json = stored.policy.to_json();
    assert_eq!(ClientPolicy::from_json(&json).unwrap(), stored.policy);
}

/// Clients added while the server runs (`doorward clients add`) with a JWT method: a
/// `private_key_jwt` client gets no secret (nothing to rotate); a `client_secret_jwt` client's
/// generated secret is sealed and MACs its assertions, and a rotation (without overlap: the
/// server keeps one sealed secret) switches to the new one at once.
#[tokio::test]
async fn jwt_clients_added_while_running() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let new = |key: &str, method, jwks| crate::clients::NewClient {
        key: key.into(),
        display_name: key.into(),
        app_uri: "http://localhost:9000".into(),
        redirect_uris: vec![doorward_proto::RedirectUri::parse(CALLBACK).unwrap()],
        policy: ClientPolicy {
            auth_method: Some(method),
            jwks,
            ..ClientPolicy::default()
        },
    };
    let (_, secret) = h
        .engine
        .add_client(
            new(
                "cli_pk@clients",
                AuthMethod::PrivateKeyJwt,
                Some(jwks(&[&pk])),
            ),
            &crate::audit::Actor::System,
        )
        .await
        .unwrap();
    assert!(secret.is_none(), "private_key_jwt: no secret");
    assert!(passed(
        h.engine
            .token(&request(&signed(&pk, &claims("cli_pk@clients", "a")), &[]))
            .await
    ));
    assert!(matches!(
        h.engine
            .rotate_client_secret("cli_pk@clients", 0, &crate::audit::Actor::System)
            .await,
        Err(crate::clients::ClientAdminError::NoSecret(..))
    ));

    let (_, secret) = h
        .engine
        .add_client(
            new("cli_hs@clients", AuthMethod::ClientSecretJwt, None),
            &crate::audit::Actor::System,
        )
        .await
        .unwrap();
    let first = secret.expect("client_secret_jwt: a secret");
    let hs = jsonwebtoken::Algorithm::HS256;
    let mac = |secret: &str, jti: &str| maced(secret, hs, &claims("cli_hs@clients", jti));
    assert!(passed(
        h.engine
            .token(&request(&mac(first.secret(), "b"), &[]))
            .await
    ));
    assert!(matches!(
        h.engine
            .rotate_client_secret("cli_hs@clients", 60, &crate::audit::Actor::System)
            .await,
        Err(crate::clients::ClientAdminError::NoOverlap(_))
    ));
    let (_, second) = h
        .engine
        .rotate_client_secret("cli_hs@clients", 0, &crate::audit::Actor::System)
        .await
        .unwrap();
    assert!(!passed(
        h.engine
            .token(&request(&mac(first.secret(), "c"), &[]))
            .await
    ));
    assert!(passed(
        h.engine
            .token(&request(&mac(second.secret(), "d"), &[]))
            .await
    ));
}

#[tokio::test]
async fn one_method_per_request_and_the_registered_one() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let assertion = signed(&pk, &claims(PK_CLIENT, "x"));
    // With Basic, or with client_secret: invalid_request.
    let mut with_basic = request(&assertion, &[]);
    with_basic.basic = Some(BasicCredentials {
        id: PK_CLIENT.into(),
        secret: Secret::new("unused_secret"),
    });
    assert_eq!(
        code_of(h.engine.token(&with_basic).await),
        ErrorCode::InvalidRequest
    );
    let with_secret = request(&assertion, &[("client_secret", "unused_secret")]);
    assert_eq!(
        code_of(h.engine.token(&with_secret).await),
        ErrorCode::InvalidRequest
    );
    // Half of the pair, or a client_id naming another client.
    let half = request("", &[]);
    assert_eq!(
        code_of(h.engine.token(&half).await),
        ErrorCode::InvalidRequest
    );
    let other_id = request(&assertion, &[("client_id", KEY)]);
    assert_eq!(
        code_of(h.engine.token(&other_id).await),
        ErrorCode::InvalidRequest
    );
    // A private_key_jwt client may not use its secret.
    let basic = TokenRequest {
        resources: Vec::new(),
        params: [("grant_type".to_owned(), "password".to_owned())].into(),
        basic: Some(BasicCredentials {
            id: PK_CLIENT.into(),
            secret: Secret::new("unused_secret"),
        }),
        client_address: None,
        dpop: Default::default(),
    };
    assert_eq!(
        code_of(h.engine.token(&basic).await),
        ErrorCode::InvalidClient
    );
    // A client_secret_basic client may not send an assertion.
    let c = claims(KEY, "k");
    assert!(
        refused(
            &h,
            h.engine
                .token(&request(
                    &maced(SECRET, jsonwebtoken::Algorithm::HS256, &c),
                    &[]
                ))
                .await
        )
        .await
    );
    // An unsupported assertion type.
    let mut wrong_type = request(&assertion, &[]);
    wrong_type
        .params
        .insert("client_assertion_type".into(), "urn:other".into());
    assert_eq!(
        code_of(h.engine.token(&wrong_type).await),
        ErrorCode::InvalidClient
    );
}

#[tokio::test]
async fn introspection_takes_the_endpoint_as_audience_and_failures_are_throttled() {
    let pk = key(SigningAlg::EdDsa, 1);
    let h = with_jwt_clients(&pk).await;
    let mut c = claims(PK_CLIENT, "intro");
    c["aud"] = json!("http://localhost/oauth/introspect");
    let mut req = request(&signed(&pk, &c), &[("token", "dwat_unknown")]);
    req.params.remove("grant_type");
    let answer = h.engine.introspect(&req).await.unwrap();
    assert!(!answer.active);
    // Replayed at another endpoint: refused too.
    let replayed = h.engine.revoke(&req).await;
    assert!(matches!(replayed, Err(Error::OAuth(e)) if e.code == ErrorCode::InvalidClient));

    // Ten failures (the replay above and nine more), then the client is locked before its
    // assertion is looked at.
    for i in 0..9 {
        let mut c = claims(PK_CLIENT, &format!("bad-{i}"));
        c["aud"] = json!("https://other.example");
        assert!(!passed(
            h.engine.token(&request(&signed(&pk, &c), &[])).await
        ));
    }
    let good = signed(&pk, &claims(PK_CLIENT, "after"));
    assert!(matches!(
        h.engine.token(&request(&good, &[])).await,
        Err(Error::Throttled(_))
    ));
    // Once the lock is over (at most 5 minutes), a good assertion passes.
    let later = NOW + 301;
    h.clock.advance(301);
    let mut c = claims(PK_CLIENT, "later");
    c["iat"] = json!(later);
    c["exp"] = json!(later + 60);
    assert!(passed(
        h.engine.token(&request(&signed(&pk, &c), &[])).await
    ));
}

#[tokio::test]
async fn rs256_and_the_jti_store_forgets_after_expiry() {
    let pk = key(SigningAlg::Rs256, 1);
    let h = with_jwt_clients(&pk).await;
    let assertion = signed(&pk, &claims(PK_CLIENT, "rsa"));
    assert!(passed(h.engine.token(&request(&assertion, &[])).await));
    assert!(!passed(h.engine.token(&request(&assertion, &[])).await));
    // Past exp + skew the purge forgets the jti; the assertion itself is then expired.
    h.clock.advance(60 + 31);
    h.engine.purge_expired().await.unwrap();
    assert!(!passed(h.engine.token(&request(&assertion, &[])).await));
}

#[test]
fn registered_key_sets_hold_public_keys_only() {
    let pk = key(SigningAlg::Es256, 1);
    let public = serde_json::to_value(jose::public_jwk(pk.alg, &pk.der).unwrap()).unwrap();
    assert!(jose::parse_client_jwks(&json!({ "keys": [public.clone()] }).to_string()).is_ok());
    for (member, value) in [("d", "AAAA"), ("p", "AAAA"), ("qi", "AAAA"), ("k", "AAAA")] {
        let mut private = public.clone();
        private[member] = json!(value);
        let refused = jose::parse_client_jwks(&json!({ "keys": [private] }).to_string());
        assert!(refused.unwrap_err().contains(member));
    }
    let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
    assert!(jose::parse_client_jwks(&oct.to_string()).is_err());
    assert!(jose::parse_client_jwks(r#"{"keys": []}"#).is_err());
    assert!(jose::parse_client_jwks("[]").is_err());
    let mut hs = public.clone();
    hs["alg"] = json!("HS256");
    assert!(jose::parse_client_jwks(&json!({ "keys": [hs] }).to_string()).is_err());
}

/// `private_key_jwt` with a `jwks_uri` (RFC 7523 §2.2): the set is fetched once and cached; a
/// rotated key (unknown `kid`) makes one refetch, at most once per cooldown; a set that
/// cannot be fetched is `invalid_client`, never a server error.
#[tokio::test]
async fn a_jwks_uri_is_fetched_cached_and_refetched_for_an_unknown_kid() {
    use crate::client_keys::REFETCH_COOLDOWN;
    const URI: &str = "https://client.example/jwks.json";
    let fetcher = Arc::new(FakeFetcher::default());
    let (k1, k2, k3) = (
        key(SigningAlg::Es256, 1),
        key(SigningAlg::Es256, 2),
        key(SigningAlg::Es256, 3),
    );
    let set = |keys: &[&Keys]| serde_json::to_string(&jwks(keys)).unwrap();
    fetcher.serve(URI, &set(&[&k1]), Some(3600));
    let h = harness_fetching(crate::EngineConfig::default(), fetcher.clone()).await;
    let mut spec = testing::client(URI_CLIENT, "uri", CALLBACK, "unused_secret");
    spec.policy = ClientPolicy {
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks_uri: Some(url::Url::parse(URI).unwrap()),
        ..ClientPolicy::default()
    };
    h.engine.register_client(spec).await.unwrap();
    let token = |assertion: String| {
        let engine = &h.engine;
        async move { engine.token(&request(&assertion, &[])).await }
    };
    let claims_at = |jti: &str| {
        let mut c = claims(URI_CLIENT, jti);
        c["exp"] = json!(h.engine.now() + 60);
        c
    };
    assert!(passed(token(signed(&k1, &claims_at("a"))).await));
    assert!(passed(token(signed(&k1, &claims_at("b"))).await));
    assert_eq!(fetcher.count(URI), 1, "the set is cached");

    // The client rotates to k2. Within the cooldown of the last fetch: refused, no fetch.
    fetcher.serve(URI, &set(&[&k2]), Some(3600));
    assert!(refused(&h, token(signed(&k2, &claims_at("c"))).await).await);
    assert_eq!(fetcher.count(URI), 1);
    // After it: one refetch, and k2 verifies; k1 no longer does.
    h.clock.advance(REFETCH_COOLDOWN);
    assert!(passed(token(signed(&k2, &claims_at("d"))).await));
    assert_eq!(fetcher.count(URI), 2);
    assert!(refused(&h, token(signed(&k1, &claims_at("e"))).await).await);
    // A kid nobody published, sent again and again: at most one fetch per cooldown.
    h.clock.advance(REFETCH_COOLDOWN);
    for jti in ["f", "g", "h"] {
        assert!(refused(&h, token(signed(&k3, &claims_at(jti))).await).await);
    }
    assert_eq!(fetcher.count(URI), 3);

    // Unreachable once the set expires: invalid_client, not a server error.
    fetcher.fail(URI, crate::fetch::FetchError::Timeout);
    h.clock.advance(3600);
    assert_eq!(
        code_of(token(signed(&k2, &claims_at("i"))).await),
        ErrorCode::InvalidClient
    );
}
