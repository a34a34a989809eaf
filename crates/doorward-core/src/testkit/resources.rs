//! Checks of resource indicators (RFC 8707) in storage: the resources of a grant stay with its
//! code and refresh tokens, and an access token keeps its audience, through every write and
//! read; so does the DPoP key a code or token is bound to (RFC 9449).

use doorward_proto::ResourceUri;
use uuid::Uuid;

use super::fixtures::{code, tokens, NOW};
use super::steps::{
    client_1_and_user, find_access_token, find_bearer, find_code, find_refresh_token, insert_code,
    insert_tokens, issue, redeem_code, rotate_refresh_token,
};
use crate::ports::{Redemption, Store};

/// RFC 7638 thumbprints (the RFC's example, and two of the same form).
const JKT_CODE: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const JKT_ACCESS: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const JKT_REFRESH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn resources(list: &[&str]) -> Vec<ResourceUri> {
    list.iter()
        .map(|r| ResourceUri::parse(r).expect("the fixtures' resources are valid"))
        .collect()
}

/// [`CodeStore`](crate::ports::CodeStore) and [`TokenStore`](crate::ports::TokenStore): the
/// resources of a code, of an access token and of a refresh token come back as stored, in
/// order, from `find_*`, `find_bearer`, `redeem_code` and `rotate_refresh_token`; none stays
/// none. The DPoP thumbprint of each (`dpop_jkt`) comes back too.
pub async fn resources_stay_with_codes_and_tokens(store: &dyn Store) {
    let (c1, user) = client_1_and_user(store, "res").await;
    let granted = resources(&["https://b.example/api", "https://a.example/", "urn:x:y"]);
    let narrowed = resources(&["https://a.example/"]);
    let family = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0ace);

    let mut with = code(40, c1, user, family);
    with.resources = granted.clone();
    with.dpop_jkt = Some(JKT_CODE.into());
    insert_code(store, &with).await;
    let found = find_code(store, &with.hash, c1)
        .await
        .expect("find_code must find the code");
    assert_eq!(
        found.resources, granted,
        "a code's resources must come back in order"
    );
    assert_eq!(
        found.dpop_jkt.as_deref(),
        Some(JKT_CODE),
        "a code's dpop_jkt"
    );

    let (mut access, mut refresh) = tokens(41, c1, user, family);
    access.resources = narrowed.clone();
    refresh.resources = granted.clone();
    access.dpop_jkt = Some(JKT_ACCESS.into());
    refresh.dpop_jkt = Some(JKT_REFRESH.into());
    match redeem_code(
        store,
        &with.hash,
        c1,
        NOW,
        Some(issue(&access, Some(&refresh))),
    )
    .await
    {
        Redemption::Fresh(record) => assert_eq!(
            record.resources, granted,
            "redeem_code must return the code's resources"
        ),
        other => panic!("the first redemption must be Fresh, got {other:?}"),
    }
    let stored = find_access_token(store, &access.hash)
        .await
        .expect("the redemption's access token must be stored");
    assert_eq!(
        stored.resources, narrowed,
        "an access token keeps its audience"
    );
    assert_eq!(stored.dpop_jkt.as_deref(), Some(JKT_ACCESS), "cnf.jkt");
    let bearer = find_bearer(store, &access.hash)
        .await
        .expect("find_bearer must find the access token");
    assert_eq!(
        bearer.token.resources, narrowed,
        "find_bearer must read the audience"
    );
    assert_eq!(
        bearer.token.dpop_jkt.as_deref(),
        Some(JKT_ACCESS),
        "find_bearer must read cnf.jkt"
    );
    let kept = find_refresh_token(store, &refresh.hash)
        .await
        .expect("the redemption's refresh token must be stored");
    assert_eq!(
        kept.resources, granted,
        "a refresh token keeps the grant's resources"
    );
    assert_eq!(
        kept.dpop_jkt.as_deref(),
        Some(JKT_REFRESH),
        "a refresh token's key"
    );

    let (next_access, next_refresh) = tokens(42, c1, user, family);
    match rotate_refresh_token(
        store,
        &refresh.hash,
        c1,
        NOW + 1,
        Some(issue(&next_access, Some(&next_refresh))),
        None,
    )
    .await
    {
        Redemption::Fresh(record) => assert_eq!(
            record.resources, granted,
            "rotate_refresh_token must return the spent token's resources"
        ),
        other => panic!("the first rotation must be Fresh, got {other:?}"),
    }
    let plain = find_access_token(store, &next_access.hash)
        .await
        .expect("the rotation's access token must be stored");
    assert!(
        plain.resources.is_empty(),
        "a token without resources must stay without, got {:?}",
        plain.resources
    );

    let (mut own, _) = tokens(
        43,
        c1,
        user,
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0acf),
    );
    own.user_id = None;
    own.resources = narrowed.clone();
    insert_tokens(store, &own, None).await;
    let bearer = find_bearer(store, &own.hash)
        .await
        .expect("find_bearer must find a client's own token");
    assert_eq!(bearer.token.resources, narrowed);
}
