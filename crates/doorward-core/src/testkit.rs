//! The contract test kit of the storage ports: the checks that every implementation of
//! [`Store`] must pass, published so that an application with a store of its own can prove it
//! correct with the same suite Doorward runs against its in-memory, SQLite and PostgreSQL
//! adapters. Compiled with the `testkit` feature only.
//!
//! # Running the suite against your store
//!
//! Enable the feature for your tests only:
//!
//! ```toml
//! [dev-dependencies]
//! doorward-core = { version = "0.1", features = ["testkit"] }
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! and give [`run_contract`] a function that makes a fresh, empty store; each check gets its
//! own:
//!
//! ```rust,ignore
//! use std::sync::Arc;
//!
//! use doorward_core::ports::SharedStore;
//!
//! #[tokio::test]
//! async fn my_store_passes_the_contract() {
//!     doorward_core::testkit::run_contract(|| async { Arc::new(MyStore::new()) as SharedStore })
//!         .await;
//! }
//! ```
//!
//! A failed check panics with what the store did wrong; the test's captured output names the
//! check that was running. Each check is also a public function over `&dyn Store`, so that a
//! store can be brought up one check at a time. `examples/embedded/src/store.rs` in Doorward's
//! repository is a complete store written this way.
//!
//! # What the kit does not check
//!
//! The checks call the store one operation at a time. The atomicity that the ports require
//! under concurrency (of many redemptions of one code exactly one is
//! [`Redemption::Fresh`]) needs tests of your own that race real tasks against your real
//! backend: `crates/doorward-store/src/contract.rs` races 16 redemptions of one code, and the
//! [`fixtures`] below build the records for such tests. Nor do the checks cover
//! [`StoreError::Unavailable`](crate::ports::StoreError::Unavailable): only your backend knows
//! how to fail that way.

use std::future::Future;

use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ScopeSet};
use uuid::Uuid;

use crate::keys::SigningAlg;
use crate::model::{
    AccessTokenFormat, AccessTokenRecord, AuthMethod, ClientPolicy, ConsentRecord, NewUser,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord,
};
use crate::ports::{ClientRef, Issue, Redemption, SharedStore, Store, StoreResult};
use crate::TokenHash;

pub use fixtures::{client, code, tokens, user, NOW};

/// Runs every check, each against a fresh store from `make`. Panics at the first failure.
pub async fn run_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedStore>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$({
            let store = make().await;
            println!("doorward contract check: {}", stringify!($check));
            $check(store.as_ref()).await;
        })*};
    }
    run!(
        clients_by_id_and_key,
        users_upsert_by_username,
        sessions_are_found_and_deleted,
        codes_are_single_use,
        refresh_tokens_rotate_once_and_families_revoke,
        redemptions_store_their_tokens_and_sealed_answer,
        an_access_token_is_revoked_alone,
        consents_merge_list_and_revoke_tokens,
        revoking_consent_spends_outstanding_codes,
        tokens_born_into_a_revoked_family_are_revoked,
        expired_rows_are_purged,
        server_secrets_are_created_once,
        signing_keys_are_created_once_per_generation,
        absent_rows_are_not_errors,
    );
}

/// [`ClientStore`](crate::ports::ClientStore): a client is found by Id and by exact Key, an
/// upsert with the same Id replaces it, and its policy survives the round trip.
pub async fn clients_by_id_and_key(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    let by_id = store
        .find_client(ClientRef::Id(Uuid::from_u128(1)))
        .await
        .must("find_client(Id)")
        .expect("find_client(Id) must find the client just upserted");
    assert_eq!(
        by_id.key, "c1@clients",
        "find_client(Id) returned another client"
    );
    assert_eq!(
        by_id.redirect_uris,
        client(1).redirect_uris,
        "redirect URIs must come back exactly as registered, in order"
    );
    let by_key = store
        .find_client(ClientRef::Key("c1@clients"))
        .await
        .must("find_client(Key)")
        .expect("find_client(Key) must find the client just upserted");
    assert_eq!(
        by_key.id,
        Uuid::from_u128(1),
        "find_client(Key) returned another client"
    );
    assert!(
        store
            .find_client(ClientRef::Key("c1"))
            .await
            .must("find_client(Key)")
            .is_none(),
        "a Key matches exactly, never as a prefix"
    );
    let mut renamed = client(1);
    renamed.display_name = "Renamed".into();
    store.upsert_client(&renamed).await.must("upsert_client");
    let found = store
        .find_client(ClientRef::Id(renamed.id))
        .await
        .must("find_client(Id)")
        .expect("an upserted client must stay findable");
    assert_eq!(
        found.display_name, "Renamed",
        "upsert_client with a known Id must replace the client"
    );
    let mut oidc = client(2);
    oidc.policy = ClientPolicy {
        scopes: Some(ScopeSet::parse("openid profile").expect("valid scopes")),
        post_logout_redirect_uris: vec![uri("http://localhost:8000/bye")],
        auth_method: Some(AuthMethod::ClientSecretPost),
        access_token_format: AccessTokenFormat::Jwt,
        id_token_alg: Some(SigningAlg::EdDsa),
        access_token_audience: Some("https://api.example".into()),
        resource_server: true,
    };
    store.upsert_client(&oidc).await.must("upsert_client");
    let found = store
        .find_client(ClientRef::Key("c2@clients"))
        .await
        .must("find_client(Key)")
        .expect("find_client(Key) must find the second client");
    assert_eq!(
        found.policy, oidc.policy,
        "the client policy must survive storage"
    );
}

