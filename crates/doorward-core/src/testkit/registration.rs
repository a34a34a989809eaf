//! Dynamic client registration ([`crate::ports::RegistrationStore`]): initial access tokens
//! spent one use at a time, registrations stored with their client under a cap, found by the
//! digest of their token, replaced, and gone with their client.

use super::fixtures::{client, NOW};
use super::Must;
use crate::model::{ClientSource, InitialTokenRecord, RegistrationRecord};
use crate::opaque::TokenHash;
use crate::ports::{ClientRef, Store};

/// An initial access token comes back as stored, is spent once per use left and never past
/// its expiry, and an unknown one spends nothing.
pub async fn initial_tokens_are_spent_once_per_use(store: &dyn Store) {
    let token = InitialTokenRecord {
        hash: TokenHash::of("dwia_contract"),
        created_at: NOW,
        expires_at: NOW + 60,
        uses_left: 2,
    };
    store
        .insert_initial_token(&token)
        .await
        .must("insert_initial_token");
    assert_eq!(
        store
            .find_initial_token(&token.hash)
            .await
            .must("find_initial_token"),
        Some(token.clone()),
        "find_initial_token must give the token back as stored"
    );
    let spend = |now| store.spend_initial_token(&token.hash, now);
    assert!(
        spend(NOW).await.must("spend_initial_token"),
        "a token with a use left must be spendable"
    );
    assert!(
        spend(NOW + 1).await.must("spend_initial_token"),
        "a token with a use left must be spendable"
    );
    assert!(
        !spend(NOW + 2).await.must("spend_initial_token"),
        "a token whose uses are spent must not be spendable"
    );
    let found = store
        .find_initial_token(&token.hash)
        .await
        .must("find_initial_token")
        .expect("a spent token is still found");
    assert_eq!(found.uses_left, 0, "each spend must take one use");

    let late = InitialTokenRecord {
        hash: TokenHash::of("dwia_late"),
        uses_left: 5,
        ..token.clone()
    };
    store
        .insert_initial_token(&late)
        .await
        .must("insert_initial_token");
    assert!(
        !store
            .spend_initial_token(&late.hash, NOW + 60)
            .await
            .must("spend_initial_token"),
        "a token must not be spendable at its expires_at"
    );
    assert!(
        !store
            .spend_initial_token(&TokenHash::of("dwia_unknown"), NOW)
            .await
            .must("spend_initial_token"),
        "an unknown token must not be spendable"
    );
    store.purge_expired(NOW + 60, 0).await.must("purge_expired");
    assert!(
        store
            .find_initial_token(&late.hash)
            .await
            .must("find_initial_token")
            .is_none(),
        "purge_expired must delete initial access tokens past their expiry"
    );
}

/// A registration is stored with its client, refused past the cap or on a taken Key, found by
/// its token's digest, replaced with its client, and deleted with the client.
pub async fn registrations_keep_their_cap_and_go_with_their_client(store: &dyn Store) {
    let registered = |n: u128| {
        let mut c = client(n);
        c.source = ClientSource::Registered;
        let r = RegistrationRecord {
            client_id: c.id,
            token_hash: TokenHash::of(&format!("dwra_{n}")),
            metadata: format!(r#"{{"client_name":"Client {n}"}}"#),
        };
        (c, r)
    };
    let (c1, r1) = registered(1);
    assert!(
        store
            .insert_registration(&c1, &r1, Some(2))
            .await
            .must("insert_registration"),
        "insert_registration must store a registration under the cap"
    );
    let found = store
        .find_registration(&r1.token_hash)
        .await
        .must("find_registration")
        .expect("find_registration must find a registration by its token's digest");
    assert_eq!(found.1, r1, "the registration must come back as stored");
    assert_eq!(
        found.0.id, c1.id,
        "the registration's client must come back"
    );
    assert_eq!(found.0.source, ClientSource::Registered);

    let (mut same_key, r_same) = registered(9);
    same_key.key = c1.key.clone();
    assert!(
        !store
            .insert_registration(&same_key, &r_same, None)
            .await
            .must("insert_registration"),
        "insert_registration must refuse a Key another client holds"
    );
    assert!(
        store
            .find_registration(&r_same.token_hash)
            .await
            .must("find_registration")
            .is_none(),
        "a refused registration must store nothing"
    );
    let (c2, r2) = registered(2);
    assert!(store
        .insert_registration(&c2, &r2, Some(2))
        .await
        .must("insert_registration"));
    let (c3, r3) = registered(3);
    assert!(
        !store
            .insert_registration(&c3, &r3, Some(2))
            .await
            .must("insert_registration"),
        "insert_registration must refuse a registration past the cap"
    );
    assert!(
        store
            .find_client(ClientRef::Id(c3.id))
            .await
            .must("find_client")
            .is_none(),
        "a registration refused by the cap must store no client"
    );
    // Clients of other sources do not count against the cap.
    store.upsert_client(&client(7)).await.must("upsert_client");
    assert!(!store
        .insert_registration(&c3, &r3, Some(2))
        .await
        .must("insert_registration"));
    assert!(store
        .insert_registration(&c3, &r3, Some(4))
        .await
        .must("insert_registration"));

    // Update: a new token and metadata, the client's name changed; the old token is gone.
    let mut c1b = c1.clone();
    c1b.display_name = "Renamed".into();
    let r1b = RegistrationRecord {
        token_hash: TokenHash::of("dwra_1b"),
        metadata: r#"{"client_name":"Renamed"}"#.into(),
        ..r1.clone()
    };
    assert!(store
        .update_registration(&c1b, &r1b)
        .await
        .must("update_registration"));
    assert!(
        store
            .find_registration(&r1.token_hash)
            .await
            .must("find_registration")
            .is_none(),
        "a replaced token must find nothing"
    );
    let (client_b, record_b) = store
        .find_registration(&r1b.token_hash)
        .await
        .must("find_registration")
        .expect("the new token must find the registration");
    assert_eq!(record_b, r1b);
    assert_eq!(
        client_b.display_name, "Renamed",
        "the client must be replaced"
    );
    assert_eq!(
        client_b.created_at, c1.created_at,
        "created_at must be kept"
    );

    // Delete: the registration goes with its client, and cannot be updated back.
    assert!(store
        .delete_client(c1.id, NOW + 5)
        .await
        .must("delete_client"));
    assert!(
        store
            .find_registration(&r1b.token_hash)
            .await
            .must("find_registration")
            .is_none(),
        "a deleted client's registration must be gone"
    );
    assert!(
        !store
            .update_registration(&c1b, &r1b)
            .await
            .must("update_registration"),
        "update_registration must not bring a deleted registration back"
    );
    assert!(
        store
            .find_client(ClientRef::Id(c1.id))
            .await
            .must("find_client")
            .is_none(),
        "a refused update_registration must write no client"
    );
    // A freed place under the cap can be taken again.
    let (c4, r4) = registered(4);
    assert!(store
        .insert_registration(&c4, &r4, Some(3))
        .await
        .must("insert_registration"));
}
