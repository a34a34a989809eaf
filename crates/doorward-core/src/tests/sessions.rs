//! The browser's side: signing in, sessions and their end, CSRF tokens bound to their cookie.

use doorward_proto::Secret;

use super::support::*;

#[tokio::test]
async fn sign_in_does_not_say_which_part_was_wrong() {
    let h = harness().await;
    let wrong_password = h.engine.sign_in("alice", &Secret::new("nope")).await;
    let wrong_user = h.engine.sign_in("mallory", &Secret::new("pw")).await;
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
    let (cookie, _) = h.engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_some());
    h.engine.sign_out(&cookie).await.unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
    let (cookie, _) = h.engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
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