/// [`UserStore`](crate::ports::UserStore): an upsert by a known username updates the user but
/// keeps its id and creation time.
pub async fn users_upsert_by_username(store: &dyn Store) {
    let id = user(store, "alice").await;
    let again = store
        .upsert_user(&NewUser {
            id: Uuid::new_v4(),
            username: "alice".into(),
            display_name: "Alice 2".into(),
            password_hash: "h2".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            created_at: NOW + 10,
        })
        .await
        .must("upsert_user");
    assert_eq!(again.id, id, "the id of an existing user never changes");
    assert_eq!(
        again.display_name, "Alice 2",
        "upsert_user must return the updated user"
    );
    assert_eq!(
        again.created_at, NOW,
        "the creation time of a user never changes"
    );
    let found = store
        .find_user(id)
        .await
        .must("find_user")
        .expect("find_user must find the user by its id");
    assert_eq!(
        found.password_hash, "h2",
        "upsert_user must update the password hash"
    );
    assert_eq!(
        found.email.as_deref(),
        Some("alice@example.com"),
        "upsert_user must update the e-mail address"
    );
    assert!(
        found.email_verified,
        "upsert_user must update email_verified"
    );
    let by_name = store
        .find_user_by_username("alice")
        .await
        .must("find_user_by_username")
        .expect("find_user_by_username must find the user");
    assert_eq!(by_name.id, id);
    assert!(
        store
            .find_user_by_username("bob")
            .await
            .must("find_user_by_username")
            .is_none(),
        "an unknown username must be None"
    );
}

/// [`SessionStore`](crate::ports::SessionStore): a session is found by its hash until deleted.
pub async fn sessions_are_found_and_deleted(store: &dyn Store) {
    let user = user(store, "s").await;
    let record = SessionRecord {
        hash: TokenHash([9; 32]),
        user_id: user,
        created_at: NOW,
        expires_at: NOW + 10,
    };
    store.insert_session(&record).await.must("insert_session");
    let found = store
        .find_session(&record.hash)
        .await
        .must("find_session")
        .expect("find_session must find the session just inserted");
    assert_eq!(
        (found.user_id, found.created_at, found.expires_at),
        (user, NOW, NOW + 10),
        "the session must come back as inserted"
    );
    store
        .delete_session(&record.hash)
        .await
        .must("delete_session");
    assert!(
        store
            .find_session(&record.hash)
            .await
            .must("find_session")
            .is_none(),
        "a deleted session must be gone"
    );
}

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

