//! ID tokens: the JOSE header and the signature (`alg: none`, the allow-list, HMAC with a
//! public key) and which keys of a JWKS are candidates.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::discovery::KeySet;
use crate::error::{ConfigError, IdTokenError};
use crate::id_token::{candidate_keys, header, validate};
use crate::{Client, ProviderConfig, DEFAULT_ALGORITHMS};

use super::support::*;

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
