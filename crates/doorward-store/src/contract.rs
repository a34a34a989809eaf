//! The contract test kit of the storage ports (`doorward_core::testkit`) run against both
//! adapters, and what only a real database can show: concurrent redemptions of one code, two
//! instances sharing one database, the PostgreSQL purge lock. The in-memory store runs the kit
//! in `doorward-core`.

use std::sync::Arc;

use doorward_core::model::SessionRecord;
use doorward_core::ports::{ClientRef, ClientStore, Redemption, SharedStore};
use doorward_core::testkit::{self, client, code, user, NOW};
use doorward_core::TokenHash;
use uuid::Uuid;

use crate::SqliteStore;

#[tokio::test]
async fn sqlite_store_passes_the_contract() {
    testkit::run_contract(|| async {
        Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()) as SharedStore
    })
    .await;
}

/// A new database file, and the `-wal` and `-shm` files SQLite makes beside it, are readable
/// by their owner only: they hold the server's keys and its users' password hashes.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;

    use doorward_core::ports::ClientStore;

    let dir = std::env::temp_dir().join(format!("doorward-mode-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sqlite");
    let store = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.upsert_client(&client(1)).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Of many concurrent redemptions of one code on a WAL database file, exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_redeems_a_code_once_under_concurrency() {
    let dir = std::env::temp_dir().join(format!("doorward-contract-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("db.sqlite").display());
    let store: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
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
    use doorward_core::config::KeyPolicy;
    use doorward_core::jose::SigningAlg;
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
            let store: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
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
    let next = a
        .rotate_key(SigningAlg::Es256, &doorward_core::audit::Actor::System)
        .await
        .unwrap();
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
// the tests are skipped without it, and fail without it in CI: `required_env`). Each store opens on a schema of its own, created empty for
// it (`…?options=-csearch_path%3DNAME` in the store's URL) and dropped when the test ends, pass
// or fail, so that tests running together, and runs after a failed one, never see each other's
// rows.

#[path = "../../../tests/rust/required_env.rs"]
mod required_env;

fn postgres_test_url() -> Option<String> {
    let url = required_env::required_env("DOORWARD_TEST_POSTGRES_URL")?;
    Some(
        url.into_string()
            .expect("DOORWARD_TEST_POSTGRES_URL is not UTF-8"),
    )
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
            testkit::run_contract(move || {
                let (url, schemas) = (url.clone(), schemas.clone());
                async move {
                    let (schema, schema_url) = postgres_schema(&url).await;
                    schemas.lock().unwrap().push(schema);
                    Arc::new(PostgresStore::open(&schema_url).await.unwrap()) as SharedStore
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
        let stores: [SharedStore; 2] = [Arc::new(a.unwrap()), Arc::new(b.unwrap())];
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

/// TLS to PostgreSQL, as the URL's `sslmode` says: `disable` is plain, `require` and the
/// default `prefer` are encrypted when the server offers TLS (`pg_stat_ssl` says so), and
/// `verify-full` refuses a certificate that no known authority signed (Debian's own
/// "snakeoil" one) with an error that names the certificate. The store opens and works over
/// TLS. A server without TLS refuses `require`.
#[tokio::test]
async fn postgres_connections_use_tls_as_the_url_says() {
    use crate::PostgresStore;
    use sqlx::{ConnectOptions, Row};
    let Some(url) = postgres_test_url() else {
        return;
    };
    let mode = |base: &str, mode: &str| {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}sslmode={mode}")
    };
    let encrypted = |mode_url: String| async move {
        let options = crate::postgres::connect_options(&mode_url).unwrap();
        let mut conn = options.connect().await?;
        let row = sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        Ok::<bool, sqlx::Error>(row.get("ssl"))
    };
    let mut plain = crate::postgres::connect_options(&mode(&url, "disable"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let offered: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut plain)
        .await
        .unwrap();
    assert!(!encrypted(mode(&url, "disable")).await.unwrap());
    if offered != "on" {
        assert!(
            encrypted(mode(&url, "require")).await.is_err(),
            "require, from a server without TLS"
        );
        return;
    }
    assert!(encrypted(mode(&url, "require")).await.unwrap());
    assert!(encrypted(url.clone()).await.unwrap(), "prefer, the default");
    let refused = encrypted(mode(&url, "verify-full")).await.unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
    let (schema, schema_url) = postgres_schema(&url).await;
    let schemas = Arc::new(std::sync::Mutex::new(vec![schema]));
    let test = async move {
        let store = PostgresStore::open(&mode(&schema_url, "require"))
            .await
            .unwrap();
        store.upsert_client(&client(1)).await.unwrap();
        assert!(store
            .find_client(ClientRef::Id(client(1).id))
            .await
            .unwrap()
            .is_some());
    };
    with_postgres_schemas(&url, schemas, test).await;
}

/// The purge runs in one instance at a time: while another holds its advisory lock (keyed by
/// the schema), a purge returns at once and deletes nothing; afterwards it deletes in batches.
/// The same lock taken for another schema does not stop it.
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
        let store: SharedStore = Arc::new(PostgresStore::open(&schema_url).await.unwrap());
        store.upsert_client(&client(1)).await.unwrap();
        let user = user(store.as_ref(), "purge").await;
        // `count` expired sessions, told apart from other calls' by `mark`.
        let expired_sessions = |mark: u8, count: u8| {
            let store = store.clone();
            async move {
                for n in 0..count {
                    let mut hash = TokenHash([n; 32]);
                    hash.0[31] = mark;
                    let session = SessionRecord {
                        hash,
                        user_id: user,
                        created_at: NOW,
                        expires_at: NOW + 10,
                        amr: Vec::new(),
                    };
                    store.insert_session(&session).await.unwrap();
                }
            }
        };
        // "dwpg": the purge lock's first key (postgres/maintenance.rs); the second is the
        // hash of the schema's name.
        let purge_lock = |schema: &str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT pg_advisory_lock({}, hashtext({schema}))",
                0x6477_7067_i32
            )))
        };
        let mut other = sqlx::PgConnection::connect(&schema_url).await.unwrap();
        purge_lock("'another_schema'")
            .execute(&mut other)
            .await
            .unwrap();
        expired_sessions(201, 2).await;
        assert_eq!(
            store.purge_expired(NOW + 100, 0).await.unwrap(),
            2,
            "another schema's purge does not hold this one's lock"
        );
        expired_sessions(200, 12).await;
        purge_lock("current_schema()")
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

/// Failures recorded concurrently through `stores` under one key: every one is counted (the
/// throttle's upsert is one statement), and each caller saw a distinct count.
async fn failures_race(stores: &[SharedStore]) {
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_failure("acct:race", NOW, NOW + 60)
                .await
                .unwrap()
                .count
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=32).collect::<Vec<u32>>());
    let stored = stores[0].find_failures("acct:race").await.unwrap();
    assert_eq!(stored.map(|f| f.count), Some(32));
}

/// 32 uses of one client-assertion `jti` racing over the stores (instances): exactly one is
/// fresh (`AssertionStore::record_jti`).
async fn jti_race(stores: &[SharedStore]) {
    let client = Uuid::from_u128(0x7e57);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_jti(client, "jti-race", NOW + 60, NOW)
                .await
                .unwrap()
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        fresh += usize::from(task.await.unwrap());
    }
    assert_eq!(
        fresh, 1,
        "one racing use of a jti is fresh, the others are replays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_counts_every_concurrent_failure() {
    let dir = std::env::temp_dir().join(format!("doorward-contract-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("db.sqlite").display());
    let a: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
    let b: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
    failures_race(&[a.clone(), b.clone()]).await;
    jti_race(&[a, b]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances on one schema count every failure of a key between them, and agree on
/// which use of a client-assertion `jti` was the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_counts_every_concurrent_failure() {
    use crate::PostgresStore;
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (schema, schema_url) = postgres_schema(&url).await;
    let schemas = Arc::new(std::sync::Mutex::new(vec![schema]));
    let test = async move {
        let a = PostgresStore::open(&schema_url).await.unwrap();
        let b = PostgresStore::open(&schema_url).await.unwrap();
        let stores: [SharedStore; 2] = [Arc::new(a), Arc::new(b)];
        failures_race(&stores).await;
        jti_race(&stores).await;
    };
    with_postgres_schemas(&url, schemas, test).await;
}

mod feed;
