//! Throttling of online guessing: failure counters in the store, checked before any Argon2 work.
//!
//! RFC 6749 §10.10 asks the server to prevent brute-force guessing of credentials, RFC 6819
//! §4.4.3.6 to lock accounts (or slow them down) after failed password attempts, §5.1.4.2.3 to
//! keep such counters where every instance sees them and §5.1.4.2.4 to make guessing expensive.
//! Every guess Doorward checks is counted under one or more [`Counter`]s, in the store
//! ([`ThrottleStore`]), so that several instances share them:
//!
//! | Counter | Counted on | Free failures | Then locked for | Forgotten after |
//! |---|---|---|---|---|
//! | account ([`ACCOUNT`]) | a wrong password at `POST /login` or the password grant, per username (trimmed, lowercased), whether the account exists or not | 5 | 30 s, doubling with each further failure, at most 15 min | 24 h without a failure |
//! | address ([`ADDRESS`]) | the same failures, per client IP address (IPv6: per /64) | 100 | 30 s, doubling, at most 15 min | 1 h without a failure |
//! | client ([`CLIENT`]) | a wrong client secret at the token, introspection and revocation endpoints, per client | 10 | 10 s, doubling, at most 5 min | 1 h without a failure |
//!
//! While a counter is locked the attempt is refused at once ([`Throttled`], HTTP 429 with
//! `Retry-After`), before the password or secret is looked at, so a locked guess costs no Argon2
//! run, says nothing about whether it was right, and writes nothing. Once a lock ends one guess
//! is checked; a wrong one locks again for twice as long. A sign-in clears the account's counter,
//! never the address's (an attacker's own account must not reset the count of their address)
//! nor a client's (see [`Counter::client`]). Unknown usernames are counted like existing ones, so the answers do not say
//! whether an account exists.
//!
//! Costs: two reads before a sign-in, one upsert per counter after a failure, and on success a
//! delete only when the account had a counter. Concurrent guesses may overshoot a limit by the
//! few checks in flight (bounded by [`crate::passwords::HashLimiter`]'s share per owner).
//!
//! The account lock means that anyone can keep a known username locked out; the lock is short
//! and grows only while someone keeps guessing, the trade-off RFC 6819 §4.4.3.6 accepts.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::UnixTime;
use crate::ports::{Failures, StoreError, ThrottleStore};

/// How many failures a counter allows, and how long it then locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub free: u32,
    /// The first lock, in seconds; each further failure doubles it.
    pub first_lockout: i64,
    /// The longest lock, in seconds.
    pub max_lockout: i64,
    /// A counter without a new failure for this long is forgotten (longer than `max_lockout`).
    pub forget_after: i64,
}

/// Wrong passwords per username (see the module documentation).
pub const ACCOUNT: Policy = Policy {
    free: 5,
    first_lockout: 30,
    max_lockout: 15 * 60,
    forget_after: 24 * 3600,
};

/// Wrong passwords per client address: higher, since many people may share one address (NAT).
pub const ADDRESS: Policy = Policy {
    free: 100,
    first_lockout: 30,
    max_lockout: 15 * 60,
    forget_after: 3600,
};

/// Unknown device user codes per client address (RFC 8628 §5.1): few are mistyped twice.
pub const USER_CODE: Policy = Policy {
    free: 10,
    first_lockout: 30,
    max_lockout: 15 * 60,
    forget_after: 3600,
};

/// Accounts created at the sign-up page per client address: a few an hour, then a growing
/// wait (each sign-up counts, as a failure would).
pub const SIGN_UP: Policy = Policy {
    free: 5,
    first_lockout: 600,
    max_lockout: 3600,
    forget_after: 3600,
};

/// Wrong second-factor codes per user: a six-digit code gives a guesser one chance in a
/// million a try, so a few tries, then a doubling lock.
pub const SECOND_FACTOR: Policy = Policy {
    free: 5,
    first_lockout: 30,
    max_lockout: 15 * 60,
    forget_after: 24 * 3600,
};

