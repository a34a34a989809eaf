//! The JWTs this provider signs, checked with its key set: ID tokens (OIDC Core §3.1.3.7) and
//! JWT access tokens (RFC 9068 §4). The key set is fetched again when no key fits (a rotation).

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::{Client, Endpoint};
use crate::error::IdTokenError;
use crate::id_token::{self, Expectations, IdTokenClaims, JwtAccessToken};

/// The least time between two fetches of the key set caused by JWT access tokens.
const JWKS_COOLDOWN: Duration = Duration::from_secs(10);

impl Client {
    /// Validates an ID token from this provider (OIDC Core §3.1.3.7). An unknown `kid` makes
    /// the client fetch the key set again, once.
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
        let (alg, keys) = self.signing_keys(raw, Duration::ZERO).await?;
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
        // Access tokens come from anyone who calls the resource server: an unknown key makes
        // the client fetch the key set again at most every JWKS_COOLDOWN.
        let (alg, keys) = self.signing_keys(raw, JWKS_COOLDOWN).await?;
        let claims = id_token::verify_signature(raw, alg, &keys)?;
        id_token::check_access_token(raw, claims, issuer, audience, config.leeway, self.now())
    }

    /// The allowed algorithm of a JWS and the provider's keys that may have signed it (the key
    /// set is fetched again once when none fits: a rotation).
    async fn signing_keys(
        &self,
        raw: &str,
        cooldown: Duration,
    ) -> Result<(Algorithm, Vec<jsonwebtoken::DecodingKey>), IdTokenError> {
        let (alg, kid) = id_token::header(raw, &self.inner.config.id_token_algorithms)?;
        let jwks_uri = self.endpoint(Endpoint::Jwks).await?;
        let (generation, set) = self.inner.jwks.get(&self.inner.http, &jwks_uri).await?;
        let mut keys = id_token::candidate_keys(&set, alg, kid.as_deref());
        if keys.is_empty() {
            let (_, set) = self
                .inner
                .jwks
                .refresh(&self.inner.http, &jwks_uri, generation, cooldown)
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
