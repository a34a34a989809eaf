//! Deterministic clock and randomness for tests of this crate and of the crates above it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crate::memory::MemoryStore;
use crate::passwords::HashCost;
use crate::ports::{Clock, Random, UnixTime};
use crate::{Engine, EngineConfig};

mod failing_store;
pub use failing_store::FailingStore;

/// An engine over a fresh in-memory store, with `clock`, a repeatable generator and cheap
/// password hashing: the base of the engine's tests and of the HTTP adapter's.
pub async fn engine(clock: Arc<FixedClock>, config: EngineConfig) -> Engine {
    engine_over(Arc::new(MemoryStore::default()), clock, config).await
}

/// [`engine`] over `store` (a [`FailingStore`] around a [`MemoryStore`], say).
pub async fn engine_over(
    store: crate::ports::SharedStore,
    clock: Arc<FixedClock>,
    config: EngineConfig,
) -> Engine {
    let config = EngineConfig {
        hash_cost: HashCost::InsecureFastForTests,
        ..config
    };
    Engine::new(store, clock, Arc::new(SeqRandom::default()), config)
        .await
        .expect("the store does not fail at start")
}

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(now: UnixTime) -> Self {
        Self(AtomicI64::new(now))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// A generator of distinct, repeatable byte strings (a counter run through SplitMix64). Not
/// random at all: for tests only.
#[derive(Debug, Default)]
pub struct SeqRandom(AtomicU64);

impl Random for SeqRandom {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A confidential client to register in tests: `key`, one redirect URI, app at
/// `http://localhost:8000`.
pub fn client(key: &str, display_name: &str, callback: &str, secret: &str) -> crate::ClientSpec {
    crate::ClientSpec {
        key: key.to_owned(),
        display_name: display_name.to_owned(),
        app_uri: "http://localhost:8000".into(),
        // Invariant: tests pass valid absolute URIs.
        redirect_uris: vec![doorward_proto::RedirectUri::parse(callback).expect("a valid URI")],
        secret: doorward_proto::Secret::new(secret),
        policy: Default::default(),
    }
}

/// A user to seed in tests, with an e-mail address `USERNAME@example.com`.
pub fn user(username: &str, display_name: &str, password: &str) -> crate::UserSpec {
    crate::UserSpec {
        username: username.to_owned(),
        display_name: display_name.to_owned(),
        password: doorward_proto::Secret::new(password),
        email: Some(format!("{username}@example.com")),
        email_verified: true,
        claims: serde_json::Map::new(),
        admin: false,
    }
}