/// Wrong client secrets per client.
pub const CLIENT: Policy = Policy {
    free: 10,
    first_lockout: 10,
    max_lockout: 5 * 60,
    forget_after: 3600,
};

impl Policy {
    /// Until when `failures` lock, if they do at `now`.
    pub fn locked_until(&self, failures: &Failures, now: UnixTime) -> Option<UnixTime> {
        if failures.expires_at <= now || failures.count < self.free {
            return None;
        }
        let doublings = (failures.count - self.free).min(20);
        let lockout = self
            .first_lockout
            .saturating_mul(1 << doublings)
            .min(self.max_lockout);
        let until = failures.last_at.saturating_add(lockout);
        (until > now).then_some(until)
    }
}

/// One counter: what is counted (its key in the store) and under which policy.
#[derive(Clone, Debug)]
pub struct Counter {
    key: String,
    policy: Policy,
    cleared_on_success: bool,
}

impl Counter {
    /// Wrong passwords for `username`, trimmed and lowercased so that `Alice ` and `alice` share
    /// a counter. The key is a digest: the store never holds what people typed as a username.
    pub fn account(username: &str) -> Self {
        Self {
            key: digest_key("acct", username.trim().to_lowercase().as_bytes()),
            policy: ACCOUNT,
            cleared_on_success: true,
        }
    }

    /// Wrong passwords from `address`; an IPv6 address counts for its /64, which one
    /// subscriber usually holds whole. An IPv4-mapped IPv6 address counts as the IPv4 one.
    pub fn address(address: IpAddr) -> Self {
        Self {
            key: digest_key("addr", &address_prefix(address)),
            policy: ADDRESS,
            cleared_on_success: false,
        }
    }

    /// Wrong second-factor codes for the user `id` (cleared by a right one).
    pub fn second_factor(id: Uuid) -> Self {
        Self {
            key: digest_key("2fa", id.as_bytes()),
            policy: SECOND_FACTOR,
            cleared_on_success: true,
        }
    }

    /// Accounts created from `address` at the sign-up page (its /64 for IPv6).
    pub fn sign_up(address: IpAddr) -> Self {
        Self {
            key: digest_key("signup", &address_prefix(address)),
            policy: SIGN_UP,
            cleared_on_success: false,
        }
    }

    /// Unknown device user codes typed from `address` (its /64 for IPv6, as [`Self::address`]).
    pub fn user_code(address: IpAddr) -> Self {
        Self {
            key: digest_key("ucode", &address_prefix(address)),
            policy: USER_CODE,
            cleared_on_success: false,
        }
    }

    /// Device user codes that were not waiting, entered by the signed-in user `id`: a guesser
    /// with many addresses is held back by this one.
    pub fn user_code_of(id: Uuid) -> Self {
        Self {
            key: digest_key("ucodeu", id.as_bytes()),
            policy: USER_CODE,
            cleared_on_success: false,
        }
    }

    /// Wrong secrets for the client `id`. Not cleared by a success: a client authenticates
    /// often, and each of its requests would give a guesser `free` new tries; the counter is
    /// forgotten `forget_after` the last failure instead.
    pub fn client(id: Uuid) -> Self {
        Self {
            key: format!("clnt:{id}"),
            policy: CLIENT,
            cleared_on_success: false,
        }
    }

    /// The key in the store, also the owner of a share of the Argon2 queue.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The key under which registrations from `address` are counted (open dynamic client
/// registration, [`crate::registration`]): per IPv4 address or IPv6 /64, like
/// [`Counter::address`].
pub fn registration_key(address: IpAddr) -> String {
    digest_key("dcr", &address_prefix(address))
}

fn address_prefix(address: IpAddr) -> Vec<u8> {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets()[..8].to_vec(),
    }
}

fn digest_key(kind: &str, value: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"doorward-throttle:");
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(value);
    format!("{kind}:{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
}

