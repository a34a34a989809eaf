//! Password and client-secret hashing (Argon2id).
//!
//! # Client secrets at the token endpoint
//! Client secrets are stored as Argon2id hashes like passwords, so a leaked database does not
//! leak them. Verifying Argon2id costs tens of milliseconds and megabytes of memory, which would
//! cap the token endpoint near 20 requests per second per core, so the engine keeps a
//! [`SecretCache`]: after a secret has once verified against a stored hash, the SHA-256 digest of
//! that secret is kept in memory next to the hash, and later requests compare digests in
//! constant time. A presented secret whose digest differs from the cached one is refused without
//! running Argon2 again (only the secret verified against that very hash can match it), so wrong
//! secrets are cheap too. The cache entry is tied to the stored hash string: a new secret (a new
//! hash) is verified with Argon2 once more.
//!
//! Argon2 runs off the async threads through a [`HashLimiter`]: at most
//! [`MAX_CONCURRENT_HASHES`] at a time and [`MAX_WAITING_HASHES`] waiting; beyond that the caller
//! is told the server is busy (503) instead of queueing without bound. The queue is shared
//! fairly: each check names its owners (the client address, the account or the client, as keys
//! of [`crate::throttle::Counter`]), and no owner holds more than [`MAX_HASHES_PER_OWNER`] places
//! in it, running or waiting. Its further checks wait in a line of its own, at most
//! [`MAX_WAITING_PER_OWNER`] long (beyond: [`Busy`]), outside the shared queue. So a flood of
//! wrong passwords from one address, or against one account, waits behind itself while everyone
//! else's sign-in still finds a place; and a burst of one client's requests on a cold secret
//! cache waits in its line and is answered from the cache once one of them has verified (RFC 6819
//! §5.1.4.2.3-4). How many guesses are checked at all is the business of [`crate::throttle`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use doorward_proto::{constant_time_eq, Secret};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::clock::Random;

/// Argon2 runs needing ~19 MiB each; this bounds the memory and CPU a burst of sign-ins takes.
pub const MAX_CONCURRENT_HASHES: usize = 2;
/// Verifications allowed to wait for a turn; more are refused as [`Busy`].
pub const MAX_WAITING_HASHES: usize = 32;
/// Places in the queue (running or waiting) that one owner (a client address, an account, a
/// client) may hold at once; more of its checks wait in the owner's own line.
pub const MAX_HASHES_PER_OWNER: usize = 4;
/// Checks allowed to wait in one owner's line; more are refused as [`Busy`].
pub const MAX_WAITING_PER_OWNER: usize = 16;

/// How expensive new hashes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCost {
    /// Argon2id, m = 19 MiB, t = 2, p = 1 (the OWASP recommendation).
    Default,
    /// Argon2id, m = 8 KiB, t = 1: for tests only, never for real passwords.
    InsecureFastForTests,
}

/// Hashes `password` with a fresh salt into a PHC string.
pub fn hash(password: &str, cost: HashCost, random: &dyn Random) -> String {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    hash_salted(password, cost, salt)
}

/// Hashes `password` with this salt into a PHC string.
fn hash_salted(password: &str, cost: HashCost, salt: [u8; 16]) -> String {
    let params = match cost {
        HashCost::Default => Params::default(),
        HashCost::InsecureFastForTests => {
            Params::new(8, 1, 1, None).expect("fixed parameters are valid")
        }
    };
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    with_working_memory(&params, |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
    })
    .expect("hashing with valid parameters cannot fail");
    // Invariant: 16 bytes is within SaltString's accepted length, and the output length is
    // Argon2's default.
    let salt = SaltString::encode_b64(&salt).expect("a 16-byte salt is valid");
    let output = Output::new(&out).expect("a 32-byte output is valid");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().expect("valid parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Whether `password` matches the PHC string `phc`, compared in constant time. A malformed
/// PHC string matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    verify_parsed(phc, password).unwrap_or(false)
}

fn verify_parsed(phc: &str, password: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_working_memory(&params, |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    })
    .ok()?;
    Some(constant_time_eq(&out, expected.as_bytes()))
}

/// Runs `f` with Argon2's working memory (19 MiB by default), returned to the system as soon
/// as `f` is done.
///
/// glibc serves allocations of 32 MiB and more straight from `mmap` and unmaps them on free;
/// smaller large blocks raise its dynamic mmap threshold and then stay resident in a per-thread
/// arena (measured: 340 MiB resident after a burst of 16 cold client authentications). So the
/// memory is reserved with a capacity above 32 MiB, of which only the blocks Argon2 uses are
/// ever touched.
fn with_working_memory<T>(params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
    const UNMAPPED_ON_FREE: usize = 33 << 20;
    let blocks = params.block_count();
    let capacity = blocks.max(UNMAPPED_ON_FREE / std::mem::size_of::<Block>());
    let mut memory: Vec<Block> = Vec::with_capacity(capacity);
    memory.resize(blocks, Block::new());
    f(&mut memory)
}

