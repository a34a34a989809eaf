//! Checks of single use: codes are redeemed once (RFC 6749 §4.1.2), refresh tokens rotate once
//! (RFC 9700 §4.14.2), and only the fresh redemption stores its tokens.

use uuid::Uuid;

use super::fixtures::{client, code, tokens, user, NOW};
use super::steps::{
    client_1_and_user, find_access_token, find_bearer, find_code, find_refresh_token, insert_code,
    insert_tokens, issue, redeem_code, rotate_refresh_token, stored_tokens,
};
use super::Must;
use crate::ports::{Issue, Redemption, Store};
use crate::TokenHash;

/// [`CodeStore::redeem_code`](crate::ports::CodeStore::redeem_code): a code is redeemed once
/// by its own client (RFC 6749 §4.1.2), then reads as spent; another client can neither redeem
/// nor burn it.
pub async fn codes_are_single_use(store: &dyn Store) {
    let (c1, user) = client_1_and_user(store, "c").await;
    let family = Uuid::from_u128(77);
    insert_code(store, &code(1, c1, user, family)).await;
    let other = redeem_code(store, &TokenHash([1; 32]), Uuid::from_u128(2), NOW, None).await;
    assert!(
        matches!(other, Redemption::Unknown),
        "another client's code must be Unknown, got {other:?}"
    );
    match redeem_code(store, &TokenHash([1; 32]), c1, NOW, None).await {
        Redemption::Fresh(record) => {
            assert_eq!(record.family_id, family, "the code's family must come back");
            assert_eq!(
                record.challenge,
                code(1, c1, user, family).challenge,
                "the PKCE challenge must come back"
            );
            assert!(record.scope_requested, "scope_requested must come back");
        }
        other => panic!(
            "the first redemption by its client must be Fresh (another client's attempt must \
             not have spent it), got {other:?}"
        ),
    }
    match redeem_code(store, &TokenHash([1; 32]), c1, NOW, None).await {
        Redemption::Spent(record) => assert_eq!(record.family_id, family),
        other => panic!("a second redemption must be Spent, got {other:?}"),
    }
    let unknown = redeem_code(store, &TokenHash([2; 32]), c1, NOW, None).await;
    assert!(
        matches!(unknown, Redemption::Unknown),
        "a code never stored must be Unknown, got {unknown:?}"
    );
}

/// [`TokenStore`](crate::ports::TokenStore): a bearer needs its user and client; a refresh
/// token rotates once (RFC 9700 §4.14.2); revoking a family revokes its tokens and no others.
pub async fn refresh_tokens_rotate_once_and_families_revoke(store: &dyn Store) {
    let user = user(store, "r").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(5));
    let (access, refresh) = stored_tokens(store, 1, c1, user, family).await;
    let (access2, refresh2) = stored_tokens(store, 2, c1, user, Uuid::from_u128(6)).await;
    let found = find_access_token(store, &access.hash)
        .await
        .expect("find_access_token must find the token just inserted");
    assert!(!found.revoked, "a new access token must not be revoked");
    assert_eq!(found.expires_at, NOW + 7200);
    assert!(
        find_bearer(store, &access.hash).await.is_none(),
        "find_bearer must be None while the token's client does not exist"
    );
    store.upsert_client(&client(1)).await.must("upsert_client");
    let (orphan, _) = tokens(20, c1, Uuid::from_u128(999), Uuid::from_u128(20));
    insert_tokens(store, &orphan, None).await;
    assert!(
        find_bearer(store, &orphan.hash).await.is_none(),
        "find_bearer must be None while the token's user does not exist"
    );
    let bearer = find_bearer(store, &access.hash)
        .await
        .expect("find_bearer must find a token whose user and client exist");
    let bearer_user = bearer
        .user
        .as_ref()
        .expect("find_bearer must return the token's user");
    assert_eq!(
        (bearer_user.id, bearer_user.display_name.as_str()),
        (user, "R"),
        "find_bearer must return the token's user"
    );
    assert_eq!(
        (bearer.client.id, bearer.client.display_name.as_str()),
        (c1, "Client 1"),
        "find_bearer must return the token's client"
    );
    assert_eq!(bearer.client.redirect_uris, client(1).redirect_uris);
    assert_eq!(bearer.token.family_id, family);
    assert!(
        find_bearer(store, &TokenHash([77; 32])).await.is_none(),
        "find_bearer of an unknown token must be None"
    );

    let rotated = rotate_refresh_token(store, &refresh.hash, c1, NOW, None, None).await;
    assert!(
        matches!(rotated, Redemption::Fresh(ref r) if r.auth_time == NOW - 5),
        "the first rotation must be Fresh with the token's record, got {rotated:?}"
    );
    let again = rotate_refresh_token(store, &refresh.hash, c1, NOW, None, None).await;
    assert!(
        matches!(again, Redemption::Spent(_)),
        "a second rotation must be Spent, got {again:?}"
    );
    let other_client =
        rotate_refresh_token(store, &refresh2.hash, Uuid::from_u128(9), NOW, None, None).await;
    assert!(
        matches!(other_client, Redemption::Unknown),
        "another client's refresh token must be Unknown, got {other_client:?}"
    );

    store.revoke_family(family, NOW).await.must("revoke_family");
    assert!(
        find_access_token(store, &access.hash)
            .await
            .expect("a revoked token is still found")
            .revoked,
        "revoke_family must revoke the family's access tokens"
    );
    assert!(
        !find_access_token(store, &access2.hash)
            .await
            .expect("the other family's token is still found")
            .revoked,
        "revoke_family must leave other families alone"
    );
    match rotate_refresh_token(store, &refresh2.hash, c1, NOW, None, None).await {
        Redemption::Fresh(r) => assert!(!r.revoked, "revoke_family revoked another family"),
        other => panic!(
            "the other family's refresh token must rotate (another client's attempt must not \
             have spent it), got {other:?}"
        ),
    }
}

