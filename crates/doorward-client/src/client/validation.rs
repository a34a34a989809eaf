//! The JWTs this provider signs, checked with its key set: ID tokens (OIDC Core §3.1.3.7) and
//! JWT access tokens (RFC 9068 §4). The key set is fetched again when no key fits (a rotation),
//! at most once per [`JWKS_COOLDOWN`].

use jsonwebtoken::Algorithm;

use super::{Client, Endpoint};
use crate::error::IdTokenError;
use crate::id_token::{self, Expectations, IdTokenClaims, JwtAccessToken};

/// The least time, in seconds, between a fetch of the key set and a refetch caused by a token
/// naming a key the set lacks. Tokens come from anyone (a forged ID token posted to the
/// application, an access token sent to a resource server): an unknown `kid` must not make the
/// client fetch at will. A provider that publishes its next key ahead of using it (OIDC Core
/// §10.1.1; `doorward serve` does) is never refused by it.
pub(crate) const JWKS_COOLDOWN: i64 = 10;

impl Client {
    /// Validates an ID token from this provider (OIDC Core §3.1.3.7). An unknown `kid` makes
    /// the client fetch the key set again, once, unless it was fetched in the last
    /// [`JWKS_COOLDOWN`] seconds; an expired key set is fetched again first.
    pub async fn validate_id_token(
        &self,
        raw: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let config = &self.inner.config;
        let issuer = config.issuer.as_deref().ok_or(IdTokenError::NoIssuer)?;
        // RFC 8725 §3.11: an access token (`typ: at+jwt`) is never an ID token.
        let typ = id_token::header_type(raw);
        if typ.as_deref().is_some_and(|t| t.ends_with("at+jwt")) {
            return Err(IdTokenError::WrongType { got: typ });
        }
        let (alg, keys) = self.signing_keys(raw).await?;
        id_token::validate(
            raw,
            alg,
            &keys,
            &Expectations {
                issuer,
                client_id: &config.client_id,
                nonce,
                access_token,
                leeway: config.leeway,
                now: self.now(),
            },
        )
    }

    /// Validates a JWT access token of this provider (RFC 9068 §4), for a resource server
    /// known as `audience`: signature with the provider's keys, `typ: at+jwt`, `iss`, `aud`, `exp`.
    pub async fn validate_jwt_access_token(
        &self,
        raw: &str,
        audience: &str,
    ) -> Result<JwtAccessToken, IdTokenError> {
        let config = &self.inner.config;
        let issuer = config.issuer.as_deref().ok_or(IdTokenError::NoIssuer)?;
        let (alg, keys) = self.signing_keys(raw).await?;
        let claims = id_token::verify_signature(raw, alg, &keys)?;
        id_token::check_access_token(raw, claims, issuer, audience, config.leeway, self.now())
    }

    /// The allowed algorithm of a JWS and the provider's keys that may have signed it (the key
    /// set is fetched again once when none fits, a rotation, unless it is [`JWKS_COOLDOWN`]
    /// seconds young).
    async fn signing_keys(
        &self,
        raw: &str,
    ) -> Result<(Algorithm, Vec<jsonwebtoken::DecodingKey>), IdTokenError> {
        let (alg, kid) = id_token::header(raw, &self.inner.config.id_token_algorithms)?;
        // Keys given in the configuration: nothing is fetched, nothing else is trusted.
        if let Some(inline) = &self.inner.config.jwks {
            let set = crate::discovery::KeySet {
                keys: inline.keys.clone(),
            };
            let keys = id_token::candidate_keys(&set, alg, kid.as_deref());
            if keys.is_empty() {
                return Err(IdTokenError::NoMatchingKey {
                    kid,
                    alg: format!("{alg:?}"),
                });
            }
            return Ok((alg, keys));
        }
        let jwks_uri = self.endpoint(Endpoint::Jwks).await?;
        let now = self.now();
        let (generation, set) = self
            .inner
            .jwks
            .get(&self.inner.http, &jwks_uri, now)
            .await?;
        let mut keys = id_token::candidate_keys(&set, alg, kid.as_deref());
        if keys.is_empty() {
            let (_, set) = self
                .inner
                .jwks
                .refresh(&self.inner.http, &jwks_uri, generation, JWKS_COOLDOWN, now)
                .await?;
            keys = id_token::candidate_keys(&set, alg, kid.as_deref());
        }
        if keys.is_empty() {
            return Err(IdTokenError::NoMatchingKey {
                kid,
                alg: format!("{alg:?}"),
            });
        }
        Ok((alg, keys))
    }
}
