//! Dynamic client registration ([`crate::ports::RegistrationStore`]): initial access tokens
//! spent one use per stored registration (and none by a refused one), registrations stored
//! with their client under a cap, found by the digest of their token, replaced, and gone with
//! their client.

use super::fixtures::{client, NOW};
use super::Must;
use crate::model::{Client, ClientSource, InitialTokenRecord, RegistrationRecord};
use crate::opaque::TokenHash;
use crate::ports::{ClientRef, Registered, Store};

fn registered(n: u128) -> (Client, RegistrationRecord) {
    let mut c = client(n);
    c.source = ClientSource::Registered;
    let r = RegistrationRecord {
        client_id: c.id,
        token_hash: TokenHash::of(&format!("dwra_{n}")),
        metadata: format!(r#"{{"client_name":"Client {n}"}}"#),
    };
    (c, r)
}

/// An initial access token comes back as stored; each stored registration spends one use,
/// never past its expiry; a refusal (token used up or expired, cap reached, Key taken) spends
/// nothing and stores nothing; an expired token goes with the purge.
pub async fn initial_tokens_are_spent_once_per_registration(store: &dyn Store) {
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
    let uses_left = || async {
        store
            .find_initial_token(&token.hash)
            .await
            .must("find_initial_token")
            .expect("the token is still stored")
            .uses_left
    };
    let (c1, r1) = registered(1);
    assert_eq!(
        store
            .insert_registration(&c1, &r1, None, Some(&token.hash), NOW)
            .await
            .must("insert_registration"),
        Registered::Stored
    );
    assert_eq!(uses_left().await, 1, "a stored registration spends one use");
    // Refused by the cap, or by a taken Key: the use stays.
    let (c2, r2) = registered(2);
    assert_eq!(
        store
            .insert_registration(&c2, &r2, Some(1), Some(&token.hash), NOW)
            .await
            .must("insert_registration"),
        Registered::Full
    );
    let (mut same_key, r_same) = registered(3);
    same_key.key = c1.key.clone();
    assert_eq!(
        store
            .insert_registration(&same_key, &r_same, None, Some(&token.hash), NOW)
            .await
            .must("insert_registration"),
        Registered::Taken
    );
    assert_eq!(
        uses_left().await,
        1,
        "a refused registration spends nothing"
    );
    // Not at its expiry.
    assert_eq!(
        store
            .insert_registration(&c2, &r2, None, Some(&token.hash), NOW + 60)
            .await
            .must("insert_registration"),
        Registered::TokenRefused,
        "a token must not be spendable at its expires_at"
    );
    assert_eq!(
        store
            .insert_registration(&c2, &r2, None, Some(&token.hash), NOW + 1)
            .await
            .must("insert_registration"),
        Registered::Stored
    );
    let (c4, r4) = registered(4);
    assert_eq!(
        store
            .insert_registration(&c4, &r4, None, Some(&token.hash), NOW + 2)
            .await
            .must("insert_registration"),
        Registered::TokenRefused,
        "a token whose uses are spent must not register"
    );
    assert_eq!(
        store
            .insert_registration(&c4, &r4, None, Some(&TokenHash::of("dwia_unknown")), NOW)
            .await
            .must("insert_registration"),
        Registered::TokenRefused,
        "an unknown token must not register"
    );
    for (hash, id) in [(&r4.token_hash, c4.id), (&r_same.token_hash, same_key.id)] {
        assert!(
            store
                .find_registration(hash)
                .await
                .must("find_registration")
                .is_none()
                && store
                    .find_client(ClientRef::Id(id))
                    .await
                    .must("find_client")
                    .is_none(),
            "a refused registration must store nothing"
        );
    }
    store.purge_expired(NOW + 60, 0).await.must("purge_expired");
    assert!(
        store
            .find_initial_token(&token.hash)
            .await
            .must("find_initial_token")
            .is_none(),
        "purge_expired must delete initial access tokens past their expiry"
    );
}

/// A registration is stored with its client, refused past the cap, found by its token's
/// digest, replaced with its client, and deleted with the client.
pub async fn registrations_keep_their_cap_and_go_with_their_client(store: &dyn Store) {
    let insert = |c: Client, r: RegistrationRecord, max: Option<u64>| async move {
        store
            .insert_registration(&c, &r, max, None, NOW)
            .await
            .must("insert_registration")
    };
    let (c1, r1) = registered(1);
    assert_eq!(
        insert(c1.clone(), r1.clone(), Some(2)).await,
        Registered::Stored
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

    let (c2, r2) = registered(2);
    assert_eq!(insert(c2, r2, Some(2)).await, Registered::Stored);
    let (c3, r3) = registered(3);
    assert_eq!(
        insert(c3.clone(), r3.clone(), Some(2)).await,
        Registered::Full,
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
    assert_eq!(
        insert(c3.clone(), r3.clone(), Some(2)).await,
        Registered::Full
    );
    assert_eq!(insert(c3, r3, Some(4)).await, Registered::Stored);

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
    assert_eq!(insert(c4, r4, Some(3)).await, Registered::Stored);
}
