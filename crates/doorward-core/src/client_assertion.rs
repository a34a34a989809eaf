//! Client authentication with a JWT (`private_key_jwt`, `client_secret_jwt`): RFC 7523 §2.2
//! and §3, RFC 7521 §4.2, OIDC Core §9. The client sends `client_assertion_type =
//! urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and `client_assertion`, a JWT it
//! signed with one of its registered public keys ([`ClientPolicy::jwks`]) or MACed with its
//! secret ([`ClientPolicy::sealed_jwt_secret`]), at the token, introspection and revocation
//! endpoints.
//!
//! What is checked, every failure `invalid_client` (RFC 7521 §4.2.1) and counted by the
//! client's throttle counter ([`crate::throttle::CLIENT`]) once the client is known:
//!
//! - the signature, with an algorithm the client's method allows ([`crate::jose::CLIENT_KEY_ALGS`] with a
//!   key of its set, the `kid` matching when the header names one; [`CLIENT_SECRET_ALGS`] with
//!   its secret, which must be at least as long as the hash); never `none`;
//! - `iss` = `sub` = the client (its Key or Id), and `client_id`, when sent, names it too;
//! - `aud` holds the issuer, the token endpoint's URL or the URL of the endpoint called
//!   (RFC 7523 §3 item 3);
//! - `exp` is present, not past, and at most [`MAX_LIFETIME`] ahead (plus [`SKEW`]): a long-lived
//!   assertion would be a bearer credential and would fill the `jti` store;
//! - `nbf` and `iat`, when present, are not in the future (beyond [`SKEW`]);
//! - `jti` is present (1 to 256 bytes) and single-use until `exp` + [`SKEW`], across instances
//!   ([`crate::ports::AssertionStore::record_jti`]): a replayed assertion is refused.
//!
//! A `private_key_jwt` client registers its keys inline (`jwks`) or publishes them at a
//! `jwks_uri` (RFC 7523 §2.2, OIDC Registration §2), fetched through the
//! [`crate::fetch::Fetcher`] port and cached by [`crate::client_keys`]; a set that cannot be
//! fetched is `invalid_client` too, never a server error.
//!
//! [`ClientPolicy::jwks`]: crate::model::ClientPolicy::jwks
//! [`ClientPolicy::sealed_jwt_secret`]: crate::model::ClientPolicy::sealed_jwt_secret

use doorward_proto::OAuthError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::assertion::{
    check_jti, check_times, names, seconds, verify_with_keys, verify_with_secret, Audience,
    NO_MATCHING_KEY,
};
use crate::clock::UnixTime;
use crate::config::paths;
use crate::error::Error;
use crate::jose::CLIENT_SECRET_ALGS;
use crate::model::{AuthMethod, Client};
use crate::ports::StoreError;
use crate::request::{ClientEndpoint, TokenRequest};
use crate::throttle::{Counter, Guard};
use crate::Engine;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How far ahead an assertion's `exp` may be ([`crate::jose::CLIENT_JWT_MAX_LIFETIME`]). The
/// `jti` store keeps each assertion at most this long.
pub const MAX_LIFETIME: i64 = crate::jose::CLIENT_JWT_MAX_LIFETIME;

/// The clock difference tolerated between a client and this server
/// ([`crate::jose::CLIENT_JWT_SKEW`]).
pub const SKEW: i64 = crate::jose::CLIENT_JWT_SKEW;

/// A client authenticated by its assertion: the client, its method, and the `sub` it named
/// itself with (its Key or Id).
pub(crate) struct Asserted {
    pub(crate) client: std::sync::Arc<Client>,
    pub(crate) method: AuthMethod,
    pub(crate) named: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: f64,
    iat: Option<f64>,
    nbf: Option<f64>,
    jti: String,
    /// Only authorization requests have it: a request object (RFC 9101), which travels through
    /// browsers, is never a client assertion.
    #[serde(default)]
    response_type: Option<serde_json::Value>,
}

/// The one claim read before the signature is checked: whose keys to check it with.
#[derive(Deserialize)]
struct Subject {
    sub: String,
}