/// [`TokenStore::revoke_access_token`](crate::ports::TokenStore::revoke_access_token) revokes
/// that token only (RFC 7009 §2.1 leaves its refresh token to the server's policy).
pub async fn an_access_token_is_revoked_alone(store: &dyn Store) {
    let user = user(store, "a").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(3));
    let (access, refresh) = tokens(3, c1, user, family);
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");
    let found = store
        .find_refresh_token(&refresh.hash)
        .await
        .must("find_refresh_token")
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
        store
            .find_access_token(&access.hash)
            .await
            .must("find_access_token")
            .expect("a revoked token is still found")
            .revoked,
        "revoke_access_token must revoke the token"
    );
    assert!(
        !store
            .find_refresh_token(&refresh.hash)
            .await
            .must("find_refresh_token")
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
    let found = store
        .find_consent(user, c1)
        .await
        .must("find_consent")
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
    store
        .insert_code(&code(30, c1, user, family))
        .await
        .must("insert_code");
    let (access, refresh) = tokens(3, c1, user, family);
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");
    store
        .revoke_consent(user, c1, NOW)
        .await
        .must("revoke_consent");
    assert!(
        store
            .find_consent(user, c1)
            .await
            .must("find_consent")
            .is_none(),
        "revoke_consent must forget the approval"
    );
    assert!(
        store
            .find_consent(user, c2)
            .await
            .must("find_consent")
            .is_some(),
        "revoke_consent must leave the user's other approvals"
    );
    assert!(
        store
            .find_consent(other_user, c1)
            .await
            .must("find_consent")
            .is_some(),
        "revoke_consent must leave other users' approvals of the client"
    );
    assert_revoked(store, &access, &refresh, "revoke_consent").await;
}

/// [`ConsentStore::revoke_consent`](crate::ports::ConsentStore::revoke_consent) spends the
/// codes that the client holds for the user, so that none can be redeemed afterwards.
pub async fn revoking_consent_spends_outstanding_codes(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    let user = user(store, "o").await;
    let c1 = Uuid::from_u128(1);
    store
        .insert_code(&code(7, c1, user, Uuid::from_u128(70)))
        .await
        .must("insert_code");
    store
        .revoke_consent(user, c1, NOW)
        .await
        .must("revoke_consent");
    let redeemed = store
        .redeem_code(&TokenHash([7; 32]), c1, NOW, None)
        .await
        .must("redeem_code");
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
    let (access, refresh) = tokens(4, c1, user, family);
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");
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
    store
        .insert_code(&code(8, c1, user, Uuid::from_u128(80)))
        .await
        .must("insert_code");
    let (access, refresh) = tokens(9, c1, user, Uuid::from_u128(90));
    store
        .insert_tokens(&access, Some(&refresh))
        .await
        .must("insert_tokens");
    store
        .insert_session(&SessionRecord {
            hash: TokenHash([10; 32]),
            user_id: user,
            created_at: NOW,
            expires_at: NOW + 10,
        })
        .await
        .must("insert_session");
    let purge =
        |now: i64| async move { store.purge_expired(now, 3600).await.must("purge_expired") };
    assert_eq!(purge(NOW).await, 0, "nothing has expired yet");
    assert_eq!(
        purge(NOW + 100).await,
        1,
        "the session must go at its expiry"
    );
    assert!(
        store
            .find_session(&TokenHash([10; 32]))
            .await
            .must("find_session")
            .is_none(),
        "the purged row must be the session"
    );
    assert_eq!(
        purge(NOW + 60 + 3600).await,
        1,
        "the code must go `keep_spent` seconds after its expiry"
    );
    assert!(
        store
            .find_access_token(&access.hash)
            .await
            .must("find_access_token")
            .is_some(),
        "the access token must outlive the code"
    );
    assert_eq!(
        purge(NOW + 7200).await,
        1,
        "the access token must go at its expiry (`expires_at <= now`)"
    );
    assert!(
        store
            .find_access_token(&access.hash)
            .await
            .must("find_access_token")
            .is_none(),
        "the purged row must be the access token"
    );
    assert_eq!(
        purge(NOW + 86400).await,
        1,
        "the refresh token must go at its expiry"
    );
}

/// [`SecretStore::ensure_server_secret`](crate::ports::SecretStore::ensure_server_secret): the
/// first candidate wins, for good.
pub async fn server_secrets_are_created_once(store: &dyn Store) {
    let first = store
        .ensure_server_secret("csrf", b"one")
        .await
        .must("ensure_server_secret");
    let second = store
        .ensure_server_secret("csrf", b"two")
        .await
        .must("ensure_server_secret");
    let other = store
        .ensure_server_secret("other", b"three")
        .await
        .must("ensure_server_secret");
    assert_eq!(
        first, b"one",
        "the first candidate must be stored and returned"
    );
    assert_eq!(
        second, b"one",
        "a later candidate must not replace the stored secret"
    );
    assert_eq!(other, b"three", "secrets are kept by name");
}