/// [`Issue`]: a redemption stores its tokens only when it is fresh, and a rotation keeps its
/// sealed answer for the losers of a race, until [`MAX_REFRESH_GRACE`] has passed.
///
/// [`MAX_REFRESH_GRACE`]: crate::ports::MAX_REFRESH_GRACE
pub async fn redemptions_store_their_tokens_and_sealed_answer(store: &dyn Store) {
    let (c1, user) = client_1_and_user(store, "t").await;
    let family = Uuid::from_u128(77);
    insert_code(store, &code(7, c1, user, family)).await;
    let (_, refresh) = stored_tokens(store, 7, c1, user, family).await;

    let (next_access, next_refresh) = tokens(8, c1, user, family);
    let next = issue(&next_access, Some(&next_refresh));
    let rotated = rotate_refresh_token(
        store,
        &refresh.hash,
        c1,
        NOW,
        Some(next),
        Some(b"sealed answer"),
    )
    .await;
    assert!(
        matches!(rotated, Redemption::Fresh(_)),
        "the first rotation must be Fresh, got {rotated:?}"
    );
    assert_stored(store, next, "a fresh rotation").await;
    let spent = find_refresh_token(store, &refresh.hash)
        .await
        .expect("a spent refresh token is still found");
    assert_eq!(
        spent.used_at,
        Some(NOW),
        "rotation must set used_at to `now`"
    );
    assert!(!spent.revoked, "spent is not revoked");

    let (lost_access, lost_refresh) = tokens(9, c1, user, family);
    let lost = issue(&lost_access, Some(&lost_refresh));
    match rotate_refresh_token(
        store,
        &refresh.hash,
        c1,
        NOW + 1,
        Some(lost),
        Some(b"other answer"),
    )
    .await
    {
        Redemption::Spent(record) => {
            assert_eq!(record.used_at, Some(NOW), "the first use must be kept");
            assert_eq!(
                record.successor.as_deref(),
                Some(&b"sealed answer"[..]),
                "Spent must carry the first rotation's sealed answer, unchanged"
            );
        }
        other => panic!("a second rotation must be Spent, got {other:?}"),
    }
    assert_nothing_stored(store, lost, "a Spent rotation").await;

    let code_record = find_code(store, &TokenHash([7; 32]), c1)
        .await
        .expect("find_code must find the code of its client");
    assert_eq!(
        code_record.nonce.as_deref(),
        Some("n-0S6_WzA2Mj"),
        "the code's nonce must come back"
    );
    assert!(
        find_code(store, &TokenHash([7; 32]), Uuid::from_u128(2))
            .await
            .is_none(),
        "find_code must not find another client's code"
    );
    let (code_access, code_refresh) = tokens(11, c1, user, family);
    let issued = issue(&code_access, Some(&code_refresh));
    match redeem_code(store, &TokenHash([7; 32]), c1, NOW, Some(issued)).await {
        Redemption::Fresh(code) => assert_eq!(code.nonce.as_deref(), Some("n-0S6_WzA2Mj")),
        other => panic!("the first redemption must be Fresh, got {other:?}"),
    }
    assert_stored(store, issued, "a fresh redemption").await;
    let (again_access, _) = tokens(12, c1, user, family);
    let again = issue(&again_access, None);
    let replay = redeem_code(store, &TokenHash([7; 32]), c1, NOW, Some(again)).await;
    assert!(
        matches!(replay, Redemption::Spent(_)),
        "a second redemption must be Spent, got {replay:?}"
    );
    assert_nothing_stored(store, again, "a Spent redemption").await;

    store
        .purge_expired(NOW + crate::ports::MAX_REFRESH_GRACE + 1, 3600)
        .await
        .must("purge_expired");
    let forgotten = find_refresh_token(store, &refresh.hash)
        .await
        .expect("an unexpired refresh token must survive the purge");
    assert_eq!(
        forgotten.successor, None,
        "purge_expired must forget sealed answers older than MAX_REFRESH_GRACE"
    );
}

