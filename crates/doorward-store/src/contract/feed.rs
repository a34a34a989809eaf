//! The change feeds: what one handle on a database commits, another handle's feed reports
//! (as a second instance, or the `doorward` command line, would); and an engine's read cache
//! that follows its feed forgets what another process revoked.

use std::sync::Arc;

use doorward_core::jose::SigningAlg;
use doorward_core::model::SigningKeyRecord;
use doorward_core::ports::{Change, ChangeFeed, SharedStore};
use doorward_core::testkit::{client, tokens, user, NOW};
use doorward_core::TokenHash;
use uuid::Uuid;

use super::{postgres_schema, postgres_test_url, with_postgres_schemas};
use crate::{PostgresStore, SqliteStore};

/// Each change that `writer` commits is in `reader`'s next answer. With `exact`, nothing else
/// is (PostgreSQL's notifications are database-wide: tests in other schemas add theirs).
async fn every_change_is_reported(writer: SharedStore, reader: &dyn ChangeFeed, exact: bool) {
    let first = reader.changes().await.unwrap();
    assert!(first.contains(&Change::Everything), "{first:?}");
    let expect = |got: Vec<Change>, want: Change| {
        if exact {
            assert_eq!(got, vec![want]);
        } else {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
    };
    let c = client(41);
    writer.upsert_client(&c).await.unwrap();
    expect(reader.changes().await.unwrap(), Change::Client(c.id));
    let u = user(writer.as_ref(), "feed").await;
    expect(reader.changes().await.unwrap(), Change::User(u));
    let family = Uuid::new_v4();
    let (access, refresh) = tokens(9, c.id, u, family);
    writer.insert_tokens(&access, Some(&refresh)).await.unwrap();
    writer.revoke_access_token(&access.hash, NOW).await.unwrap();
    expect(
        reader.changes().await.unwrap(),
        Change::AccessToken(access.hash),
    );
    writer.revoke_family(family, NOW).await.unwrap();
    expect(reader.changes().await.unwrap(), Change::Family(family));
    writer.revoke_consent(u, c.id, NOW).await.unwrap();
    expect(
        reader.changes().await.unwrap(),
        Change::Consent {
            user: u,
            client: c.id,
        },
    );
    writer.delete_client(c.id, NOW).await.unwrap();
    expect(reader.changes().await.unwrap(), Change::Client(c.id));
    let counter = Change::Failures("client:feed".into());
    writer
        .record_failure("client:feed", NOW, NOW + 60)
        .await
        .unwrap();
    expect(reader.changes().await.unwrap(), counter.clone());
    writer.clear_failures("client:feed").await.unwrap();
    expect(reader.changes().await.unwrap(), counter);
    // The signing keys: a key stored, its removal brought forward, its deletion; a second
    // insert of the same generation and a later removal time change nothing.
    let key = SigningKeyRecord {
        kid: "feed-key".into(),
        alg: SigningAlg::Es256,
        generation: 1,
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: NOW,
        activate_at: NOW,
        remove_at: None,
    };
    assert!(writer.insert_signing_key(&key).await.unwrap());
    assert!(!writer.insert_signing_key(&key).await.unwrap());
    expect(reader.changes().await.unwrap(), Change::Keys);
    writer
        .schedule_key_removal("feed-key", NOW + 60)
        .await
        .unwrap();
    writer
        .schedule_key_removal("feed-key", NOW + 90)
        .await
        .unwrap();
    expect(reader.changes().await.unwrap(), Change::Keys);
    writer.delete_signing_key("feed-key").await.unwrap();
    expect(reader.changes().await.unwrap(), Change::Keys);
    if exact {
        assert_eq!(reader.changes().await.unwrap(), vec![], "nothing new");
    }
}

fn sqlite_file(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("doorward-{name}-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("db.sqlite").display());
    (dir, url)
}

#[tokio::test]
async fn sqlite_reports_each_change_to_another_process() {
    let (dir, url) = sqlite_file("feed");
    let writer: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
    let reader = SqliteStore::open(&url).await.unwrap();
    every_change_is_reported(writer, &reader, true).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_reports_each_change_to_another_instance() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (schema, schema_url) = postgres_schema(&url).await;
    let schemas = Arc::new(std::sync::Mutex::new(vec![schema]));
    let test = async move {
        let writer: SharedStore = Arc::new(PostgresStore::open(&schema_url).await.unwrap());
        let reader = PostgresStore::open(&schema_url).await.unwrap();
        every_change_is_reported(writer, &reader, false).await;
    };
    with_postgres_schemas(&url, schemas, test).await;
}

/// An engine whose cache follows its SQLite feed: a token revoked by another process is
/// answered from memory until the next poll, and refused after it; what the engine itself
/// changes is forgotten at once.
#[tokio::test]
async fn an_engine_cache_forgets_what_another_process_revoked() {
    use doorward_core::config::KeyPolicy;
    use doorward_core::jose::SigningAlg;
    use doorward_core::testing::{FixedClock, SeqRandom};
    use doorward_core::{Engine, EngineConfig};

    let (dir, url) = sqlite_file("cache");
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let other: SharedStore = Arc::new(SqliteStore::open(&url).await.unwrap());
    let config = EngineConfig {
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256],
            ..KeyPolicy::default()
        },
        hash_cost: doorward_core::passwords::HashCost::InsecureFastForTests,
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        store.clone(),
        Arc::new(FixedClock::new(NOW)),
        Arc::new(SeqRandom::default()),
        config,
    )
    .await
    .unwrap()
    .with_change_feed(store.clone());
    let cache = engine.read_cache().unwrap();
    cache.poll(store.as_ref()).await;
    // The writes below may take longer than the staleness bound on a busy machine.
    cache.hold_fresh();
    let c = client(42);
    other.upsert_client(&c).await.unwrap();
    let u = user(other.as_ref(), "cached").await;
    let issue = |n: u8, token: &str| {
        let (mut access, _) = tokens(n, c.id, u, Uuid::new_v4());
        access.hash = TokenHash::of(token);
        access
    };
    for (n, token) in [(1, "first"), (2, "second")] {
        other.insert_tokens(&issue(n, token), None).await.unwrap();
        assert!(engine.resolve_access_token(token).await.is_ok(), "{token}");
    }

    other
        .revoke_access_token(&TokenHash::of("first"), NOW)
        .await
        .unwrap();
    assert!(
        engine.resolve_access_token("first").await.is_ok(),
        "answered from memory until the next poll"
    );
    cache.poll(store.as_ref()).await;
    assert!(engine.resolve_access_token("first").await.is_err());
    assert!(engine.resolve_access_token("second").await.is_ok());

    // The engine's own change: no poll needed.
    engine
        .remove_client(&c.key, &doorward_core::audit::Actor::System)
        .await
        .unwrap();
    assert!(engine.resolve_access_token("second").await.is_err());
    assert!(engine.find_client(&c.key).await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
