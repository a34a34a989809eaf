//! The steps that the checks take again and again, so that each check reads as its story.
//!
//! A function named after a store method is that call, which must succeed: a store error
//! panics with the method's name (as [`Must`] does), and the answer comes back without its
//! `StoreResult`. What the answer must be stays in the check, with its message. (Such a
//! panic points at this file, not at the check: the output names the check that was running.)
//! Below them, the setups that several checks share.

use uuid::Uuid;

use super::fixtures::{client, tokens, user};
use super::Must;
use crate::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, RefreshTokenRecord,
    SessionRecord,
};
use crate::ports::{ClientRef, Issue, Redemption, Store, UnixTime};
use crate::TokenHash;

pub(super) async fn find_client(store: &dyn Store, by: ClientRef<'_>) -> Option<Client> {
    let call = match by {
        ClientRef::Id(_) => "find_client(Id)",
        ClientRef::Key(_) => "find_client(Key)",
    };
    store.find_client(by).await.must(call)
}

pub(super) async fn find_session(store: &dyn Store, hash: &TokenHash) -> Option<SessionRecord> {
    store.find_session(hash).await.must("find_session")
}

pub(super) async fn find_consent(
    store: &dyn Store,
    user: Uuid,
    client: Uuid,
) -> Option<ConsentRecord> {
    store.find_consent(user, client).await.must("find_consent")
}

pub(super) async fn revoke_consent(store: &dyn Store, user: Uuid, client: Uuid, now: UnixTime) {
    store
        .revoke_consent(user, client, now)
        .await
        .must("revoke_consent");
}

pub(super) async fn insert_code(store: &dyn Store, code: &CodeRecord) {
    store.insert_code(code).await.must("insert_code");
}

pub(super) async fn find_code(
    store: &dyn Store,
    hash: &TokenHash,
    client: Uuid,
) -> Option<CodeRecord> {
    store.find_code(hash, client).await.must("find_code")
}

pub(super) async fn redeem_code(
    store: &dyn Store,
    hash: &TokenHash,
    client: Uuid,
    now: UnixTime,
    issue: Option<Issue<'_>>,
) -> Redemption<CodeRecord> {
    store
        .redeem_code(hash, client, now, issue)
        .await
        .must("redeem_code")
}

pub(super) async fn insert_tokens(
    store: &dyn Store,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) {
    store
        .insert_tokens(access, refresh)
        .await
        .must("insert_tokens");
}

pub(super) async fn find_access_token(
    store: &dyn Store,
    hash: &TokenHash,
) -> Option<AccessTokenRecord> {
    store
        .find_access_token(hash)
        .await
        .must("find_access_token")
}

pub(super) async fn find_bearer(store: &dyn Store, hash: &TokenHash) -> Option<BearerRecord> {
    store.find_bearer(hash).await.must("find_bearer")
}

pub(super) async fn find_refresh_token(
    store: &dyn Store,
    hash: &TokenHash,
) -> Option<RefreshTokenRecord> {
    store
        .find_refresh_token(hash)
        .await
        .must("find_refresh_token")
}

pub(super) async fn rotate_refresh_token(
    store: &dyn Store,
    hash: &TokenHash,
    client: Uuid,
    now: UnixTime,
    issue: Option<Issue<'_>>,
    successor: Option<&[u8]>,
) -> Redemption<RefreshTokenRecord> {
    store
        .rotate_refresh_token(hash, client, now, issue, successor)
        .await
        .must("rotate_refresh_token")
}

/// Stores [`client`]`(1)`, then a user named `name`; returns their ids.
pub(super) async fn client_1_and_user(store: &dyn Store, name: &str) -> (Uuid, Uuid) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    (Uuid::from_u128(1), user(store, name).await)
}

/// Stores the [`tokens`] `n` of `family`, the access and the refresh token; returns them.
pub(super) async fn stored_tokens(
    store: &dyn Store,
    n: u8,
    client: Uuid,
    user: Uuid,
    family: Uuid,
) -> (AccessTokenRecord, RefreshTokenRecord) {
    let (access, refresh) = tokens(n, client, user, family);
    insert_tokens(store, &access, Some(&refresh)).await;
    (access, refresh)
}

/// What a redemption is to store: `access` and, when given, `refresh`.
pub(super) fn issue<'a>(
    access: &'a AccessTokenRecord,
    refresh: Option<&'a RefreshTokenRecord>,
) -> Issue<'a> {
    Issue { access, refresh }
}
