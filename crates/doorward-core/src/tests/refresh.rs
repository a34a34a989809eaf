//! Refresh tokens (RFC 6749 §6): rotation, reuse detection with its grace window, scope, expiry.

use doorward_proto::ErrorCode;

use crate::EngineConfig;

use super::support::*;

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness().await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let second = h.refresh(&r1).await.unwrap();
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    assert!(h.token_works(&second.access_token).await);
    // Replaying the spent r1 after the grace window revokes everything of the family, r2
    // included.
    h.clock.advance(11);
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&second.access_token).await);
    assert!(!h.token_works(&first.access_token).await);
    assert_eq!(code_of(h.refresh(&r2).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn within_the_grace_window_a_spent_refresh_token_gets_the_same_answer() {
    let h = harness().await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let answer = h.refresh(&r1).await.unwrap();
    h.clock.advance(10);
    let again = h.refresh(&r1).await.unwrap();
    assert_eq!(
        again.access_token, answer.access_token,
        "the same pair, not a second one"
    );
    assert_eq!(again.refresh_token, answer.refresh_token);
    assert!(
        h.token_works(&answer.access_token).await,
        "and nothing was revoked"
    );
    // The new refresh token works once as usual; one second past the window, r1 is a replay.
    h.clock.advance(1);
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&answer.access_token).await);

    // With the window off, a second presentation is a replay at once.
    let h = harness_with(EngineConfig {
        lifetimes: crate::Lifetimes {
            refresh_grace: 0,
            ..Default::default()
        },
        ..EngineConfig::default()
    })
    .await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let answer = h.refresh(&r1).await.unwrap();
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&answer.access_token).await);
}

#[tokio::test]
async fn refresh_cannot_widen_the_scope() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[("scope", "base")]).await).await.unwrap();
    let wider = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
            ("scope", "base admin"),
        ])
        .await;
    assert_eq!(code_of(wider), ErrorCode::InvalidScope);
}

#[tokio::test]
async fn a_narrower_refresh_keeps_the_grant_scope_for_the_next_refresh() {
    let h = harness_with(EngineConfig {
        scopes: doorward_proto::ScopeSet::parse("base profile").unwrap(),
        ..EngineConfig::default()
    })
    .await;
    let tokens = h
        .redeem(&h.code(&[("scope", "base profile")]).await)
        .await
        .unwrap();
    let narrow = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
            ("scope", "base"),
        ])
        .await
        .unwrap();
    let info = h
        .engine
        .check_access_token(&narrow.access_token)
        .await
        .unwrap();
    assert_eq!(info.scopes.to_string(), "base");
    let again = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", narrow.refresh_token.as_deref().unwrap()),
            ("scope", "profile"),
        ])
        .await
        .unwrap();
    let info = h
        .engine
        .check_access_token(&again.access_token)
        .await
        .unwrap();
    assert_eq!(info.scopes.to_string(), "profile");
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    h.clock.advance(30 * 24 * 3600);
    assert_eq!(
        code_of(h.refresh(tokens.refresh_token.as_deref().unwrap()).await),
        ErrorCode::InvalidGrant
    );
}

/// README, `POST /oauth/token`: within the grace window "the same client presenting it again
/// … gets the very same answer": another client gets nothing, and learns nothing.
#[tokio::test]
async fn the_grace_window_answers_the_same_client_only() {
    use doorward_proto::Secret;

    use crate::request::{BasicCredentials, TokenRequest};

    let h = harness().await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let answer = h.refresh(&r1).await.unwrap();
    h.clock.advance(5);
    let by_other = h
        .engine
        .token(&TokenRequest {
            params: [
                ("grant_type", "refresh_token"),
                ("refresh_token", r1.as_str()),
            ]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
            basic: Some(BasicCredentials {
                id: "other@clients".into(),
                secret: Secret::new("other_secret"),
            }),
        })
        .await;
    assert_eq!(code_of(by_other), ErrorCode::InvalidGrant);
    // The owner still gets its answer within the window, and its tokens still work.
    let again = h.refresh(&r1).await.unwrap();
    assert_eq!(again.access_token, answer.access_token);
    assert!(h.token_works(&answer.access_token).await);
}