/// [`KeyStore`](crate::ports::KeyStore): one key per algorithm and generation; the earlier
/// removal time wins; a deleted key is gone.
pub async fn signing_keys_are_created_once_per_generation(store: &dyn Store) {
    let key = |kid: &str, alg, generation| SigningKeyRecord {
        kid: kid.into(),
        alg,
        generation,
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: NOW,
        activate_at: NOW + generation,
        remove_at: None,
    };
    assert!(
        store
            .insert_signing_key(&key("a", SigningAlg::Es256, 1))
            .await
            .must("insert_signing_key"),
        "the first key of an algorithm and generation must be stored (true)"
    );
    assert!(
        !store
            .insert_signing_key(&key("b", SigningAlg::Es256, 1))
            .await
            .must("insert_signing_key"),
        "a second key of the same generation is refused (another instance made it)"
    );
    assert!(
        store
            .insert_signing_key(&key("c", SigningAlg::Rs256, 1))
            .await
            .must("insert_signing_key"),
        "generations are counted per algorithm"
    );
    store
        .schedule_key_removal("a", NOW + 100)
        .await
        .must("schedule_key_removal");
    store
        .schedule_key_removal("a", NOW + 200)
        .await
        .must("schedule_key_removal");
    let keys = store.list_signing_keys().await.must("list_signing_keys");
    assert_eq!(
        keys.len(),
        2,
        "list_signing_keys must list the two stored keys"
    );
    let a = keys
        .iter()
        .find(|k| k.kid == "a")
        .expect("list_signing_keys must list key `a`");
    assert_eq!(a.remove_at, Some(NOW + 100), "the earlier removal wins");
    assert_eq!(
        a.private_key,
        vec![1, 2, 3],
        "the private key must come back as given"
    );
    assert_eq!(a.activate_at, NOW + 1);
    store
        .delete_signing_key("a")
        .await
        .must("delete_signing_key");
    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .must("list_signing_keys")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["c"], "delete_signing_key must delete that key only");
}

/// Absence is an answer, not an error: lookups of what does not exist are `None` (or
/// [`Redemption::Unknown`]), and deleting or revoking it succeeds doing nothing.
pub async fn absent_rows_are_not_errors(store: &dyn Store) {
    let nobody = Uuid::from_u128(404);
    let nothing = TokenHash([44; 32]);
    assert!(store.find_user(nobody).await.must("find_user").is_none());
    assert!(store
        .find_client(ClientRef::Id(nobody))
        .await
        .must("find_client")
        .is_none());
    assert!(store
        .find_consent(nobody, nobody)
        .await
        .must("find_consent")
        .is_none());
    assert!(store
        .list_consents(nobody)
        .await
        .must("list_consents")
        .is_empty());
    assert!(store
        .find_code(&nothing, nobody)
        .await
        .must("find_code")
        .is_none());
    assert!(store
        .find_refresh_token(&nothing)
        .await
        .must("find_refresh_token")
        .is_none());
    let rotated = store
        .rotate_refresh_token(&nothing, nobody, NOW, None, None)
        .await
        .must("rotate_refresh_token");
    assert!(
        matches!(rotated, Redemption::Unknown),
        "an unknown refresh token must be Unknown, got {rotated:?}"
    );
    store
        .delete_session(&nothing)
        .await
        .must("delete_session of an unknown session");
    store
        .revoke_access_token(&nothing, NOW)
        .await
        .must("revoke_access_token of an unknown token");
    store
        .revoke_consent(nobody, nobody, NOW)
        .await
        .must("revoke_consent without an approval");
    store
        .schedule_key_removal("nothing", NOW)
        .await
        .must("schedule_key_removal of an unknown key");
    store
        .delete_signing_key("nothing")
        .await
        .must("delete_signing_key of an unknown key");
    assert!(
        store
            .list_signing_keys()
            .await
            .must("list_signing_keys")
            .is_empty(),
        "scheduling the removal of an unknown key must not create one"
    );
    assert_eq!(
        store.purge_expired(NOW, 0).await.must("purge_expired"),
        0,
        "purging an empty store deletes nothing"
    );
}

/// Records for the checks, and for an adapter's own tests (races, several instances) beside
/// them. Every value is fixed, so that a failure repeats.
pub mod fixtures {
    use super::*;
    use crate::model::{Client, CodeRecord};

    /// The time of every record, in Unix seconds (in 2027).
    pub const NOW: i64 = 1_800_000_000;

