//! The key sets of clients that register a `jwks_uri` (RFC 7523 §2.2, OIDC Core §10.1.1,
//! OIDC Registration §2) instead of inline `jwks`, fetched through the [`Fetcher`] port and
//! kept in memory per client, by the rules doorward-client applies to a provider's JWKS:
//!
//! - a set is trusted for its response's freshness lifetime ([`Fetched::max_age`]) within
//!   [`MIN_LIFETIME`, `MAX_LIFETIME`], [`DEFAULT_LIFETIME`] when it names none (RFC 9111
//!   §4.2.1): `max-age=0` must not mean a fetch per assertion, and a key the client withdrew
//!   stops verifying within an hour;
//! - an assertion whose `kid` the set lacks (the client rotated its keys, OIDC Core §10.1.1)
//!   makes one refetch, at most once per [`REFETCH_COOLDOWN`] per client: anyone can send an
//!   assertion with an unknown `kid`, and must not make the server fetch at will;
//! - the set is checked like an inline one ([`parse_client_jwks`]: no private or symmetric
//!   key); a set that fails is not cached, and the assertion is refused.
//!
//! Each instance keeps its own cache (it loses nothing the client cannot serve again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;
use url::Url;
use uuid::Uuid;

use crate::clock::UnixTime;
use crate::fetch::{FetchError, Fetcher};
use crate::jose::parse_client_jwks;

/// How long a fetched key set is trusted when its response names no lifetime: 5 minutes.
pub const DEFAULT_LIFETIME: i64 = 300;
/// The shortest lifetime honoured.
pub const MIN_LIFETIME: i64 = 60;
/// The longest lifetime honoured.
pub const MAX_LIFETIME: i64 = 3600;
/// The least time between two fetches of one client's set for an unknown `kid`.
pub const REFETCH_COOLDOWN: i64 = 10;
/// The most clients whose sets are kept; past it, expired sets and then the oldest go.
const MAX_ENTRIES: usize = 4096;

/// A response's freshness lifetime within the bounds of the module documentation.
pub fn lifetime(max_age: Option<u64>) -> i64 {
    match max_age {
        None => DEFAULT_LIFETIME,
        Some(seconds) => i64::try_from(seconds)
            .unwrap_or(i64::MAX)
            .clamp(MIN_LIFETIME, MAX_LIFETIME),
    }
}

/// Why a client's key set could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the key set is refused: {0}")]
    Invalid(String),
    /// The last fetch of this set failed less than [`REFETCH_COOLDOWN`] ago.
    #[error("the key set could not be fetched a moment ago")]
    Cooling,
}

/// The in-memory cache of fetched client key sets (see the module documentation).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Uuid, Entry>>,
}

#[derive(Clone)]
struct Entry {
    url: Url,
    /// `None` until the first fetch of this URL succeeds.
    keys: Option<Arc<JwkSet>>,
    /// When the last fetch started (successful or not), for the cooldown.
    attempted_at: UnixTime,
    expires_at: UnixTime,
}

impl KeyCache {
    /// The client's key set from `url`: the cached one while fresh, else fetched.
    pub async fn get(
        &self,
        fetcher: &dyn Fetcher,
        client: Uuid,
        url: &Url,
        now: UnixTime,
    ) -> Result<Arc<JwkSet>, KeySetError> {
        if let Some(entry) = self.entry(client) {
            if &entry.url == url {
                match entry.keys {
                    Some(keys) if now < entry.expires_at => return Ok(keys),
                    // No usable set and a fetch started a moment ago (it failed, or is under
                    // way): not again before the cooldown.
                    _ if now.saturating_sub(entry.attempted_at) < REFETCH_COOLDOWN => {
                        return Err(KeySetError::Cooling)
                    }
                    _ => {}
                }
            }
        }
        self.fetch(fetcher, client, url, now).await
    }

