//! JWT access tokens (RFC 9068 §4), as a resource server checks them.

use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use crate::error::IdTokenError;
use crate::id_token::candidate_keys;

use super::support::*;

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
