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
//! - the signature, with an algorithm the client's method allows ([`CLIENT_KEY_ALGS`] with a
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
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::config::paths;
use crate::error::Error;
use crate::jose::{AlgName, CLIENT_KEY_ALGS, CLIENT_SECRET_ALGS};
use crate::model::{AuthMethod, Client};
use crate::ports::{ClientRef, StoreError};
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

/// Why a JWS's claims could not be read as what was expected.
const CLAIMS_MISSING: &str =
    "iss, sub, aud, exp and jti are required (exp, iat and nbf as numbers)";

/// The longest `jti` accepted, in bytes.
pub(crate) const MAX_JTI: usize = 256;

/// A client authenticated by its assertion: the client, its method, and the `sub` it named
/// itself with (its Key or Id).
pub(crate) struct Asserted {
    pub(crate) client: Client,
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

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn contains(&self, wanted: &[String]) -> bool {
        match self {
            Self::One(aud) => wanted.contains(aud),
            Self::Many(auds) => auds.iter().any(|aud| wanted.contains(aud)),
        }
    }
}

fn failed(why: &str) -> Error {
    OAuthError::invalid_client(format!("client assertion refused: {why}")).into()
}

/// Seconds as the engine counts them; a JSON number out of range saturates.
pub(crate) fn seconds(value: f64) -> UnixTime {
    value as UnixTime
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
        let exp = seconds(claims.exp);
        // Saturating: `exp` is the client's number (a huge one must not overflow).
        if exp.saturating_add(SKEW) <= now {
            return Err("expired");
        }
        if exp > now + MAX_LIFETIME + SKEW {
            return Err("exp is more than an hour ahead");
        }
        if claims.nbf.is_some_and(|nbf| seconds(nbf) > now + SKEW) {
            return Err("not valid yet (nbf)");
        }
        if claims.iat.is_some_and(|iat| seconds(iat) > now + SKEW) {
            return Err("issued in the future (iat)");
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI {
            return Err("jti must have 1 to 256 bytes");
        }
        Ok(())
    }
}

pub(crate) fn names(client: &Client, client_id: &str) -> bool {
    match ClientRef::parse(client_id) {
        ClientRef::Id(id) => id == client.id,
        ClientRef::Key(key) => key == client.key,
    }
}

/// The signature and claims with the client's HMAC secret (`client_secret_jwt`).
fn verify_with_secret<T: DeserializeOwned>(
    assertion: &str,
    secret: &[u8],
) -> Result<T, &'static str> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "not a JWS we accept")?;
    let alg = CLIENT_SECRET_ALGS
        .into_iter()
        .find(|a| a.jwt() == header.alg)
        .ok_or("client_secret_jwt takes HS256, HS384 or HS512")?;
    if secret.len() < alg.min_secret_len() {
        return Err("the client's secret is too short for this algorithm");
    }
    decode(assertion, &DecodingKey::from_secret(secret), alg)
}

/// Why [`verify_with_keys`] found no key to try: the one answer that makes a published set
/// be fetched again.
const NO_MATCHING_KEY: &str = "no registered key matches the assertion's kid and alg";

/// The signature and claims with one of the client's public keys (`private_key_jwt`): the key
/// named by `kid`, or each key of the right type when the header names none.
pub(crate) fn verify_with_keys<T: DeserializeOwned>(
    assertion: &str,
    keys: &[Jwk],
) -> Result<T, &'static str> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "not a JWS we accept")?;
    let alg = CLIENT_KEY_ALGS
        .into_iter()
        .find(|a| a.jwt() == header.alg)
        .ok_or("private_key_jwt takes RS256, PS256, ES256 or EdDSA")?;
    let candidates = keys.iter().filter(|key| {
        let kid_ok = match (&header.kid, &key.common.key_id) {
            (Some(wanted), Some(kid)) => wanted == kid,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let alg_ok = key
            .common
            .key_algorithm
            .is_none_or(|ka| ka.to_string() == alg.as_str());
        kid_ok && alg_ok && fits(alg, &key.algorithm)
    });
    let mut why = NO_MATCHING_KEY;
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else {
            continue;
        };
        match decode(assertion, &decoding, alg) {
            Ok(claims) => return Ok(claims),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// Whether a key of this type can check this algorithm.
fn fits(alg: AlgName, key: &AlgorithmParameters) -> bool {
    matches!(
        (alg, key),
        (AlgName::Rs256 | AlgName::Ps256, AlgorithmParameters::RSA(_))
            | (AlgName::Es256, AlgorithmParameters::EllipticCurve(_))
            | (AlgName::EdDsa, AlgorithmParameters::OctetKeyPair(_))
    )
}

/// The signature only: the claims are checked against the engine's clock, not the system's.
fn decode<T: DeserializeOwned>(
    assertion: &str,
    key: &DecodingKey,
    alg: AlgName,
) -> Result<T, &'static str> {
    let mut validation = Validation::new(alg.jwt());
    validation.algorithms = vec![alg.jwt()];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(assertion, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
            jsonwebtoken::errors::ErrorKind::Json(_) => CLAIMS_MISSING,
            _ => "not a JWS we accept",
        })
}
