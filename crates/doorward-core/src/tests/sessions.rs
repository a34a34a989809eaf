//! The browser's side: signing in, sessions and their end, CSRF tokens bound to their cookie.

use doorward_proto::Secret;

use super::support::*;

#[tokio::test]
async fn sign_in_does_not_say_which_part_was_wrong() {
    let h = harness().await;
    let wrong_password = h.engine.sign_in("alice", &Secret::new("nope"), None).await;
    let wrong_user = h.engine.sign_in("mallory", &Secret::new("pw"), None).await;
    assert!(matches!(
        wrong_password,
        Err(crate::session::SignInError::InvalidCredentials)
    ));
    assert!(matches!(
        wrong_user,
        Err(crate::session::SignInError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn sessions_expire_and_end_at_sign_out() {
    let h = harness().await;
    let (cookie, _) = h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_some());
    h.engine.sign_out(&cookie).await.unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
    let (cookie, _) = h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
    h.clock.advance(14 * 24 * 3600);
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
}

#[tokio::test]
async fn csrf_tokens_belong_to_their_cookie() {
    let h = harness().await;
    let cookie = h.engine.new_csrf_cookie();
    let token = h.engine.csrf_token(&cookie, None);
    assert!(h.engine.verify_csrf(Some(&cookie), None, Some(&token)));
    let other = h.engine.new_csrf_cookie();
    assert!(!h.engine.verify_csrf(Some(&other), None, Some(&token)));
    assert!(!h.engine.verify_csrf(None, None, Some(&token)));
    assert!(!h.engine.verify_csrf(Some(&cookie), None, None));
    assert!(!h.engine.verify_csrf(Some(&cookie), None, Some(&cookie)));
    // Bound to the session: a token minted with another session does not pass.
    let signed_in = h.engine.csrf_token(&cookie, Some("dws_victim"));
    assert!(h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&signed_in)));
    assert!(!h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&token)));
    let attacker = h.engine.csrf_token(&cookie, Some("dws_attacker"));
    assert!(!h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&attacker)));
}

/// RFC 6819 §4.4.3.6: after `ACCOUNT.free` wrong passwords the account is locked, whatever the
/// password, and an unknown username gets exactly the same answers; the lock grows with each
/// further failure, and a success clears the count.
#[tokio::test]
async fn wrong_passwords_lock_the_account_and_unknown_users_alike() {
    use crate::session::SignInError;
    use crate::throttle::{Counter, Throttled, ACCOUNT};
    let h = harness().await;
    let attempt = |name: &'static str, password: &'static str| {
        let engine = &h.engine;
        async move { engine.sign_in(name, &Secret::new(password), None).await }
    };
    for name in ["alice", "nobody"] {
        for _ in 0..ACCOUNT.free {
            assert!(matches!(
                attempt(name, "wrong").await,
                Err(SignInError::InvalidCredentials)
            ));
        }
        for password in ["wrong", "pw"] {
            match attempt(name, password).await {
                Err(SignInError::Throttled(Throttled { retry_after })) => {
                    assert_eq!(retry_after, 30, "{name}: the first lock is 30 s")
                }
                other => panic!("{name}: expected a lock, got {other:?}"),
            }
        }
    }
    // Case and spaces do not make another account to guess.
    assert!(matches!(
        attempt(" ALICE", "pw").await,
        Err(SignInError::Throttled(_))
    ));
    h.clock.advance(30);
    assert!(matches!(
        attempt("alice", "wrong").await,
        Err(SignInError::InvalidCredentials)
    ));
    match attempt("alice", "pw").await {
        Err(SignInError::Throttled(Throttled { retry_after })) => assert_eq!(retry_after, 60),
        other => panic!("expected the lock to double, got {other:?}"),
    }
    h.clock.advance(60);
    let key = Counter::account("alice").key().to_owned();
    assert!(h
        .engine
        .store()
        .find_failures(&key)
        .await
        .unwrap()
        .is_some());
    attempt("alice", "pw").await.expect("the lock is over");
    assert_eq!(
        h.engine.store().find_failures(&key).await.unwrap(),
        None,
        "a sign-in clears the account's counter"
    );
}

/// Failures are also counted per address, across usernames; another address is not locked.
#[tokio::test]
async fn one_address_guessing_many_usernames_is_locked_alone() {
    use crate::session::SignInError;
    use crate::throttle::ADDRESS;
    let h = harness().await;
    let guesser = Some("192.0.2.7".parse().unwrap());
    let neighbour = Some("198.51.100.1".parse().unwrap());
    for i in 0..ADDRESS.free {
        let name = format!("user{i}");
        let answer = h.engine.sign_in(&name, &Secret::new("x"), guesser).await;
        assert!(matches!(answer, Err(SignInError::InvalidCredentials)));
    }
    let locked = h.engine.sign_in("alice", &Secret::new("pw"), guesser).await;
    assert!(matches!(locked, Err(SignInError::Throttled(_))));
    h.engine
        .sign_in("alice", &Secret::new("pw"), neighbour)
        .await
        .expect("another address signs in");
}
