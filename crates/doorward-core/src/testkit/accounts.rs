//! Checks of accounts managed while servers run: listing and searching users, updating one,
//! disabling and removing one, which ends everything the user holds.

use uuid::Uuid;

use super::fixtures::{code, user, NOW};
use super::steps::{
    client_1_and_user, find_access_token, find_consent, find_refresh_token, find_session,
    insert_code, insert_tokens, redeem_code, stored_tokens,
};
use super::{scopes, Must};
use crate::model::{ConsentRecord, SessionRecord, User, UserChange, UserFilter, UserSource};
use crate::ports::{Redemption, Store};
use crate::TokenHash;

fn names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

/// The user `id` as `store` has it now; `what` says why it must be there.
async fn stored_user(store: &dyn Store, id: Uuid, what: &str) -> User {
    store
        .find_user(id)
        .await
        .must("find_user")
        .unwrap_or_else(|| panic!("find_user: {what}"))
}

async fn list(
    store: &dyn Store,
    search: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Vec<User> {
    store
        .list_users(&UserFilter {
            search: search.map(str::to_owned),
            after: after.map(str::to_owned),
            limit,
        })
        .await
        .must("list_users")
}

/// [`UserStore::list_users`](crate::ports::UserStore::list_users) orders by username, pages
/// with `after` and `limit`, and searches usernames, display names and e-mail addresses
/// without case; [`UserStore::update_user`](crate::ports::UserStore::update_user) writes
/// what its change names and nothing else (two changes made from the same earlier read both
/// stay); an upsert never takes the admin role away nor enables a disabled user.
pub async fn users_are_listed_searched_and_updated(store: &dyn Store) {
    for name in ["carol", "alice", "bob", "Dave"] {
        user(store, name).await;
    }
    let taken = store
        .find_user_by_username("bob")
        .await
        .must("find_user_by_username")
        .expect("bob is stored");
    let newcomer = User {
        id: Uuid::from_u128(0xe1),
        username: "erin".into(),
        admin: true,
        disabled_at: Some(NOW),
        source: UserSource::SignUp,
        ..taken.clone()
    };
    assert!(store.insert_user(&newcomer).await.must("insert_user"));
    let erin = stored_user(store, newcomer.id, "inserted").await;
    assert_eq!(
        (
            erin.username.as_str(),
            erin.admin,
            erin.disabled_at,
            erin.source
        ),
        ("erin", true, Some(NOW), UserSource::SignUp),
        "insert_user stores every field"
    );
    let clash = User {
        id: Uuid::from_u128(0xe2),
        display_name: "Not Bob".into(),
        ..taken.clone()
    };
    assert!(
        !store.insert_user(&clash).await.must("insert_user"),
        "insert_user of a taken username is false"
    );
    let bob = stored_user(store, taken.id, "kept").await;
    assert_eq!(bob.display_name, taken.display_name, "and writes nothing");
    assert!(store.find_user(clash.id).await.must("find_user").is_none());
    let same_id = User {
        username: "frank".into(),
        ..newcomer.clone()
    };
    assert!(
        !store.insert_user(&same_id).await.must("insert_user"),
        "nor of a taken id"
    );
    assert!(store
        .delete_user(newcomer.id, NOW)
        .await
        .must("delete_user"));
    // Byte order: "Dave" (upper case) comes first.
    let all = list(store, None, None, 10).await;
    assert_eq!(
        names(&all),
        ["Dave", "alice", "bob", "carol"],
        "list_users orders by username"
    );
    let page = list(store, None, Some("alice"), 2).await;
    assert_eq!(
        names(&page),
        ["bob", "carol"],
        "after and limit page the list"
    );
    // The fixture's display names are the usernames in capitals.
    let found = list(store, Some("ARO"), None, 10).await;
    assert_eq!(names(&found), ["carol"], "the search ignores case");
    assert!(list(store, Some("zz"), None, 10).await.is_empty());

    let alice = store
        .find_user_by_username("alice")
        .await
        .must("find_user_by_username")
        .expect("alice is stored");
    let profile = UserChange {
        display_name: Some("Alice Liddell".into()),
        email: Some(Some("alice@wonderland.example".into())),
        email_verified: Some(true),
        ..UserChange::default()
    };
    let password = UserChange {
        password_hash: Some("h-new".into()),
        ..UserChange::default()
    };
    let role = UserChange {
        admin: Some(true),
        second_factor_required: Some(true),
        ..UserChange::default()
    };
    // Three changes made from the same earlier read (`alice`): none undoes another.
    for change in [&profile, &password, &role] {
        assert!(store
            .update_user(alice.id, change)
            .await
            .must("update_user"));
    }
    let stored = stored_user(store, alice.id, "alice is still stored").await;
    assert_eq!(
        (
            stored.username.as_str(),
            stored.created_at,
            stored.disabled_at,
            &stored.claims,
            stored.source,
        ),
        ("alice", alice.created_at, None, &alice.claims, alice.source),
        "update_user keeps what its change does not name"
    );
    assert_eq!(
        (
            stored.display_name.as_str(),
            stored.password_hash.as_str(),
            stored.admin,
            stored.second_factor_required,
            stored.email_verified,
        ),
        ("Alice Liddell", "h-new", true, true, true),
        "update_user writes what its change names, each change's own"
    );
    assert_eq!(stored.email.as_deref(), Some("alice@wonderland.example"));
    assert_eq!(
        profile.applied_to(&role.applied_to(&password.applied_to(&alice))),
        stored,
        "UserChange::applied_to answers what the store wrote"
    );
    let found = list(store, Some("WONDERLAND"), None, 10).await;
    assert_eq!(
        names(&found),
        ["alice"],
        "the search reads e-mail addresses"
    );
    let mut claims = serde_json::Map::new();
    claims.insert("house".into(), "red".into());
    let removal = UserChange {
        email: Some(None),
        email_verified: Some(false),
        claims: Some(claims.clone()),
        ..UserChange::default()
    };
    assert!(store
        .update_user(alice.id, &removal)
        .await
        .must("update_user"));
    let stored = stored_user(store, alice.id, "alice is still stored").await;
    assert_eq!(
        (
            stored.email.as_deref(),
            stored.email_verified,
            &stored.claims
        ),
        (None, false, &claims),
        "Some(None) removes the address; claims are written whole"
    );
    assert_eq!(
        (stored.display_name.as_str(), stored.admin),
        ("Alice Liddell", true)
    );
    assert!(
        !store
            .update_user(Uuid::from_u128(0xdead), &password)
            .await
            .must("update_user"),
        "update_user of an unknown id is false"
    );

    assert!(store
        .set_user_disabled(alice.id, Some(NOW), NOW)
        .await
        .must("set_user_disabled"));
    let seeded = store
        .upsert_user(&User {
            admin: false,
            source: UserSource::Config,
            ..stored.clone()
        })
        .await
        .must("upsert_user");
    assert!(seeded.admin, "an upsert never takes the admin role away");
    assert_eq!(
        seeded.disabled_at,
        Some(NOW),
        "an upsert never enables a user"
    );
    assert_eq!(
        seeded.source,
        UserSource::Config,
        "an upsert writes the source"
    );
}

/// [`UserStore::set_user_disabled`](crate::ports::UserStore::set_user_disabled) ends the
/// user's sessions, grants, tokens and outstanding codes, and no one else's; enabling gives
/// nothing back but the right to sign in; [`UserStore::delete_user`](crate::ports::UserStore::delete_user)
/// ends the same and deletes the user with its consents.
pub async fn disabling_or_removing_a_user_ends_what_it_holds(store: &dyn Store) {
    let (c1, alice) = client_1_and_user(store, "alice").await;
    let bob = user(store, "bob").await;
    let session = |n: u8, user| SessionRecord {
        hash: TokenHash([n; 32]),
        user_id: user,
        created_at: NOW,
        expires_at: NOW + 3600,
        amr: Vec::new(),
    };
    for record in [session(1, alice), session(2, alice), session(3, bob)] {
        store.insert_session(&record).await.must("insert_session");
    }
    for user in [alice, bob] {
        store
            .record_consent(&ConsentRecord {
                user_id: user,
                client_id: c1,
                scopes: scopes("base"),
                granted_at: NOW,
            })
            .await
            .must("record_consent");
    }
    // Alice: a family with tokens, and an outstanding code of another family. Bob: the same.
    let (alice_family, alice_pending) = (Uuid::from_u128(0xa1), Uuid::from_u128(0xa2));
    insert_code(store, &code(10, c1, alice, alice_family)).await;
    let (access, refresh) = stored_tokens(store, 11, c1, alice, alice_family).await;
    insert_code(store, &code(12, c1, alice, alice_pending)).await;
    let (bob_family, bob_pending) = (Uuid::from_u128(0xb1), Uuid::from_u128(0xb2));
    insert_code(store, &code(20, c1, bob, bob_family)).await;
    let (bob_access, bob_refresh) = stored_tokens(store, 21, c1, bob, bob_family).await;
    insert_code(store, &code(22, c1, bob, bob_pending)).await;

    assert!(store
        .set_user_disabled(alice, Some(NOW), NOW)
        .await
        .must("set_user_disabled"));
    let disabled = stored_user(store, alice, "kept").await;
    assert_eq!(disabled.disabled_at, Some(NOW));
    for n in [1, 2] {
        assert!(
            find_session(store, &TokenHash([n; 32])).await.is_none(),
            "disabling a user deletes its sessions"
        );
    }
    assert!(
        find_access_token(store, &access.hash)
            .await
            .expect("kept")
            .revoked
    );
    assert!(
        find_refresh_token(store, &refresh.hash)
            .await
            .expect("kept")
            .revoked
    );
    let redeemed = redeem_code(store, &TokenHash([12; 32]), c1, NOW, None).await;
    assert!(
        matches!(redeemed, Redemption::Spent(_)),
        "disabling a user spends its outstanding codes, got {redeemed:?}"
    );
    // A rotation that raced the disabling inserts into a revoked family.
    let (late, _) = super::fixtures::tokens(13, c1, alice, alice_family);
    insert_tokens(store, &late, None).await;
    assert!(
        find_access_token(store, &late.hash)
            .await
            .expect("stored")
            .revoked,
        "a token born into a family of a disabled user is revoked"
    );
    assert!(
        find_consent(store, alice, c1).await.is_some(),
        "disabling keeps the user's consents"
    );
    // Bob keeps everything.
    assert!(find_session(store, &TokenHash([3; 32])).await.is_some());
    assert!(
        !find_access_token(store, &bob_access.hash)
            .await
            .expect("kept")
            .revoked
    );
    assert!(
        !find_refresh_token(store, &bob_refresh.hash)
            .await
            .expect("kept")
            .revoked
    );

    assert!(store
        .set_user_disabled(alice, None, NOW + 1)
        .await
        .must("set_user_disabled"));
    let enabled = stored_user(store, alice, "kept").await;
    assert_eq!(enabled.disabled_at, None, "enabling clears disabled_at");
    assert!(
        find_access_token(store, &access.hash)
            .await
            .expect("kept")
            .revoked,
        "enabling gives no token back"
    );
    assert!(!store
        .set_user_disabled(Uuid::from_u128(0xdead), Some(NOW), NOW)
        .await
        .must("set_user_disabled"));

    store
        .insert_session(&session(4, bob))
        .await
        .must("insert_session");
    assert_eq!(
        store
            .delete_user_sessions(bob)
            .await
            .must("delete_user_sessions"),
        2,
        "delete_user_sessions counts what it deleted"
    );
    assert!(find_session(store, &TokenHash([3; 32])).await.is_none());
    assert!(
        !find_access_token(store, &bob_access.hash)
            .await
            .expect("kept")
            .revoked,
        "signing out of browsers leaves the tokens"
    );

    assert!(store.delete_user(bob, NOW + 2).await.must("delete_user"));
    assert!(store.find_user(bob).await.must("find_user").is_none());
    assert!(
        find_consent(store, bob, c1).await.is_none(),
        "a removed user's consents go"
    );
    assert!(find_access_token(store, &bob_access.hash)
        .await
        .is_none_or(|token| token.revoked));
    assert!(find_refresh_token(store, &bob_refresh.hash)
        .await
        .is_none_or(|token| token.revoked));
    let redeemed = redeem_code(store, &TokenHash([22; 32]), c1, NOW + 2, None).await;
    assert!(
        !matches!(redeemed, Redemption::Fresh(_)),
        "a removed user's codes are spent, got {redeemed:?}"
    );
    assert!(!store.delete_user(bob, NOW + 3).await.must("delete_user"));
}
