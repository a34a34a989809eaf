//! Unit tests of the relying-party library: the ID-token checks with real ES256, RS256/PS256 and
//! EdDSA keys, key rotation through the client against a loopback provider, token-response
//! parsing and callback parsing. No network besides the loopback server a test starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{at_hash, ErrorCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::discovery::KeySet;
use crate::error::{ConfigError, DiscoveryError, IdTokenError, TokenError};
use crate::http::RawResponse;
use crate::id_token::{candidate_keys, header, jws_name, validate, Expectations, IdTokenClaims};
use crate::token::parse_token_response;
use crate::{Callback, Client, ProviderConfig, DEFAULT_ALGORITHMS};

const ISSUER: &str = "https://issuer.example";
const CLIENT_ID: &str = "client-1";
const NOW: i64 = 1_700_000_000;
const LEEWAY: u64 = 60;
const ACCESS_TOKEN: &str = "access-token-value";
const NONCE: &str = "n-0S6_WzA2Mj";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------------

/// A signing key and its public JWK.
struct TestKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn es256_key(kid: &str) -> TestKey {
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

fn eddsa_key(kid: &str) -> TestKey {
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
struct RsaFixture {
    key: TestKey,
    public_pem: String,
}

fn rsa_fixture() -> &'static RsaFixture {
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

fn key_set(jwks: &[&Value]) -> KeySet {
    KeySet::parse(&json!({ "keys": jwks }))
}

/// Signs `claims` with `key` under `alg`, naming `kid` in the header.
fn sign_as(key: &TestKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing the test token")
}

fn sign(key: &TestKey, claims: &Value) -> String {
    sign_as(key, key.alg, Some(&key.kid), claims)
}

/// Claims that pass every check with [`expectations`], `at_hash` for `alg`.
fn good_claims(alg: Algorithm) -> Value {
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

fn with(mut claims: Value, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    edit(claims.as_object_mut().expect("claims are an object"));
    claims
}

fn expectations() -> Expectations<'static> {
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
fn check(
    token: &str,
    set: &KeySet,
    expect: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let (alg, kid) = header(token, &DEFAULT_ALGORITHMS)?;
    let keys = candidate_keys(set, alg, kid.as_deref());
    validate(token, alg, &keys, expect)
}

/// An ES256 key, its set, and the outcome of validating `claims` signed by it.
fn es256_case(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<IdTokenClaims, IdTokenError> {
    es256_case_with(edit, &expectations())
}

fn es256_case_with(
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

/// A compact JWS built by hand (for headers jsonwebtoken will not produce).
fn raw_jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

// ---------------------------------------------------------------------------------------------
// 1. ID tokens
// ---------------------------------------------------------------------------------------------

fn assert_good(claims: &IdTokenClaims) {
    assert_eq!(claims.issuer, ISSUER);
    assert_eq!(claims.subject, "user-1");
    assert_eq!(claims.audience, vec![CLIENT_ID.to_owned()]);
    assert_eq!(claims.expires_at, NOW + 600);
    assert_eq!(claims.issued_at, NOW - 10);
    assert_eq!(claims.auth_time, Some(NOW - 20));
    assert_eq!(claims.nonce.as_deref(), Some(NONCE));
    assert_eq!(claims.get_str("email"), Some("user@example.org"));
}

#[test]
fn id_token_es256_valid() {
    let key = es256_key("ec-1");
    let set = key_set(&[&key.jwk]);
    let token = sign(&key, &good_claims(Algorithm::ES256));
    assert_eq!(
        header(&token, &DEFAULT_ALGORITHMS).unwrap(),
        (Algorithm::ES256, Some("ec-1".into()))
    );
    let claims = check(&token, &set, &expectations()).expect("valid ES256 ID token");
    assert_good(&claims);
    assert_eq!(claims.authorized_party, None);
}

#[test]
fn id_token_rs256_and_ps256_valid() {
    let rsa = &rsa_fixture().key;
    let set = key_set(&[&rsa.jwk]);
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::RS512] {
        let token = sign_as(rsa, alg, Some(&rsa.kid), &good_claims(alg));
        let claims = check(&token, &set, &expectations())
            .unwrap_or_else(|e| panic!("valid {alg:?} ID token refused: {e:?}"));
        assert_good(&claims);
    }
}

#[test]
fn id_token_eddsa_valid_with_sha512_at_hash() {
    let key = eddsa_key("ed-1");
    let set = key_set(&[&key.jwk]);
    // at_hash for EdDSA: the left half of SHA-512, computed here independently.
    let expected = b64(&Sha512::digest(ACCESS_TOKEN.as_bytes())[..32]);
    assert_eq!(at_hash(&jws_name(Algorithm::EdDSA), ACCESS_TOKEN), expected);
    assert_eq!(expected.len(), 43);
    let token = sign(&key, &good_claims(Algorithm::EdDSA));
    let claims = check(&token, &set, &expectations()).expect("valid EdDSA ID token");
    assert_good(&claims);

    // The SHA-256 half (what an RS256/ES256 token would carry) is not the EdDSA at_hash.
    let sha256_half = b64(&Sha256::digest(ACCESS_TOKEN.as_bytes())[..16]);
    let token = sign(
        &key,
        &with(good_claims(Algorithm::EdDSA), |c| {
            c.insert("at_hash".into(), json!(sha256_half));
        }),
    );
    let result = check(&token, &set, &expectations());
    assert_err!(result, IdTokenError::WrongAtHash);
}

#[test]
fn token_hash_uses_the_left_half_of_the_algorithms_hash() {
    let sha256_half = b64(&Sha256::digest(ACCESS_TOKEN.as_bytes())[..16]);
    assert_eq!(
        at_hash(&jws_name(Algorithm::RS256), ACCESS_TOKEN),
        sha256_half
    );
    assert_eq!(
        at_hash(&jws_name(Algorithm::ES256), ACCESS_TOKEN),
        sha256_half
    );
    assert_eq!(
        at_hash(&jws_name(Algorithm::PS256), ACCESS_TOKEN),
        sha256_half
    );
    let sha512_half = b64(&Sha512::digest(ACCESS_TOKEN.as_bytes())[..32]);
    assert_eq!(
        at_hash(&jws_name(Algorithm::RS512), ACCESS_TOKEN),
        sha512_half
    );
}

#[test]
fn jws_names_are_the_jose_header_names() {
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ] {
        assert_eq!(jws_name(alg).parse::<Algorithm>().ok(), Some(alg));
    }
}

#[test]
fn id_token_wrong_audience() {
    let result = es256_case(|c| {
        c.insert("aud".into(), json!("other-client"));
    });
    match result {
        Err(IdTokenError::WrongAudience {
            client_id,
            audience,
        }) => {
            assert_eq!(client_id, CLIENT_ID);
            assert_eq!(audience, vec!["other-client".to_owned()]);
        }
        other => panic!("expected WrongAudience, got {other:?}"),
    }
    // A list without this client is refused too.
    let result = es256_case(|c| {
        c.insert("aud".into(), json!(["a", "b"]));
        c.insert("azp".into(), json!(CLIENT_ID));
    });
    assert_err!(result, IdTokenError::WrongAudience { .. });
    // No aud at all.
    let result = es256_case(|c| {
        c.remove("aud");
    });
    assert_err!(result, IdTokenError::MissingClaim("aud"));
}

#[test]
fn id_token_audience_list_without_azp() {
    let result = es256_case(|c| {
        c.insert("aud".into(), json!([CLIENT_ID, "other-client"]));
    });
    assert_err!(result, IdTokenError::MissingAzp);
}

#[test]
fn id_token_audience_list_with_wrong_azp() {
    let result = es256_case(|c| {
        c.insert("aud".into(), json!([CLIENT_ID, "other-client"]));
        c.insert("azp".into(), json!("other-client"));
    });
    match result {
        Err(IdTokenError::WrongAzp { got }) => assert_eq!(got, "other-client"),
        other => panic!("expected WrongAzp, got {other:?}"),
    }
}

#[test]
fn id_token_audience_list_with_our_azp() {
    let claims = es256_case(|c| {
        c.insert("aud".into(), json!([CLIENT_ID, "other-client"]));
        c.insert("azp".into(), json!(CLIENT_ID));
    })
    .expect("audience list with azp = client id");
    assert_eq!(
        claims.audience,
        vec![CLIENT_ID.to_owned(), "other-client".to_owned()]
    );
    assert_eq!(claims.authorized_party.as_deref(), Some(CLIENT_ID));
}

#[test]
fn id_token_single_audience_with_matching_azp() {
    let claims = es256_case(|c| {
        c.insert("azp".into(), json!(CLIENT_ID));
    })
    .expect("single aud with matching azp");
    assert_eq!(claims.authorized_party.as_deref(), Some(CLIENT_ID));
    // A single audience with another azp is refused.
    let result = es256_case(|c| {
        c.insert("azp".into(), json!("someone-else"));
    });
    assert_err!(result, IdTokenError::WrongAzp { .. });
}

#[test]
fn id_token_wrong_issuer() {
    let result = es256_case(|c| {
        c.insert("iss".into(), json!("https://evil.example"));
    });
    match result {
        Err(IdTokenError::WrongIssuer { expected, got }) => {
            assert_eq!(expected, ISSUER);
            assert_eq!(got, "https://evil.example");
        }
        other => panic!("expected WrongIssuer, got {other:?}"),
    }
    // A trailing slash is another issuer (OIDC Core §3.1.3.7: exact match).
    let result = es256_case(|c| {
        c.insert("iss".into(), json!(format!("{ISSUER}/")));
    });
    assert_err!(result, IdTokenError::WrongIssuer { .. });
}

#[test]
fn id_token_wrong_nonce() {
    let result = es256_case(|c| {
        c.insert("nonce".into(), json!("another-nonce"));
    });
    assert_err!(result, IdTokenError::WrongNonce);
}

#[test]
fn id_token_missing_nonce() {
    let result = es256_case(|c| {
        c.remove("nonce");
    });
    assert_err!(result, IdTokenError::MissingNonce);
    // Without an expected nonce (refresh), a token without one is fine.
    let expect = Expectations {
        nonce: None,
        ..expectations()
    };
    let claims = es256_case_with(
        |c| {
            c.remove("nonce");
        },
        &expect,
    )
    .expect("no nonce expected, none sent");
    assert_eq!(claims.nonce, None);
}

#[test]
fn id_token_expired_beyond_leeway() {
    let exp = NOW - LEEWAY as i64 - 1;
    let result = es256_case(|c| {
        c.insert("exp".into(), json!(exp));
        c.insert("iat".into(), json!(exp - 3600));
    });
    match result {
        Err(IdTokenError::Expired {
            exp: got,
            now,
            leeway,
        }) => {
            assert_eq!((got, now, leeway), (exp, NOW, LEEWAY));
        }
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn id_token_expired_within_leeway() {
    for exp in [NOW - LEEWAY as i64, NOW - 1, NOW] {
        let claims = es256_case(|c| {
            c.insert("exp".into(), json!(exp));
            c.insert("iat".into(), json!(exp - 3600));
        })
        .unwrap_or_else(|e| panic!("exp {exp} is within the leeway: {e:?}"));
        assert_eq!(claims.expires_at, exp);
    }
    // Fractional NumericDates are accepted (RFC 7519 §2).
    let claims = es256_case(|c| {
        c.insert("exp".into(), json!((NOW + 100) as f64 + 0.5));
    })
    .expect("fractional exp");
    assert_eq!(claims.expires_at, NOW + 100);
}

#[test]
fn id_token_issued_in_future() {
    let iat = NOW + LEEWAY as i64 + 1;
    let result = es256_case(|c| {
        c.insert("iat".into(), json!(iat));
    });
    match result {
        Err(IdTokenError::IssuedInFuture { iat: got, now }) => assert_eq!((got, now), (iat, NOW)),
        other => panic!("expected IssuedInFuture, got {other:?}"),
    }
    // Within the leeway: accepted.
    es256_case(|c| {
        c.insert("iat".into(), json!(NOW + LEEWAY as i64));
    })
    .expect("iat within the leeway");
}

#[test]
fn id_token_missing_claims() {
    let result = es256_case(|c| {
        c.remove("sub");
    });
    assert_err!(result, IdTokenError::MissingClaim("sub"));
    let result = es256_case(|c| {
        c.insert("sub".into(), json!(""));
    });
    assert_err!(result, IdTokenError::MissingClaim("sub"));
    let result = es256_case(|c| {
        c.insert("sub".into(), json!(42));
    });
    assert_err!(result, IdTokenError::MissingClaim("sub"));
    let result = es256_case(|c| {
        c.remove("iss");
    });
    assert_err!(result, IdTokenError::MissingClaim("iss"));
    let result = es256_case(|c| {
        c.remove("exp");
    });
    assert_err!(result, IdTokenError::MissingClaim("exp"));
    let result = es256_case(|c| {
        c.insert("exp".into(), json!("tomorrow"));
    });
    assert_err!(result, IdTokenError::MissingClaim("exp"));
    let result = es256_case(|c| {
        c.remove("iat");
    });
    assert_err!(result, IdTokenError::MissingClaim("iat"));
}

#[test]
fn id_token_bad_at_hash() {
    let result = es256_case(|c| {
        c.insert(
            "at_hash".into(),
            json!(at_hash(&jws_name(Algorithm::ES256), "another-access-token")),
        );
    });
    assert_err!(result, IdTokenError::WrongAtHash);
    // No access token to compare with (refresh without one): at_hash is not checked.
    let expect = Expectations {
        access_token: None,
        ..expectations()
    };
    es256_case_with(
        |c| {
            c.insert("at_hash".into(), json!("garbage"));
        },
        &expect,
    )
    .expect("at_hash is only checked against an access token");
}

#[test]
fn id_token_alg_none_is_refused() {
    let claims = good_claims(Algorithm::ES256);
    for header_value in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "none", "kid": "ec-1"}),
    ] {
        let token = raw_jws(&header_value, &claims, b"");
        assert!(token.ends_with('.'));
        let name = header_value["alg"].as_str().unwrap().to_owned();
        match header(&token, &DEFAULT_ALGORITHMS) {
            Err(IdTokenError::UnsupportedAlgorithm(got)) => assert_eq!(got, name),
            other => panic!("expected UnsupportedAlgorithm({name:?}), got {other:?}"),
        }
    }
    // No alg at all.
    let token = raw_jws(&json!({"typ": "JWT"}), &claims, b"sig");
    assert_err!(
        header(&token, &DEFAULT_ALGORITHMS),
        IdTokenError::UnsupportedAlgorithm(ref a) if a.is_empty()
    );
}

#[test]
fn id_token_malformed() {
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "bm90IGpzb24.e30.sig",
    ] {
        let result = header(token, &DEFAULT_ALGORITHMS);
        assert!(
            matches!(result, Err(IdTokenError::Malformed)),
            "{token:?}: {result:?}"
        );
    }
}

#[test]
fn id_token_algorithm_outside_the_allow_list() {
    let key = es256_key("ec-1");
    let token = sign(&key, &good_claims(Algorithm::ES256));
    let result = header(&token, &[Algorithm::RS256]);
    assert_err!(result, IdTokenError::UnsupportedAlgorithm(ref a) if a == "ES256");
}

#[test]
fn id_token_hmac_with_the_public_key_is_refused() {
    let fixture = rsa_fixture();
    let rsa = &fixture.key;
    let n = rsa.jwk["n"].as_str().unwrap().to_owned();
    let n_bytes = URL_SAFE_NO_PAD.decode(&n).unwrap();
    let jwk_json = rsa.jwk.to_string();
    let secrets: [&[u8]; 4] = [
        n.as_bytes(),
        &n_bytes,
        fixture.public_pem.as_bytes(),
        jwk_json.as_bytes(),
    ];
    // Every key of the set, plus the RSA key published as a symmetric one.
    let ec = es256_key("ec-1");
    let ed = eddsa_key("ed-1");
    let oct = json!({"kty": "oct", "kid": rsa.kid, "k": b64(fixture.public_pem.as_bytes())});
    let set = key_set(&[&rsa.jwk, &ec.jwk, &ed.jwk, &oct]);
    assert_eq!(
        set.keys.len(),
        4,
        "the oct key is parsed (and must still never be used)"
    );

    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let name = format!("{alg:?}");
        for secret in secrets {
            let mut forged_header = Header::new(alg);
            forged_header.kid = Some(rsa.kid.clone());
            let forged = jsonwebtoken::encode(
                &forged_header,
                &good_claims(alg),
                &EncodingKey::from_secret(secret),
            )
            .unwrap();
            // Refused even when the caller lists the HMAC algorithm as allowed.
            for allowed in [
                &DEFAULT_ALGORITHMS[..],
                &[alg, Algorithm::RS256][..],
                &[alg][..],
            ] {
                match header(&forged, allowed) {
                    Err(IdTokenError::UnsupportedAlgorithm(got)) => assert_eq!(got, name),
                    other => panic!(
                        "{name} with the public key: expected UnsupportedAlgorithm, got {other:?}"
                    ),
                }
            }
            // Even if the header were trusted as RS256 the signature does not verify.
            let keys = candidate_keys(&set, Algorithm::RS256, Some(&rsa.kid));
            assert_eq!(keys.len(), 1);
            let result = validate(&forged, Algorithm::RS256, &keys, &expectations());
            assert_err!(result, IdTokenError::BadSignature);
        }
        // And no key of the set is ever a candidate for HMAC, by kid or without one.
        assert!(
            candidate_keys(&set, alg, Some(&rsa.kid)).is_empty(),
            "{name} candidate by kid"
        );
        assert!(
            candidate_keys(&set, alg, None).is_empty(),
            "{name} candidate without kid"
        );
    }
}

