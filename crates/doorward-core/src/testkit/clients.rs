//! Checks of the clients `doorward clients …` manages: insertion that refuses a taken Key,
//! the listing, the rotation state's round trip, and removal with everything granted.

use uuid::Uuid;

use super::fixtures::{client, code, tokens, user, NOW};
use super::steps::{
    find_access_token, find_client, find_consent, find_refresh_token, insert_code, insert_tokens,
    redeem_code,
};
use super::{scopes, Must};
use crate::model::{ClientSource, ConsentRecord, PreviousSecret};
use crate::ports::{ClientRef, Redemption, Store};

/// [`ClientStore::insert_client`](crate::ports::ClientStore::insert_client) creates a client
/// only when its Id and Key are free, `list_clients` lists them by Key, the rotation state, the
/// source and the creation time survive the round trip, and an upsert keeps `created_at`.
pub async fn clients_insert_list_and_keep_their_rotation(store: &dyn Store) {
    let mut c3 = client(3);
    c3.previous_secret = Some(PreviousSecret {
        hash: "$argon2id$old".into(),
        expires_at: NOW + 60,
    });
    c3.source = ClientSource::Cli;
    assert!(
        store.insert_client(&c3).await.must("insert_client"),
        "insert_client must create a client whose Id and Key are free"
    );
    let found = find_client(store, ClientRef::Id(c3.id))
        .await
        .expect("find_client must find the client just inserted");
    assert_eq!(
        found.previous_secret, c3.previous_secret,
        "the previous secret and its expiry must come back as stored"
    );
    assert_eq!(found.source, ClientSource::Cli, "the source must come back");
    assert_eq!(found.created_at, NOW, "created_at must come back");

    let mut same_key = client(4);
    same_key.key = c3.key.clone();
    assert!(
        !store.insert_client(&same_key).await.must("insert_client"),
        "insert_client must refuse a Key another client holds"
    );
    let mut same_id = client(3);
    same_id.key = "other@clients".into();
    assert!(
        !store.insert_client(&same_id).await.must("insert_client"),
        "insert_client must refuse an Id another client holds"
    );
    assert!(
        find_client(store, ClientRef::Id(Uuid::from_u128(4)))
            .await
            .is_none()
            && find_client(store, ClientRef::Key("other@clients"))
                .await
                .is_none(),
        "a refused insert_client must write nothing"
    );

    store.upsert_client(&client(1)).await.must("upsert_client");
    let keys: Vec<String> = store
        .list_clients()
        .await
        .must("list_clients")
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(
        keys,
        ["c1@clients", "c3@clients"],
        "list_clients must list every client, ordered by Key"
    );

    let mut later = c3.clone();
    later.created_at = NOW + 1000;
    later.previous_secret = None;
    later.source = ClientSource::Config;
    store.upsert_client(&later).await.must("upsert_client");
    let found = find_client(store, ClientRef::Id(c3.id))
        .await
        .expect("an upserted client must stay findable");
    assert_eq!(
        found.created_at, NOW,
        "upsert_client must keep the created_at of an existing client"
    );
    assert_eq!(
        (found.previous_secret, found.source),
        (None, ClientSource::Config),
        "upsert_client must replace the rotation state and the source"
    );
}

/// [`ClientStore::delete_client`](crate::ports::ClientStore::delete_client) deletes the client,
/// revokes its tokens, spends its codes, forgets its consents, revokes its families (tokens
/// born in them later are revoked), and leaves other clients' grants alone.
pub async fn deleting_a_client_revokes_its_grants(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    store.upsert_client(&client(2)).await.must("upsert_client");
    let user = user(store, "d").await;
    let (c1, c2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    for client in [c1, c2] {
        store
            .record_consent(&ConsentRecord {
                user_id: user,
                client_id: client,
                scopes: scopes("base"),
                granted_at: NOW,
            })
            .await
            .must("record_consent");
    }
    // Client 1: a family with tokens, and an outstanding code in another; client 2 the same.
    let mut mine = Vec::new();
    for (n, client) in [(40u8, c1), (50, c2)] {
        let (family, pending) = (
            Uuid::from_u128(n.into()),
            Uuid::from_u128(u128::from(n) + 1),
        );
        insert_code(store, &code(n, client, user, family)).await;
        let (access, refresh) = tokens(n, client, user, family);
        insert_tokens(store, &access, Some(&refresh)).await;
        insert_code(store, &code(n + 1, client, user, pending)).await;
        mine.push((access, refresh));
    }
    assert!(
        store.delete_client(c1, NOW).await.must("delete_client"),
        "delete_client must say it deleted a known client"
    );
    assert!(
        find_client(store, ClientRef::Id(c1)).await.is_none(),
        "delete_client must delete the client"
    );
    let (access, refresh) = &mine[0];
    assert!(
        find_access_token(store, &access.hash)
            .await
            .is_none_or(|t| t.revoked),
        "delete_client must revoke the client's access tokens"
    );
    assert!(
        find_refresh_token(store, &refresh.hash)
            .await
            .is_none_or(|t| t.revoked),
        "delete_client must revoke the client's refresh tokens"
    );
    let redeemed = redeem_code(store, &crate::TokenHash([41; 32]), c1, NOW, None).await;
    assert!(
        !matches!(redeemed, Redemption::Fresh(_)),
        "delete_client must spend the client's outstanding codes, got {redeemed:?}"
    );
    assert!(
        find_consent(store, user, c1).await.is_none(),
        "delete_client must delete the client's consents"
    );
    // The client comes back (a configured client, at the next start): its old family stays
    // revoked.
    store.upsert_client(&client(1)).await.must("upsert_client");
    let (late, _) = tokens(45, c1, user, Uuid::from_u128(40));
    insert_tokens(store, &late, None).await;
    assert!(
        find_access_token(store, &late.hash)
            .await
            .is_none_or(|t| t.revoked),
        "a token inserted into a deleted client's family must be born revoked"
    );

    let (access, refresh) = &mine[1];
    assert!(
        !find_access_token(store, &access.hash)
            .await
            .expect("another client's access token is still found")
            .revoked
            && !find_refresh_token(store, &refresh.hash)
                .await
                .expect("another client's refresh token is still found")
                .revoked,
        "delete_client must leave other clients' tokens alone"
    );
    assert!(
        find_consent(store, user, c2).await.is_some(),
        "delete_client must leave other clients' consents alone"
    );
    let redeemed = redeem_code(store, &crate::TokenHash([51; 32]), c2, NOW, None).await;
    assert!(
        matches!(redeemed, Redemption::Fresh(_)),
        "delete_client must leave other clients' codes alone, got {redeemed:?}"
    );
    assert!(
        !store
            .delete_client(Uuid::from_u128(9), NOW)
            .await
            .must("delete_client"),
        "delete_client of an unknown client must answer false"
    );
}
