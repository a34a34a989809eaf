//! DPoP at a protected API (RFC 9449 §7): a token bound to a key (`cnf.jkt`) comes as
//! `Authorization: DPoP` with a proof, in the `DPoP` header, made by that key for this request
//! (`htm`, `htu`, `ath`, `iat`) and never seen before.
//!
//! Where the `jti`s are kept: [`ResourceServer::local`](super::ResourceServer::local) records
//! them in the provider's store, shared by every instance; an API in another process keeps
//! them in its own memory, so across its instances a proof could be replayed within its time
//! window ([`doorward_core::dpop::PROOF_MAX_AGE`]) to another instance. The `htu` a proof must
//! name is the API's public URL ([`super::ResourceServer::with_public_url`]) followed by the
//! request's path; without one, the request's `Host` (https, or http for a loopback host).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, Method, Uri};
use doorward_core::dpop::{
    check_binding, verify_proof, Presentation, Scheme, PROOF_FUTURE_SKEW, PROOF_MAX_AGE,
};
use doorward_core::Engine;
use doorward_proto::{ErrorCode, OAuthError};

use crate::response::bearer::{dpop_header, Refusal};

/// How many proofs an API in another process remembers; past it, expired ones are dropped,
/// then new proofs are refused until some expire (a flood cannot make it forget live ones).
const MAX_SEEN: usize = 200_000;

/// Where the proofs' `jti`s are recorded.
#[derive(Clone)]
pub(super) enum Replay {
    /// The provider's store, through the engine (every instance shares it).
    Engine(Arc<Engine>),
    /// This process's memory.
    Memory(Arc<SeenProofs>),
}

/// The `jti`s of the proofs accepted in this process, until they are too old to be accepted.
#[derive(Default)]
pub(super) struct SeenProofs {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl SeenProofs {
    /// Records `(jkt, jti)` until `until`; `false` when it was seen already, or when the table
    /// is full of live proofs.
    fn record(&self, jkt: &str, jti: &str, until: i64, now: i64) -> bool {
        // Invariant: no code panics while holding the lock.
        let mut seen = self
            .seen
            .lock()
            .expect("the seen-proofs lock is not poisoned");
        if seen.len() >= MAX_SEEN {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_SEEN {
                return false;
            }
        }
        let key = (jkt.to_owned(), jti.to_owned());
        match seen.get(&key) {
            Some(expires) if *expires > now => false,
            _ => {
                seen.insert(key, until);
                true
            }
        }
    }
}

/// The request a proof must be for: its method and URL.
pub(super) struct Target<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) headers: &'a HeaderMap,
}

/// Checks the DPoP rules for a token presented with `scheme` whose binding is `bound`.
pub(super) async fn check(
    replay: &Replay,
    public_url: Option<&str>,
    token: &str,
    scheme: Scheme,
    bound: Option<&str>,
    target: Option<Target<'_>>,
) -> Result<(), Refusal> {
    if scheme == Scheme::Bearer || bound.is_none() {
        return check_binding(scheme, bound, None).map_err(refusal);
    }
    let Some(target) = target else {
        return Err(Refusal::InvalidProof(
            "this API checks no DPoP proof here: present a bearer token".into(),
        ));
    };
    let url = request_url(public_url, target.headers, target.uri);
    let dpop = dpop_header(target.headers);
    let presented = Presentation {
        token,
        scheme,
        dpop: &dpop,
        method: target.method.as_str(),
        url: &url,
    };
    match replay {
        Replay::Engine(engine) => match engine.check_token_binding(&presented, bound).await {
            Ok(()) => Ok(()),
            Err(doorward_core::Error::OAuth(e)) => Err(refusal(e)),
            Err(e) => {
                tracing::warn!(error = %e, "DPoP proof check unavailable");
                Err(Refusal::Unavailable)
            }
        },
        Replay::Memory(seen) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let proof = match &dpop {
                doorward_core::dpop::DpopHeader::One(proof) => {
                    verify_proof(proof, presented.target(), now)
                        .map_err(|e| Refusal::InvalidProof(e.to_string()))?
                }
                doorward_core::dpop::DpopHeader::Absent => {
                    return check_binding(scheme, bound, None).map_err(refusal)
                }
                doorward_core::dpop::DpopHeader::Malformed => {
                    return Err(Refusal::InvalidProof("send exactly one DPoP header".into()))
                }
            };
            check_binding(scheme, bound, Some(&proof)).map_err(refusal)?;
            let until = proof.iat + PROOF_MAX_AGE + PROOF_FUTURE_SKEW + 1;
            if !seen.record(&proof.jkt, &proof.jti, until, now) {
                return Err(Refusal::InvalidProof(
                    "this DPoP proof was used already: make one per request".into(),
                ));
            }
            Ok(())
        }
    }
}

fn refusal(error: OAuthError) -> Refusal {
    match error.code {
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => {
            Refusal::InvalidProof(error.description.into_owned())
        }
        _ => Refusal::InvalidToken(error.description.into_owned()),
    }
}

/// The URL a proof's `htu` must name: the public URL and the path, or the `Host` header's.
fn request_url(public_url: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path();
    if let Some(base) = public_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    if uri.scheme().is_some() {
        return format!(
            "{}://{}{path}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str())
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
    let scheme = if loopback { "http" } else { "https" };
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_proofs_refuse_a_second_use_until_expiry() {
        let seen = SeenProofs::default();
        assert!(seen.record("k", "1", 100, 10));
        assert!(!seen.record("k", "1", 100, 50));
        assert!(seen.record("other", "1", 100, 50));
        assert!(seen.record("k", "1", 200, 100));
    }

    #[test]
    fn the_url_comes_from_the_public_url_or_the_host() {
        let uri: Uri = "/items?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            request_url(None, &headers, &uri),
            "http://127.0.0.1:8080/items"
        );
        headers.insert(header::HOST, "api.example.com".parse().unwrap());
        assert_eq!(
            request_url(None, &headers, &uri),
            "https://api.example.com/items"
        );
        assert_eq!(
            request_url(Some("https://x.example/api/"), &headers, &uri),
            "https://x.example/api/items"
        );
    }
}
