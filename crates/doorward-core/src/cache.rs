//! The read cache: access tokens (with their user and client) by hash, clients by Id and Key,
//! and the throttle's failure counters by key, kept in memory so that a protected call, an
//! introspection or a client authentication reads no database once its records are warm.
//!
//! # What keeps it true
//! - **This instance's changes** are forgotten at once: the engine applies each [`Change`]
//!   right after the store call that made it (`changes.rs`).
//! - **Other instances' changes** (and the `doorward` command line's) come through the store's
//!   [`ChangeFeed`], which [`follow`] asks every [`POLL_INTERVAL`].
//! - **The bound.** The cache answers only while the last successful poll began less than
//!   [`STALENESS_BOUND`] ago. A change committed anywhere is therefore seen here within that
//!   bound (typically within one poll interval); when the feed fails or falls behind (the
//!   database gone, a starved task), lookups go to the store again, and a failed poll empties
//!   the cache.
//! - **No stale fill.** A lookup that missed reads the store and then keeps what it read only
//!   if no change was applied meanwhile ([`ReadCache::epoch`]): a change applied after the read
//!   began may concern the record read, which would otherwise stay cached after the change
//!   that should have removed it. Each change bumps the epoch before it removes entries.
//!
//! - **Writers that record no change** (an older binary during a rolling upgrade, SQL typed by
//!   hand) are outlived: an entry is used at most [`MAX_ENTRY_AGE`] (30 s) after it was read.
//!
//! Records are kept whatever their state (a revoked or expired token is still a true answer;
//! the engine judges it). Absence is not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::model::{BearerRecord, Client};
use crate::opaque::TokenHash;
use crate::ports::{Change, ChangeFeed, ClientRef, Failures};

/// How often [`follow`] asks the feed for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest a change committed by another instance (or the command line) can go unseen
/// here: past it without a successful poll, the cache is not used.
pub const STALENESS_BOUND: Duration = Duration::from_millis(500);

const SHARDS: usize = 16;
/// The longest an entry is used, changes or not: a bound on what a writer that records no
/// [`Change`] leaves stale (an older binary during a rolling upgrade, a hand-made SQL fix).
pub const MAX_ENTRY_AGE: Duration = Duration::from_secs(30);

/// Access tokens kept per shard (20,480 in all, about 1 KiB each); a full shard is emptied.
const TOKENS_PER_SHARD: usize = 1280;
/// Clients kept; when full, the cache of clients is emptied. The same for failure counters.
const CLIENTS: usize = 10_000;
const COUNTERS: usize = 10_000;

/// Access tokens by hash, each with when it was read (nanoseconds after `ReadCache::base`).
type Shard = HashMap<TokenHash, (BearerRecord, u64)>;

/// Access tokens and clients in memory, with what keeps them true (see the module).
pub struct ReadCache {
    tokens: Box<[Mutex<Shard>]>,
    clients: Mutex<Clients>,
    /// Failure counters of the throttle by key, absence included (the common case: a client
    /// that never failed).
    failures: Mutex<HashMap<String, (Option<Failures>, u64)>>,
    epoch: AtomicU64,
    base: Instant,
    /// Nanoseconds after `base` until which the cache may answer; 0 until the first poll.
    fresh_until: AtomicU64,
    /// Told when the signing keys changed, or changes may have been missed.
    keys: tokio::sync::Notify,
}

