//! Checks of how credentials end: revocation of one token, of a consent, of a family, and the
//! purge of expired rows.

use uuid::Uuid;

use super::fixtures::{self, client, code, tokens, user, NOW};
use super::steps::{
    client_1_and_user, find_access_token, find_consent, find_refresh_token, find_session,
    insert_code, insert_tokens, redeem_code, revoke_consent, rotate_refresh_token, stored_tokens,
};
use super::{scopes, Must};
use crate::model::{AccessTokenRecord, ConsentRecord, RefreshTokenRecord, SessionRecord};
use crate::ports::{Redemption, Store};
use crate::TokenHash;

/// [`TokenStore::revoke_access_token`](crate::ports::TokenStore::revoke_access_token) revokes
/// that token only (RFC 7009 §2.1 leaves its refresh token to the server's policy).
pub async fn an_access_token_is_revoked_alone(store: &dyn Store) {
    let user = user(store, "a").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(3));
    let (access, refresh) = stored_tokens(store, 3, c1, user, family).await;
    let found = find_refresh_token(store, &refresh.hash)
        .await
        .expect("find_refresh_token must find the token just inserted");
    assert!(!found.revoked, "a new refresh token must not be revoked");
    assert_eq!(found.family_id, family);
    assert_eq!(found.used_at, None, "a new refresh token must be unspent");
    assert_eq!(
        found.successor, None,
        "a new refresh token has no sealed answer"
    );
    store
        .revoke_access_token(&access.hash, NOW)
        .await
        .must("revoke_access_token");
    assert!(
        find_access_token(store, &access.hash)
            .await
            .expect("a revoked token is still found")
            .revoked,
        "revoke_access_token must revoke the token"
    );
    assert!(
        !find_refresh_token(store, &refresh.hash)
            .await
            .expect("the refresh token is still found")
            .revoked,
        "revoking an access token must leave its refresh token"
    );
}

/// [`ConsentStore`](crate::ports::ConsentStore): approvals merge their scopes, are listed per
/// user, and their revocation revokes the tokens of the client for that user only.
pub async fn consents_merge_list_and_revoke_tokens(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    store.upsert_client(&client(2)).await.must("upsert_client");
    let user = user(store, "k").await;
    let other_user = fixtures::user(store, "l").await;
    let (c1, c2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let consent = |user, client, s: &str| ConsentRecord {
        user_id: user,
        client_id: client,
        scopes: scopes(s),
        granted_at: NOW,
    };
    for approval in [
        consent(user, c1, "base"),
        consent(user, c1, "profile"),
        consent(user, c2, "base"),
        consent(other_user, c1, "base"),
    ] {
        store.record_consent(&approval).await.must("record_consent");
    }
    let found = find_consent(store, user, c1)
        .await
        .expect("find_consent must find the recorded approval");
    assert_eq!(
        found.scopes,
        scopes("base profile"),
        "record_consent must merge the scopes of successive approvals"
    );
    assert_eq!(
        store.list_consents(user).await.must("list_consents").len(),
        2,
        "list_consents must list the user's approvals, one per client, and no one else's"
    );

    // Every family starts with a code; its tokens follow.
    let family = Uuid::from_u128(8);
    insert_code(store, &code(30, c1, user, family)).await;
    let (access, refresh) = stored_tokens(store, 3, c1, user, family).await;
    // The same user's grant of the other client, and another user's grant of this client.
    let mut bystanders = Vec::new();
    for (n, client, user) in [(31, c2, user), (32, c1, other_user)] {
        let family = Uuid::from_u128(n.into());
        insert_code(store, &code(n, client, user, family)).await;
        let (access, _) = tokens(n, client, user, family);
        insert_tokens(store, &access, None).await;
        bystanders.push((n, client, access.hash));
    }
    revoke_consent(store, user, c1, NOW).await;
    for (n, client, access) in bystanders {
        let token = find_access_token(store, &access)
            .await
            .expect("a bystander's access token is still found");
        assert!(
            !token.revoked,
            "revoke_consent must revoke the tokens of that user and client only"
        );
        let redeemed = redeem_code(store, &TokenHash([n; 32]), client, NOW, None).await;
        assert!(
            matches!(redeemed, Redemption::Fresh(_)),
            "revoke_consent must spend the codes of that user and client only, got {redeemed:?}"
        );
    }
    assert!(
        find_consent(store, user, c1).await.is_none(),
        "revoke_consent must forget the approval"
    );
    assert!(
        find_consent(store, user, c2).await.is_some(),
        "revoke_consent must leave the user's other approvals"
    );
    assert!(
        find_consent(store, other_user, c1).await.is_some(),
        "revoke_consent must leave other users' approvals of the client"
    );
    assert_revoked(store, &access, &refresh, "revoke_consent").await;
}

/// [`ConsentStore::revoke_consent`](crate::ports::ConsentStore::revoke_consent) spends the
/// codes that the client holds for the user, so that none can be redeemed afterwards.
pub async fn revoking_consent_spends_outstanding_codes(store: &dyn Store) {
    let (c1, user) = client_1_and_user(store, "o").await;
    insert_code(store, &code(7, c1, user, Uuid::from_u128(70))).await;
    revoke_consent(store, user, c1, NOW).await;
    let redeemed = redeem_code(store, &TokenHash([7; 32]), c1, NOW, None).await;
    assert!(
        matches!(redeemed, Redemption::Spent(_)),
        "a code outstanding when its consent was revoked must be Spent, got {redeemed:?}"
    );
}

/// [`TokenStore::revoke_family`](crate::ports::TokenStore::revoke_family) is remembered, across
/// a purge too: tokens inserted into the family afterwards (a rotation that raced the
/// revocation) are revoked.
pub async fn tokens_born_into_a_revoked_family_are_revoked(store: &dyn Store) {
    let user = user(store, "f").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(40));
    store.revoke_family(family, NOW).await.must("revoke_family");
    // Nothing refers to the family yet; its revocation must survive a purge all the same.
    store
        .purge_expired(NOW + 1, 3600)
        .await
        .must("purge_expired");
    let (access, refresh) = stored_tokens(store, 4, c1, user, family).await;
    assert_revoked(
        store,
        &access,
        &refresh,
        "insert_tokens after revoke_family",
    )
    .await;
}

