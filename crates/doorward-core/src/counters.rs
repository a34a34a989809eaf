//! What the engine did since the process started, counted for the metrics (read at each
//! scrape): every audit event by kind ([`crate::audit::kinds::ALL`]), whether or not an audit
//! trail is kept, and the tokens issued by grant type. Atomic counters, no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::kinds;

/// The grant types counted apart; any other (an application's extension grant) is `other`.
pub const GRANTS: [&str; 8] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "password",
    "other",
];

pub struct Counters {
    events: [AtomicU64; kinds::ALL.len()],
    issued: [AtomicU64; GRANTS.len()],
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            issued: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    /// One more event of `kind` (an unknown kind is not counted).
    pub fn count_event(&self, kind: &str) {
        if let Some(i) = kinds::ALL.iter().position(|k| *k == kind) {
            self.events[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One more token issued by `grant_type`.
    pub fn count_issued(&self, grant_type: &str) {
        let i = GRANTS
            .iter()
            .position(|g| *g == grant_type)
            .unwrap_or(GRANTS.len() - 1);
        self.issued[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Each kind of event with its count.
    pub fn events(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        kinds::ALL
            .iter()
            .zip(&self.events)
            .map(|(kind, n)| (*kind, n.load(Ordering::Relaxed)))
    }

    /// Each grant type with the tokens it issued.
    pub fn issued(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        GRANTS
            .iter()
            .zip(&self.issued)
            .map(|(grant, n)| (*grant, n.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_grants_are_counted_apart() {
        let counters = Counters::default();
        counters.count_event(kinds::TOKEN_ISSUED);
        counters.count_event(kinds::TOKEN_ISSUED);
        counters.count_event("no.such.kind");
        counters.count_issued("client_credentials");
        counters.count_issued("urn:example:app-grant");
        let events: Vec<_> = counters.events().filter(|(_, n)| *n > 0).collect();
        assert_eq!(events, [(kinds::TOKEN_ISSUED, 2)]);
        let issued: Vec<_> = counters.issued().filter(|(_, n)| *n > 0).collect();
        assert_eq!(issued, [("client_credentials", 1), ("other", 1)]);
    }
}
