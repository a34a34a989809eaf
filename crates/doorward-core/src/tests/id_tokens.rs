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