/// [`MaintenanceStore::purge_expired`](crate::ports::MaintenanceStore::purge_expired): each
/// row goes at its own expiry (codes `keep_spent` seconds later), and the count says how many.
pub async fn expired_rows_are_purged(store: &dyn Store) {
    let user = user(store, "p").await;
    let c1 = Uuid::from_u128(1);
    insert_code(store, &code(8, c1, user, Uuid::from_u128(80))).await;
    let (access, _) = stored_tokens(store, 9, c1, user, Uuid::from_u128(90)).await;
    store
        .insert_session(&SessionRecord {
            hash: TokenHash([10; 32]),
            user_id: user,
            created_at: NOW,
            expires_at: NOW + 10,
            amr: Vec::new(),
        })
        .await
        .must("insert_session");
    let purge =
        |now: i64| async move { store.purge_expired(now, 3600).await.must("purge_expired") };
    assert_eq!(purge(NOW).await, 0, "nothing has expired yet");
    assert_eq!(
        purge(NOW + 10).await,
        1,
        "the session must go at its expiry"
    );
    assert!(
        find_session(store, &TokenHash([10; 32])).await.is_none(),
        "the purged row must be the session"
    );
    assert_eq!(
        purge(NOW + 60 + 3600).await,
        1,
        "the code must go `keep_spent` seconds after its expiry"
    );
    assert!(
        find_access_token(store, &access.hash).await.is_some(),
        "the access token must outlive the code"
    );
    assert_eq!(
        purge(NOW + 7200).await,
        1,
        "the access token must go at its expiry (`expires_at <= now`)"
    );
    assert!(
        find_access_token(store, &access.hash).await.is_none(),
        "the purged row must be the access token"
    );
    assert_eq!(
        purge(NOW + 86400).await,
        1,
        "the refresh token must go at its expiry"
    );
}

/// Both tokens read back revoked, after `what`. The refresh token is spent by looking: a
/// revoked refresh token still rotates (the engine checks `revoked` before it rotates).
async fn assert_revoked(
    store: &dyn Store,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
    what: &str,
) {
    let found = find_access_token(store, &access.hash)
        .await
        .expect("a revoked access token is still found");
    assert!(found.revoked, "{what} must revoke the access token");
    let rotated =
        rotate_refresh_token(store, &refresh.hash, refresh.client_id, NOW, None, None).await;
    match rotated {
        Redemption::Fresh(r) => assert!(r.revoked, "{what} must revoke the refresh token"),
        other => panic!(
            "an unspent refresh token must rotate (Fresh, with `revoked` set) even when revoked, \
             got {other:?}"
        ),
    }
}