fn failed(why: &str) -> Error {
    OAuthError::invalid_client(format!("client assertion refused: {why}")).into()
}

impl Engine {
    /// Authenticates a client by its `client_assertion`, or answers `Ok(None)` when the
    /// request carries none (another method then applies). A request with an assertion and
    /// another method (Basic, `client_secret`) is `invalid_request` (RFC 6749 §2.3).
    pub(crate) async fn authenticate_assertion(
        &self,
        request: &TokenRequest,
        endpoint: ClientEndpoint,
    ) -> Result<Option<Asserted>, Error> {
        let param = |name: &str| request.params.get(name).map(String::as_str);
        let (assertion_type, assertion) =
            match (param("client_assertion_type"), param("client_assertion")) {
                (None, None) => return Ok(None),
                (Some(t), Some(a)) => (t, a),
                _ => return Err(OAuthError::invalid_request(
                    "client_assertion and client_assertion_type go together (RFC 7521 section 4.2)",
                )
                .into()),
            };
        if request.basic.is_some() || request.params.contains_key("client_secret") {
            return Err(OAuthError::invalid_request(
                "the client used more than one authentication method (RFC 6749 section 2.3)",
            )
            .into());
        }
        if assertion_type != JWT_BEARER {
            return Err(failed("unsupported client_assertion_type"));
        }
        // Who the assertion claims to come from, read before the signature is checked only to
        // find the key to check it with.
        let unverified: Subject = crate::jose::unverified_claims(assertion)
            .map_err(|_| failed("not a JWT with a sub"))?;
        let named = unverified.sub;
        let client = self
            .resolve_client(&named)
            .await?
            .ok_or_else(|| failed("unknown client"))?;
        if let Some(id) = param("client_id") {
            if !names(&client, id) {
                return Err(OAuthError::invalid_request(
                    "client_id names another client than the client assertion",
                )
                .into());
            }
        }
        let method = match client.policy.auth_method {
            Some(m) if m.is_jwt() => m,
            Some(m) => {
                return Err(OAuthError::invalid_client(format!(
                    "this client must authenticate with {}",
                    m.as_str()
                ))
                .into())
            }
            None => return Err(failed("the client has no key registered for assertions")),
        };
        let guard = Guard::check(
            &self.throttle(),
            vec![Counter::client(client.id)],
            self.now(),
        )
        .await?;
        match self
            .check_assertion(&client, method, assertion, endpoint)
            .await?
        {
            Ok(()) => Ok(Some(Asserted {
                client,
                method,
                named,
            })),
            Err(why) => {
                guard.failed(&self.throttle(), self.now()).await?;
                Err(failed(why))
            }
        }
    }

