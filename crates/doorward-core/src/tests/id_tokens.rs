//! OpenID Connect ID tokens (OIDC Core §2, §12.2) and the userinfo endpoint (§5.3).

use doorward_proto::ErrorCode;

use crate::Error;

use super::support::*;

#[tokio::test]
async fn id_tokens_carry_the_claims_of_their_scopes() {
    let h = harness().await;
    let code = h
        .code(&[("scope", "openid profile email"), ("nonce", "n-0S6")])
        .await;
    let tokens = h.redeem(&code).await.unwrap();
    let id_token = tokens
        .id_token
        .as_deref()
        .expect("openid asked: an ID token");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "OIDC's default");
    let claims = claims_of(&h, id_token);
    let now = h.engine.now();
    assert_eq!(claims["iss"], "http://localhost");
    assert_eq!(
        claims["aud"], KEY,
        "the client_id the client authenticated with"
    );
    assert_eq!(claims["sub"], h.user.user.id.to_string());
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["auth_time"], h.user.session.created_at);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(
        claims["at_hash"],
        doorward_proto::at_hash("RS256", &tokens.access_token)
    );
    assert!(claims.get("azp").is_none(), "one audience: no azp");

    // Refresh (OIDC Core §12.2): a new ID token, same user and auth_time, no nonce.
    h.clock.advance(100);
    let refreshed = h
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let again = claims_of(&h, refreshed.id_token.as_deref().unwrap());
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["auth_time"], claims["auth_time"]);
    assert!(again.get("nonce").is_none());

    // openid alone: no profile or email claims; userinfo agrees with the ID token's sub.
    let code = h.code(&[("scope", "openid")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let claims = claims_of(&h, tokens.id_token.as_deref().unwrap());
    for absent in ["name", "preferred_username", "email", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent}");
    }
    let info = h.engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(info.get("sub"), claims.get("sub"));
    assert_eq!(info.len(), 1);

    // No openid: no ID token, and userinfo refuses the token.
    let code = h.code(&[("scope", "base")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert!(tokens.id_token.is_none());
    match h.engine.userinfo(&tokens.access_token).await {
        Err(Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::InsufficientScope),
        other => panic!("{other:?}"),
    }
}

/// RFC 9864: a client that asks for `Ed25519` gets ID tokens with that header name, signed by
/// the server's `Ed25519` key (its own, published without `alg`), verifiable by the server
/// again (`id_token_hint`); an `EdDSA` client keeps the deprecated name and its own key.
#[tokio::test]
async fn ed25519_id_tokens_by_their_fully_specified_name() {
    use crate::jose::SigningAlg;
    let config = crate::EngineConfig {
        keys: crate::config::KeyPolicy {
            algorithms: vec![SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Ed25519],
            ..Default::default()
        },
        ..crate::EngineConfig::default()
    };
    let h = harness_with(config).await;
    for (key, alg) in [("fs@clients", "Ed25519"), ("legacy@clients", "EdDSA")] {
        let mut spec = crate::testing::client(key, key, "http://localhost:9/cb", "s3cret");
        spec.policy.id_token_alg = SigningAlg::parse(alg);
        h.engine.register_client(spec).await.unwrap();
        let query = pairs(&[
            ("response_type", "code"),
            ("client_id", key),
            ("redirect_uri", "http://localhost:9/cb"),
            ("scope", "openid"),
        ]);
        let request = h.engine.check_authorization(&query).await.unwrap();
        let answer = h.engine.approve(&h.user, &request).await.unwrap();
        let code = query_param(&answer, "code").unwrap();
        let tokens = h
            .engine
            .token(&basic_request(
                key,
                "s3cret",
                &[("grant_type", "authorization_code"), ("code", &code)],
            ))
            .await
            .unwrap();
        let id_token = tokens.id_token.unwrap();
        let header: serde_json::Value = {
            use base64::Engine as _;
            let part = id_token.split('.').next().unwrap();
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(part)
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(header["alg"], alg);
        let claims = claims_of(&h, &id_token);
        assert_eq!(claims["aud"], key);
        assert_eq!(claims.get("at_hash").is_some(), alg == "EdDSA", "{alg}");
        let jwks = serde_json::to_value(h.engine.jwks()).unwrap();
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .unwrap()
            .clone();
        assert_eq!(published["crv"], "Ed25519");
        assert_eq!(
            published.get("alg").cloned(),
            (alg == "EdDSA").then(|| serde_json::json!("EdDSA"))
        );
        // A signature that does not verify is refused, whatever the name.
        let mut forged = id_token.clone();
        forged.pop();
        forged.push(if id_token.ends_with('A') { 'B' } else { 'A' });
        assert!(h
            .engine
            .verify_own_jws::<serde_json::Value>(&forged, false)
            .is_err());
    }
    assert!(h.engine.metadata()["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "Ed25519"));
}
