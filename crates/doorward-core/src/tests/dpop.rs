//! DPoP (RFC 9449) at the engine: tokens bound to the proof's key, proofs checked against the
//! request, replays and forgeries refused with `invalid_dpop_proof`, nonces, `dpop_jkt`, and
//! the rules of a protected resource.

use std::collections::HashMap;

use doorward_proto::{ErrorCode, TokenType};
use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::support::*;
use crate::dpop::{access_token_hash, DpopHeader, Presentation, Scheme};
use crate::jose::SigningAlg;
use crate::model::AuthMethod;
use crate::request::TokenRequest;
use crate::{EngineConfig, Error};

const TOKEN_URL: &str = "http://localhost/oauth/token";
const USERINFO_URL: &str = "http://localhost/oauth/userinfo";
const NOW: i64 = 1_800_000_000;
const PUBLIC: &str = "spa@clients";

struct Key {
    der: Vec<u8>,
    jwk: Jwk,
}

fn new_key() -> Key {
    let der = crate::jose::generate_der(SigningAlg::Es256, &crate::clock::OsRandom);
    let jwk = crate::jose::public_jwk(SigningAlg::Es256, &der).unwrap();
    Key { der, jwk }
}

impl Key {
    fn thumbprint(&self) -> String {
        self.jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap()
    }

    fn sign(&self, header: Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &header,
            claims,
            &crate::jose::encoding_key(SigningAlg::Es256, &self.der),
        )
        .unwrap()
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        header
    }

    /// A proof for `htm` `htu` at `iat`, with these extra claims.
    fn proof_with(&self, htm: &str, htu: &str, iat: i64, extra: serde_json::Value) -> String {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": htm,
            "htu": htu,
            "iat": iat,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.sign(self.header(), &claims)
    }

    fn token_proof(&self) -> String {
        self.proof_with("POST", TOKEN_URL, NOW, json!({}))
    }
}

/// A fresh code of the default client (`extra` asked at authorization) and its redemption.
async fn redemption(h: &Harness, extra: &[(&str, &str)]) -> TokenRequest {
    let code = h.code(extra).await;
    basic_request(
        KEY,
        SECRET,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
}

fn with_proof(mut request: TokenRequest, proof: &str) -> TokenRequest {
    request.dpop = DpopHeader::One(proof.to_owned());
    request
}

fn public_request(params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        params: params
            .iter()
            .chain(&[("client_id", PUBLIC)])
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..TokenRequest::default()
    }
}