/// Too many failures: wait `retry_after` seconds (at least 1) before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; try again in {retry_after} s")]
pub struct Throttled {
    pub retry_after: u64,
}

/// Why an attempt may not go on.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Throttled(Throttled),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// The counters that guard one attempt, read before it ([`Guard::check`]), then told how it
/// went ([`Guard::failed`], [`Guard::succeeded`]).
#[derive(Debug)]
pub struct Guard {
    counters: Vec<(Counter, bool)>,
}

impl Guard {
    /// Reads every counter; refuses with the longest wait when any of them is locked.
    pub async fn check<S: ThrottleStore + ?Sized>(
        store: &S,
        counters: Vec<Counter>,
        now: UnixTime,
    ) -> Result<Self, Refusal> {
        let mut until = None;
        let mut read = Vec::with_capacity(counters.len());
        for counter in counters {
            let failures = store.find_failures(&counter.key).await?;
            if let Some(locked) = failures
                .as_ref()
                .and_then(|f| counter.policy.locked_until(f, now))
            {
                until = until.max(Some(locked));
            }
            read.push((counter, failures.is_some()));
        }
        match until {
            Some(until) => Err(Refusal::Throttled(Throttled {
                retry_after: u64::try_from(until - now).unwrap_or(1).max(1),
            })),
            None => Ok(Self { counters: read }),
        }
    }

    /// The owners of this attempt's share of the Argon2 queue: its counters' keys.
    pub fn owners(&self) -> Vec<String> {
        self.counters.iter().map(|(c, _)| c.key.clone()).collect()
    }

    /// Counts a failure under every counter (one upsert each).
    pub async fn failed<S: ThrottleStore + ?Sized>(
        &self,
        store: &S,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        for (counter, _) in &self.counters {
            store
                .record_failure(&counter.key, now, now + counter.policy.forget_after)
                .await?;
        }
        Ok(())
    }

    /// Clears the account's counter, only when it had one (no write otherwise).
    pub async fn succeeded<S: ThrottleStore + ?Sized>(&self, store: &S) -> Result<(), StoreError> {
        for (counter, existed) in &self.counters {
            if *existed && counter.cleared_on_success {
                store.clear_failures(&counter.key).await?;
            }
        }
        Ok(())
    }
}

/// The counters of a password check: the account's, and the address's when it is known.
pub fn password_counters(username: &str, from: Option<IpAddr>) -> Vec<Counter> {
    let mut counters = vec![Counter::account(username)];
    counters.extend(from.map(Counter::address));
    counters
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(count: u32, last_at: UnixTime) -> Failures {
        Failures {
            count,
            last_at,
            expires_at: last_at + ACCOUNT.forget_after,
        }
    }

    #[test]
    fn locks_after_the_free_failures_and_doubles() {
        assert_eq!(ACCOUNT.locked_until(&failures(4, 100), 100), None);
        assert_eq!(ACCOUNT.locked_until(&failures(5, 100), 100), Some(130));
        assert_eq!(ACCOUNT.locked_until(&failures(5, 100), 130), None);
        assert_eq!(ACCOUNT.locked_until(&failures(6, 100), 100), Some(160));
        assert_eq!(ACCOUNT.locked_until(&failures(99, 100), 100), Some(1000));
        let forgotten = Failures {
            expires_at: 101,
            ..failures(9, 100)
        };
        assert_eq!(ACCOUNT.locked_until(&forgotten, 101), None);
    }

    #[test]
    fn keys_fold_case_and_ipv6_prefixes() {
        assert_eq!(
            Counter::account(" Alice").key(),
            Counter::account("alice").key()
        );
        assert_ne!(
            Counter::account("alice").key(),
            Counter::account("bob").key()
        );
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(Counter::address(a).key(), Counter::address(b).key());
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(Counter::address(v4).key(), Counter::address(mapped).key());
        assert!(Counter::account(&"x".repeat(10_000)).key().len() <= 80);
    }
}