/// The tokens of `issued` read back, after `what` (a fresh redemption or rotation).
async fn assert_stored(store: &dyn Store, issued: Issue<'_>, what: &str) {
    assert!(
        find_access_token(store, &issued.access.hash)
            .await
            .is_some(),
        "{what} must store the access token of its Issue"
    );
    if let Some(refresh) = issued.refresh {
        assert!(
            find_refresh_token(store, &refresh.hash).await.is_some(),
            "{what} must store the refresh token of its Issue"
        );
    }
}

/// None of the tokens of `issued` reads back, after `what` (a Spent redemption or rotation).
async fn assert_nothing_stored(store: &dyn Store, issued: Issue<'_>, what: &str) {
    assert!(
        find_access_token(store, &issued.access.hash)
            .await
            .is_none(),
        "{what} must store nothing"
    );
    if let Some(refresh) = issued.refresh {
        assert!(
            find_refresh_token(store, &refresh.hash).await.is_none(),
            "{what} must store nothing"
        );
    }
}

/// [`TokenStore`](crate::ports::TokenStore): an access token without a user (the
/// `client_credentials` grant) is stored with no grant row, found by `find_bearer` with
/// `user: None`, revoked alone, and its user-less family revokes like any other.
pub async fn user_less_access_tokens(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    let (c1, family) = (
        Uuid::from_u128(1),
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
    );
    let (mut access, _) = tokens(30, c1, Uuid::from_u128(999), family);
    access.user_id = None;
    insert_tokens(store, &access, None).await;
    let found = find_access_token(store, &access.hash)
        .await
        .expect("find_access_token must find a token without a user");
    assert_eq!(
        found.user_id, None,
        "a token without a user must stay without one"
    );
    let bearer = find_bearer(store, &access.hash)
        .await
        .expect("find_bearer must find a token without a user whose client exists");
    assert!(
        bearer.user.is_none(),
        "find_bearer must give no user for a client's token"
    );
    assert_eq!(bearer.client.id, c1);
    let (mut second, _) = tokens(
        31,
        c1,
        Uuid::from_u128(999),
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002),
    );
    second.user_id = None;
    insert_tokens(store, &second, None).await;
    store
        .revoke_access_token(&access.hash, NOW + 1)
        .await
        .must("revoke_access_token");
    let bearer = find_bearer(store, &access.hash)
        .await
        .expect("a revoked token is still found");
    assert!(
        bearer.token.revoked,
        "revoke_access_token must revoke a token without a user"
    );
    let other = find_bearer(store, &second.hash)
        .await
        .expect("the other token is found");
    assert!(
        !other.token.revoked,
        "revoking one client token must leave the others"
    );
    store
        .revoke_family(second.family_id, NOW + 2)
        .await
        .must("revoke_family");
    let other = find_bearer(store, &second.hash)
        .await
        .expect("the other token is found");
    assert!(
        other.token.revoked,
        "revoke_family must revoke a token without a user"
    );
}
