//! Time and randomness, the two inputs of the engine that are not storage: ports of their own,
//! injectable so that tests of expiry and rotation need no sleeping and are repeatable.

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// The source of the current time, injectable so that expiry is tested without sleeping.
pub trait Clock: Send + Sync {
    /// The current time in whole seconds since the Unix epoch. Every expiry, every signing
    /// key's activation, and every `now` passed to the store comes from here; instances that
    /// share a store need clocks that agree (NTP), as each compares its own `now` with times
    /// another stored.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds since the Unix epoch. Only the date of opaque
    /// credentials (their storage keys grow with it: `opaque.rs`) and of audit events use it,
    /// so a clock that knows only seconds may keep this default.
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// A cryptographically secure source of random bytes, injectable so that tests are repeatable.
pub trait Random: Send + Sync {
    /// Fills all of `dest` with unpredictable bytes: codes, tokens, session ids and keys are
    /// made from them, so their secrecy is this method's. It has no way to fail: an
    /// implementation that cannot produce random bytes must panic, never return predictable
    /// ones.
    fn fill(&self, dest: &mut [u8]);
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The operating system's CSPRNG, through a thread-local ChaCha generator reseeded from it.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        use rand::RngCore;
        rand::thread_rng().fill_bytes(dest);
    }
}