fn error_of<T: std::fmt::Debug>(result: Result<T, Error>) -> (ErrorCode, String) {
    match result {
        Err(Error::OAuth(e)) => (e.code, e.description.into_owned()),
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

async fn bound_harness(config: EngineConfig) -> Harness {
    let h = harness_with(config).await;
    let mut spec = crate::testing::client(PUBLIC, "SPA", "http://localhost:8003/cb", "unused");
    spec.policy.auth_method = Some(AuthMethod::None);
    h.engine.register_client(spec).await.unwrap();
    h
}

/// A code of the public client, with PKCE (and `extra`).
async fn public_code(h: &Harness, extra: &[(&str, &str)]) -> String {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", PUBLIC),
        ("redirect_uri", "http://localhost:8003/cb"),
        ("scope", "openid base"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    let request = h.engine.check_authorization(&pairs(&query)).await.unwrap();
    let answer = h.engine.approve(&h.user, &request).await.unwrap();
    query_param(&answer, "code").unwrap()
}

fn redeem_public(code: &str) -> TokenRequest {
    public_request(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
    ])
}

#[tokio::test]
async fn a_proof_binds_the_tokens_to_its_key_and_introspection_shows_it() {
    let h = harness().await;
    let key = new_key();
    let request = redemption(&h, &[("scope", "openid base")]).await;
    let answer = h
        .engine
        .token(&with_proof(request, &key.token_proof()))
        .await
        .unwrap();
    assert_eq!(answer.token_type, TokenType::DPoP);
    let info = h
        .engine
        .resolve_access_token(&answer.access_token)
        .await
        .unwrap();
    assert_eq!(info.dpop_jkt.as_deref(), Some(key.thumbprint().as_str()));
    let seen = h
        .engine
        .introspect(&basic_request(
            KEY,
            SECRET,
            &[("token", answer.access_token.as_str())],
        ))
        .await
        .unwrap();
    let seen = serde_json::to_value(seen).unwrap();
    assert_eq!(seen["token_type"], "DPoP");
    assert_eq!(seen["cnf"]["jkt"], key.thumbprint());
    // A confidential client's refresh token is not bound: it refreshes with another key,
    // and the new access token is bound to that one.
    let other = new_key();
    let request = basic_request(
        KEY,
        SECRET,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", answer.refresh_token.as_deref().unwrap()),
        ],
    );
    let refreshed = h
        .engine
        .token(&with_proof(request, &other.token_proof()))
        .await
        .unwrap();
    let info = h
        .engine
        .resolve_access_token(&refreshed.access_token)
        .await
        .unwrap();
    assert_eq!(info.dpop_jkt, Some(other.thumbprint()));
}

#[tokio::test]
async fn without_a_proof_tokens_are_bearer_tokens_unless_the_client_is_dpop_bound() {
    let mut config = EngineConfig::default();
    config.grants.client_credentials = true;
    let h = harness_with(config).await;
    let code = h.code(&[]).await;
    let answer = h.redeem(&code).await.unwrap();
    assert_eq!(answer.token_type, TokenType::Bearer);
    assert!(h.token_works(&answer.access_token).await);

    let mut spec = crate::testing::client("bound@clients", "B", "http://localhost:9/cb", "s3cret");
    spec.policy.dpop_bound_access_tokens = true;
    spec.policy.grant_types = Some(vec![crate::model::GrantType::ClientCredentials]);
    h.engine.register_client(spec).await.unwrap();
    let request = basic_request(
        "bound@clients",
        "s3cret",
        &[("grant_type", "client_credentials")],
    );
    let (code, _) = error_of(h.engine.token(&request).await);
    assert_eq!(code, ErrorCode::InvalidDpopProof);
    let key = new_key();
    let answer = h
        .engine
        .token(&with_proof(request, &key.token_proof()))
        .await
        .unwrap();
    assert_eq!(answer.token_type, TokenType::DPoP);
}

#[tokio::test]
async fn bad_proofs_are_refused_and_issue_nothing() {
    let h = harness().await;
    let key = new_key();
    let other = new_key();
    let mut forged_header = key.header();
    forged_header.jwk = Some(other.jwk.clone());
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("dpop+jwt".into());
    hs.jwk = Some(key.jwk.clone());
    let hs_proof = jsonwebtoken::encode(
        &hs,
        &json!({"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": NOW}),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let mut jwt_typ = key.header();
    jwt_typ.typ = Some("JWT".into());
    let mut no_jwk = key.header();
    no_jwk.jwk = None;
    let claims = json!({"jti": "y", "htm": "POST", "htu": TOKEN_URL, "iat": NOW});
    let cases: Vec<(&str, String)> = vec![
        (
            "forged: signed by another key than its jwk",
            key.sign(forged_header, &claims),
        ),
        ("HMAC", hs_proof),
        ("typ JWT", key.sign(jwt_typ, &claims)),
        ("no jwk", key.sign(no_jwk, &claims)),
        (
            "wrong htu",
            key.proof_with("POST", "http://localhost/oauth/other", NOW, json!({})),
        ),
        (
            "wrong host",
            key.proof_with("POST", "http://evil.example/oauth/token", NOW, json!({})),
        ),
        (
            "wrong htm",
            key.proof_with("GET", TOKEN_URL, NOW, json!({})),
        ),
        (
            "future-dated",
            key.proof_with("POST", TOKEN_URL, NOW + 120, json!({})),
        ),
        (
            "too old",
            key.proof_with("POST", TOKEN_URL, NOW - 600, json!({})),
        ),
        ("not a JWS", "abc.def".to_owned()),
        ("garbage", "%%%".to_owned()),
    ];
    for (why, proof) in cases {
        let request = basic_request(
            KEY,
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        );
        let (code, description) = error_of(h.engine.token(&with_proof(request, &proof)).await);
        assert_eq!(code, ErrorCode::InvalidDpopProof, "{why}: {description}");
    }
    // The private key in the header.
    let mut private = serde_json::to_value(&key.jwk).unwrap();
    private["d"] = json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
    let header_json = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private});
    let proof = key.token_proof();
    let mut parts: Vec<&str> = proof.split('.').collect();
    let header_b64 = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        header_json.to_string(),
    );
    parts[0] = &header_b64;
    let request = basic_request(KEY, SECRET, &[("grant_type", "client_credentials")]);
    let (code, description) =
        error_of(h.engine.token(&with_proof(request, &parts.join("."))).await);
    assert_eq!(code, ErrorCode::InvalidDpopProof);
    assert!(description.contains("private"), "{description}");
    // Two DPoP headers.
    let mut request = basic_request(KEY, SECRET, &[("grant_type", "client_credentials")]);
    request.dpop = DpopHeader::Malformed;
    assert_eq!(
        error_of(h.engine.token(&request).await).0,
        ErrorCode::InvalidDpopProof
    );
    // A code survives a bad proof: it was not looked at.
    let code = h.code(&[]).await;
    let request = || {
        basic_request(
            KEY,
            SECRET,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
    };
    let bad = key.proof_with("POST", "http://localhost/elsewhere", NOW, json!({}));
    assert_eq!(
        error_of(h.engine.token(&with_proof(request(), &bad)).await).0,
        ErrorCode::InvalidDpopProof
    );
    assert!(h
        .engine
        .token(&with_proof(request(), &key.token_proof()))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let h = harness().await;
    let key = new_key();
    let proof = key.token_proof();
    let request = redemption(&h, &[]).await;
    h.engine.token(&with_proof(request, &proof)).await.unwrap();
    let request = redemption(&h, &[]).await;
    let (code, description) = error_of(h.engine.token(&with_proof(request, &proof)).await);
    assert_eq!(code, ErrorCode::InvalidDpopProof);
    assert!(description.contains("used already"), "{description}");
}

#[tokio::test]
async fn with_nonces_required_a_proof_needs_the_current_nonce() {
    let mut config = EngineConfig::default();
    config.dpop.require_nonce = true;
    let h = harness_with(config).await;
    let key = new_key();
    let code = h.code(&[]).await;
    let request = || {
        basic_request(
            KEY,
            SECRET,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
    };
    let (error, _) = error_of(
        h.engine
            .token(&with_proof(request(), &key.token_proof()))
            .await,
    );
    assert_eq!(error, ErrorCode::UseDpopNonce);
    let wrong = key.proof_with("POST", TOKEN_URL, NOW, json!({"nonce": "made-up"}));
    assert_eq!(
        error_of(h.engine.token(&with_proof(request(), &wrong)).await).0,
        ErrorCode::UseDpopNonce
    );
    let nonce = h.engine.dpop_nonce().expect("nonces are required");
    let good = key.proof_with("POST", TOKEN_URL, NOW, json!({ "nonce": nonce }));
    let answer = h.engine.token(&with_proof(request(), &good)).await.unwrap();
    assert_eq!(answer.token_type, TokenType::DPoP);
}

#[tokio::test]
async fn a_public_clients_refresh_token_and_a_dpop_jkt_code_need_the_same_key() {
    let h = bound_harness(EngineConfig::default()).await;
    let key = new_key();
    let other = new_key();
    // dpop_jkt binds the code (RFC 9449 §10): another key's proof cannot redeem it, and the
    // failed attempt spends it.
    let code = public_code(&h, &[("dpop_jkt", &key.thumbprint())]).await;
    let (error, _) = error_of(
        h.engine
            .token(&with_proof(redeem_public(&code), &other.token_proof()))
            .await,
    );
    assert_eq!(error, ErrorCode::InvalidGrant);
    let code = public_code(&h, &[("dpop_jkt", &key.thumbprint())]).await;
    let (error, _) = error_of(h.engine.token(&redeem_public(&code)).await);
    assert_eq!(
        error,
        ErrorCode::InvalidDpopProof,
        "no proof for a bound code"
    );
    let code = public_code(&h, &[("dpop_jkt", &key.thumbprint())]).await;
    let answer = h
        .engine
        .token(&with_proof(redeem_public(&code), &key.token_proof()))
        .await
        .unwrap();
    let refresh = answer.refresh_token.unwrap();
    let refresh_request =
        || public_request(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    let (error, _) = error_of(h.engine.token(&refresh_request()).await);
    assert_eq!(
        error,
        ErrorCode::InvalidDpopProof,
        "a bound refresh token without a proof"
    );
    let (error, _) = error_of(
        h.engine
            .token(&with_proof(refresh_request(), &other.token_proof()))
            .await,
    );
    assert_eq!(error, ErrorCode::InvalidGrant, "another key");
    let refreshed = h
        .engine
        .token(&with_proof(refresh_request(), &key.token_proof()))
        .await
        .unwrap();
    assert_eq!(refreshed.token_type, TokenType::DPoP);
    // A malformed dpop_jkt is refused at the authorization endpoint.
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", PUBLIC),
        ("redirect_uri", "http://localhost:8003/cb"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("dpop_jkt", "not-a-thumbprint"),
    ]);
    assert!(h.engine.check_authorization(&query).await.is_err());
}

#[tokio::test]
async fn a_bound_token_needs_the_dpop_scheme_and_a_proof_for_the_request() {
    let h = harness().await;
    let key = new_key();
    let request = redemption(&h, &[("scope", "openid base")]).await;
    let token = h
        .engine
        .token(&with_proof(request, &key.token_proof()))
        .await
        .unwrap()
        .access_token;
    let ath = access_token_hash(&token);
    let presented = |scheme, proof: &DpopHeader, method: &'static str| {
        let proof = proof.clone();
        let token = token.clone();
        let engine = &h.engine;
        async move {
            engine
                .userinfo_presented(&Presentation {
                    token: &token,
                    scheme,
                    dpop: &proof,
                    method,
                    url: USERINFO_URL,
                })
                .await
        }
    };
    // As a bearer token: refused, even by the bearer-only check.
    let (error, _) = error_of(presented(Scheme::Bearer, &DpopHeader::Absent, "GET").await);
    assert_eq!(error, ErrorCode::InvalidToken);
    assert!(!h.token_works(&token).await);
    // DPoP without a proof, without ath, with another key, for another URL.
    let cases = [
        ("no proof", DpopHeader::Absent),
        (
            "no ath",
            DpopHeader::One(key.proof_with("GET", USERINFO_URL, NOW, json!({}))),
        ),
        (
            "another key",
            DpopHeader::One(new_key().proof_with("GET", USERINFO_URL, NOW, json!({ "ath": ath }))),
        ),
        (
            "another URL",
            DpopHeader::One(key.proof_with("GET", TOKEN_URL, NOW, json!({ "ath": ath }))),
        ),
        (
            "another token's ath",
            DpopHeader::One(key.proof_with(
                "GET",
                USERINFO_URL,
                NOW,
                json!({ "ath": access_token_hash("x") }),
            )),
        ),
    ];
    for (why, proof) in cases {
        let (error, description) = error_of(presented(Scheme::Dpop, &proof, "GET").await);
        assert_eq!(error, ErrorCode::InvalidDpopProof, "{why}: {description}");
    }
    let good = DpopHeader::One(key.proof_with("GET", USERINFO_URL, NOW, json!({ "ath": ath })));
    let claims = presented(Scheme::Dpop, &good, "GET").await.unwrap();
    assert!(claims.contains_key("sub"));
    let (error, _) = error_of(presented(Scheme::Dpop, &good, "GET").await);
    assert_eq!(error, ErrorCode::InvalidDpopProof, "the same proof again");
    // A bearer token presented with the DPoP scheme.
    let bearer = h
        .redeem(&h.code(&[("scope", "openid")]).await)
        .await
        .unwrap();
    let proof = DpopHeader::One(key.proof_with(
        "GET",
        USERINFO_URL,
        NOW,
        json!({ "ath": access_token_hash(&bearer.access_token) }),
    ));
    let (error, _) = error_of(
        h.engine
            .userinfo_presented(&Presentation {
                token: &bearer.access_token,
                scheme: Scheme::Dpop,
                dpop: &proof,
                method: "GET",
                url: USERINFO_URL,
            })
            .await,
    );
    assert_eq!(error, ErrorCode::InvalidToken);
}

#[tokio::test]
async fn with_dpop_off_the_header_is_ignored_and_the_metadata_says_nothing() {
    let mut config = EngineConfig::default();
    config.dpop.enabled = false;
    let h = harness_with(config).await;
    let key = new_key();
    let request = redemption(&h, &[]).await;
    let answer = h
        .engine
        .token(&with_proof(request, "garbage"))
        .await
        .unwrap();
    assert_eq!(answer.token_type, TokenType::Bearer);
    assert!(h
        .engine
        .metadata()
        .get("dpop_signing_alg_values_supported")
        .is_none());
    drop(key);
    let on = harness().await;
    assert_eq!(
        on.engine.metadata()["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519"])
    );
}