    /// The checks of the module documentation, the signature first. The outer error is a
    /// server failure; the inner one says why the assertion is refused.
    async fn check_assertion(
        &self,
        client: &Client,
        method: AuthMethod,
        assertion: &str,
        endpoint: ClientEndpoint,
    ) -> Result<Result<(), &'static str>, Error> {
        let claims: Result<Claims, &'static str> = match method {
            AuthMethod::ClientSecretJwt => {
                let Some(sealed) = &client.policy.sealed_jwt_secret else {
                    return Ok(Err("the client has no secret registered for assertions"));
                };
                let secret = self
                    .sealer
                    .open(&client.jwt_secret_label(), sealed)
                    .map_err(StoreError::from)?;
                verify_with_secret(assertion, &secret)
            }
            _ => match (&client.policy.jwks, &client.policy.jwks_uri) {
                (Some(jwks), _) => verify_with_keys(assertion, &jwks.keys),
                (None, Some(url)) => {
                    self.verify_with_published_keys(client.id, url, assertion)
                        .await
                }
                (None, None) => Err("the client has no key registered for assertions"),
            },
        };
        let claims = match claims {
            Ok(claims) => claims,
            Err(why) => return Ok(Err(why)),
        };
        let now = self.now();
        if let Err(why) = self.check_claims(client, &claims, endpoint, now) {
            return Ok(Err(why));
        }
        let fresh = self
            .store
            .record_jti(
                client.id,
                &claims.jti,
                seconds(claims.exp).saturating_add(SKEW),
                now,
            )
            .await?;
        Ok(if fresh {
            Ok(())
        } else {
            Err("this assertion was used already (jti)")
        })
    }

    /// The signature with the key set the client publishes at its `jwks_uri`
    /// ([`crate::client_keys`]): the cached set, and once more after a refetch when the set
    /// lacks the assertion's `kid` (the client rotated its keys; OIDC Core §10.1.1), at most
    /// once per cooldown. A set that cannot be fetched refuses the assertion. `owner` keys the
    /// cache: the client's Id, or for another issuer's set an id derived from its URL.
    pub(crate) async fn verify_with_published_keys<T: DeserializeOwned>(
        &self,
        owner: uuid::Uuid,
        url: &url::Url,
        assertion: &str,
    ) -> Result<T, &'static str> {
        const UNREACHABLE: &str = "the jwks_uri could not be fetched or was refused";
        let now = self.now();
        let keys = self
            .client_keys
            .get(&*self.fetcher, owner, url, now)
            .await
            .map_err(|_| UNREACHABLE)?;
        match verify_with_keys(assertion, &keys.keys) {
            Err(NO_MATCHING_KEY) => {
                match self
                    .client_keys
                    .refetch(&*self.fetcher, owner, url, now)
                    .await
                {
                    Ok(Some(keys)) => verify_with_keys(assertion, &keys.keys),
                    Ok(None) => Err(NO_MATCHING_KEY),
                    Err(_) => Err(UNREACHABLE),
                }
            }
            verified => verified,
        }
    }

    /// A JWS the client signed with one of its keys (`jwks` or `jwks_uri`: RS256, PS256, ES256,
    /// EdDSA) or MACed with its `client_secret_jwt` secret (HS256, HS384, HS512), as the header's
    /// `alg` says; its claims as `T`. Never `none`. For request objects (RFC 9101 §10.2: the
    /// client's registered keys).
    pub(crate) async fn verify_client_jws<T: DeserializeOwned>(
        &self,
        client: &Client,
        jws: &str,
    ) -> Result<Result<T, &'static str>, StoreError> {
        let Ok(header) = jsonwebtoken::decode_header(jws) else {
            return Ok(Err(
                "not a JWS signed with an algorithm this server accepts (never none)",
            ));
        };
        if CLIENT_SECRET_ALGS.iter().any(|a| a.jwt() == header.alg) {
            let Some(sealed) = &client.policy.sealed_jwt_secret else {
                return Ok(Err(
                    "the client has no secret registered for HMAC signatures",
                ));
            };
            let secret = self
                .sealer
                .open(&client.jwt_secret_label(), sealed)
                .map_err(StoreError::from)?;
            return Ok(verify_with_secret(jws, &secret));
        }
        Ok(match (&client.policy.jwks, &client.policy.jwks_uri) {
            (Some(jwks), _) => verify_with_keys(jws, &jwks.keys),
            (None, Some(url)) => self.verify_with_published_keys(client.id, url, jws).await,
            (None, None) => Err("the client has no public key registered"),
        })
    }

    fn check_claims(
        &self,
        client: &Client,
        claims: &Claims,
        endpoint: ClientEndpoint,
        now: UnixTime,
    ) -> Result<(), &'static str> {
        if claims.response_type.is_some() {
            return Err("a request object is not a client assertion");
        }
        if claims.iss != claims.sub || !names(client, &claims.sub) {
            return Err("iss and sub must both be the client_id");
        }
        let issuer = &self.config.issuer;
        let accepted = [
            issuer.clone(),
            format!("{issuer}{}", paths::TOKEN),
            format!("{issuer}{}", endpoint.path()),
        ];
        if !claims.aud.contains(&accepted) {
            return Err("aud must name this server (its issuer or the endpoint's URL)");
        }
        check_times(claims.exp, claims.nbf, claims.iat, now)?;
        check_jti(&claims.jti)
    }
}
