//! One contract suite for every adapter of the storage ports: the in-memory store of
//! `doorward-core` and SQLite here (PostgreSQL joins when its adapter exists). Each check is a
//! plain async function over `&dyn Store`, run against each adapter.

use std::sync::Arc;

use doorward_core::keys::SigningAlg;
use doorward_core::memory::MemoryStore;
use doorward_core::model::{
    AccessTokenFormat, AccessTokenRecord, AuthMethod, Client, ClientPolicy, CodeRecord,
    ConsentRecord, NewUser, RefreshTokenRecord, SessionRecord, SigningKeyRecord,
};
use doorward_core::ports::{ClientRef, Redemption, Store};
use doorward_core::TokenHash;
use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ScopeSet};
use uuid::Uuid;

use crate::SqliteStore;

const NOW: i64 = 1_800_000_000;

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

fn client(n: u128) -> Client {
    Client {
        id: Uuid::from_u128(n),
        key: format!("c{n}@clients"),
        display_name: format!("Client {n}"),
        app_uri: "http://localhost:8000".into(),
        redirect_uris: vec![
            RedirectUri::parse("http://localhost:8000/cb").unwrap(),
            RedirectUri::parse("http://localhost:8000/cb2?x=1").unwrap(),
        ],
        secret_hash: Some("$argon2id$fake".into()),
        policy: ClientPolicy::default(),
    }
}

async fn user(store: &dyn Store, name: &str) -> Uuid {
    store
        .upsert_user(&NewUser {
            id: Uuid::new_v4(),
            username: name.into(),
            display_name: name.to_uppercase(),
            password_hash: "h".into(),
            email: None,
            email_verified: false,
            created_at: NOW,
        })
        .await
        .unwrap()
        .id
}

fn code(hash: u8, client: Uuid, user: Uuid, family: Uuid) -> CodeRecord {
    CodeRecord {
        hash: TokenHash([hash; 32]),
        client_id: client,
        user_id: user,
        redirect_uri: RedirectUri::parse("http://localhost:8000/cb").unwrap(),
        scopes: scopes("base"),
        scope_requested: true,
        challenge: Some((
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
            CodeChallengeMethod::S256,
        )),
        nonce: Some("n-0S6_WzA2Mj".into()),
        family_id: family,
        auth_time: NOW - 5,
        issued_at: NOW,
        expires_at: NOW + 60,
    }
}

fn tokens(
    hash: u8,
    client: Uuid,
    user: Uuid,
    family: Uuid,
) -> (AccessTokenRecord, RefreshTokenRecord) {
    (
        AccessTokenRecord {
            hash: TokenHash([hash; 32]),
            family_id: family,
            client_id: client,
            user_id: user,
            scopes: scopes("base"),
            issued_at: NOW,
            expires_at: NOW + 7200,
            revoked: false,
        },
        RefreshTokenRecord {
            hash: TokenHash([hash.wrapping_add(100); 32]),
            family_id: family,
            client_id: client,
            user_id: user,
            scopes: scopes("base"),
            auth_time: NOW - 5,
            issued_at: NOW,
            expires_at: NOW + 86400,
            revoked: false,
            used_at: None,
            successor: None,
        },
    )
}

