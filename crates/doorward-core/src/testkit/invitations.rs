//! Checks of invitations: listed while open, spent once together with the account they
//! create, never spent by a sign-up that fails.

use uuid::Uuid;

use super::fixtures::NOW;
use super::Must;
use crate::model::{InvitationRecord, User, UserSource};
use crate::ports::{InvitedSignUp, Store};
use crate::TokenHash;

fn invitation(n: u8, created_at: i64, expires_at: i64) -> InvitationRecord {
    InvitationRecord {
        hash: TokenHash([n; 32]),
        id: Uuid::from_u128(u128::from(n)),
        created_at,
        expires_at,
        created_by: "cli:root".into(),
        email: (n == 1).then(|| "ivy@example.com".to_owned()),
        used_at: None,
        used_by: None,
    }
}

fn newcomer(id: u128, username: &str) -> User {
    User {
        id: Uuid::from_u128(id),
        username: username.into(),
        display_name: username.to_uppercase(),
        password_hash: "h".into(),
        email: None,
        email_verified: false,
        created_at: NOW,
        claims: serde_json::Map::new(),
        admin: false,
        disabled_at: None,
        second_factor_required: false,
        source: UserSource::SignUp,
    }
}

/// [`InvitationStore`](crate::ports::InvitationStore): open invitations are listed newest
/// first; `sign_up_invited` spends one with the account it creates, once; a taken username,
/// an expired, spent or unknown invitation change nothing; only an unused invitation can be
/// withdrawn.
pub async fn invitations_are_spent_once_with_the_account(store: &dyn Store) {
    let (open, expired, later) = (
        invitation(1, NOW, NOW + 100),
        invitation(2, NOW - 50, NOW - 1),
        invitation(3, NOW + 2, NOW + 100),
    );
    for i in [&open, &expired, &later] {
        store.insert_invitation(i).await.must("insert_invitation");
    }
    let listed: Vec<Uuid> = store
        .list_invitations(NOW)
        .await
        .must("list_invitations")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, [later.id, open.id], "open ones, newest first");
    let found = store
        .find_invitation(&open.hash)
        .await
        .must("find_invitation")
        .expect("found by hash");
    assert_eq!(found, open, "every field comes back");

    let ivy = newcomer(0x1f1, "ivy");
    let signed = store
        .sign_up_invited(&ivy, &open.hash, NOW + 1)
        .await
        .must("sign_up_invited");
    assert_eq!(signed, InvitedSignUp::Created);
    let stored = store
        .find_user(ivy.id)
        .await
        .must("find_user")
        .expect("created");
    assert_eq!(
        (stored.username.as_str(), stored.source),
        ("ivy", UserSource::SignUp)
    );
    let spent = store
        .find_invitation(&open.hash)
        .await
        .must("find_invitation")
        .expect("kept");
    assert_eq!(
        (spent.used_at, spent.used_by),
        (Some(NOW + 1), Some(ivy.id))
    );

    let ivo = newcomer(0x1f2, "ivo");
    for (hash, why) in [
        (open.hash, "a spent invitation"),
        (expired.hash, "an expired invitation"),
        (TokenHash([9; 32]), "an unknown invitation"),
    ] {
        assert_eq!(
            store
                .sign_up_invited(&ivo, &hash, NOW + 2)
                .await
                .must("sign_up_invited"),
            InvitedSignUp::InvitationInvalid,
            "{why} creates nothing"
        );
    }
    assert!(store.find_user(ivo.id).await.must("find_user").is_none());

    let again = newcomer(0x1f3, "ivy");
    assert_eq!(
        store
            .sign_up_invited(&again, &later.hash, NOW + 3)
            .await
            .must("sign_up_invited"),
        InvitedSignUp::UsernameTaken
    );
    let unspent = store
        .find_invitation(&later.hash)
        .await
        .must("find_invitation")
        .expect("kept");
    assert_eq!(
        unspent.used_at, None,
        "a failed sign-up leaves the invitation usable"
    );

    assert!(
        !store
            .delete_invitation(open.id)
            .await
            .must("delete_invitation"),
        "a used one stays"
    );
    assert!(store
        .delete_invitation(later.id)
        .await
        .must("delete_invitation"));
    assert!(!store
        .delete_invitation(later.id)
        .await
        .must("delete_invitation"));
    assert!(store
        .list_invitations(NOW)
        .await
        .must("list_invitations")
        .is_empty());
}