#[test]
fn client_refuses_hmac_in_its_allow_list() {
    let mut config = ProviderConfig::oidc(ISSUER, CLIENT_ID).with_secret("s");
    config.id_token_algorithms = vec![Algorithm::RS256, Algorithm::HS256];
    let result = Client::builder(config).build();
    assert_err!(result, ConfigError::Invalid { .. });
}

#[test]
fn id_token_signed_by_another_key_than_its_kid() {
    let a = es256_key("key-a");
    let b = es256_key("key-b");
    let set = key_set(&[&a.jwk, &b.jwk]);
    let token = sign_as(
        &a,
        Algorithm::ES256,
        Some("key-b"),
        &good_claims(Algorithm::ES256),
    );
    let (alg, kid) = header(&token, &DEFAULT_ALGORITHMS).unwrap();
    let keys = candidate_keys(&set, alg, kid.as_deref());
    assert_eq!(keys.len(), 1, "only key B is a candidate");
    let result = validate(&token, alg, &keys, &expectations());
    assert_err!(result, IdTokenError::BadSignature);
    // A tampered payload fails as well.
    let good = sign(&a, &good_claims(Algorithm::ES256));
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil = b64(with(good_claims(Algorithm::ES256), |c| {
        c.insert("sub".into(), json!("admin"));
    })
    .to_string()
    .as_bytes());
    parts[1] = &evil;
    let result = check(&parts.join("."), &set, &expectations());
    assert_err!(result, IdTokenError::BadSignature);
}

