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
    let challenge = "a".repeat(43);
    // A challenge without a method is `plain` too (RFC 7636 §4.3).
    let plain: [&[(&str, &str)]; 2] = [
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ],
        &[("code_challenge", &challenge)],
    ];

    let h = harness().await;
    for pkce in plain {
        let mut query = vec![("response_type", "code"), ("client_id", KEY)];
        query.extend_from_slice(pkce);
        match h.engine.check_authorization(&pairs(&query)).await {
            Err(AuthorizeError::Redirect { error, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest, "{pkce:?}")
            }
            other => panic!("{pkce:?}: {other:?}"),
        }
    }
    assert_eq!(
        h.engine.metadata()["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    // Configured (`oauth.insecure_allow_plain_pkce`): the verifier is the challenge itself.
    let h = harness_with(crate::EngineConfig {
        allow_plain_pkce: true,
        ..Default::default()
    })
    .await;
    assert_eq!(
        h.engine.metadata()["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    for pkce in plain {
        let code = h.code(pkce).await;
        let wrong = "b".repeat(43);
        let result = h
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &wrong),
            ])
            .await;
        assert_eq!(code_of(result), ErrorCode::InvalidGrant, "{pkce:?}");

        let code = h.code(pkce).await;
        assert_eq!(
            code_of(h.redeem(&code).await),
            ErrorCode::InvalidGrant,
            "{pkce:?}: a plain challenge still needs its verifier"
        );

        let code = h.code(pkce).await;
        let right = h
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &challenge),
            ])
            .await;
        assert!(right.is_ok(), "{pkce:?}: {right:?}");
    }
    // S256 still works beside it.
    let code = h
        .code(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let right = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert!(right.is_ok(), "{right:?}");
}
