use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use doorward_proto::ScopeSet;

use super::*;
use crate::model::{AccessTokenRecord, ClientPolicy, ClientSource};
use crate::ports::{StoreError, StoreResult};

/// A feed that answers what the test queued, or fails while `down`.
#[derive(Default)]
struct TestFeed {
    queued: Mutex<Vec<Change>>,
    down: AtomicBool,
}

#[async_trait]
impl ChangeFeed for TestFeed {
    async fn changes(&self) -> StoreResult<Vec<Change>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("down".into()));
        }
        Ok(std::mem::take(&mut *self.queued.lock().unwrap()))
    }
}

fn client(id: Uuid, key: &str) -> Client {
    Client {
        id,
        key: key.into(),
        display_name: key.into(),
        app_uri: "https://app.example".into(),
        redirect_uris: vec![],
        secret_hash: None,
        previous_secret: None,
        policy: ClientPolicy::default(),
        source: ClientSource::Config,
        created_at: 0,
    }
}

fn bearer(token: &str, family: Uuid, user: Option<Uuid>, client_id: Uuid) -> BearerRecord {
    BearerRecord {
        token: AccessTokenRecord {
            hash: TokenHash::of(token),
            family_id: family,
            client_id,
            user_id: user,
            scopes: ScopeSet::default(),
            issued_at: 0,
            expires_at: 100,
            revoked: false,
            resources: vec![],
            dpop_jkt: None,
            act: None,
        },
        user: None,
        client: client(client_id, "app@clients").into(),
        grant_data: serde_json::Map::new().into(),
    }
}

async fn fresh_cache(feed: &TestFeed) -> ReadCache {
    let cache = ReadCache::default();
    cache.poll(feed).await;
    cache.hold_fresh();
    cache
}

fn kept(cache: &ReadCache, token: &str) -> bool {
    cache.bearer(&TokenHash::of(token)).is_some()
}

#[tokio::test]
async fn nothing_is_kept_or_answered_before_the_first_poll() {
    let feed = TestFeed::default();
    let cache = ReadCache::default();
    let record = bearer("a", Uuid::new_v4(), None, Uuid::new_v4());
    cache.keep_bearer(cache.epoch(), &record);
    assert!(!kept(&cache, "a"));
    cache.poll(&feed).await;
    assert!(!kept(&cache, "a"), "what was refused is not there later");
    cache.keep_bearer(cache.epoch(), &record);
    assert!(kept(&cache, "a"));
}

#[tokio::test]
async fn a_read_that_a_change_overtook_is_not_kept() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let record = bearer("a", Uuid::new_v4(), None, Uuid::new_v4());
    // The lookup reads the epoch, then the store; a revocation is applied meanwhile.
    let epoch = cache.epoch();
    cache.apply(&Change::AccessToken(TokenHash::of("unrelated")));
    cache.keep_bearer(epoch, &record);
    assert!(!kept(&cache, "a"));
    let c = Arc::new(client(Uuid::new_v4(), "x@clients"));
    let epoch = cache.epoch();
    feed.queued
        .lock()
        .unwrap()
        .push(Change::Client(Uuid::new_v4()));
    cache.poll(&feed).await;
    cache.keep_client(epoch, &c);
    assert!(cache.client(&ClientRef::Id(c.id)).is_none());
}

#[tokio::test]
async fn each_change_forgets_exactly_what_it_made_stale() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let (family, other_family) = (Uuid::new_v4(), Uuid::new_v4());
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (app, other_app) = (Uuid::new_v4(), Uuid::new_v4());
    let records = [
        ("token", bearer("token", other_family, Some(bob), other_app)),
        ("family", bearer("family", family, Some(bob), other_app)),
        (
            "alice-app",
            bearer("alice-app", other_family, Some(alice), app),
        ),
        (
            "alice-other",
            bearer("alice-other", other_family, Some(alice), other_app),
        ),
        ("bob-app", bearer("bob-app", other_family, Some(bob), app)),
        ("service", bearer("service", other_family, None, other_app)),
    ];
    let fill = |cache: &ReadCache| {
        for (_, record) in &records {
            cache.keep_bearer(cache.epoch(), record);
        }
    };
    let cases: [(Change, &[&str]); 5] = [
        (Change::AccessToken(TokenHash::of("token")), &["token"]),
        (Change::Family(family), &["family"]),
        (
            Change::Consent {
                user: alice,
                client: app,
            },
            &["alice-app"],
        ),
        (Change::User(alice), &["alice-app", "alice-other"]),
        (Change::Client(app), &["alice-app", "bob-app"]),
    ];
    for (change, gone) in cases {
        fill(&cache);
        cache.apply(&change);
        for (name, _) in &records {
            assert_eq!(
                kept(&cache, name),
                !gone.contains(name),
                "{change:?}: {name}"
            );
        }
    }
    fill(&cache);
    feed.queued.lock().unwrap().push(Change::Everything);
    cache.poll(&feed).await;
    assert!(records.iter().all(|(name, _)| !kept(&cache, name)));
}

#[tokio::test]
async fn a_changed_client_is_forgotten_by_id_and_by_key() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let c = Arc::new(client(Uuid::new_v4(), "shop@clients"));
    cache.keep_client(cache.epoch(), &c);
    assert!(cache.client(&ClientRef::Key("shop@clients")).is_some());
    assert!(cache.client(&ClientRef::Id(c.id)).is_some());
    cache.apply(&Change::Client(c.id));
    assert!(cache.client(&ClientRef::Key("shop@clients")).is_none());
    assert!(cache.client(&ClientRef::Id(c.id)).is_none());
}