#[test]
fn id_token_kid_not_in_the_set() {
    let a = es256_key("key-a");
    let set = key_set(&[&a.jwk]);
    assert!(candidate_keys(&set, Algorithm::ES256, Some("key-z")).is_empty());
    // Without a kid every fitting key is a candidate.
    assert_eq!(candidate_keys(&set, Algorithm::ES256, None).len(), 1);
    let token = sign_as(&a, Algorithm::ES256, None, &good_claims(Algorithm::ES256));
    check(&token, &set, &expectations()).expect("no kid: the only key is tried");
    // The kid names a key of another type: no candidate.
    let ed = eddsa_key("ed-1");
    let set = key_set(&[&a.jwk, &ed.jwk]);
    assert!(candidate_keys(&set, Algorithm::ES256, Some("ed-1")).is_empty());
    assert!(candidate_keys(&set, Algorithm::EdDSA, Some("key-a")).is_empty());
    assert!(candidate_keys(&set, Algorithm::RS256, None).is_empty());
    assert!(candidate_keys(&set, Algorithm::ES384, None).is_empty());
}

#[test]
fn jwks_with_unsupported_keys_keeps_the_good_one() {
    let good = es256_key("good");
    let document = json!({
        "keys": [
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AAAA", "y": "AAAA"},
            {"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AAAA", "y": "AAAA"},
            {"kty": "RSA", "kid": "rsa-no-n"},
            {"garbage": true},
            "not an object",
            42,
            null,
            good.jwk,
        ],
        "other": "member",
    });
    let set = KeySet::parse(&document);
    assert!(
        set.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some("good")),
        "the good key is parsed: {set:?}"
    );
    assert_eq!(
        candidate_keys(&set, Algorithm::ES256, Some("good")).len(),
        1
    );
    assert!(candidate_keys(&set, Algorithm::ES256, Some("p521")).is_empty());
    // With and without a kid, the token signed by the good key validates.
    let token = sign(&good, &good_claims(Algorithm::ES256));
    check(&token, &set, &expectations()).expect("good key found among odd ones");
    let token = sign_as(
        &good,
        Algorithm::ES256,
        None,
        &good_claims(Algorithm::ES256),
    );
    check(&token, &set, &expectations()).expect("good key tried among odd ones");

    // Documents without keys give an empty set rather than an error.
    for document in [json!({}), json!({"keys": "nope"}), json!([]), json!(null)] {
        assert!(KeySet::parse(&document).keys.is_empty(), "{document}");
    }
}

