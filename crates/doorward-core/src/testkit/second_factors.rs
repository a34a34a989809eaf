//! Checks of second factors: a TOTP secret kept (sealed bytes as given), each time step
//! accepted once and never an older one, recovery codes spent once, all gone together.

use super::fixtures::{user, NOW};
use super::Must;
use crate::model::{PasskeyRecord, TotpRecord};
use crate::ports::Store;

/// [`SecondFactorStore`](crate::ports::SecondFactorStore): see the module documentation.
pub async fn second_factors_are_kept_and_spent_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let totp = TotpRecord {
        user_id: alice,
        secret: vec![1, 2, 3, 250],
        created_at: NOW,
        last_step: 100,
    };
    let codes = [[7u8; 32], [8u8; 32]];
    store.set_totp(&totp, &codes).await.must("set_totp");
    assert_eq!(
        store.find_totp(alice).await.must("find_totp"),
        Some(totp.clone())
    );
    assert_eq!(store.find_totp(bob).await.must("find_totp"), None);
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        2
    );

    for (step, accepted, why) in [
        (101, true, "a later step is accepted"),
        (101, false, "the same step twice is a replay"),
        (100, false, "an older step is refused"),
        (103, true, "a later one again"),
    ] {
        assert_eq!(
            store
                .accept_totp_step(alice, step)
                .await
                .must("accept_totp_step"),
            accepted,
            "{why}"
        );
    }
    assert!(
        !store
            .accept_totp_step(bob, 500)
            .await
            .must("accept_totp_step"),
        "no secret"
    );

    assert!(store
        .spend_recovery_code(alice, &codes[0], NOW)
        .await
        .must("spend_recovery_code"));
    assert!(!store
        .spend_recovery_code(alice, &codes[0], NOW)
        .await
        .must("spend_recovery_code"));
    assert!(!store
        .spend_recovery_code(bob, &codes[1], NOW)
        .await
        .must("spend_recovery_code"));
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        1
    );
    store
        .replace_recovery_codes(alice, &[[9u8; 32]])
        .await
        .must("replace_recovery_codes");
    assert!(
        !store
            .spend_recovery_code(alice, &codes[1], NOW)
            .await
            .must("spend_recovery_code"),
        "replaced"
    );
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        1
    );

    // A new secret replaces the old, its step and its codes.
    let again = TotpRecord {
        secret: vec![4, 5],
        last_step: 0,
        ..totp.clone()
    };
    store.set_totp(&again, &codes).await.must("set_totp");
    assert_eq!(store.find_totp(alice).await.must("find_totp"), Some(again));
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        2
    );

    assert!(store
        .delete_second_factors(alice)
        .await
        .must("delete_second_factors"));
    assert_eq!(store.find_totp(alice).await.must("find_totp"), None);
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        0
    );
    assert!(!store
        .delete_second_factors(alice)
        .await
        .must("delete_second_factors"));

    // Removing the user takes its second factors with it.
    store
        .set_totp(
            &TotpRecord {
                user_id: bob,
                ..totp
            },
            &codes,
        )
        .await
        .must("set_totp");
    assert!(store.delete_user(bob, NOW).await.must("delete_user"));
    assert_eq!(store.find_totp(bob).await.must("find_totp"), None);
}

fn passkey(user_id: uuid::Uuid, credential_id: &[u8], created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: uuid::Uuid::new_v4(),
        user_id,
        credential_id: credential_id.to_vec(),
        name: format!("key {created_at} ✓"),
        credential: r#"{"cred":{"counter":0}}"#.to_owned(),
        created_at,
        last_used_at: None,
    }
}

/// Passkeys: found by credential id whoever's they are, a credential id registered once
/// across users, listed oldest first, updated after a use, removed one by one by their user
/// only, and gone with every other second factor and with their user; removing the app
/// alone leaves them and the recovery codes.
pub async fn passkeys_are_kept_found_and_removed(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let laptop = passkey(alice, &[1, 2, 3, 0xff], NOW + 1);
    let phone = passkey(alice, &[9; 64], NOW);
    for p in [&laptop, &phone] {
        assert!(store.insert_passkey(p).await.must("insert_passkey"));
    }
    assert!(
        !store
            .insert_passkey(&passkey(bob, &laptop.credential_id, NOW))
            .await
            .must("insert_passkey"),
        "a credential id belongs to one user"
    );
    assert_eq!(
        store.list_passkeys(alice).await.must("list_passkeys"),
        vec![phone.clone(), laptop.clone()],
        "oldest first"
    );
    assert_eq!(store.list_passkeys(bob).await.must("list_passkeys"), vec![]);
    assert_eq!(
        store
            .find_passkey(&laptop.credential_id)
            .await
            .must("find_passkey"),
        Some(laptop.clone())
    );
    assert_eq!(
        store.find_passkey(&[1, 2, 3]).await.must("find_passkey"),
        None,
        "a prefix is another id"
    );

    let used = r#"{"cred":{"counter":7}}"#;
    assert!(store
        .update_passkey(&laptop.credential_id, used, NOW + 60)
        .await
        .must("update_passkey"));
    let updated = store
        .find_passkey(&laptop.credential_id)
        .await
        .must("find_passkey")
        .expect("still there");
    assert_eq!(
        (updated.credential.as_str(), updated.last_used_at),
        (used, Some(NOW + 60))
    );
    assert!(!store
        .update_passkey(&[42], used, NOW)
        .await
        .must("update_passkey"));

    assert!(
        !store
            .delete_passkey(bob, laptop.id)
            .await
            .must("delete_passkey"),
        "another user's passkey is not removed"
    );
    assert!(store
        .delete_passkey(alice, laptop.id)
        .await
        .must("delete_passkey"));
    assert_eq!(
        store.list_passkeys(alice).await.must("list_passkeys"),
        vec![phone.clone()]
    );

    // The app removed alone: the passkey and the recovery codes stay.
    let codes = [[3u8; 32]];
    let totp = TotpRecord {
        user_id: alice,
        secret: vec![5; 20],
        created_at: NOW,
        last_step: 1,
    };
    store.set_totp(&totp, &codes).await.must("set_totp");
    assert!(store.delete_totp(alice).await.must("delete_totp"));
    assert!(!store.delete_totp(alice).await.must("delete_totp"));
    assert_eq!(store.find_totp(alice).await.must("find_totp"), None);
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        1
    );
    // Every second factor at once: a passkey alone is one.
    assert!(store
        .delete_second_factors(alice)
        .await
        .must("delete_second_factors"));
    assert_eq!(
        store.list_passkeys(alice).await.must("list_passkeys"),
        vec![]
    );
    assert_eq!(
        store
            .count_recovery_codes(alice)
            .await
            .must("count_recovery_codes"),
        0
    );

    // Removing the user takes its passkeys with it.
    let bobs = passkey(bob, &[7, 7], NOW);
    assert!(store.insert_passkey(&bobs).await.must("insert_passkey"));
    assert!(store.delete_user(bob, NOW).await.must("delete_user"));
    assert_eq!(
        store
            .find_passkey(&bobs.credential_id)
            .await
            .must("find_passkey"),
        None
    );
}
