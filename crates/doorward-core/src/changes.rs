//! The engine's side of the read cache (`cache.rs`): the hot lookups go through it, the
//! changes this instance makes are forgotten at once, and a follower task hears of the
//! changes that other instances make.

use std::future::Future;
use std::sync::Arc;

use crate::cache::{self, ReadCache};
use crate::model::{BearerRecord, Client};
use crate::opaque::TokenHash;
use crate::ports::{Change, ChangeFeed, ClientRef, Failures, StoreResult, ThrottleStore, UnixTime};
use crate::Engine;

/// The throttle's counters through the read cache: what `throttle::Guard` is given, so that a
/// client authentication reads no counter from the database once warm.
pub(crate) struct CachedThrottle<'a>(&'a Engine);

#[async_trait::async_trait]
impl ThrottleStore for CachedThrottle<'_> {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        let engine = self.0;
        let Some(cache) = engine.read_cache() else {
            return engine.store.find_failures(key).await;
        };
        if let Some(known) = cache.failures(key) {
            return Ok(known);
        }
        let epoch = cache.epoch();
        let found = engine.store.find_failures(key).await?;
        cache.keep_failures(epoch, key, found);
        Ok(found)
    }

    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        let engine = self.0;
        engine
            .writing(
                Change::Failures(key.to_owned()),
                engine.store.record_failure(key, now, expires_at),
            )
            .await
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let engine = self.0;
        engine
            .writing(
                Change::Failures(key.to_owned()),
                engine.store.clear_failures(key),
            )
            .await
    }
}

impl Engine {
    /// Keeps access tokens and clients in memory, kept true by `feed` (the store's own, e.g.
    /// `doorward_store::SqliteStore`): changes made by this engine are forgotten at once,
    /// those of other instances within [`cache::STALENESS_BOUND`]. The cache answers only
    /// once [`Engine::change_follower`] runs. Without a feed, nothing is cached: the engine
    /// could not know what other processes change.
    pub fn with_change_feed(mut self, feed: Arc<dyn ChangeFeed>) -> Self {
        self.cache = Some((Arc::new(ReadCache::default()), feed));
        self
    }

    /// The task that polls the change feed into the cache, to spawn on the serving runtime;
    /// it ends when the engine is dropped. `None` without a feed.
    pub fn change_follower(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (cache, feed) = self.cache.as_ref()?;
        Some(cache::follow(Arc::downgrade(cache), Arc::clone(feed)))
    }

    /// The read cache, when there is one.
    pub fn read_cache(&self) -> Option<&ReadCache> {
        self.cache.as_ref().map(|(cache, _)| &**cache)
    }

    /// [`crate::ports::TokenStore::find_bearer`] through the cache.
    pub(crate) async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        let Some(cache) = self.read_cache() else {
            return self.store.find_bearer(hash).await;
        };
        if let Some(record) = cache.bearer(hash) {
            return Ok(Some(record));
        }
        let epoch = cache.epoch();
        let found = self.store.find_bearer(hash).await?;
        if let Some(record) = &found {
            cache.keep_bearer(epoch, record);
        }
        Ok(found)
    }

    /// [`crate::ports::ClientStore::find_client`] through the cache.
    ///
    /// Shared (`Arc`): a hit of the cache copies nothing of the client, which a token request
    /// looks up each time it authenticates one.
    pub(crate) async fn lookup_client(
        &self,
        client: ClientRef<'_>,
    ) -> StoreResult<Option<Arc<Client>>> {
        let Some(cache) = self.read_cache() else {
            return Ok(self.store.find_client(client).await?.map(Arc::new));
        };
        if let Some(found) = cache.client(&client) {
            return Ok(Some(found));
        }
        let epoch = cache.epoch();
        let found = self.store.find_client(client).await?.map(Arc::new);
        if let Some(found) = &found {
            cache.keep_client(epoch, found);
        }
        Ok(found)
    }

    /// The throttle's store, through the read cache.
    pub(crate) fn throttle(&self) -> CachedThrottle<'_> {
        CachedThrottle(self)
    }

    /// Runs `write`, a store call that makes `change`, and forgets the change here at once,
    /// whatever the outcome (a write that failed may still have committed).
    pub(crate) async fn writing<T>(
        &self,
        change: Change,
        write: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let result = write.await;
        self.forget(&change);
        result
    }

    /// Forgets what `change` made stale in this instance's cache.
    pub(crate) fn forget(&self, change: &Change) {
        if let Some(cache) = self.read_cache() {
            cache.apply(change);
        }
    }
}