#[test]
fn jwks_malformed_key_material_is_skipped_not_fatal() {
    let good_ec = es256_key("ec");
    let good_ed = eddsa_key("ed");
    // Keys with the right type and curve but broken material, listed before the good ones.
    let bad_ec = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
    let bad_ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
    let set = key_set(&[&bad_ec, &bad_ed, &good_ec.jwk, &good_ed.jwk]);
    let token = sign_as(
        &good_ec,
        Algorithm::ES256,
        None,
        &good_claims(Algorithm::ES256),
    );
    check(&token, &set, &expectations()).expect("the broken EC key is passed over");
    let token = sign_as(
        &good_ed,
        Algorithm::EdDSA,
        None,
        &good_claims(Algorithm::EdDSA),
    );
    check(&token, &set, &expectations()).expect("the broken Ed25519 key is passed over");
    // Only the broken key: a bad signature, not a panic (jsonwebtoken 11 slices `x` to 32
    // bytes, so such a key must never reach it).
    let set = key_set(&[&bad_ed]);
    assert!(candidate_keys(&set, Algorithm::EdDSA, None).is_empty());
    let result = check(&token, &set, &expectations());
    assert_err!(result, IdTokenError::BadSignature);
    // A longer x is not an Ed25519 key either (it would be silently truncated).
    let mut long_x = URL_SAFE_NO_PAD
        .decode(good_ed.jwk["x"].as_str().unwrap())
        .unwrap();
    long_x.push(0);
    let long_ed = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&long_x)});
    assert!(candidate_keys(&key_set(&[&long_ed]), Algorithm::EdDSA, None).is_empty());
    assert_eq!(
        candidate_keys(&key_set(&[&good_ed.jwk]), Algorithm::EdDSA, None).len(),
        1
    );
}

