//! The engine's side of DPoP (RFC 9449): a request's proof checked against the request
//! ([`crate::dpop::verify_proof`]), the server nonce when required (§8), and its `jti` recorded
//! once in the store that every instance shares (§11.1), so a proof replayed to this or
//! another instance is refused.

use doorward_proto::{ErrorCode, OAuthError};
use uuid::Uuid;

use crate::dpop::{
    check_binding, verify_proof, DpopError, DpopHeader, Presentation, Proof, ProofAt, ProofTarget,
    Scheme, PROOF_FUTURE_SKEW, PROOF_MAX_AGE,
};
use crate::error::Error;
use crate::Engine;

impl Engine {
    /// The nonce for a `DPoP-Nonce` header (§8), when this server requires nonces.
    pub fn dpop_nonce(&self) -> Option<String> {
        (self.config.dpop.enabled && self.config.dpop.require_nonce)
            .then(|| self.dpop_nonces.current(self.now()))
    }

    /// The proof of `header` for a `method` request to `url` (presenting `access_token` at a
    /// resource), or `None` without a header. A bad proof is `invalid_dpop_proof`; one
    /// without the current nonce where one is required, `use_dpop_nonce` (the adapter then
    /// sends [`Engine::dpop_nonce`]); a `jti` seen before, `invalid_dpop_proof`. With DPoP
    /// off, the header is ignored.
    pub async fn check_dpop(
        &self,
        header: &DpopHeader,
        target: ProofTarget<'_>,
        at: ProofAt,
    ) -> Result<Option<Proof>, Error> {
        if !self.config.dpop.enabled {
            return Ok(None);
        }
        let proof = match header {
            DpopHeader::Absent => return Ok(None),
            DpopHeader::Malformed => {
                return Err(
                    dpop_error(DpopError::Invalid("send exactly one DPoP header".into())).into(),
                )
            }
            DpopHeader::One(proof) => proof,
        };
        let now = self.now();
        let proof = verify_proof(proof, target, now).map_err(dpop_error)?;
        if at == ProofAt::AuthorizationServer && self.config.dpop.require_nonce {
            let fresh = proof
                .nonce
                .as_deref()
                .is_some_and(|n| self.dpop_nonces.accepts(n, now));
            if !fresh {
                return Err(dpop_error(DpopError::NonceNeeded).into());
            }
        }
        let fresh = self
            .store
            .record_jti(
                key_id(&proof.jkt),
                &format!("dpop:{}", proof.jti),
                proof.iat + PROOF_MAX_AGE + PROOF_FUTURE_SKEW + 1,
                now,
            )
            .await?;
        if !fresh {
            return Err(dpop_error(DpopError::Invalid(
                "this DPoP proof was used already: make one per request".into(),
            ))
            .into());
        }
        Ok(Some(proof))
    }
}

impl Engine {
    /// The rules of RFC 9449 §7 for a token presented at a resource, once its binding
    /// (`bound`, the token's `cnf.jkt`) is known: a bound token needs the `DPoP` scheme and a
    /// proof by its key, for this request, with its `ath`, used once; a bearer token must not
    /// come with the `DPoP` scheme.
    pub async fn check_token_binding(
        &self,
        presented: &Presentation<'_>,
        bound: Option<&str>,
    ) -> Result<(), Error> {
        let proof = if presented.scheme == Scheme::Dpop && bound.is_some() {
            self.check_dpop(presented.dpop, presented.target(), ProofAt::Resource)
                .await?
        } else {
            None
        };
        Ok(check_binding(presented.scheme, bound, proof.as_ref())?)
    }
}

/// The `jti`s of one key are kept under an id derived from its thumbprint, apart from
/// clients' assertion `jti`s (the store keys them by client).
fn key_id(jkt: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:ietf:params:oauth:jwk-thumbprint:sha-256:{jkt}").as_bytes(),
    )
}

/// The OAuth error of a refused proof (RFC 9449 §7.1, §8).
pub(crate) fn dpop_error(error: DpopError) -> OAuthError {
    match error {
        DpopError::Invalid(why) => OAuthError::new(ErrorCode::InvalidDpopProof, why),
        DpopError::NonceNeeded => OAuthError::new(ErrorCode::UseDpopNonce, error.to_string()),
    }
}
