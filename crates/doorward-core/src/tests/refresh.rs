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

#[tokio::test]
async fn a_grant_family_ends_at_its_absolute_lifetime_however_often_refreshed() {
    let h = harness_with(EngineConfig {
        lifetimes: crate::Lifetimes {
            refresh_token: 1000,
            refresh_family: 2500,
            ..Default::default()
        },
        ..EngineConfig::default()
    })
    .await;
    let mut tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    // Each refresh comes well within the refresh token's own lifetime…
    for _ in 0..2 {
        h.clock.advance(900);
        tokens = h
            .refresh(tokens.refresh_token.as_deref().unwrap())
            .await
            .unwrap();
    }
    // …the last token lives only to the family's end (2500 s after the code), not 1000 s more.
    let last = tokens.refresh_token.clone().unwrap();
    let record = h
        .engine
        .store()
        .find_refresh_token(&crate::opaque::TokenHash::of(&last))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.expires_at, 1_800_000_000 + 2500);
    h.clock.advance(699);
    let at_the_end = h.refresh(&last).await.unwrap();
    h.clock.advance(1);
    let past = h
        .refresh(at_the_end.refresh_token.as_deref().unwrap())
        .await;
    assert_eq!(code_of(past), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_refresh_narrowed_to_openid_gets_no_profile_claims() {
    let h = harness_with(EngineConfig {
        scopes: doorward_proto::ScopeSet::parse("base openid profile").unwrap(),
        ..EngineConfig::default()
    })
    .await;
    let tokens = h
        .redeem(&h.code(&[("scope", "openid profile")]).await)
        .await
        .unwrap();
    let full = claims_of(&h, tokens.id_token.as_deref().unwrap());
    assert_eq!(full["preferred_username"], "alice");
    let narrow = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
            ("scope", "openid"),
        ])
        .await
        .unwrap();
    let claims = claims_of(&h, narrow.id_token.as_deref().unwrap());
    assert_eq!(claims["sub"], full["sub"]);
    assert!(claims.get("name").is_none(), "{claims}");
    assert!(claims.get("preferred_username").is_none(), "{claims}");
    // Narrowed without openid: no ID token at all.
    let without = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", narrow.refresh_token.as_deref().unwrap()),
            ("scope", "profile"),
        ])
        .await
        .unwrap();
    assert!(without.id_token.is_none());
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
            resources: Vec::new(),
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
            client_address: None,
            dpop: Default::default(),
        })
        .await;
    assert_eq!(code_of(by_other), ErrorCode::InvalidGrant);
    // The owner still gets its answer within the window, and its tokens still work.
    let again = h.refresh(&r1).await.unwrap();
    assert_eq!(again.access_token, answer.access_token);
    assert!(h.token_works(&answer.access_token).await);
}