    /// The set fetched again for an assertion whose `kid` the cached one lacks; `Ok(None)`
    /// when the last fetch of this client's set is less than [`REFETCH_COOLDOWN`] old.
    pub async fn refetch(
        &self,
        fetcher: &dyn Fetcher,
        client: Uuid,
        url: &Url,
        now: UnixTime,
    ) -> Result<Option<Arc<JwkSet>>, KeySetError> {
        if let Some(entry) = self.entry(client) {
            if &entry.url == url && now.saturating_sub(entry.attempted_at) < REFETCH_COOLDOWN {
                return Ok(None);
            }
        }
        self.fetch(fetcher, client, url, now).await.map(Some)
    }

    fn entry(&self, client: Uuid) -> Option<Entry> {
        self.lock().get(&client).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(
        &self,
        fetcher: &dyn Fetcher,
        client: Uuid,
        url: &Url,
        now: UnixTime,
    ) -> Result<Arc<JwkSet>, KeySetError> {
        // The attempt is recorded before the fetch, so that concurrent assertions with unknown
        // `kid`s wait out the cooldown instead of each starting a fetch.
        self.record(client, |entry| match entry {
            Some(e) if &e.url == url => Entry {
                attempted_at: now,
                ..e
            },
            _ => Entry {
                url: url.clone(),
                keys: None,
                attempted_at: now,
                expires_at: now,
            },
        });
        let fetched = fetcher.fetch_json(url).await?;
        let body = std::str::from_utf8(&fetched.body)
            .map_err(|_| KeySetError::Invalid("not UTF-8".to_owned()))?;
        let keys = Arc::new(parse_client_jwks(body).map_err(KeySetError::Invalid)?);
        let expires_at = now.saturating_add(lifetime(fetched.max_age));
        self.record(client, |_| Entry {
            url: url.clone(),
            keys: Some(keys.clone()),
            attempted_at: now,
            expires_at,
        });
        Ok(keys)
    }

    fn record(&self, client: Uuid, update: impl FnOnce(Option<Entry>) -> Entry) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&client) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.expires_at)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let entry = update(entries.remove(&client));
        entries.insert(client, entry);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::fetch::Fetched;

    /// Serves the set it holds, and counts fetches.
    struct FakeFetcher {
        body: Mutex<Result<String, FetchError>>,
        max_age: Option<u64>,
        fetches: AtomicUsize,
    }

    impl FakeFetcher {
        fn serving(body: &str, max_age: Option<u64>) -> Self {
            Self {
                body: Mutex::new(Ok(body.to_owned())),
                max_age,
                fetches: AtomicUsize::new(0),
            }
        }
        fn serve(&self, body: Result<&str, FetchError>) {
            *self.body.lock().unwrap() = body.map(str::to_owned);
        }
        fn count(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl Fetcher for FakeFetcher {
        async fn fetch_json(&self, _url: &Url) -> Result<Fetched, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let body = self.body.lock().unwrap().clone()?;
            Ok(Fetched {
                body: body.into_bytes(),
                max_age: self.max_age,
            })
        }
    }

    fn set(kid: &str) -> String {
        // A real P-256 public key (RFC 7515 A.3).
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }]})
        .to_string()
    }

    fn kid(keys: &JwkSet) -> String {
        keys.keys[0].common.key_id.clone().unwrap()
    }

    const ID: Uuid = Uuid::from_u128(1);

    fn url() -> Url {
        Url::parse("https://client.example/jwks.json").unwrap()
    }

    #[tokio::test]
    async fn a_fresh_set_is_not_fetched_again_and_an_expired_one_is() {
        let fetcher = FakeFetcher::serving(&set("a"), None);
        let cache = KeyCache::default();
        cache.get(&fetcher, ID, &url(), 1000).await.unwrap();
        cache
            .get(&fetcher, ID, &url(), 1000 + DEFAULT_LIFETIME - 1)
            .await
            .unwrap();
        assert_eq!(fetcher.count(), 1);
        fetcher.serve(Ok(&set("b")));
        let keys = cache
            .get(&fetcher, ID, &url(), 1000 + DEFAULT_LIFETIME)
            .await
            .unwrap();
        assert_eq!((fetcher.count(), kid(&keys).as_str()), (2, "b"));
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some(0)), MIN_LIFETIME);
        assert_eq!(lifetime(Some(120)), 120);
        assert_eq!(lifetime(Some(u64::MAX)), MAX_LIFETIME);
    }

    #[tokio::test]
    async fn max_age_zero_still_caches_for_a_minute() {
        let fetcher = FakeFetcher::serving(&set("a"), Some(0));
        let cache = KeyCache::default();
        cache.get(&fetcher, ID, &url(), 1000).await.unwrap();
        cache.get(&fetcher, ID, &url(), 1059).await.unwrap();
        assert_eq!(fetcher.count(), 1);
        cache.get(&fetcher, ID, &url(), 1060).await.unwrap();
        assert_eq!(fetcher.count(), 2);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_per_cooldown() {
        let fetcher = FakeFetcher::serving(&set("a"), Some(3600));
        let cache = KeyCache::default();
        cache.get(&fetcher, ID, &url(), 1000).await.unwrap();
        fetcher.serve(Ok(&set("b")));
        let cooling = cache.refetch(&fetcher, ID, &url(), 1005).await.unwrap();
        assert!(cooling.is_none(), "within the cooldown of the first fetch");
        let keys = cache.refetch(&fetcher, ID, &url(), 1010).await.unwrap();
        assert_eq!(kid(&keys.unwrap()), "b");
        assert!(cache
            .refetch(&fetcher, ID, &url(), 1015)
            .await
            .unwrap()
            .is_none());
        assert_eq!(fetcher.count(), 2);
        // The new set is the cached one now.
        let keys = cache.get(&fetcher, ID, &url(), 1016).await.unwrap();
        assert_eq!((kid(&keys).as_str(), fetcher.count()), ("b", 2));
    }

    #[tokio::test]
    async fn a_failed_fetch_counts_for_the_cooldown_and_caches_nothing() {
        let fetcher = FakeFetcher::serving(&set("a"), None);
        fetcher.serve(Err(FetchError::Timeout));
        let cache = KeyCache::default();
        assert_eq!(
            cache.get(&fetcher, ID, &url(), 1000).await.unwrap_err(),
            KeySetError::Fetch(FetchError::Timeout)
        );
        assert!(cache
            .refetch(&fetcher, ID, &url(), 1001)
            .await
            .unwrap()
            .is_none());
        fetcher.serve(Ok(&set("a")));
        assert_eq!(
            cache.get(&fetcher, ID, &url(), 1002).await.unwrap_err(),
            KeySetError::Cooling
        );
        assert_eq!(fetcher.count(), 1);
        cache.get(&fetcher, ID, &url(), 1010).await.unwrap();
        assert_eq!(fetcher.count(), 2);
    }

    #[tokio::test]
    async fn private_keys_and_junk_are_refused() {
        let private = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "p",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            "d": "jpsQnnGQmL-YBIffH1136cLa5hgYTDVxP_FxRSNUwjA"
        }]})
        .to_string();
        for body in [private.as_str(), "[]", "not json", r#"{"keys":[]}"#] {
            let fetcher = FakeFetcher::serving(body, None);
            let refused = KeyCache::default()
                .get(&fetcher, ID, &url(), 1000)
                .await
                .unwrap_err();
            assert!(matches!(refused, KeySetError::Invalid(_)), "{body}");
        }
    }

    #[tokio::test]
    async fn another_url_is_another_set() {
        let fetcher = FakeFetcher::serving(&set("a"), Some(3600));
        let cache = KeyCache::default();
        cache.get(&fetcher, ID, &url(), 1000).await.unwrap();
        let moved = Url::parse("https://client.example/other.json").unwrap();
        cache.get(&fetcher, ID, &moved, 1001).await.unwrap();
        assert_eq!(fetcher.count(), 2);
        // A refetch for the new URL is not cooled by the old URL's fetch.
        cache.get(&fetcher, ID, &url(), 1002).await.unwrap();
        assert_eq!(fetcher.count(), 3);
    }
}
