//! DPoP at a protected API (RFC 9449 §7): a token bound to a key (`cnf.jkt`) comes as
//! `Authorization: DPoP` with a proof, in the `DPoP` header, made by that key for this request
//! (`htm`, `htu`, `ath`, `iat`) and never seen before.
//!
//! Where the `jti`s are kept: [`ResourceServer::local`](super::ResourceServer::local) records
//! them in the provider's store, shared by every instance; an API in another process keeps
//! them in its own memory, so across its instances a proof could be replayed within its time
//! window ([`doorward_core::dpop::PROOF_MAX_AGE`]) to another instance. The `htu` a proof must
//! name is the API's public URL followed by the request's path (before any `nest`): the URL of
//! [`super::ResourceServer::with_public_url`], else the origin of the resource identifier
//! (its metadata) or of its audience when that is an http(s) URL (`local`: the issuer's). Never
//! the request's `Host`, which the client writes: a proof made for another API at the same
//! path would pass. An API that knows none of these refuses DPoP-bound tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use doorward_core::dpop::{
    check_binding, verify_proof, Presentation, Scheme, PROOF_FUTURE_SKEW, PROOF_MAX_AGE,
};
use doorward_core::Engine;
use doorward_proto::{ErrorCode, OAuthError};

use crate::response::bearer::{dpop_header, Refusal};

/// How many proofs an API in another process remembers; past it, expired ones are dropped,
/// then new proofs are refused until some expire (a flood cannot make it forget live ones).
const MAX_SEEN: usize = 200_000;

/// How many live proofs of one key are remembered: past it, that key's new proofs are refused
/// until some expire, so one token's holder cannot fill the table for everyone (about 30
/// proofs a second, each live 5.5 minutes).
const MAX_SEEN_PER_KEY: usize = 10_000;

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
    /// Per key thumbprint, the `jti`s seen and until when.
    seen: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl SeenProofs {
    /// Records `(jkt, jti)` until `until`; `false` when it was seen already, or when the key
    /// (or the whole table) holds as many live proofs as it may.
    fn record(&self, jkt: &str, jti: &str, until: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = seen.values().map(HashMap::len).sum();
        if total >= MAX_SEEN {
            seen.retain(|_, jtis| {
                jtis.retain(|_, expires| *expires > now);
                !jtis.is_empty()
            });
            if seen.values().map(HashMap::len).sum::<usize>() >= MAX_SEEN {
                return false;
            }
        }
        let jtis = seen.entry(jkt.to_owned()).or_default();
        if jtis.get(jti).is_some_and(|expires| *expires > now) {
            return false;
        }
        if jtis.len() >= MAX_SEEN_PER_KEY {
            jtis.retain(|_, expires| *expires > now);
            if jtis.len() >= MAX_SEEN_PER_KEY {
                return false;
            }
        }
        jtis.insert(jti.to_owned(), until);
        true
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
    public_url: Option<String>,
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
    let Some(base) = public_url else {
        tracing::warn!("a DPoP-bound token reached an API that does not know its public URL");
        return Err(Refusal::InvalidProof(
            "this API cannot check DPoP proofs: it does not know its public URL".into(),
        ));
    };
    let url = format!("{}{}", base.trim_end_matches('/'), target.uri.path());
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
}
