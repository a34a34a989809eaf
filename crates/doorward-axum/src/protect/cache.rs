//! Verified grants kept in memory, by the SHA-256 digest of their token, so that a token
//! presented again is not checked again: a store read for [`super::ResourceServer::local`], a
//! signature check for `ResourceServer::jwt`. An entry is used until the earlier of its own
//! deadline (the verifier's: how stale it may be) and the token's expiry.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::AccessGrant;

/// The most tokens kept; when full, expired entries go, then all of them.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(super) struct GrantCache {
    entries: Mutex<HashMap<[u8; 32], (AccessGrant, i64)>>,
}

impl GrantCache {
    /// The key of `token`: its digest, so that the cache holds no usable token.
    pub(super) fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The grant kept for `key`, if it is still good at `now`.
    pub(super) fn get(&self, key: &[u8; 32], now: i64) -> Option<AccessGrant> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(grant, until)| now < *until && now < grant.expires_at)
            .map(|(grant, _)| grant.clone())
    }

    /// Keeps `grant` for `key` until `until` (and never past the token's expiry).
    pub(super) fn put(&self, key: [u8; 32], grant: &AccessGrant, until: i64, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (g, until)| now < *until && now < g.expires_at);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (grant.clone(), until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: i64) -> AccessGrant {
        AccessGrant {
            subject: "s".into(),
            user: None,
            client_id: None,
            scopes: vec![],
            audience: vec![],
            expires_at,
            dpop_jkt: None,
            grant_data: serde_json::Map::new(),
        }
    }

    #[test]
    fn an_entry_is_used_until_its_deadline_or_the_tokens_expiry() {
        let cache = GrantCache::default();
        let key = GrantCache::key("token");
        cache.put(key, &grant(200), 150, 100);
        assert!(cache.get(&key, 149).is_some());
        assert!(cache.get(&key, 150).is_none(), "past the deadline");
        cache.put(key, &grant(120), 150, 100);
        assert!(cache.get(&key, 119).is_some());
        assert!(cache.get(&key, 120).is_none(), "past the token's expiry");
        assert!(cache.get(&GrantCache::key("other"), 100).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = GrantCache::default();
        for i in 0..CAPACITY {
            cache.put(GrantCache::key(&i.to_string()), &grant(110), 110, 100);
        }
        cache.put(GrantCache::key("fresh"), &grant(500), 500, 200);
        assert!(cache.get(&GrantCache::key("fresh"), 201).is_some());
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.len(), 1, "the expired ones went");
    }
}