#[derive(Default)]
struct Clients {
    by_id: HashMap<Uuid, (Arc<Client>, u64)>,
    by_key: HashMap<String, Uuid>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self {
            tokens: (0..SHARDS).map(|_| Mutex::default()).collect(),
            clients: Mutex::default(),
            failures: Mutex::default(),
            epoch: AtomicU64::new(0),
            base: Instant::now(),
            fresh_until: AtomicU64::new(0),
            keys: tokio::sync::Notify::new(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReadCache {
    /// Whether the cache may answer now (see [`STALENESS_BOUND`]).
    pub fn is_usable(&self) -> bool {
        self.usable_now().is_some()
    }

    /// Now, for an entry read now; `None` when the cache may not answer.
    fn usable_now(&self) -> Option<u64> {
        let now = self.nanos(Instant::now());
        (now < self.fresh_until.load(Ordering::Acquire)).then_some(now)
    }

    /// Whether an entry read at `read` may still be used at `now` ([`MAX_ENTRY_AGE`]).
    fn young(read: u64, now: u64) -> bool {
        now.saturating_sub(read) < u64::try_from(MAX_ENTRY_AGE.as_nanos()).unwrap_or(u64::MAX)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The count of changes applied so far: read it before a store read whose result is to be
    /// kept, and hand it to [`ReadCache::keep_bearer`] or [`ReadCache::keep_client`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn shard(&self, hash: &TokenHash) -> &Mutex<Shard> {
        // The last byte is digest, never time (`opaque.rs`).
        &self.tokens[usize::from(hash.as_bytes()[31]) % SHARDS]
    }

    pub fn bearer(&self, hash: &TokenHash) -> Option<BearerRecord> {
        let now = self.usable_now()?;
        lock(self.shard(hash))
            .get(hash)
            .filter(|(_, read)| Self::young(*read, now))
            .map(|(record, _)| record.clone())
    }

    /// Keeps `record`, read from the store after [`ReadCache::epoch`] answered `epoch`, unless
    /// a change was applied since.
    pub fn keep_bearer(&self, epoch: u64, record: &BearerRecord) {
        let Some(now) = self.usable_now() else {
            return;
        };
        let mut shard = lock(self.shard(&record.token.hash));
        if self.epoch() != epoch {
            return;
        }
        if shard.len() >= TOKENS_PER_SHARD {
            shard.clear();
        }
        shard.insert(record.token.hash, (record.clone(), now));
    }

    /// The client, shared: a hit copies nothing of it.
    pub fn client(&self, client: &ClientRef<'_>) -> Option<Arc<Client>> {
        let now = self.usable_now()?;
        let clients = lock(&self.clients);
        let id = match client {
            ClientRef::Id(id) => *id,
            ClientRef::Key(key) => *clients.by_key.get(*key)?,
        };
        clients
            .by_id
            .get(&id)
            .filter(|(_, read)| Self::young(*read, now))
            .map(|(client, _)| Arc::clone(client))
    }

    /// Keeps `client` (see [`ReadCache::keep_bearer`]).
    pub fn keep_client(&self, epoch: u64, client: &Arc<Client>) {
        let Some(now) = self.usable_now() else {
            return;
        };
        let mut clients = lock(&self.clients);
        if self.epoch() != epoch {
            return;
        }
        if clients.by_id.len() >= CLIENTS {
            *clients = Clients::default();
        }
        clients.by_key.insert(client.key.clone(), client.id);
        clients.by_id.insert(client.id, (Arc::clone(client), now));
    }

    /// The failure counter under `key` (`Some(None)`: known to be absent).
    pub fn failures(&self, key: &str) -> Option<Option<Failures>> {
        let now = self.usable_now()?;
        lock(&self.failures)
            .get(key)
            .filter(|(_, read)| Self::young(*read, now))
            .map(|(failures, _)| *failures)
    }

    /// Keeps what the store said of the counter under `key` (see [`ReadCache::keep_bearer`]).
    pub fn keep_failures(&self, epoch: u64, key: &str, failures: Option<Failures>) {
        let Some(now) = self.usable_now() else {
            return;
        };
        let mut kept = lock(&self.failures);
        if self.epoch() != epoch {
            return;
        }
        if kept.len() >= COUNTERS {
            kept.clear();
        }
        kept.insert(key.to_owned(), (failures, now));
    }

    /// Forgets what `change` made stale.
    pub fn apply(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let forget_tokens = |stale: &dyn Fn(&BearerRecord) -> bool| {
            for shard in self.tokens.iter() {
                lock(shard).retain(|_, (record, _)| !stale(record));
            }
        };
        match change {
            Change::AccessToken(hash) => {
                lock(self.shard(hash)).remove(hash);
            }
            Change::Family(family) => forget_tokens(&|r| r.token.family_id == *family),
            Change::User(user) => forget_tokens(&|r| r.token.user_id == Some(*user)),
            Change::Consent { user, client } => {
                forget_tokens(&|r| r.token.user_id == Some(*user) && r.token.client_id == *client)
            }
            Change::Client(client) => {
                forget_tokens(&|r| r.token.client_id == *client);
                let mut clients = lock(&self.clients);
                clients.by_id.remove(client);
                clients.by_key.retain(|_, id| id != client);
            }
            Change::Failures(key) => {
                lock(&self.failures).remove(key);
            }
            Change::Keys => self.keys.notify_one(),
            Change::Everything => {
                self.clear();
                self.keys.notify_one();
            }
        }
    }

    /// Completes once a change of the signing keys (or [`Change::Everything`]) has been
    /// applied since the last time it completed: the provider's key maintenance reloads the
    /// keys then, besides its period, so that a key another process stored or removed is
    /// published (and, once active, signs) here within [`STALENESS_BOUND`] and one reload.
    pub async fn keys_changed(&self) {
        self.keys.notified().await;
    }

    fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in self.tokens.iter() {
            lock(shard).clear();
        }
        *lock(&self.clients) = Clients::default();
        lock(&self.failures).clear();
    }

    /// Every change committed before `since` has been applied.
    fn mark_fresh(&self, since: Instant) {
        let until = self
            .nanos(since)
            .saturating_add(u64::try_from(STALENESS_BOUND.as_nanos()).unwrap_or(u64::MAX));
        self.fresh_until.store(until, Ordering::Release);
    }

    /// For tests: the cache answers as if polls kept coming until the next [`ReadCache::poll`],
    /// so that a slow test machine (a pause longer than [`STALENESS_BOUND`] between a poll and
    /// the check that follows it) cannot turn "answered from memory" into a store lookup.
    #[cfg(any(test, feature = "testkit"))]
    pub fn hold_fresh(&self) {
        self.fresh_until.store(u64::MAX, Ordering::Release);
    }

    /// Changes may have been missed: stop answering and forget everything.
    fn distrust(&self) {
        self.fresh_until.store(0, Ordering::Release);
        self.clear();
    }

    /// One poll of `feed`, as [`follow`] does it every [`POLL_INTERVAL`]: its changes are
    /// applied and the cache is fresh as of the poll's start, or, if it fails, emptied and
    /// unused until a poll succeeds.
    pub async fn poll(&self, feed: &dyn ChangeFeed) {
        let started = Instant::now();
        match feed.changes().await {
            Ok(changes) => {
                for change in &changes {
                    self.apply(change);
                }
                self.mark_fresh(started);
            }
            Err(_) => self.distrust(),
        }
    }
}

/// Polls `feed` into `cache` every [`POLL_INTERVAL`] until the cache is dropped (spawn it on
/// the runtime that serves the engine: `Engine::change_follower`).
pub async fn follow(cache: Weak<ReadCache>, feed: Arc<dyn ChangeFeed>) {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        cache.poll(feed.as_ref()).await;
    }
}

#[cfg(test)]
mod tests;