/// RFC 9864: a proof signed with an Ed25519 key under the name `Ed25519` (node-oidc-provider
/// lists it first) binds like any other; the same key under `EdDSA` too.
#[tokio::test]
async fn ed25519_proofs_by_either_name() {
    use base64::Engine as _;
    let h = harness().await;
    let der = crate::jose::generate_der(SigningAlg::Ed25519, &crate::clock::OsRandom);
    let jwk = crate::jose::public_jwk(SigningAlg::Ed25519, &der).unwrap();
    let key = crate::jose::encoding_key(SigningAlg::Ed25519, &der);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for name in ["Ed25519", "EdDSA"] {
        let header = json!({"typ": "dpop+jwt", "alg": name, "jwk": jwk});
        let claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "POST",
            "htu": TOKEN_URL,
            "iat": NOW,
        });
        let message = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::EdDSA).unwrap();
        let proof = format!("{message}.{signature}");
        let request = redemption(&h, &[]).await;
        let answer = h.engine.token(&with_proof(request, &proof)).await.unwrap();
        assert_eq!(answer.token_type, TokenType::DPoP, "{name}");
        // The signature of another message does not verify.
        let forged = format!("{}.{signature}", message.replace('.', ".e30."));
        let request = redemption(&h, &[]).await;
        assert_eq!(
            error_of(h.engine.token(&with_proof(request, &forged)).await).0,
            ErrorCode::InvalidDpopProof
        );
    }
}

