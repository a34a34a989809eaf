//! ID tokens (OIDC Core §3.1.3.7): the claim checks, with real ES256, RS256/PS256 and EdDSA
//! keys.

use doorward_proto::at_hash;
use jsonwebtoken::Algorithm;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};

use crate::error::IdTokenError;
use crate::id_token::{header, jws_name, Expectations, IdTokenClaims};
use crate::DEFAULT_ALGORITHMS;

use super::support::*;

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
    // Every variant of jsonwebtoken 11: the asymmetric defaults and the three HMAC ones.
    let hmac = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    for alg in DEFAULT_ALGORITHMS.into_iter().chain(hmac) {
        assert_eq!(jws_name(alg).parse::<Algorithm>().ok(), Some(alg));
    }
    assert_eq!(jws_name(Algorithm::EdDSA), "EdDSA");
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
