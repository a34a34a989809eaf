//! Redeeming an authorization code (RFC 6749 §4.1.3): once, in time, by its client, for its
//! redirect URI; the access tokens it gives expire, and expired rows are purged.

use std::collections::HashMap;

use doorward_proto::{ErrorCode, Secret};

use crate::request::{BasicCredentials, TokenRequest};
use crate::Engine;

use super::support::*;

#[tokio::test]
async fn a_code_is_redeemed_once_and_a_replay_revokes_its_tokens() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert_eq!(tokens.expires_in, 7200);
    assert!(tokens.scope.is_none());
    assert!(h.token_works(&tokens.access_token).await);
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&tokens.access_token).await);
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(code_of(h.refresh(&refresh).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_code_expires_after_its_lifetime() {
    let h = harness().await;
    let code = h.code(&[]).await;
    h.clock.advance(60);
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
    let code = h.code(&[]).await;
    h.clock.advance(59);
    assert!(h.redeem(&code).await.is_ok());
}

#[tokio::test]
async fn access_tokens_expire() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    h.clock.advance(7199);
    assert!(h.token_works(&tokens.access_token).await);
    h.clock.advance(1);
    assert!(!h.token_works(&tokens.access_token).await);
}

#[tokio::test]
async fn a_code_of_another_client_is_refused_without_burning_it() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let other = h
        .engine
        .token(&TokenRequest {
            resources: Vec::new(),
            params: HashMap::from([
                ("grant_type".into(), "authorization_code".into()),
                ("code".into(), code.clone()),
            ]),
            basic: Some(BasicCredentials {
                id: "other@clients".into(),
                secret: Secret::new("other_secret"),
            }),
            client_address: None,
            dpop: Default::default(),
        })
        .await;
    assert_eq!(code_of(other), ErrorCode::InvalidGrant);
    assert!(h.redeem(&code).await.is_ok());
}

#[tokio::test]
async fn redirect_uri_must_match_when_sent() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let wrong = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:8000/oauth/callback/"),
        ])
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidGrant);
    let code = h.code(&[]).await;
    let right = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    assert!(right.is_ok());
}

#[tokio::test]
async fn revoking_an_app_spends_its_outstanding_codes() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let client = Engine::client_id_for_key(KEY);
    h.engine
        .revoke_client(h.user.user.id, client)
        .await
        .unwrap();
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn expired_rows_are_purged() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    assert_eq!(h.engine.purge_expired().await.unwrap(), 0);
    h.clock.advance(31 * 24 * 3600);
    // The session, the spent code, the access token and the refresh token.
    assert_eq!(h.engine.purge_expired().await.unwrap(), 4);
    assert!(!h.token_works(&tokens.access_token).await);
}

/// README, `[server]`: "A code or refresh token is spent and the tokens it issues are stored in
/// one transaction: a database failure in between leaves it usable for a retry."
#[tokio::test]
async fn a_store_failure_at_redemption_leaves_the_code_and_refresh_token_usable() {
    use std::sync::Arc;

    use crate::memory::MemoryStore;
    use crate::testing::FailingStore;

    let store = Arc::new(FailingStore::new(Arc::new(MemoryStore::default())));
    let h = harness_over(store.clone(), crate::EngineConfig::default()).await;
    let code = h.code(&[]).await;

    store.fail_next("redeem_code");
    let unavailable = |r: &Result<_, crate::Error>| {
        matches!(
            r,
            Err(crate::Error::Store(crate::ports::StoreError::Unavailable(
                _
            )))
        )
    };
    assert!(unavailable(&h.redeem(&code).await));
    let tokens = h.redeem(&code).await.expect("the code is still usable");
    assert!(h.token_works(&tokens.access_token).await);

    let refresh = tokens.refresh_token.unwrap();
    store.fail_next("rotate_refresh_token");
    assert!(unavailable(&h.refresh(&refresh).await));
    let rotated = h
        .refresh(&refresh)
        .await
        .expect("the refresh token is still usable");
    assert!(h.token_works(&rotated.access_token).await);
    assert!(
        h.token_works(&tokens.access_token).await,
        "and the retry was not taken for a replay"
    );
}
