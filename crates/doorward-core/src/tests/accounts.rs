//! Accounts managed while the engine runs: created under the password rules, disabled (which
//! ends what the user holds and refuses its sign-in), enabled, removed.

use doorward_proto::{ErrorCode, Secret};

use super::support::*;
use crate::audit::Actor;
use crate::model::{SessionRecord, UserSource};
use crate::password_rules::PasswordProblem;
use crate::session::SignInError;
use crate::users::{AccountError, NewAccount};
use crate::TokenHash;

const PASSPHRASE: &str = "a passphrase long enough";

fn account(username: &str, password: &str) -> NewAccount {
    NewAccount {
        username: username.into(),
        display_name: None,
        email: None,
        password: Secret::new(password),
        admin: false,
        source: UserSource::Cli,
    }
}

#[tokio::test]
async fn disabling_ends_sessions_tokens_and_pending_codes_and_refuses_sign_in() {
    let h = harness().await;
    let (cookie, _) = h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
    let issued = h.redeem(&h.code(&[]).await).await.unwrap();
    let refresh = issued.refresh_token.clone().unwrap();
    let pending = h.code(&[]).await;
    let alice = h.engine.account("alice").await.unwrap();

    assert!(h
        .engine
        .disable_account(&alice, &Actor::System)
        .await
        .unwrap());
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
    assert!(!h.token_works(&issued.access_token).await);
    assert_eq!(code_of(h.refresh(&refresh).await), ErrorCode::InvalidGrant);
    assert_eq!(code_of(h.redeem(&pending).await), ErrorCode::InvalidGrant);
    assert!(matches!(
        h.engine.sign_in("alice", &Secret::new("pw"), None).await,
        Err(SignInError::Disabled)
    ));
    assert!(
        matches!(
            h.engine.sign_in("alice", &Secret::new("wrong"), None).await,
            Err(SignInError::InvalidCredentials)
        ),
        "a wrong password does not learn that the account is disabled"
    );

    // A session opened by a sign-in that raced the disabling finds the user disabled.
    let raced = "dws_raced-session-cookie";
    h.engine
        .store()
        .insert_session(&SessionRecord {
            hash: TokenHash::of(raced),
            user_id: alice.id,
            created_at: h.engine.now(),
            expires_at: h.engine.now() + 3600,
            amr: vec!["pwd".into()],
        })
        .await
        .unwrap();
    assert!(h.engine.session(raced).await.unwrap().is_none());

    let alice = h.engine.account("alice").await.unwrap();
    assert!(h
        .engine
        .enable_account(&alice, &Actor::System)
        .await
        .unwrap());
    assert!(h.engine.session(raced).await.unwrap().is_some());
    assert!(h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .is_ok());
    assert!(
        !h.token_works(&issued.access_token).await,
        "enabling gives no token back"
    );
}

#[tokio::test]
async fn accounts_are_created_under_the_rules_and_sign_in() {
    let h = harness().await;
    let user = h
        .engine
        .create_account(account(" Grace.H ", PASSPHRASE), &Actor::System)
        .await
        .unwrap();
    assert_eq!(
        (user.username.as_str(), user.display_name.as_str()),
        ("grace.h", "grace.h")
    );
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(h
        .engine
        .sign_in("grace.h", &Secret::new(PASSPHRASE), None)
        .await
        .is_ok());
    assert!(matches!(
        h.engine.create_account(account("GRACE.H", PASSPHRASE), &Actor::System).await,
        Err(AccountError::Taken(name)) if name == "grace.h"
    ));
    assert!(matches!(
        h.engine
            .create_account(account("hopper", "short"), &Actor::System)
            .await,
        Err(AccountError::Password(PasswordProblem::TooShort {
            min: 15
        }))
    ));
    assert!(matches!(
        h.engine
            .create_account(account("hopper", "hopper hopper hopper"), &Actor::System)
            .await,
        Err(AccountError::Password(PasswordProblem::ContextWord))
    ));
    assert!(h.engine.find_account("hopper").await.unwrap().is_none());

    let reset = h
        .engine
        .set_account_password(
            &user,
            &Secret::new("another passphrase here"),
            &Actor::System,
        )
        .await
        .unwrap();
    assert_ne!(reset.password_hash, user.password_hash);
    assert!(matches!(
        h.engine
            .sign_in("grace.h", &Secret::new(PASSPHRASE), None)
            .await,
        Err(SignInError::InvalidCredentials)
    ));
    // Changes made from a copy read before the reset (an admin's page open meanwhile) change
    // what they name only: the new password stays.
    h.engine
        .set_account_admin(&user, true, &Actor::System)
        .await
        .unwrap();
    h.engine
        .update_account_profile(&user, Some("Grace Hopper"), None, &Actor::System)
        .await
        .unwrap();
    let now = h.engine.find_account("grace.h").await.unwrap().unwrap();
    assert_eq!(
        (
            now.password_hash.as_str(),
            now.admin,
            now.display_name.as_str()
        ),
        (reset.password_hash.as_str(), true, "Grace Hopper")
    );
    assert!(h
        .engine
        .sign_in("grace.h", &Secret::new("another passphrase here"), None)
        .await
        .is_ok());
    assert!(h
        .engine
        .remove_account(&reset, &Actor::System)
        .await
        .unwrap());
    assert!(h
        .engine
        .find_account(&reset.id.to_string())
        .await
        .unwrap()
        .is_none());
}

