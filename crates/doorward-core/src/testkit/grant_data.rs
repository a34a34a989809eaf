//! Checks of what the application attaches to a grant ([`CodeRecord::grant_data`]) and of a
//! narrowed scope: written with the code that starts the family, read with that code, with
//! every refresh token and (with its user and client) every access token of the family.
//!
//! [`CodeRecord::grant_data`]: crate::model::CodeRecord::grant_data

use serde_json::json;
use uuid::Uuid;

use super::fixtures::{code, tokens};
use super::steps::{
    client_1_and_user, find_bearer, find_code, find_refresh_token, insert_code, insert_tokens,
};
use crate::ports::Store;

/// [`CodeStore::insert_code`](crate::ports::CodeStore::insert_code) keeps the code's
/// `grant_data` (a JSON object) and `scope_narrowed`; `find_code`, `find_refresh_token` and
/// `find_bearer` read the family's data back; a family started without data reads as empty.
pub async fn grant_data_travels_with_the_family(store: &dyn Store) {
    let (client, alice) = client_1_and_user(store, "gina").await;
    let family = Uuid::from_u128(0x6a7a);
    let data = json!({ "store": "paris", "limits": { "items": 3 } })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut first = code(61, client, alice, family);
    first.grant_data = data.clone();
    first.scope_narrowed = true;
    first.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
    insert_code(store, &first).await;
    let found = find_code(store, &first.hash, client)
        .await
        .expect("find_code finds the code");
    assert_eq!(found.grant_data, data, "find_code reads the family's data");
    assert_eq!(found.amr, first.amr, "find_code reads the family's methods");
    assert!(found.scope_narrowed, "scope_narrowed is kept");
    let (access, refresh) = tokens(61, client, alice, family);
    insert_tokens(store, &access, Some(&refresh)).await;
    let refreshed = find_refresh_token(store, &refresh.hash)
        .await
        .expect("the refresh token is stored");
    assert_eq!(refreshed.grant_data, data, "find_refresh_token reads it");
    assert_eq!(refreshed.amr, first.amr, "and the family's methods");
    let bearer = find_bearer(store, &access.hash)
        .await
        .expect("find_bearer finds the access token");
    assert_eq!(*bearer.grant_data, data, "find_bearer reads it");

    let plain_family = Uuid::from_u128(0x6a7b);
    let plain = code(62, client, alice, plain_family);
    insert_code(store, &plain).await;
    let found = find_code(store, &plain.hash, client).await.expect("found");
    assert!(found.grant_data.is_empty() && !found.scope_narrowed);
    assert_eq!(found.amr, ["pwd"], "the fixture's methods");
    let (access, _) = tokens(62, client, alice, plain_family);
    insert_tokens(store, &access, None).await;
    let bearer = find_bearer(store, &access.hash).await.expect("found");
    assert!(bearer.grant_data.is_empty(), "no data: an empty object");
}