/// Too many password verifications are running or waiting: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password verifications in progress")]
pub struct Busy;

/// Runs [`verify`] on the blocking pool with bounded concurrency, a bounded queue and a bounded
/// share of it per owner.
pub struct HashLimiter {
    running: Semaphore,
    waiting: Semaphore,
    owners: Mutex<HashMap<String, Line>>,
}

/// One owner's line: its places in the shared queue, and how many of its checks hold or wait
/// for one.
struct Line {
    places: Arc<Semaphore>,
    checks: usize,
}

impl Default for HashLimiter {
    fn default() -> Self {
        Self {
            running: Semaphore::new(MAX_CONCURRENT_HASHES),
            waiting: Semaphore::new(MAX_WAITING_HASHES),
            owners: Mutex::default(),
        }
    }
}

impl HashLimiter {
    /// Verifies `password` against `phc` in the queue, on behalf of `owners` (see the module
    /// documentation); [`Busy`] when the queue or an owner's line is full.
    pub async fn verify(
        &self,
        phc: String,
        password: Secret,
        owners: Vec<String>,
    ) -> Result<bool, Busy> {
        self.verify_unless(phc, password, owners, || None).await
    }

    /// Like [`HashLimiter::verify`], but once its turn comes, asks `settled` first and skips
    /// Argon2 when that already knows the answer: a burst of requests with a client's secret
    /// on a cold cache runs Argon2 once or twice, not once per request.
    pub async fn verify_unless(
        &self,
        phc: String,
        password: Secret,
        owners: Vec<String>,
        settled: impl Fn() -> Option<bool>,
    ) -> Result<bool, Busy> {
        let share = self.join_lines(owners)?;
        let _places = share.places().await?;
        let _queued = self.waiting.try_acquire().map_err(|_| Busy)?;
        let _running = self.running.acquire().await.map_err(|_| Busy)?;
        if let Some(answer) = settled() {
            return Ok(answer);
        }
        tokio::task::spawn_blocking(move || verify(&phc, password.secret()))
            .await
            .map_err(|_| Busy)
    }

    /// Hashes a new password in the queue, on behalf of `owners`, with a salt from `random`
    /// ([`hash`]); [`Busy`] when the queue or an owner's line is full.
    pub async fn hash(
        &self,
        password: Secret,
        cost: HashCost,
        random: &dyn Random,
        owners: Vec<String>,
    ) -> Result<String, Busy> {
        let mut salt = [0u8; 16];
        random.fill(&mut salt);
        let share = self.join_lines(owners)?;
        let _places = share.places().await?;
        let _queued = self.waiting.try_acquire().map_err(|_| Busy)?;
        let _running = self.running.acquire().await.map_err(|_| Busy)?;
        tokio::task::spawn_blocking(move || hash_salted(password.secret(), cost, salt))
            .await
            .map_err(|_| Busy)
    }

    /// Hashes running now, and hashes waiting or running.
    pub fn load(&self) -> (usize, usize) {
        (
            MAX_CONCURRENT_HASHES - self.running.available_permits(),
            MAX_WAITING_HASHES - self.waiting.available_permits(),
        )
    }

    /// Joins the line of each owner, unless one of them is full.
    fn join_lines(&self, mut owners: Vec<String>) -> Result<Share<'_>, Busy> {
        // One order for everyone, so that two checks never wait for each other's places.
        owners.sort_unstable();
        owners.dedup();
        let mut lines = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let full = owners.iter().any(|o| {
            lines
                .get(o)
                .is_some_and(|l| l.checks >= MAX_HASHES_PER_OWNER + MAX_WAITING_PER_OWNER)
        });
        if full {
            return Err(Busy);
        }
        let mut places = Vec::with_capacity(owners.len());
        for owner in &owners {
            let line = lines.entry(owner.clone()).or_insert_with(|| Line {
                places: Arc::new(Semaphore::new(MAX_HASHES_PER_OWNER)),
                checks: 0,
            });
            line.checks += 1;
            places.push(line.places.clone());
        }
        Ok(Share {
            limiter: self,
            owners,
            places,
        })
    }
}

/// A check in its owners' lines, leaving them when dropped (also when the request is
/// cancelled while it waits).
struct Share<'a> {
    limiter: &'a HashLimiter,
    owners: Vec<String>,
    places: Vec<Arc<Semaphore>>,
}

impl Share<'_> {
    /// Waits for a place of each owner in the shared queue, in the lines' one order.
    async fn places(&self) -> Result<Vec<tokio::sync::SemaphorePermit<'_>>, Busy> {
        let mut permits = Vec::with_capacity(self.places.len());
        for place in &self.places {
            permits.push(place.acquire().await.map_err(|_| Busy)?);
        }
        Ok(permits)
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut lines = self
            .limiter
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for owner in &self.owners {
            if let Some(line) = lines.get_mut(owner) {
                line.checks -= 1;
                if line.checks == 0 {
                    lines.remove(owner);
                }
            }
        }
    }
}