/// Keys that are not whole keys of their algorithm's kind are refused before any signature
/// check: a short Ed25519 `x` would make the JWS library panic, a long one verify as its prefix.
#[tokio::test]
async fn proofs_with_malformed_keys_are_refused_without_a_panic() {
    use base64::Engine as _;
    let h = harness().await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let long_x = b64.encode([7u8; 40]);
    let key = new_key();
    let ec = serde_json::to_value(&key.jwk).unwrap();
    let cases = [
        ("EdDSA", json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"})),
        (
            "Ed25519",
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"}),
        ),
        (
            "EdDSA",
            json!({"kty": "OKP", "crv": "Ed25519", "x": long_x}),
        ),
        (
            "ES256",
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64.encode([1u8; 32])}),
        ),
        ("EdDSA", ec.clone()),
        ("ES384", ec),
        (
            "RS256",
            json!({"kty": "RSA", "n": b64.encode([1u8; 64]), "e": "AQAB"}),
        ),
    ];
    for (alg, jwk) in cases {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims = json!({"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": NOW});
        let proof = format!(
            "{}.{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string()),
            b64.encode([0u8; 64])
        );
        let request = basic_request(
            KEY,
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        );
        let (code, description) = error_of(h.engine.token(&with_proof(request, &proof)).await);
        assert_eq!(
            code,
            ErrorCode::InvalidDpopProof,
            "{alg} {header}: {description}"
        );
    }
}
