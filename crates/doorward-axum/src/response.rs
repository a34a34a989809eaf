//! The answers of the provider, one type per audience, each the only place that writes its kind
//! of answer:
//!
//! - [`token`]: token-style endpoints (token, introspection, revocation) — RFC 6749 §5.1/§5.2
//!   JSON, never cached.
//! - [`page`]: people — HTML pages and the browser's redirects.
//! - [`bearer`]: bearer-protected resources (the Eternaltwin API, UserInfo, and any API behind
//!   [`crate::protect`]) — RFC 6750 §3 challenges.
//!
//! Internal errors reach every audience the same way: the log gets the whole source chain, the
//! client an opaque answer, and a store that cannot be reached a 503 with `Retry-After`
//! ([`Failure`]).

pub mod bearer;
pub mod page;
pub mod token;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, HeaderValue, Response};

/// An internal failure, logged once when it is classified; what is left is what a client may
/// learn: whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The store could not be reached: nothing happened, retry in a moment (503).
    Unavailable,
    /// Anything else (500).
    Internal,
}

impl Failure {
    /// Logs `error` in full (its source chain), counts it ([`internal_errors`]) and
    /// classifies it.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        log_internal(error);
        let store = doorward_core::ports::StoreError::find_in(error);
        let class = match store {
            Some(doorward_core::ports::StoreError::Unavailable(_)) => 0,
            Some(_) => 1,
            None => 2,
        };
        INTERNAL_ERRORS[class].fetch_add(1, Ordering::Relaxed);
        if class == 0 {
            Self::Unavailable
        } else {
            Self::Internal
        }
    }
}

/// Internal errors answered since the process started: the store unreachable, the store
/// failing otherwise, anything else.
static INTERNAL_ERRORS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// The internal errors counted by [`Failure::of`], by class (`store_unavailable`,
/// `store_failure`, `other`), for the metrics.
pub fn internal_errors() -> [(&'static str, u64); 3] {
    let count = |i: usize| INTERNAL_ERRORS[i].load(Ordering::Relaxed);
    [
        ("store_unavailable", count(0)),
        ("store_failure", count(1)),
        ("other", count(2)),
    ]
}

/// `Retry-After: 1`: the answer to a busy server or an unreachable store.
pub(crate) fn retry_soon<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store<B>(response: &mut Response<B>) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn log_internal(error: &dyn std::error::Error) {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %message, "internal error");
}
