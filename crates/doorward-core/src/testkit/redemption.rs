//! Checks of single use: codes are redeemed once (RFC 6749 §4.1.2), refresh tokens rotate once
//! (RFC 9700 §4.14.2), and only the fresh redemption stores its tokens.

use uuid::Uuid;

use super::fixtures::{client, code, tokens, user, NOW};
use super::Must;
use crate::ports::{Issue, Redemption, Store};
use crate::TokenHash;

/// [`CodeStore::redeem_code`](crate::ports::CodeStore::redeem_code): a code is redeemed once
/// by its own client (RFC 6749 §4.1.2), then reads as spent; another client can neither redeem
/// nor burn it.
pub async fn codes_are_single_use(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    let user = user(store, "c").await;
    let family = Uuid::from_u128(77);
    let c1 = Uuid::from_u128(1);
    store
        .insert_code(&code(1, c1, user, family))
        .await
        .must("insert_code");
    let other = store
        .redeem_code(&TokenHash([1; 32]), Uuid::from_u128(2), NOW, None)
        .await
        .must("redeem_code");
    assert!(
        matches!(other, Redemption::Unknown),
        "another client's code must be Unknown, got {other:?}"
    );
    match store
        .redeem_code(&TokenHash([1; 32]), c1, NOW, None)
        .await
        .must("redeem_code")
    {
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
    match store
        .redeem_code(&TokenHash([1; 32]), c1, NOW, None)
        .await
        .must("redeem_code")
    {
        Redemption::Spent(record) => assert_eq!(record.family_id, family),
        other => panic!("a second redemption must be Spent, got {other:?}"),
    }
    let unknown = store
        .redeem_code(&TokenHash([2; 32]), c1, NOW, None)
        .await
        .must("redeem_code");
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
    let (access, refresh) = tokens(1, c1, user, family);
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");
    let (access2, refresh2) = tokens(2, c1, user, Uuid::from_u128(6));
    store
        .insert_tokens(&access2, Some(&refresh2))
        .await
        .must("insert_tokens");
    let found = store
        .find_access_token(&access.hash)
        .await
        .must("find_access_token")
        .expect("find_access_token must find the token just inserted");
    assert!(!found.revoked, "a new access token must not be revoked");
    assert_eq!(found.expires_at, NOW + 7200);
    assert!(
        store
            .find_bearer(&access.hash)
            .await
            .must("find_bearer")
            .is_none(),
        "find_bearer must be None while the token's client does not exist"
    );
    store.upsert_client(&client(1)).await.must("upsert_client");
    let (orphan, _) = tokens(20, c1, Uuid::from_u128(999), Uuid::from_u128(20));
    store
        .insert_tokens(&orphan, None)
        .await
        .must("insert_tokens");
    assert!(
        store
            .find_bearer(&orphan.hash)
            .await
            .must("find_bearer")
            .is_none(),
        "find_bearer must be None while the token's user does not exist"
    );
    let bearer = store
        .find_bearer(&access.hash)
        .await
        .must("find_bearer")
        .expect("find_bearer must find a token whose user and client exist");
    assert_eq!(
        (bearer.user.id, bearer.user.display_name.as_str()),
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
        store
            .find_bearer(&TokenHash([77; 32]))
            .await
            .must("find_bearer")
            .is_none(),
        "find_bearer of an unknown token must be None"
    );

    let rotated = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, None, None)
        .await
        .must("rotate_refresh_token");
    assert!(
        matches!(rotated, Redemption::Fresh(ref r) if r.auth_time == NOW - 5),
        "the first rotation must be Fresh with the token's record, got {rotated:?}"
    );
    let again = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, None, None)
        .await
        .must("rotate_refresh_token");
    assert!(
        matches!(again, Redemption::Spent(_)),
        "a second rotation must be Spent, got {again:?}"
    );
    let other_client = store
        .rotate_refresh_token(&refresh2.hash, Uuid::from_u128(9), NOW, None, None)
        .await
        .must("rotate_refresh_token");
    assert!(
        matches!(other_client, Redemption::Unknown),
        "another client's refresh token must be Unknown, got {other_client:?}"
    );

    store.revoke_family(family, NOW).await.must("revoke_family");
    assert!(
        store
            .find_access_token(&access.hash)
            .await
            .must("find_access_token")
            .expect("a revoked token is still found")
            .revoked,
        "revoke_family must revoke the family's access tokens"
    );
    assert!(
        !store
            .find_access_token(&access2.hash)
            .await
            .must("find_access_token")
            .expect("the other family's token is still found")
            .revoked,
        "revoke_family must leave other families alone"
    );
    match store
        .rotate_refresh_token(&refresh2.hash, c1, NOW, None, None)
        .await
        .must("rotate_refresh_token")
    {
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
    store.upsert_client(&client(1)).await.must("upsert_client");
    let c1 = Uuid::from_u128(1);
    let user = user(store, "t").await;
    let family = Uuid::from_u128(77);
    store
        .insert_code(&code(7, c1, user, family))
        .await
        .must("insert_code");
    let (access, refresh) = tokens(7, c1, user, family);
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");

    let (next_access, next_refresh) = tokens(8, c1, user, family);
    let next = Issue {
        access: &next_access,
        refresh: Some(&next_refresh),
    };
    let rotated = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, Some(next), Some(b"sealed answer"))
        .await
        .must("rotate_refresh_token");
    assert!(
        matches!(rotated, Redemption::Fresh(_)),
        "the first rotation must be Fresh, got {rotated:?}"
    );
    assert!(
        store
            .find_access_token(&next_access.hash)
            .await
            .must("find_access_token")
            .is_some(),
        "a fresh rotation must store the access token of its Issue"
    );
    assert!(
        store
            .find_refresh_token(&next_refresh.hash)
            .await
            .must("find_refresh_token")
            .is_some(),
        "a fresh rotation must store the refresh token of its Issue"
    );
    let spent = store
        .find_refresh_token(&refresh.hash)
        .await
        .must("find_refresh_token")
        .expect("a spent refresh token is still found");
    assert_eq!(
        spent.used_at,
        Some(NOW),
        "rotation must set used_at to `now`"
    );
    assert!(!spent.revoked, "spent is not revoked");

    let (lost_access, lost_refresh) = tokens(9, c1, user, family);
    let lost = Issue {
        access: &lost_access,
        refresh: Some(&lost_refresh),
    };
    match store
        .rotate_refresh_token(
            &refresh.hash,
            c1,
            NOW + 1,
            Some(lost),
            Some(b"other answer"),
        )
        .await
        .must("rotate_refresh_token")
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
    assert!(
        store
            .find_access_token(&lost_access.hash)
            .await
            .must("find_access_token")
            .is_none(),
        "a Spent rotation must store nothing"
    );
    assert!(
        store
            .find_refresh_token(&lost_refresh.hash)
            .await
            .must("find_refresh_token")
            .is_none(),
        "a Spent rotation must store nothing"
    );

    let code_record = store
        .find_code(&TokenHash([7; 32]), c1)
        .await
        .must("find_code")
        .expect("find_code must find the code of its client");
    assert_eq!(
        code_record.nonce.as_deref(),
        Some("n-0S6_WzA2Mj"),
        "the code's nonce must come back"
    );
    assert!(
        store
            .find_code(&TokenHash([7; 32]), Uuid::from_u128(2))
            .await
            .must("find_code")
            .is_none(),
        "find_code must not find another client's code"
    );
    let (code_access, code_refresh) = tokens(11, c1, user, family);
    let issued = Issue {
        access: &code_access,
        refresh: Some(&code_refresh),
    };
    match store
        .redeem_code(&TokenHash([7; 32]), c1, NOW, Some(issued))
        .await
        .must("redeem_code")
    {
        Redemption::Fresh(code) => assert_eq!(code.nonce.as_deref(), Some("n-0S6_WzA2Mj")),
        other => panic!("the first redemption must be Fresh, got {other:?}"),
    }
    assert!(
        store
            .find_access_token(&code_access.hash)
            .await
            .must("find_access_token")
            .is_some(),
        "a fresh redemption must store the access token of its Issue"
    );
    assert!(
        store
            .find_refresh_token(&code_refresh.hash)
            .await
            .must("find_refresh_token")
            .is_some(),
        "a fresh redemption must store the refresh token of its Issue"
    );
    let (again_access, _) = tokens(12, c1, user, family);
    let again = Issue {
        access: &again_access,
        refresh: None,
    };
    let replay = store
        .redeem_code(&TokenHash([7; 32]), c1, NOW, Some(again))
        .await
        .must("redeem_code");
    assert!(
        matches!(replay, Redemption::Spent(_)),
        "a second redemption must be Spent, got {replay:?}"
    );
    assert!(
        store
            .find_access_token(&again_access.hash)
            .await
            .must("find_access_token")
            .is_none(),
        "a Spent redemption must store nothing"
    );

    store
        .purge_expired(NOW + crate::ports::MAX_REFRESH_GRACE + 1, 3600)
        .await
        .must("purge_expired");
    let forgotten = store
        .find_refresh_token(&refresh.hash)
        .await
        .must("find_refresh_token")
        .expect("an unexpired refresh token must survive the purge");
    assert_eq!(
        forgotten.successor, None,
        "purge_expired must forget sealed answers older than MAX_REFRESH_GRACE"
    );
}