#[tokio::test]
async fn failure_counters_are_kept_absent_or_not_until_they_change() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let counted = crate::ports::Failures {
        count: 2,
        last_at: 10,
        expires_at: 70,
    };
    cache.keep_failures(cache.epoch(), "client:a", None);
    cache.keep_failures(cache.epoch(), "client:b", Some(counted));
    assert_eq!(cache.failures("client:a"), Some(None), "absence is kept");
    assert_eq!(cache.failures("client:b"), Some(Some(counted)));
    assert_eq!(cache.failures("client:c"), None, "never read");
    cache.apply(&Change::Failures("client:a".into()));
    assert_eq!(cache.failures("client:a"), None);
    assert_eq!(cache.failures("client:b"), Some(Some(counted)));
}

#[tokio::test]
async fn a_failed_poll_empties_the_cache_until_a_poll_succeeds() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let record = bearer("a", Uuid::new_v4(), None, Uuid::new_v4());
    cache.keep_bearer(cache.epoch(), &record);
    feed.down.store(true, Ordering::SeqCst);
    cache.poll(&feed).await;
    assert!(!cache.is_usable());
    cache.keep_bearer(cache.epoch(), &record);
    feed.down.store(false, Ordering::SeqCst);
    cache.poll(&feed).await;
    assert!(cache.is_usable());
    assert!(!kept(&cache, "a"), "emptied, and nothing kept while down");
}

#[tokio::test]
async fn a_cache_whose_last_poll_is_older_than_the_bound_does_not_answer() {
    let feed = TestFeed::default();
    let cache = fresh_cache(&feed).await;
    let record = bearer("a", Uuid::new_v4(), None, Uuid::new_v4());
    cache.keep_bearer(cache.epoch(), &record);
    assert!(kept(&cache, "a"));
    // As if the last poll had begun STALENESS_BOUND ago.
    let now = cache.nanos(Instant::now());
    cache.fresh_until.store(now, Ordering::Release);
    assert!(!kept(&cache, "a"));
    cache.poll(&feed).await;
    assert!(
        kept(&cache, "a"),
        "a late poll loses nothing: the feed had no change"
    );
}

#[tokio::test]
async fn an_entry_is_not_used_past_its_age_limit_whatever_the_feed_says() {
    let feed = TestFeed::default();
    // A cache created a minute ago, so that an entry can be dated before its limit.
    let cache = ReadCache {
        base: Instant::now()
            .checked_sub(Duration::from_secs(60))
            .expect("the machine has been up for a minute"),
        ..ReadCache::default()
    };
    cache.poll(&feed).await;
    let record = bearer("a", Uuid::new_v4(), None, Uuid::new_v4());
    cache.keep_bearer(cache.epoch(), &record);
    let c = Arc::new(client(Uuid::new_v4(), "old@clients"));
    cache.keep_client(cache.epoch(), &c);
    cache.keep_failures(cache.epoch(), "client:old", None);
    assert!(kept(&cache, "a") && cache.client(&ClientRef::Id(c.id)).is_some());
    // Read MAX_ENTRY_AGE ago or more: at the cache's start, a minute ago.
    lock(cache.shard(&record.token.hash))
        .get_mut(&record.token.hash)
        .unwrap()
        .1 = 0;
    lock(&cache.clients).by_id.get_mut(&c.id).unwrap().1 = 0;
    lock(&cache.failures).get_mut("client:old").unwrap().1 = 0;
    assert!(!kept(&cache, "a"));
    assert!(cache.client(&ClientRef::Id(c.id)).is_none());
    assert_eq!(cache.failures("client:old"), None);
}

#[tokio::test]
async fn a_change_of_the_keys_wakes_the_key_reload_once() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let cache = ReadCache::default();
    let woken = |cache: &ReadCache| {
        let mut waiting = std::pin::pin!(cache.keys_changed());
        let mut context = Context::from_waker(std::task::Waker::noop());
        waiting.as_mut().poll(&mut context) == Poll::Ready(())
    };
    assert!(!woken(&cache), "nothing changed yet");
    cache.apply(&Change::Failures("client:x".into()));
    cache.apply(&Change::Client(Uuid::new_v4()));
    assert!(!woken(&cache), "other changes do not reload the keys");
    cache.apply(&Change::Keys);
    cache.apply(&Change::Keys);
    assert!(
        woken(&cache),
        "a change of the keys, applied before the reload waited"
    );
    assert!(!woken(&cache), "two changes before one reload: one reload");
    cache.apply(&Change::Everything);
    assert!(
        woken(&cache),
        "changes that may have been missed reload the keys too"
    );
}

#[test]
fn changes_travel_as_one_line() {
    let changes = [
        Change::AccessToken(TokenHash::of("t")),
        Change::Family(Uuid::new_v4()),
        Change::Client(Uuid::new_v4()),
        Change::User(Uuid::new_v4()),
        Change::Consent {
            user: Uuid::new_v4(),
            client: Uuid::new_v4(),
        },
        Change::Failures("address:::1".into()),
        Change::Keys,
        Change::Everything,
    ];
    for change in changes {
        let wire = change.to_wire();
        assert!(wire.is_ascii() && !wire.contains('\n'));
        assert_eq!(Change::from_wire(&wire), change);
    }
    for odd in ["", "t:zz", "x:1", "f:not-a-uuid", "g:1:2", "t:é", "s:x"] {
        assert_eq!(Change::from_wire(odd), Change::Everything, "{odd}");
    }
}