/// The hash to verify a password against: the user's, or [`dummy_hash`] when there is no user
/// or the user has no password (an application-authenticated user), so that every failure costs
/// the same Argon2 run and says nothing about the account.
pub fn verifiable_hash(stored: Option<&str>) -> String {
    match stored {
        Some(phc) if phc != NO_PASSWORD => phc.to_owned(),
        _ => dummy_hash().to_owned(),
    }
}

/// A hash that matches no password, verified when a user does not exist so that a failed
/// sign-in takes the same time whether the username or the password was wrong.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        struct Zero;
        impl Random for Zero {
            fn fill(&self, dest: &mut [u8]) {
                dest.fill(7);
            }
        }
        hash("doorward-dummy-password", HashCost::Default, &Zero)
    })
}

/// Secrets known to be correct, by client and stored hash (see the module documentation). A
/// client has at most [`SecretCache::PER_CLIENT`] entries: its current secret and, during a
/// rotation's overlap, the previous one; remembering a further hash forgets the oldest.
#[derive(Default)]
pub struct SecretCache {
    verified: RwLock<HashMap<Uuid, Vec<Verified>>>,
}

/// A stored hash (PHC string) and the SHA-256 digest of the secret that verified against it.
type Verified = (String, [u8; 32]);

/// What the cache knows about a presented secret.
pub enum CacheAnswer {
    Correct,
    Wrong,
    Unknown,
}

impl SecretCache {
    pub fn check(&self, client: Uuid, phc: &str, secret: &str) -> CacheAnswer {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let verified = self.verified.read().unwrap_or_else(|e| e.into_inner());
        let entry = verified
            .get(&client)
            .and_then(|entries| entries.iter().find(|(cached_phc, _)| cached_phc == phc));
        match entry {
            Some((_, cached)) => {
                if constant_time_eq(cached, &digest) {
                    CacheAnswer::Correct
                } else {
                    CacheAnswer::Wrong
                }
            }
            None => CacheAnswer::Unknown,
        }
    }

    /// Hashes remembered per client: the current secret's and the previous one's.
    pub const PER_CLIENT: usize = 2;

    pub fn remember(&self, client: Uuid, phc: &str, secret: &str) {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        let entries = verified.entry(client).or_default();
        entries.retain(|(cached_phc, _)| cached_phc != phc);
        if entries.len() >= Self::PER_CLIENT {
            entries.remove(0);
        }
        entries.push((phc.to_owned(), digest));
    }
}

/// The password hash of users the application authenticates: not a PHC string, so no password
/// ever verifies against it.
pub const NO_PASSWORD: &str = "!app-authenticated";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    #[test]
    fn hash_then_verify() {
        let phc = hash("pw", HashCost::InsecureFastForTests, &SeqRandom::default());
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&phc, "pw"));
        assert!(!verify(&phc, "pW"));
        assert!(!verify("not a phc string", "pw"));
    }

    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("pw", HashCost::InsecureFastForTests, &SeqRandom::default());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        let salt = SaltString::encode_b64(&[3u8; 16]).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify(&theirs, "pw"));
        assert!(!verify(&theirs, "px"));
    }

    #[test]
    fn cache_answers_only_for_the_same_hash() {
        let cache = SecretCache::default();
        let id = Uuid::nil();
        assert!(matches!(cache.check(id, "h1", "s"), CacheAnswer::Unknown));
        cache.remember(id, "h1", "s");
        assert!(matches!(cache.check(id, "h1", "s"), CacheAnswer::Correct));
        assert!(matches!(cache.check(id, "h1", "x"), CacheAnswer::Wrong));
        assert!(matches!(cache.check(id, "h2", "s"), CacheAnswer::Unknown));
    }

    /// One owner gets at most its share of the shared queue; its other checks wait in its
    /// own line, and past that line they are refused, while another owner gets a place.
    #[tokio::test]
    async fn one_owner_holds_at_most_its_share_of_the_queue() {
        let limiter = HashLimiter::default();
        let flood: Vec<_> = (0..MAX_HASHES_PER_OWNER + MAX_WAITING_PER_OWNER)
            .map(|_| limiter.join_lines(vec!["addr:a".into()]).unwrap())
            .collect();
        let mut held = Vec::new();
        for share in &flood[..MAX_HASHES_PER_OWNER] {
            held.push(share.places().await.unwrap());
        }
        {
            use std::future::Future;
            let mut waiting = std::pin::pin!(flood[MAX_HASHES_PER_OWNER].places());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                waiting.as_mut().poll(&mut cx).is_pending(),
                "a fifth check of one owner waits in its line"
            );
        }
        assert!(limiter.join_lines(vec!["addr:a".into()]).is_err());
        let other = limiter
            .join_lines(vec!["addr:b".into(), "acct:x".into()])
            .unwrap();
        other.places().await.unwrap();
        drop(held);
        drop(flood);
        assert!(limiter.join_lines(vec!["addr:a".into()]).is_ok());
        drop(other);
        assert!(limiter.owners.lock().unwrap().is_empty());
    }
}
