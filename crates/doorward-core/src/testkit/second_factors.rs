//! Checks of second factors: a TOTP secret kept (sealed bytes as given), each time step
//! accepted once and never an older one, recovery codes spent once, all gone together.

use super::fixtures::{user, NOW};
use super::Must;
use crate::model::TotpRecord;
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