#[test]
fn jwks_encryption_keys_are_not_candidates() {
    let key = es256_key("k");
    let mut enc = key.jwk.clone();
    enc["use"] = json!("enc");
    let set = key_set(&[&enc]);
    assert_eq!(set.keys.len(), 1);
    assert!(candidate_keys(&set, Algorithm::ES256, Some("k")).is_empty());
    assert!(candidate_keys(&set, Algorithm::ES256, None).is_empty());
    let token = sign(&key, &good_claims(Algorithm::ES256));
    let result = check(&token, &set, &expectations());
    assert_err!(result, IdTokenError::BadSignature);

    // No `use` is fine; a declared alg must be the token's.
    let mut bare = key.jwk.clone();
    bare.as_object_mut().unwrap().remove("use");
    assert_eq!(
        candidate_keys(&key_set(&[&bare]), Algorithm::ES256, Some("k")).len(),
        1
    );
    let mut declared = key.jwk.clone();
    declared["alg"] = json!("ES256");
    assert_eq!(
        candidate_keys(&key_set(&[&declared]), Algorithm::ES256, Some("k")).len(),
        1
    );
    declared["alg"] = json!("RS256");
    assert!(candidate_keys(&key_set(&[&declared]), Algorithm::ES256, Some("k")).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. Key rotation through the client
// ---------------------------------------------------------------------------------------------

/// A loopback OIDC provider whose key set can be replaced, counting key-set fetches.
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
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
                get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let document = jwks.lock().unwrap().clone();
                    async move { axum::Json(document) }
                })
            });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            jwks,
            jwks_fetches,
            metadata_fetches,
            server,
        }
    }

    fn set_keys(&self, keys: &[&Value]) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    fn client(&self) -> Client {
        Client::builder(ProviderConfig::oidc(&self.issuer, CLIENT_ID).with_secret("s"))
            .clock(|| NOW)
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

    // Rotation: the provider now publishes key 2 only.
    provider.set_keys(&[&key2.jwk]);
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

    // A kid the provider does not have: one refetch, then NoMatchingKey (no loop).
    let token3 = sign_as(
        &key2,
        Algorithm::EdDSA,
        Some("key-3"),
        &provider.claims(Algorithm::EdDSA),
    );
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

// ---------------------------------------------------------------------------------------------
// 3. Token responses
// ---------------------------------------------------------------------------------------------

fn response(status: u16, content_type: Option<&str>, body: &str) -> RawResponse {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    }
    RawResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn json_response(status: u16, body: &str) -> RawResponse {
    response(status, Some("application/json; charset=utf-8"), body)
}

fn token_body(expires_in: &str) -> String {
    format!(r#"{{"access_token":"secret-value","token_type":"Bearer","expires_in":{expires_in}}}"#)
}

#[test]
fn token_expires_in_shapes() {
    for (expires_in, expected) in [
        ("3600", Some(NOW + 3600)),
        (r#""3600""#, Some(NOW + 3600)),
        (r#"" 3600 ""#, Some(NOW + 3600)),
        ("7200.5", Some(NOW + 7200)),
        (r#""7200.5""#, Some(NOW + 7200)),
        ("1e9", Some(NOW + 1_000_000_000)),
        ("1E9", Some(NOW + 1_000_000_000)),
        ("null", None),
        ("-5", Some(NOW)),
    ] {
        let token = parse_token_response(&json_response(200, &token_body(expires_in)), NOW)
            .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e:?}"));
        assert_eq!(token.expires_at(), expected, "expires_in {expires_in}");
        assert_eq!(token.access_token(), "secret-value");
    }
    let token = parse_token_response(
        &json_response(
            200,
            r#"{"access_token":"secret-value","token_type":"Bearer"}"#,
        ),
        NOW,
    )
    .unwrap();
    assert_eq!(token.expires_at(), None);
    for bad in [r#""soon""#, "true", "[3600]", "{}"] {
        let result = parse_token_response(&json_response(200, &token_body(bad)), NOW);
        match result {
            Err(TokenError::InvalidResponse { reason, body }) => {
                assert!(reason.contains("expires_in"), "{reason}");
                assert!(!body.contains("secret-value"), "{body}");
            }
            other => panic!("expires_in {bad}: expected InvalidResponse, got {other:?}"),
        }
    }
}

#[test]
fn token_type_any_case_bearer_only() {
    for kind in ["bearer", "BEARER", "Bearer"] {
        let body = format!(r#"{{"access_token":"secret-value","token_type":"{kind}"}}"#);
        let token = parse_token_response(&json_response(200, &body), NOW)
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert_eq!(token.token_type(), kind);
    }
    let body = r#"{"access_token":"secret-value","token_type":"mac"}"#;
    match parse_token_response(&json_response(200, body), NOW) {
        Err(TokenError::UnsupportedTokenType(kind)) => assert_eq!(kind, "mac"),
        other => panic!("expected UnsupportedTokenType, got {other:?}"),
    }
    let body =
        r#"{"access_token":"secret-value","refresh_token":"secret-value","expires_in":3600}"#;
    match parse_token_response(&json_response(200, body), NOW) {
        Err(error @ TokenError::InvalidResponse { .. }) => {
            let TokenError::InvalidResponse { reason, body } = &error else {
                unreachable!()
            };
            assert!(reason.contains("token_type"), "{reason}");
            assert!(body.contains("[redacted]"), "{body}");
            assert!(!format!("{error:?}").contains("secret-value"), "{error:?}");
            assert!(!error.to_string().contains("secret-value"), "{error}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    let body = r#"{"access_token":"secret-value","token_type":7}"#;
    let result = parse_token_response(&json_response(200, body), NOW);
    assert_err!(result, TokenError::InvalidResponse { .. });
    for body in [
        r#"{"token_type":"Bearer"}"#,
        r#"{"access_token":"","token_type":"Bearer"}"#,
    ] {
        let result = parse_token_response(&json_response(200, body), NOW);
        assert_err!(result, TokenError::InvalidResponse { ref reason, .. } if reason.contains("access_token"));
    }
}

#[test]
fn token_rfc_error_body() {
    let body = r#"{"error":"invalid_grant","error_description":"x"}"#;
    match parse_token_response(&json_response(400, body), NOW) {
        Err(TokenError::Provider { status, error }) => {
            assert_eq!(status, 400);
            assert_eq!(error.code, Some(ErrorCode::InvalidGrant));
            assert_eq!(error.error, "invalid_grant");
            assert_eq!(error.description.as_deref(), Some("x"));
            assert_eq!(error.uri, None);
        }
        other => panic!("expected Provider, got {other:?}"),
    }
    // An unregistered code is kept as sent.
    let body = r#"{"error":"slow_down_please"}"#;
    match parse_token_response(&json_response(401, body), NOW) {
        Err(TokenError::Provider { status: 401, error }) => {
            assert_eq!(error.code, None);
            assert_eq!(error.error, "slow_down_please");
        }
        other => panic!("expected Provider, got {other:?}"),
    }
    // A form-encoded error body (old GitHub style) is an error body too.
    let form = response(
        200,
        Some("application/x-www-form-urlencoded"),
        "error=invalid_client&error_description=bad",
    );
    match parse_token_response(&form, NOW) {
        Err(TokenError::Provider { status: 200, error }) => {
            assert_eq!(error.code, Some(ErrorCode::InvalidClient))
        }
        other => panic!("expected Provider, got {other:?}"),
    }
}

#[test]
fn token_eternaltwin_422_is_kept_whole() {
    let body = r#"{"code":"Q1010","message":"invalid format for oauth code parameter","extra":"InvalidToken"}"#;
    match parse_token_response(&json_response(422, body), NOW) {
        Err(TokenError::UnexpectedResponse { status, body: got }) => {
            assert_eq!(status, 422);
            assert_eq!(got, body);
        }
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
    let result = parse_token_response(&response(500, Some("text/plain"), "oops"), NOW);
    assert_err!(result, TokenError::UnexpectedResponse { status: 500, ref body } if body == "oops");
}

#[test]
fn token_redirect_is_not_followed() {
    let mut redirect = response(302, None, "");
    redirect.headers.insert(
        LOCATION,
        HeaderValue::from_static("https://elsewhere.example/login"),
    );
    match parse_token_response(&redirect, NOW) {
        Err(TokenError::Redirected { status, location }) => {
            assert_eq!(status, 302);
            assert_eq!(location, "https://elsewhere.example/login");
        }
        other => panic!("expected Redirected, got {other:?}"),
    }
    // Even with a token-looking body.
    let mut redirect = json_response(307, &token_body("3600"));
    redirect
        .headers
        .insert(LOCATION, HeaderValue::from_static("/x"));
    let result = parse_token_response(&redirect, NOW);
    assert_err!(result, TokenError::Redirected { status: 307, .. });
}

#[test]
fn token_html_is_an_invalid_response() {
    let html = "<!doctype html><html><body>Sign in</body></html>";
    match parse_token_response(&response(200, Some("text/html; charset=utf-8"), html), NOW) {
        Err(TokenError::InvalidResponse { reason, body }) => {
            assert!(reason.contains("not a JSON object"), "{reason}");
            assert_eq!(body, html);
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    let result = parse_token_response(&json_response(200, r#"["secret-value"]"#), NOW);
    assert_err!(result, TokenError::InvalidResponse { .. });
    // A long non-JSON body is cut in the error.
    let long = "é".repeat(1000);
    match parse_token_response(&response(200, Some("text/plain"), &long), NOW) {
        Err(TokenError::InvalidResponse { body, .. }) => {
            assert!(body.len() < 600, "{}", body.len())
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[test]
fn token_full_response_and_debug_redaction() {
    let body = r#"{
        "access_token": "secret-value-access",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "secret-value-refresh",
        "id_token": "secret-value-id",
        "scope": ["openid", "profile"],
        "custom": 1
    }"#;
    let token = parse_token_response(&json_response(200, body), NOW).expect("full token response");
    assert_eq!(token.access_token(), "secret-value-access");
    assert_eq!(token.refresh_token(), Some("secret-value-refresh"));
    assert_eq!(token.id_token(), Some("secret-value-id"));
    assert_eq!(token.scope(), Some("openid profile"));
    assert_eq!(token.extra().get("custom"), Some(&json!(1)));
    assert!(!token.extra().contains_key("access_token"));
    assert!(token.expires_within(NOW + 3600, 0));
    assert!(!token.expires_within(NOW, 60));
    let debug = format!("{token:?}");
    assert!(!debug.contains("secret-value"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    // The update hook's payload prints the same way.
    let update = crate::TokenUpdate {
        previous: token.clone(),
        current: token,
    };
    assert!(!format!("{update:?}").contains("secret-value"));
}

#[test]
fn token_form_encoded_response() {
    let form = "access_token=secret-value&token_type=bearer&scope=repo%2Cgist&expires_in=28800";
    let token = parse_token_response(
        &response(200, Some("application/x-www-form-urlencoded"), form),
        NOW,
    )
    .expect("form-encoded token response");
    assert_eq!(token.access_token(), "secret-value");
    assert_eq!(token.scope(), Some("repo,gist"));
    assert_eq!(token.expires_at(), Some(NOW + 28800));
}

#[test]
fn token_invalid_form_encoded_response_does_not_leak_tokens() {
    // The same redaction as for JSON bodies must apply to form-encoded ones.
    for form in [
        "access_token=secret-value&refresh_token=secret-value",
        "access_token=secret-value&token_type=bearer&expires_in=soon",
    ] {
        match parse_token_response(
            &response(200, Some("application/x-www-form-urlencoded"), form),
            NOW,
        ) {
            Err(error @ TokenError::InvalidResponse { .. }) => {
                let TokenError::InvalidResponse { body, .. } = &error else {
                    unreachable!()
                };
                assert!(body.contains("[redacted]"), "{body}");
                assert!(!format!("{error:?}").contains("secret-value"), "{error:?}");
                assert!(!error.to_string().contains("secret-value"), "{error}");
            }
            other => panic!("expected InvalidResponse, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Callbacks
// ---------------------------------------------------------------------------------------------

#[test]
fn callback_from_query() {
    let callback = Callback::from_query(
        "code=SplxlOBeZQQYbYS6WxSbIA&state=xyz%2Fabc&iss=https%3A%2F%2Fissuer.example&unknown=1",
    );
    assert_eq!(callback.code.as_deref(), Some("SplxlOBeZQQYbYS6WxSbIA"));
    assert_eq!(callback.state.as_deref(), Some("xyz/abc"));
    assert_eq!(callback.iss.as_deref(), Some(ISSUER));
    assert_eq!(callback.error, None);
    assert_eq!(callback.error_description, None);
    assert_eq!(callback.error_uri, None);

    let callback = Callback::from_query(
        "?error=access_denied&error_description=The+user+said+no&error_uri=https%3A%2F%2Fe.example%2Fdoc&state=s",
    );
    assert_eq!(callback.code, None);
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    assert_eq!(
        callback.error_description.as_deref(),
        Some("The user said no")
    );
    assert_eq!(callback.error_uri.as_deref(), Some("https://e.example/doc"));
    assert_eq!(callback.state.as_deref(), Some("s"));
}

#[test]
fn callback_first_value_wins() {
    let callback = Callback::from_query(
        "code=first&state=one&code=second&state=two&error=e1&error=e2&error_description=d1&error_description=d2&iss=i1&iss=i2",
    );
    assert_eq!(callback.code.as_deref(), Some("first"));
    assert_eq!(callback.state.as_deref(), Some("one"));
    assert_eq!(callback.error.as_deref(), Some("e1"));
    assert_eq!(callback.error_description.as_deref(), Some("d1"));
    assert_eq!(callback.iss.as_deref(), Some("i1"));
}

#[test]
fn callback_empty_query() {
    for query in ["", "?", "foo=bar"] {
        let callback = Callback::from_query(query);
        assert!(
            callback.code.is_none()
                && callback.state.is_none()
                && callback.error.is_none()
                && callback.error_description.is_none()
                && callback.error_uri.is_none()
                && callback.iss.is_none(),
            "{query:?}: {callback:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery and the TOML registry

/// Serves `router` on a loopback port; returns its origin.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    origin
}

fn oidc_client(issuer: &str) -> Client {
    Client::builder(
        ProviderConfig::oidc(issuer, "client-1")
            .with_secret("s")
            .with_redirect_uri("http://localhost:8000/cb".parse().unwrap()),
    )
    .build()
    .unwrap()
}

#[tokio::test]
async fn discovery_of_a_web_page_is_a_clear_error() {
    // A site whose every path answers its HTML page (Eternaltwin with its front-end).
    let origin = serve(
        axum::Router::new()
            .fallback(|| async { axum::response::Html("<!doctype html><title>app</title>") }),
    )
    .await;
    match oidc_client(&origin).metadata().await {
        Err(DiscoveryError::NotJson { url, content_type }) => {
            assert_eq!(url, format!("{origin}/.well-known/openid-configuration"));
            assert_eq!(content_type, "text/html");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn discovery_falls_back_to_rfc8414_with_the_issuer_path() {
    use axum::routing::get;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server/tenant",
            get(
                |axum::extract::State(issuer): axum::extract::State<String>| async move {
                    axum::Json(json!({
                        "issuer": issuer,
                        "authorization_endpoint": format!("{issuer}/authorize"),
                        "token_endpoint": format!("{issuer}/token"),
                    }))
                },
            ),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                log.lock().unwrap().push(request.uri().path().to_owned());
                next.run(request)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/tenant");
    let router = router.with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let client = oidc_client(&issuer);
    let authorization = client.start_authorization().await.unwrap();
    assert_eq!(
        authorization.url.as_str().split('?').next(),
        Some(format!("{issuer}/authorize").as_str())
    );
    client.start_authorization().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "/tenant/.well-known/openid-configuration".to_owned(),
            "/.well-known/oauth-authorization-server/tenant".to_owned(),
        ],
        "OIDC location first, then RFC 8414 §3.1; then cached"
    );
}

#[tokio::test]
async fn discovery_refuses_metadata_of_another_issuer() {
    let router = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(|| async { axum::Json(json!({"issuer": "https://evil.example"})) }),
    );
    let origin = serve(router).await;
    match oidc_client(&origin).metadata().await {
        Err(DiscoveryError::IssuerMismatch { expected, got }) => {
            assert_eq!(expected, origin);
            assert_eq!(got, "https://evil.example");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn registry_from_toml() {
    let key = crate::StateKey::new([1u8; 32]).unwrap();
    let registry = crate::Registry::from_toml(
        r#"
[providers.eternaltwin]
preset = "eternaltwin"
url = "https://eternaltwin.example/some/path"
client_id = "app@clients"
client_secret = "s"
redirect_uri = "https://app.example/cb"

[providers.login]
issuer = "https://login.example"
client_id = "app"
client_secret = "s"
token_endpoint_auth_method = "client_secret_post"
scopes = ["openid", "email"]
leeway = 5

[providers.plain]
authorization_endpoint = "https://plain.example/auth"
token_endpoint = "https://plain.example/token"
client_id = "app"
token_endpoint_auth_method = "none"
token_request_format = "json"
extra_authorize_params = { audience = "api" }
"#,
        &key,
    )
    .unwrap();
    assert_eq!(
        registry.names().collect::<Vec<_>>(),
        ["eternaltwin", "login", "plain"]
    );

    let etw = registry.get("eternaltwin").unwrap();
    assert_eq!(etw.name(), "eternaltwin");
    let authorization = etw.start_authorization().await.unwrap();
    assert!(authorization.url.as_str().starts_with(
        "https://eternaltwin.example/oauth/authorize?response_type=code&client_id=app%40clients"
    ));
    assert!(authorization.url.as_str().contains("&access_type=offline"));
    assert_eq!(etw.config().body_format, crate::BodyFormat::Json);
    assert_eq!(etw.config().basic_encoding, crate::BasicEncoding::Raw);

    let login = registry.get("login").unwrap().config();
    assert!(login.discovery);
    assert!(matches!(
        login.auth_method,
        crate::AuthMethod::ClientSecretPost
    ));
    assert_eq!(login.leeway, 5);

    let plain = registry.get("plain").unwrap();
    assert!(matches!(
        plain.config().auth_method,
        crate::AuthMethod::None
    ));
    match plain.start_authorization().await {
        Err(crate::StartError::MissingRedirectUri) => {}
        other => panic!("{other:?}"),
    }

    let invalid = |text: &str| match crate::Registry::from_toml(text, &key) {
        Err(ConfigError::Invalid { provider, reason }) => format!("{provider}: {reason}"),
        Err(ConfigError::Toml(e)) => format!("toml: {e}"),
        other => panic!("{other:?}"),
    };
    assert!(
        invalid("[providers.x]\npreset = \"eternaltwin\"\nclient_id = \"a\"").contains("needs url")
    );
    assert!(invalid(
        "[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"\nclient_sekret = \"s\""
    )
    .starts_with("toml:"));
    assert!(
        invalid("[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"")
            .contains("needs a client secret")
    );
    assert!(invalid(
        "[providers.x]\nissuer = \"https://a\"\nclient_id = \"a\"\nclient_secret = \"s\"\nid_token_algorithms = [\"HS256\"]"
    )
    .contains("HMAC"));
}

// ---------------------------------------------------------------------------------------------
// The HTTP layer: compliance hooks, no redirects, timeouts, API verbs

/// A provider whose token endpoint omits `token_type`, wants a header of its own, and whose
/// API echoes what it received.
async fn quirky_provider() -> String {
    use axum::http::HeaderMap as Headers;
    use axum::routing::{any, post};
    let router = axum::Router::new()
        .route(
            "/token",
            post(|headers: Headers| async move {
                if headers.get("x-quirk").is_none() {
                    return axum::Json(
                        json!({"error": "invalid_request", "error_description": "x-quirk"}),
                    )
                    .into_response_with(StatusCode::BAD_REQUEST);
                }
                axum::Json(json!({"access_token": "fresh-access", "expires_in": "60"}))
                    .into_response_with(StatusCode::OK)
            }),
        )
        .route(
            "/moved",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, "/token")]) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/api/{*rest}",
            any(
                |method: axum::http::Method, headers: Headers, body: String| async move {
                    axum::Json(json!({
                        "method": method.as_str(),
                        "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()),
                        "content_type": headers.get("content-type").and_then(|v| v.to_str().ok()),
                        "body": body,
                    }))
                },
            ),
        );
    serve(router).await
}

trait WithStatus {
    fn into_response_with(self, status: StatusCode) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> WithStatus for T {
    fn into_response_with(self, status: StatusCode) -> axum::response::Response {
        let mut response = self.into_response();
        *response.status_mut() = status;
        response
    }
}

fn quirky_client(origin: &str, token_path: &str, hooks: crate::Hooks) -> Client {
    let url = |path: &str| format!("{origin}{path}").parse().unwrap();
    let mut config =
        ProviderConfig::oauth2(url("/authorize"), url(token_path), "app").with_secret("s");
    config.api_base = Some(url("/api/"));
    config.timeout = std::time::Duration::from_millis(300);
    Client::builder(config).hooks(hooks).build().unwrap()
}

fn old_token() -> crate::Token {
    crate::Token::new("old-access", Some(0)).with_refresh_token("old-refresh")
}

#[tokio::test]
async fn compliance_hooks_rewrite_requests_and_responses() {
    let origin = quirky_provider().await;
    // Without hooks: the provider refuses the request, and would send no token_type.
    match quirky_client(&origin, "/token", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Provider { status: 400, error })) => {
            assert_eq!(error.description.as_deref(), Some("x-quirk"))
        }
        other => panic!("{other:?}"),
    }
    let request_only = crate::Hooks::default().on_token_request(|request| {
        request
            .headers
            .insert("x-quirk", HeaderValue::from_static("1"));
    });
    match quirky_client(&origin, "/token", request_only)
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::InvalidResponse { reason, .. })) => {
            assert!(reason.contains("token_type"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let hooks = crate::Hooks::default()
        .on_token_request(|request| {
            request
                .headers
                .insert("x-quirk", HeaderValue::from_static("1"));
        })
        .on_token_response(|response| {
            let mut body: Value = serde_json::from_slice(&response.body).unwrap();
            body["token_type"] = json!("Bearer");
            response.body = serde_json::to_vec(&body).unwrap();
        });
    let fresh = quirky_client(&origin, "/token", hooks)
        .refresh(&old_token())
        .await
        .unwrap();
    assert_eq!(fresh.access_token(), "fresh-access");
    assert_eq!(
        fresh.refresh_token(),
        Some("old-refresh"),
        "no new refresh token: the old one is kept"
    );
    assert!(fresh.expires_at().unwrap() > 0, "expires_in as a string");
}

#[tokio::test]
async fn token_calls_never_follow_redirects_and_time_out() {
    let origin = quirky_provider().await;
    match quirky_client(&origin, "/moved", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Redirected { status, location })) => {
            assert_eq!((status, location.as_str()), (307, "/token"))
        }
        other => panic!("{other:?}"),
    }
    match quirky_client(&origin, "/slow", crate::Hooks::default())
        .refresh(&old_token())
        .await
    {
        Err(crate::RefreshError::Token(TokenError::Transport(crate::TransportError::Http {
            source,
            ..
        }))) => {
            assert!(source.is_timeout(), "{source:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn api_verbs_carry_the_bearer_token_and_body() {
    let origin = quirky_provider().await;
    let client = quirky_client(&origin, "/token", crate::Hooks::default());
    let api = client.authorized(crate::Token::new("the-access", None));
    let echo = |response: crate::ApiResponse| response.json::<Value>().unwrap();
    let got = echo(api.get("/api/items").await.unwrap());
    assert_eq!(
        (got["method"].as_str(), got["authorization"].as_str()),
        (Some("GET"), Some("Bearer the-access"))
    );
    let got = echo(
        api.post("items", crate::Body::json(&json!({"a": 1})).unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(got["method"], "POST");
    assert_eq!(got["content_type"], "application/json");
    assert_eq!(got["body"], r#"{"a":1}"#);
    let got = echo(
        api.put("items/1", crate::Body::form(&[("b", "2 3")]))
            .await
            .unwrap(),
    );
    assert_eq!(got["method"], "PUT");
    assert_eq!(got["body"], "b=2+3");
    let got = echo(api.delete(&format!("{origin}/api/items/1")).await.unwrap());
    assert_eq!(got["method"], "DELETE");
    // The token never goes to another origin.
    for elsewhere in ["http://evil.example/api/x", "//evil.example/x"] {
        match api.get(elsewhere).await {
            Err(crate::ApiError::BadPath(path)) => assert_eq!(path, elsewhere),
            other => panic!("{elsewhere}: {other:?}"),
        }
    }
    // An expired token without a refresh token is sent as is; the API decides.
    let expired = client.authorized(crate::Token::new("stale", Some(0)));
    assert_eq!(
        echo(expired.get("x").await.unwrap())["authorization"],
        "Bearer stale"
    );
}

// ---------------------------------------------------------------------------------------------
// JWT access tokens (RFC 9068 §4), as a resource server checks them

#[test]
fn jwt_access_token_matrix() {
    use crate::id_token::{check_access_token, verify_signature};
    let key = es256_key("at-1");
    let keys = candidate_keys(&key_set(&[&key.jwk]), Algorithm::ES256, Some("at-1"));
    let claims = json!({
        "iss": ISSUER, "sub": "user-1", "aud": ["https://api.example"], "exp": NOW + 600,
        "iat": NOW - 5, "jti": "j-1", "client_id": "c-1", "scope": "items:read items:write",
    });
    let at_jwt = |claims: &Value, typ: &str| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("at-1".into());
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    };
    let check = |token: &str, audience: &str| {
        let verified = verify_signature(token, Algorithm::ES256, &keys)?;
        check_access_token(token, verified, ISSUER, audience, LEEWAY, NOW)
    };
    let token = at_jwt(&claims, "at+jwt");
    let ok = check(&token, "https://api.example").unwrap();
    assert_eq!(
        (ok.subject.as_str(), ok.client_id.as_deref()),
        ("user-1", Some("c-1"))
    );
    assert_eq!(ok.scopes, ["items:read", "items:write"]);
    assert!(check(
        &at_jwt(&claims, "application/at+jwt"),
        "https://api.example"
    )
    .is_ok());
    // An ID token (typ JWT) is not an access token.
    assert!(matches!(
        check(&at_jwt(&claims, "JWT"), "https://api.example"),
        Err(IdTokenError::WrongType { .. })
    ));
    assert!(matches!(
        check(&token, "https://other.example"),
        Err(IdTokenError::WrongAudience { .. })
    ));
    for missing in ["jti", "client_id", "iat", "sub"] {
        let token = at_jwt(
            &with(claims.clone(), |c| {
                c.remove(missing);
            }),
            "at+jwt",
        );
        match check(&token, "https://api.example") {
            Err(IdTokenError::MissingClaim(name)) => assert_eq!(name, missing),
            other => panic!("without {missing}: {other:?}"),
        }
    }
    let expired = at_jwt(
        &with(claims.clone(), |c| {
            c.insert("exp".into(), json!(NOW - LEEWAY as i64 - 1));
        }),
        "at+jwt",
    );
    assert!(matches!(
        check(&expired, "https://api.example"),
        Err(IdTokenError::Expired { .. })
    ));
    let foreign = at_jwt(
        &with(claims, |c| {
            c.insert("iss".into(), json!("https://evil.example"));
        }),
        "at+jwt",
    );
    assert!(matches!(
        check(&foreign, "https://api.example"),
        Err(IdTokenError::WrongIssuer { .. })
    ));
}