    /// A confidential client with the Id `n`, the Key `c{n}@clients` and two redirect URIs.
    pub fn client(n: u128) -> Client {
        Client {
            id: Uuid::from_u128(n),
            key: format!("c{n}@clients"),
            display_name: format!("Client {n}"),
            app_uri: "http://localhost:8000".into(),
            redirect_uris: vec![
                uri("http://localhost:8000/cb"),
                uri("http://localhost:8000/cb2?x=1"),
            ],
            secret_hash: Some("$argon2id$fake".into()),
            policy: ClientPolicy::default(),
        }
    }

    /// Stores a user named `name` (display name in capitals); returns its id.
    pub async fn user(store: &dyn Store, name: &str) -> Uuid {
        store
            .upsert_user(&NewUser {
                id: Uuid::new_v4(),
                username: name.into(),
                display_name: name.to_uppercase(),
                password_hash: "h".into(),
                email: None,
                email_verified: false,
                created_at: NOW,
            })
            .await
            .must("upsert_user")
            .id
    }

    /// A code whose hash is 32 times `hash`, with PKCE and a nonce, valid for 60 seconds.
    pub fn code(hash: u8, client: Uuid, user: Uuid, family: Uuid) -> CodeRecord {
        CodeRecord {
            hash: TokenHash([hash; 32]),
            client_id: client,
            user_id: user,
            redirect_uri: uri("http://localhost:8000/cb"),
            scopes: scopes("base"),
            scope_requested: true,
            challenge: Some((
                CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                    .expect("the RFC 7636 example challenge is valid"),
                CodeChallengeMethod::S256,
            )),
            nonce: Some("n-0S6_WzA2Mj".into()),
            family_id: family,
            auth_time: NOW - 5,
            issued_at: NOW,
            expires_at: NOW + 60,
        }
    }

    /// An access token (hash: 32 times `hash`, valid for 2 hours) and its refresh token (hash:
    /// 32 times `hash + 100`, valid for a day).
    pub fn tokens(
        hash: u8,
        client: Uuid,
        user: Uuid,
        family: Uuid,
    ) -> (AccessTokenRecord, RefreshTokenRecord) {
        (
            AccessTokenRecord {
                hash: TokenHash([hash; 32]),
                family_id: family,
                client_id: client,
                user_id: user,
                scopes: scopes("base"),
                issued_at: NOW,
                expires_at: NOW + 7200,
                revoked: false,
            },
            RefreshTokenRecord {
                hash: TokenHash([hash.wrapping_add(100); 32]),
                family_id: family,
                client_id: client,
                user_id: user,
                scopes: scopes("base"),
                auth_time: NOW - 5,
                issued_at: NOW,
                expires_at: NOW + 86400,
                revoked: false,
                used_at: None,
                successor: None,
            },
        )
    }
}

/// Both tokens read back revoked, after `what` (the refresh token is spent by looking: a
/// revoked refresh token still rotates, and the engine refuses it for its `revoked` flag).
async fn assert_revoked(
    store: &dyn Store,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
    what: &str,
) {
    let found = store
        .find_access_token(&access.hash)
        .await
        .must("find_access_token")
        .expect("a revoked access token is still found");
    assert!(found.revoked, "{what} must revoke the access token");
    let rotated = store
        .rotate_refresh_token(&refresh.hash, refresh.client_id, NOW, None, None)
        .await
        .must("rotate_refresh_token");
    match rotated {
        Redemption::Fresh(r) => assert!(r.revoked, "{what} must revoke the refresh token"),
        other => panic!(
            "an unspent refresh token must rotate (Fresh, with `revoked` set) even when revoked, \
             got {other:?}"
        ),
    }
}

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse(s).expect("the fixtures' scopes are valid")
}

fn uri(s: &str) -> RedirectUri {
    RedirectUri::parse(s).expect("the fixtures' URIs are valid")
}

/// A store call that must succeed.
trait Must<T> {
    fn must(self, call: &str) -> T;
}

impl<T> Must<T> for StoreResult<T> {
    #[track_caller]
    fn must(self, call: &str) -> T {
        match self {
            Ok(value) => value,
            Err(e) => panic!("{call} failed: {e} ({e:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::memory::MemoryStore;
    use crate::ports::SharedStore;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        super::run_contract(|| async { Arc::new(MemoryStore::default()) as SharedStore }).await;
    }
}
