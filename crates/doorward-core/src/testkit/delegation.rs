//! Checks of delegated access tokens (token exchange, RFC 8693): their `act` is kept, and a
//! user's live delegated tokens are listed for their account page.

use uuid::Uuid;

use super::fixtures::{client, code, tokens, user, NOW};
use super::steps::{client_1_and_user, find_access_token, find_bearer, insert_code, insert_tokens};
use super::Must;
use crate::ports::Store;

/// [`TokenStore::list_delegated_tokens`](crate::ports::TokenStore::list_delegated_tokens):
/// the user's live tokens with an `act`, in `issued_at` order; not a token without `act`,
/// another user's, an expired or a revoked one. `act` comes back from every read. Revoking
/// the user's consent to the client whose code started the family revokes the delegated
/// tokens of the family too, whatever their client
/// ([`ConsentStore::revoke_consent`](crate::ports::ConsentStore::revoke_consent)).
pub async fn delegated_tokens_are_listed_per_user(store: &dyn Store) {
    let (c1, alice) = client_1_and_user(store, "delegator").await;
    let bob = user(store, "bystander").await;
    let family = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0de1);
    insert_code(store, &code(59, c1, alice, family)).await;
    store.upsert_client(&client(2)).await.must("upsert_client");
    let actor = Uuid::from_u128(2);
    let act = r#"{"sub":"api@clients","act":{"sub":"web@clients"}}"#;
    let delegated = |n: u8, who: Uuid, issued: i64| {
        let (mut access, _) = tokens(n, actor, who, family);
        access.act = Some(act.to_owned());
        access.issued_at = issued;
        access
    };
    let later = delegated(60, alice, NOW + 2);
    let first = delegated(61, alice, NOW + 1);
    let others = delegated(62, bob, NOW);
    let (plain, _) = tokens(63, c1, alice, family);
    let mut expired = delegated(64, alice, NOW - 7200);
    expired.expires_at = NOW - 1;
    let revoked = delegated(65, alice, NOW);
    for token in [&later, &first, &others, &plain, &expired, &revoked] {
        insert_tokens(store, token, None).await;
    }
    store
        .revoke_access_token(&revoked.hash, NOW)
        .await
        .must("revoke_access_token");

    let listed = store
        .list_delegated_tokens(alice, NOW)
        .await
        .must("list_delegated_tokens");
    let hashes: Vec<_> = listed.iter().map(|t| t.hash).collect();
    assert_eq!(
        hashes,
        vec![first.hash, later.hash],
        "alice's live delegated tokens, oldest first"
    );
    assert_eq!(
        listed[0].act.as_deref(),
        Some(act),
        "act comes back as stored"
    );
    let found = find_access_token(store, &first.hash)
        .await
        .expect("the delegated token is stored");
    assert_eq!(found.act.as_deref(), Some(act));
    let bearer = find_bearer(store, &first.hash)
        .await
        .expect("find_bearer finds it");
    assert_eq!(
        bearer.token.act.as_deref(),
        Some(act),
        "find_bearer reads act"
    );
    let plain_found = find_access_token(store, &plain.hash).await.expect("stored");
    assert_eq!(plain_found.act, None, "no act stays none");
    assert!(store
        .list_delegated_tokens(Uuid::from_u128(0xdead), NOW)
        .await
        .must("list_delegated_tokens")
        .is_empty());

    store
        .revoke_consent(alice, c1, NOW)
        .await
        .must("revoke_consent");
    let after = find_access_token(store, &first.hash).await.expect("stored");
    assert!(
        after.revoked,
        "the family's delegated token is revoked with the consent"
    );
    assert!(store
        .list_delegated_tokens(alice, NOW)
        .await
        .must("list_delegated_tokens")
        .is_empty());
}
