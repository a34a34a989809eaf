//! What the tests share: the fixed issuer, client and clock, real signing keys (ES256, RS256,
//! EdDSA) with their JWKs, ID-token claims that pass every check, and a loopback server.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::at_hash;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use serde_json::{json, Map, Value};

use crate::discovery::KeySet;
use crate::error::IdTokenError;
use crate::id_token::{candidate_keys, header, jws_name, validate, Expectations, IdTokenClaims};
use crate::DEFAULT_ALGORITHMS;

pub(super) const ISSUER: &str = "https://issuer.example";
pub(super) const CLIENT_ID: &str = "client-1";
pub(super) const NOW: i64 = 1_700_000_000;
pub(super) const LEEWAY: u64 = 60;
pub(super) const ACCESS_TOKEN: &str = "access-token-value";
pub(super) const NONCE: &str = "n-0S6_WzA2Mj";

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
pub(super) struct TestKey {
    pub(super) alg: Algorithm,
    pub(super) kid: String,
    pub(super) encoding: EncodingKey,
    pub(super) jwk: Value,
}

pub(super) fn es256_key(kid: &str) -> TestKey {
    use p256::pkcs8::EncodePrivateKey as _;
    let signing = p256::ecdsa::SigningKey::random(&mut OsRng);
    let der = signing.to_pkcs8_der().expect("PKCS#8 of the P-256 key");
    let point = signing.verifying_key().to_encoded_point(false);
    TestKey {
        alg: Algorithm::ES256,
        kid: kid.to_owned(),
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "use": "sig",
            "x": b64(point.x().expect("x")),
            "y": b64(point.y().expect("y")),
        }),
    }
}

pub(super) fn eddsa_key(kid: &str) -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let der = signing.to_pkcs8_der().expect("PKCS#8 of the Ed25519 key");
    TestKey {
        alg: Algorithm::EdDSA,
        kid: kid.to_owned(),
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        jwk: json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": kid,
            "x": b64(&signing.verifying_key().to_bytes()),
        }),
    }
}

/// The one RSA key of the test run (2048-bit generation is the slow part), and the PEM of its
/// public key for the HMAC-confusion test.
pub(super) struct RsaFixture {
    pub(super) key: TestKey,
    pub(super) public_pem: String,
}

pub(super) fn rsa_fixture() -> &'static RsaFixture {
    static KEY: OnceLock<RsaFixture> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        use rsa::traits::PublicKeyParts as _;
        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1 of the RSA key");
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM of the RSA public key");
        let kid = "rsa-1";
        RsaFixture {
            key: TestKey {
                alg: Algorithm::RS256,
                kid: kid.to_owned(),
                encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                jwk: json!({
                    "kty": "RSA",
                    "kid": kid,
                    "use": "sig",
                    "n": b64(&private.n().to_bytes_be()),
                    "e": b64(&private.e().to_bytes_be()),
                }),
            },
            public_pem,
        }
    })
}

pub(super) fn key_set(jwks: &[&Value]) -> KeySet {
    KeySet::parse(&json!({ "keys": jwks }))
}

/// Signs `claims` with `key` under `alg`, naming `kid` in the header.
pub(super) fn sign_as(key: &TestKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing the test token")
}

pub(super) fn sign(key: &TestKey, claims: &Value) -> String {
    sign_as(key, key.alg, Some(&key.kid), claims)
}

/// Claims that pass every check with [`expectations`], `at_hash` for `alg`.
pub(super) fn good_claims(alg: Algorithm) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "exp": NOW + 600,
        "iat": NOW - 10,
        "auth_time": NOW - 20,
        "nonce": NONCE,
        "at_hash": at_hash(&jws_name(alg), ACCESS_TOKEN),
        "email": "user@example.org",
    })
}

pub(super) fn with(mut claims: Value, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    edit(claims.as_object_mut().expect("claims are an object"));
    claims
}

pub(super) fn expectations() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: Some(NONCE),
        access_token: Some(ACCESS_TOKEN),
        leeway: LEEWAY,
        now: NOW,
    }
}

/// What the client does with a token: header, candidate keys, signature and claims.
pub(super) fn check(
    token: &str,
    set: &KeySet,
    expect: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let (alg, kid) = header(token, &DEFAULT_ALGORITHMS)?;
    let keys = candidate_keys(set, alg, kid.as_deref());
    validate(token, alg, &keys, expect)
}

/// An ES256 key, its set, and the outcome of validating `claims` signed by it.
pub(super) fn es256_case(
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<IdTokenClaims, IdTokenError> {
    es256_case_with(edit, &expectations())
}

pub(super) fn es256_case_with(
    edit: impl FnOnce(&mut Map<String, Value>),
    expect: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let key = es256_key("ec-1");
    let set = key_set(&[&key.jwk]);
    let token = sign(&key, &with(good_claims(Algorithm::ES256), edit));
    check(&token, &set, expect)
}

/// Asserts that `result` is the error matching `pattern`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {{
        let result = $result;
        assert!(
            matches!(result, Err($pattern) $(if $guard)?),
            "expected {}, got {:?}",
            stringify!($pattern),
            result
        );
    }};
}
pub(super) use assert_err;

/// A compact JWS built by hand (for headers jsonwebtoken will not produce).
pub(super) fn raw_jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// Serves `router` on a loopback port; returns its origin.
pub(super) async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    origin
}