/// A passkey ceremony's state is the server's: forged, of another kind or user, stale or
/// answered once already, it is refused before its answer is read (W3C WebAuthn §13.4.3).
#[tokio::test]
async fn passkey_ceremonies_are_bound_bounded_and_spent_once() {
    use crate::passkeys::{PasskeyError, CEREMONY_LIFETIME};

    let h = harness().await;
    assert!(h.engine.passkeys_available(), "the issuer is a domain");
    let expired = |r: Result<(String, crate::model::SignedIn), PasskeyError>| {
        matches!(r, Err(PasskeyError::Expired))
    };

    // Answered once (here with garbage, refused), never again.
    let ceremony = h.engine.passkey_sign_in().unwrap();
    assert!(matches!(
        h.engine
            .sign_in_with_passkey(&ceremony.state, "{}", None)
            .await,
        Err(PasskeyError::Refused)
    ));
    assert!(expired(
        h.engine
            .sign_in_with_passkey(&ceremony.state, "{}", None)
            .await
    ));

    // Stale: past its five minutes.
    let ceremony = h.engine.passkey_sign_in().unwrap();
    h.clock.advance(CEREMONY_LIFETIME);
    assert!(expired(
        h.engine
            .sign_in_with_passkey(&ceremony.state, "{}", None)
            .await
    ));

    // Forged: any byte of the state changed, or another server's MAC.
    let ceremony = h.engine.passkey_sign_in().unwrap();
    let (payload, mac) = ceremony.state.split_once('.').unwrap();
    for forged in [
        format!("{payload}.{}", &mac[1..]),
        format!("{}A.{mac}", &payload[..payload.len() - 1]),
        payload.to_owned(),
        String::new(),
    ] {
        assert!(expired(
            h.engine.sign_in_with_passkey(&forged, "{}", None).await
        ));
    }

    // Another kind: a registration's ceremony does not sign in, and is bound to its user.
    let registration = h
        .engine
        .passkey_registration(&h.user, "Laptop", &Secret::new("pw"), None)
        .await
        .unwrap();
    assert!(expired(
        h.engine
            .sign_in_with_passkey(&registration.state, "{}", None)
            .await
    ));
    h.engine
        .seed_user(&crate::testing::user("bob", "Bob", "bobpw"))
        .await
        .unwrap();
    let (_, bob) = h
        .engine
        .sign_in("bob", &Secret::new("bobpw"), None)
        .await
        .unwrap();
    assert!(matches!(
        h.engine
            .register_passkey(&bob, &registration.state, "{}", "Bob's", None)
            .await,
        Err(PasskeyError::Expired)
    ));
    // A wrong password starts nothing.
    assert!(matches!(
        h.engine
            .passkey_registration(&h.user, "Laptop", &Secret::new("nope"), None)
            .await,
        Err(PasskeyError::SecondFactor(
            crate::second_factor::SecondFactorError::WrongPassword
        ))
    ));
}
