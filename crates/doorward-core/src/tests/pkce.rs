//! PKCE (RFC 7636): S256 verified at redemption, no verifier without a challenge, `plain` refused.

use doorward_proto::ErrorCode;

use crate::request::AuthorizeError;

use super::support::*;

#[tokio::test]
async fn pkce_s256_is_verified() {
    let h = harness().await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = h.code(&pkce).await;
    let missing = h.redeem(&code).await;
    assert_eq!(code_of(missing), ErrorCode::InvalidGrant);

    let code = h.code(&pkce).await;
    let wrong_verifier = "x".repeat(43);
    let wrong = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &wrong_verifier),
        ])
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidGrant);

    let code = h.code(&pkce).await;
    let right = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert!(right.is_ok());
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_a_downgrade() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let result = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(code_of(result), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn plain_pkce_is_refused_unless_configured() {
    let h = harness().await;
    let challenge = "a".repeat(43);
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", KEY),
        ("code_challenge", &challenge),
        ("code_challenge_method", "plain"),
    ]);
    match h.engine.check_authorization(&query).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest)
        }
        other => panic!("{other:?}"),
    }
}