async fn clients_by_id_and_key(store: &dyn Store) {
    store.upsert_client(&client(1)).await.unwrap();
    let by_id = store
        .find_client(ClientRef::Id(Uuid::from_u128(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.key, "c1@clients");
    assert_eq!(by_id.redirect_uris, client(1).redirect_uris);
    let by_key = store
        .find_client(ClientRef::Key("c1@clients"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.id, Uuid::from_u128(1));
    assert!(store
        .find_client(ClientRef::Key("c1"))
        .await
        .unwrap()
        .is_none());
    let mut renamed = client(1);
    renamed.display_name = "Renamed".into();
    store.upsert_client(&renamed).await.unwrap();
    let found = store
        .find_client(ClientRef::Id(renamed.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.display_name, "Renamed");
    let mut oidc = client(2);
    oidc.policy = ClientPolicy {
        scopes: Some(scopes("openid profile")),
        post_logout_redirect_uris: vec![RedirectUri::parse("http://localhost:8000/bye").unwrap()],
        auth_method: Some(AuthMethod::ClientSecretPost),
        access_token_format: AccessTokenFormat::Jwt,
        id_token_alg: Some(SigningAlg::EdDsa),
        access_token_audience: Some("https://api.example".into()),
        resource_server: true,
    };
    store.upsert_client(&oidc).await.unwrap();
    let found = store
        .find_client(ClientRef::Key("c2@clients"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.policy, oidc.policy);
}

async fn signing_keys_are_created_once_per_generation(store: &dyn Store) {
    let key = |kid: &str, alg, generation| SigningKeyRecord {
        kid: kid.into(),
        alg,
        generation,
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: NOW,
        activate_at: NOW + generation,
        remove_at: None,
    };
    assert!(store
        .insert_signing_key(&key("a", SigningAlg::Es256, 1))
        .await
        .unwrap());
    assert!(
        !store
            .insert_signing_key(&key("b", SigningAlg::Es256, 1))
            .await
            .unwrap(),
        "a second key of the same generation is refused (another instance made it)"
    );
    assert!(store
        .insert_signing_key(&key("c", SigningAlg::Rs256, 1))
        .await
        .unwrap());
    store.schedule_key_removal("a", NOW + 100).await.unwrap();
    store.schedule_key_removal("a", NOW + 200).await.unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    let a = keys.iter().find(|k| k.kid == "a").unwrap();
    assert_eq!(a.remove_at, Some(NOW + 100), "the earlier removal wins");
    assert_eq!(a.private_key, vec![1, 2, 3]);
    assert_eq!(keys.len(), 2);
    store.delete_signing_key("a").await.unwrap();
    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["c"]);
}

async fn single_tokens_are_found_and_revoked(store: &dyn Store) {
    use doorward_core::ports::Issue;
    store.upsert_client(&client(1)).await.unwrap();
    let c1 = Uuid::from_u128(1);
    let user = user(store, "t").await;
    let family = Uuid::from_u128(77);
    store.insert_code(&code(7, c1, user, family)).await.unwrap();
    let (access, refresh) = tokens(7, c1, user, family);
    store.insert_tokens(&access, Some(&refresh)).await.unwrap();
    let found = store
        .find_refresh_token(&refresh.hash)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.revoked);
    assert_eq!(found.family_id, family);
    assert_eq!(found.used_at, None);
    store.revoke_access_token(&access.hash, NOW).await.unwrap();
    assert!(
        store
            .find_access_token(&access.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !store
            .find_refresh_token(&refresh.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        "revoking an access token leaves its refresh token"
    );

    // A rotation spends the token, keeps its sealed answer and stores the new pair, together.
    let (next_access, next_refresh) = tokens(8, c1, user, family);
    let next = Issue {
        access: &next_access,
        refresh: Some(&next_refresh),
    };
    let rotated = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, Some(next), Some(b"sealed answer"))
        .await
        .unwrap();
    assert!(matches!(rotated, Redemption::Fresh(_)), "{rotated:?}");
    assert!(store
        .find_access_token(&next_access.hash)
        .await
        .unwrap()
        .is_some());
    let spent = store
        .find_refresh_token(&refresh.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spent.used_at, Some(NOW));
    assert!(!spent.revoked, "spent is not revoked");
    // The loser of a race stores nothing and reads the winner's sealed answer.
    let (lost_access, lost_refresh) = tokens(9, c1, user, family);
    let lost = Issue {
        access: &lost_access,
        refresh: Some(&lost_refresh),
    };
    match store
        .rotate_refresh_token(
            &refresh.hash,
            c1,
            NOW + 1,
            Some(lost),
            Some(b"other answer"),
        )
        .await
        .unwrap()
    {
        Redemption::Spent(record) => {
            assert_eq!(record.used_at, Some(NOW), "the first use is kept");
            assert_eq!(record.successor.as_deref(), Some(&b"sealed answer"[..]));
        }
        other => panic!("{other:?}"),
    }
    assert!(store
        .find_access_token(&lost_access.hash)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_refresh_token(&lost_refresh.hash)
        .await
        .unwrap()
        .is_none());

    // A code redeemed with its tokens: the nonce comes back, the tokens are stored; a second
    // redemption stores nothing.
    let code_record = store
        .find_code(&TokenHash([7; 32]), c1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code_record.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert!(store
        .find_code(&TokenHash([7; 32]), Uuid::from_u128(2))
        .await
        .unwrap()
        .is_none());
    let (code_access, code_refresh) = tokens(11, c1, user, family);
    let issued = Issue {
        access: &code_access,
        refresh: Some(&code_refresh),
    };
    match store
        .redeem_code(&TokenHash([7; 32]), c1, NOW, Some(issued))
        .await
        .unwrap()
    {
        Redemption::Fresh(code) => assert_eq!(code.nonce.as_deref(), Some("n-0S6_WzA2Mj")),
        other => panic!("{other:?}"),
    }
    assert!(store
        .find_access_token(&code_access.hash)
        .await
        .unwrap()
        .is_some());
    let (again_access, _) = tokens(12, c1, user, family);
    let again = Issue {
        access: &again_access,
        refresh: None,
    };
    assert!(matches!(
        store
            .redeem_code(&TokenHash([7; 32]), c1, NOW, Some(again))
            .await
            .unwrap(),
        Redemption::Spent(_)
    ));
    assert!(store
        .find_access_token(&again_access.hash)
        .await
        .unwrap()
        .is_none());

    // Past the longest grace window the sealed answer is forgotten.
    store
        .purge_expired(NOW + doorward_core::ports::MAX_REFRESH_GRACE + 1, 3600)
        .await
        .unwrap();
    let forgotten = store
        .find_refresh_token(&refresh.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(forgotten.successor, None);
}

async fn users_upsert_by_username(store: &dyn Store) {
    let id = user(store, "alice").await;
    let again = store
        .upsert_user(&NewUser {
            id: Uuid::new_v4(),
            username: "alice".into(),
            display_name: "Alice 2".into(),
            password_hash: "h2".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            created_at: NOW + 10,
        })
        .await
        .unwrap();
    assert_eq!(again.id, id, "the id of an existing user never changes");
    assert_eq!(again.display_name, "Alice 2");
    assert_eq!(again.created_at, NOW);
    let found = store.find_user(id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "h2");
    assert_eq!(found.email.as_deref(), Some("alice@example.com"));
    assert!(found.email_verified);
    assert!(store.find_user_by_username("bob").await.unwrap().is_none());
}

async fn sessions(store: &dyn Store) {
    let user = user(store, "s").await;
    let record = SessionRecord {
        hash: TokenHash([9; 32]),
        user_id: user,
        created_at: NOW,
        expires_at: NOW + 10,
    };
    store.insert_session(&record).await.unwrap();
    let found = store.find_session(&record.hash).await.unwrap().unwrap();
    assert_eq!((found.user_id, found.expires_at), (user, NOW + 10));
    store.delete_session(&record.hash).await.unwrap();
    assert!(store.find_session(&record.hash).await.unwrap().is_none());
}

async fn codes_are_single_use(store: &dyn Store) {
    store.upsert_client(&client(1)).await.unwrap();
    let user = user(store, "c").await;
    let family = Uuid::from_u128(77);
    let c1 = Uuid::from_u128(1);
    store.insert_code(&code(1, c1, user, family)).await.unwrap();
    // Another client cannot redeem, nor burn, the code.
    let other = store
        .redeem_code(&TokenHash([1; 32]), Uuid::from_u128(2), NOW, None)
        .await
        .unwrap();
    assert!(matches!(other, Redemption::Unknown));
    match store
        .redeem_code(&TokenHash([1; 32]), c1, NOW, None)
        .await
        .unwrap()
    {
        Redemption::Fresh(record) => {
            assert_eq!(record.family_id, family);
            assert_eq!(record.challenge, code(1, c1, user, family).challenge);
            assert!(record.scope_requested);
        }
        other => panic!("{other:?}"),
    }
    match store
        .redeem_code(&TokenHash([1; 32]), c1, NOW, None)
        .await
        .unwrap()
    {
        Redemption::Spent(record) => assert_eq!(record.family_id, family),
        other => panic!("{other:?}"),
    }
    let unknown = store
        .redeem_code(&TokenHash([2; 32]), c1, NOW, None)
        .await
        .unwrap();
    assert!(matches!(unknown, Redemption::Unknown));
}

async fn refresh_tokens_rotate_once_and_families_revoke(store: &dyn Store) {
    let user = user(store, "r").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(5));
    let (access, refresh) = tokens(1, c1, user, family);
    store.insert_tokens(&access, Some(&refresh)).await.unwrap();
    let (access2, refresh2) = tokens(2, c1, user, Uuid::from_u128(6));
    store
        .insert_tokens(&access2, Some(&refresh2))
        .await
        .unwrap();
    let found = store
        .find_access_token(&access.hash)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.revoked);
    assert_eq!(found.expires_at, NOW + 7200);
    // Client 1 is not registered in this store yet: no bearer without its client.
    assert!(store.find_bearer(&access.hash).await.unwrap().is_none());
    store.upsert_client(&client(1)).await.unwrap();
    let bearer = store.find_bearer(&access.hash).await.unwrap().unwrap();
    assert_eq!(
        (bearer.user.id, bearer.user.display_name.as_str()),
        (user, "R")
    );
    assert_eq!(
        (bearer.client.id, bearer.client.display_name.as_str()),
        (c1, "Client 1")
    );
    assert_eq!(bearer.client.redirect_uris, client(1).redirect_uris);
    assert_eq!(bearer.token.family_id, family);
    assert!(store
        .find_bearer(&TokenHash([77; 32]))
        .await
        .unwrap()
        .is_none());

    let rotated = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, None, None)
        .await
        .unwrap();
    assert!(matches!(rotated, Redemption::Fresh(ref r) if r.auth_time == NOW - 5));
    let again = store
        .rotate_refresh_token(&refresh.hash, c1, NOW, None, None)
        .await
        .unwrap();
    assert!(matches!(again, Redemption::Spent(_)));
    let other_client = store
        .rotate_refresh_token(&refresh2.hash, Uuid::from_u128(9), NOW, None, None)
        .await
        .unwrap();
    assert!(matches!(other_client, Redemption::Unknown));

    store.revoke_family(family, NOW).await.unwrap();
    assert!(
        store
            .find_access_token(&access.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !store
            .find_access_token(&access2.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    match store
        .rotate_refresh_token(&refresh2.hash, c1, NOW, None, None)
        .await
        .unwrap()
    {
        Redemption::Fresh(r) => assert!(!r.revoked),
        other => panic!("{other:?}"),
    }
}

async fn consents_merge_list_and_revoke_tokens(store: &dyn Store) {
    store.upsert_client(&client(1)).await.unwrap();
    store.upsert_client(&client(2)).await.unwrap();
    let user = user(store, "k").await;
    let (c1, c2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let consent = |client, s: &str| ConsentRecord {
        user_id: user,
        client_id: client,
        scopes: scopes(s),
        granted_at: NOW,
    };
    store.record_consent(&consent(c1, "base")).await.unwrap();
    store.record_consent(&consent(c1, "profile")).await.unwrap();
    store.record_consent(&consent(c2, "base")).await.unwrap();
    let found = store.find_consent(user, c1).await.unwrap().unwrap();
    assert_eq!(found.scopes, scopes("base profile"));
    assert_eq!(store.list_consents(user).await.unwrap().len(), 2);

    // Every family starts with a code; its tokens follow.
    let family = Uuid::from_u128(8);
    store
        .insert_code(&code(30, c1, user, family))
        .await
        .unwrap();
    let (access, refresh) = tokens(3, c1, user, family);
    store.insert_tokens(&access, Some(&refresh)).await.unwrap();
    store.revoke_consent(user, c1, NOW).await.unwrap();
    assert!(store.find_consent(user, c1).await.unwrap().is_none());
    assert!(store.find_consent(user, c2).await.unwrap().is_some());
    assert_revoked(store, &access, &refresh).await;
}

/// Both tokens read back revoked (the refresh token is spent by looking).
async fn assert_revoked(
    store: &dyn Store,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
) {
    let found = store
        .find_access_token(&access.hash)
        .await
        .unwrap()
        .unwrap();
    assert!(found.revoked);
    let rotated = store
        .rotate_refresh_token(&refresh.hash, refresh.client_id, NOW, None, None)
        .await
        .unwrap();
    match rotated {
        Redemption::Fresh(r) => assert!(r.revoked),
        other => panic!("{other:?}"),
    }
}

async fn tokens_born_into_a_revoked_family_are_revoked(store: &dyn Store) {
    let user = user(store, "f").await;
    let (c1, family) = (Uuid::from_u128(1), Uuid::from_u128(40));
    store.revoke_family(family, NOW).await.unwrap();
    let (access, refresh) = tokens(4, c1, user, family);
    store.insert_tokens(&access, Some(&refresh)).await.unwrap();
    assert_revoked(store, &access, &refresh).await;
}

async fn revoking_consent_spends_outstanding_codes(store: &dyn Store) {
    store.upsert_client(&client(1)).await.unwrap();
    let user = user(store, "o").await;
    let c1 = Uuid::from_u128(1);
    store
        .insert_code(&code(7, c1, user, Uuid::from_u128(70)))
        .await
        .unwrap();
    store.revoke_consent(user, c1, NOW).await.unwrap();
    let redeemed = store
        .redeem_code(&TokenHash([7; 32]), c1, NOW, None)
        .await
        .unwrap();
    assert!(matches!(redeemed, Redemption::Spent(_)));
}

async fn expired_rows_are_purged(store: &dyn Store) {
    let user = user(store, "p").await;
    let c1 = Uuid::from_u128(1);
    store
        .insert_code(&code(8, c1, user, Uuid::from_u128(80)))
        .await
        .unwrap();
    let (access, refresh) = tokens(9, c1, user, Uuid::from_u128(90));
    store.insert_tokens(&access, Some(&refresh)).await.unwrap();
    store
        .insert_session(&SessionRecord {
            hash: TokenHash([10; 32]),
            user_id: user,
            created_at: NOW,
            expires_at: NOW + 10,
        })
        .await
        .unwrap();
    assert_eq!(store.purge_expired(NOW, 3600).await.unwrap(), 0);
    // The session first; the code an hour past its expiry; then each token at its own expiry.
    assert_eq!(store.purge_expired(NOW + 100, 3600).await.unwrap(), 1);
    assert!(store
        .find_session(&TokenHash([10; 32]))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.purge_expired(NOW + 60 + 3600, 3600).await.unwrap(), 1);
    assert!(store
        .find_access_token(&access.hash)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.purge_expired(NOW + 7200, 3600).await.unwrap(), 1);
    assert!(store
        .find_access_token(&access.hash)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.purge_expired(NOW + 86400, 3600).await.unwrap(), 1);
}

async fn server_secrets_are_created_once(store: &dyn Store) {
    let first = store.ensure_server_secret("csrf", b"one").await.unwrap();
    let second = store.ensure_server_secret("csrf", b"two").await.unwrap();
    assert_eq!(first, b"one");
    assert_eq!(second, b"one");
}

/// Runs every check against a fresh store from `make`.
async fn run_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    clients_by_id_and_key(make().await.as_ref()).await;
    users_upsert_by_username(make().await.as_ref()).await;
    sessions(make().await.as_ref()).await;
    codes_are_single_use(make().await.as_ref()).await;
    refresh_tokens_rotate_once_and_families_revoke(make().await.as_ref()).await;
    consents_merge_list_and_revoke_tokens(make().await.as_ref()).await;
    server_secrets_are_created_once(make().await.as_ref()).await;
    tokens_born_into_a_revoked_family_are_revoked(make().await.as_ref()).await;
    revoking_consent_spends_outstanding_codes(make().await.as_ref()).await;
    expired_rows_are_purged(make().await.as_ref()).await;
    signing_keys_are_created_once_per_generation(make().await.as_ref()).await;
    single_tokens_are_found_and_revoked(make().await.as_ref()).await;
}

#[tokio::test]
async fn memory_store_passes_the_contract() {
    run_suite(|| async { Arc::new(MemoryStore::default()) as Arc<dyn Store> }).await;
}

#[tokio::test]
async fn sqlite_store_passes_the_contract() {
    run_suite(|| async {
        Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()) as Arc<dyn Store>
    })
    .await;
}

/// Of many concurrent redemptions of one code on a WAL database file, exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_redeems_a_code_once_under_concurrency() {
    let dir = std::env::temp_dir().join(format!("doorward-contract-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("db.sqlite").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    store.upsert_client(&client(1)).await.unwrap();
    let user = user(store.as_ref(), "race").await;
    let c1 = Uuid::from_u128(1);
    for round in 0..5u8 {
        store
            .insert_code(&code(round, c1, user, Uuid::from_u128(round.into())))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .redeem_code(&TokenHash([round; 32]), c1, NOW, None)
                    .await
                    .unwrap()
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Redemption::Fresh(_)) {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "round {round}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances (two engines, each with its own connections) on one database file: they start
/// together and end up with one key per algorithm; a rotation made through one is published by
/// the other at its next reload and both sign with it from the same instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree_on_signing_keys_through_sqlite() {
    use doorward_core::keys::{KeyPolicy, SigningAlg};
    use doorward_core::testing::{FixedClock, SeqRandom};
    use doorward_core::{Engine, EngineConfig};

    let dir = std::env::temp_dir().join(format!("doorward-keys-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("db.sqlite").display());
    let clock = Arc::new(FixedClock::new(NOW));
    let config = EngineConfig {
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256, SigningAlg::EdDsa],
            publish_delay: 600,
            rotation_period: 86400,
        },
        hash_cost: doorward_core::passwords::HashCost::InsecureFastForTests,
        ..EngineConfig::default()
    };
    let instance = |seed: u64| {
        let (url, clock, config) = (url.clone(), clock.clone(), config.clone());
        async move {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
            // Different generators: each instance would make different keys.
            let random = Arc::new(SeqRandom::default());
            let mut skip = vec![0u8; seed as usize];
            doorward_core::ports::Random::fill(random.as_ref(), &mut skip);
            Engine::new(store, clock, random, config).await.unwrap()
        }
    };
    let (a, b) = tokio::join!(instance(8), instance(800));
    a.maintain_keys().await.unwrap();
    let kids = |e: &Engine| -> Vec<String> { e.key_status().into_iter().map(|k| k.kid).collect() };
    assert_eq!(kids(&a), kids(&b));
    assert_eq!(
        kids(&a).len(),
        2,
        "one key per algorithm, not one per instance"
    );

    let signer = |e: &Engine| {
        let jws = e
            .sign_jws(SigningAlg::Es256, None, &serde_json::json!({"sub": "x"}))
            .unwrap();
        jsonwebtoken::decode_header(&jws).unwrap().kid.unwrap()
    };
    let next = a.rotate_key(SigningAlg::Es256).await.unwrap();
    b.maintain_keys().await.unwrap();
    assert!(
        b.jwks()
            .keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(&next.kid)),
        "the other instance publishes the new key before it signs"
    );
    assert_ne!(signer(&a), next.kid);
    assert_ne!(signer(&b), next.kid);
    clock.advance(600);
    assert_eq!(signer(&a), next.kid);
    assert_eq!(signer(&b), next.kid, "both switch at the stored time");
    let _ = std::fs::remove_dir_all(&dir);
}

// PostgreSQL, in the database that DOORWARD_TEST_POSTGRES_URL names (scripts/test.sh creates it;
// the tests are skipped without it). Each store opens on a schema of its own, created empty for
// it (`…?options=-csearch_path%3DNAME` in the store's URL) and dropped when the test ends, pass
// or fail, so that tests running together, and runs after a failed one, never see each other's
// rows.

fn postgres_test_url() -> Option<String> {
    match std::env::var("DOORWARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: DOORWARD_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Creates an empty schema; returns its name and a URL whose connections work in it.
async fn postgres_schema(url: &str) -> (String, String) {
    use sqlx::Connection;
    let schema = format!("doorward_test_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{separator}options=-csearch_path%3D{schema}");
    (schema, schema_url)
}

async fn drop_postgres_schemas(url: &str, schemas: &[String]) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    for schema in schemas {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

/// Runs `test` on a task of its own, drops `schemas` whatever its outcome, then fails as it
/// failed.
async fn with_postgres_schemas<T>(url: &str, schemas: Arc<std::sync::Mutex<Vec<String>>>, test: T)
where
    T: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(test).await;
    let names = schemas.lock().unwrap().clone();
    drop_postgres_schemas(url, &names).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_contract() {
    use crate::PostgresStore;
    let Some(url) = postgres_test_url() else {
        return;
    };
    let schemas = Arc::new(std::sync::Mutex::new(Vec::new()));
    let suite = {
        let (url, schemas) = (url.clone(), schemas.clone());
        async move {
            run_suite(move || {
                let (url, schemas) = (url.clone(), schemas.clone());
                async move {
                    let (schema, schema_url) = postgres_schema(&url).await;
                    schemas.lock().unwrap().push(schema);
                    Arc::new(PostgresStore::open(&schema_url).await.unwrap()) as Arc<dyn Store>
                }
            })
            .await;
        }
    };
    with_postgres_schemas(&url, schemas, suite).await;
}

/// Two instances start together on an empty schema (their migrations take turns under the
/// advisory lock); then, of many concurrent redemptions of one code through both, exactly one
/// wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_redeems_a_code_once_under_concurrency() {
    use crate::PostgresStore;
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (schema, schema_url) = postgres_schema(&url).await;
    let schemas = Arc::new(std::sync::Mutex::new(vec![schema]));
    let test = async move {
        let (a, b) = tokio::join!(
            PostgresStore::open(&schema_url),
            PostgresStore::open(&schema_url)
        );
        let stores: [Arc<dyn Store>; 2] = [Arc::new(a.unwrap()), Arc::new(b.unwrap())];
        stores[0].upsert_client(&client(1)).await.unwrap();
        let user = user(stores[0].as_ref(), "race").await;
        let c1 = Uuid::from_u128(1);
        for round in 0..5u8 {
            stores[0]
                .insert_code(&code(round, c1, user, Uuid::from_u128(round.into())))
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for i in 0..16 {
                let store = stores[i % 2].clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .redeem_code(&TokenHash([round; 32]), c1, NOW, None)
                        .await
                        .unwrap()
                }));
            }
            let (mut fresh, mut spent) = (0, 0);
            for task in tasks {
                match task.await.unwrap() {
                    Redemption::Fresh(_) => fresh += 1,
                    Redemption::Spent(_) => spent += 1,
                    Redemption::Unknown => panic!("round {round}: the code went unknown"),
                }
            }
            assert_eq!((fresh, spent), (1, 15), "round {round}");
        }
    };
    with_postgres_schemas(&url, schemas, test).await;
}

/// The purge runs in one instance at a time: while another holds its advisory lock, a purge
/// returns at once and deletes nothing; afterwards it deletes in batches.
#[tokio::test]
async fn postgres_purges_in_one_instance_at_a_time() {
    use crate::PostgresStore;
    use sqlx::Connection;
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (schema, schema_url) = postgres_schema(&url).await;
    let schemas = Arc::new(std::sync::Mutex::new(vec![schema]));
    let test = async move {
        let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&schema_url).await.unwrap());
        store.upsert_client(&client(1)).await.unwrap();
        let user = user(store.as_ref(), "purge").await;
        for n in 0..12u8 {
            let mut session = SessionRecord {
                hash: TokenHash([n; 32]),
                user_id: user,
                created_at: NOW,
                expires_at: NOW + 10,
            };
            session.hash.0[31] = 200;
            store.insert_session(&session).await.unwrap();
        }
        let mut other = sqlx::PgConnection::connect(&schema_url).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(0x6477_2d70_7572_6765_i64)
            .execute(&mut other)
            .await
            .unwrap();
        assert_eq!(store.purge_expired(NOW + 100, 0).await.unwrap(), 0);
        sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut other)
            .await
            .unwrap();
        assert_eq!(store.purge_expired(NOW + 100, 0).await.unwrap(), 12);
    };
    with_postgres_schemas(&url, schemas, test).await;
}
