//! What JWT assertions share, as values: a client's assertion (`private_key_jwt`,
//! `client_secret_jwt`: [`crate::client_assertion`]) and the JWT bearer grant's
//! ([`crate::jwt_bearer`]), RFC 7523 §3. Their `aud`, their times, whose name they carry, and a
//! signature checked with a key set or an HMAC secret (never `none`), the claims checked by
//! the caller against the engine's clock.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::clock::UnixTime;
use crate::jose::{AlgName, CLIENT_KEY_ALGS, CLIENT_SECRET_ALGS};
use crate::model::Client;
use crate::ports::ClientRef;

/// Why a JWS's claims could not be read as what was expected.
pub(crate) const CLAIMS_MISSING: &str =
    "iss, sub, aud, exp and jti are required (exp, iat and nbf as numbers)";

/// The longest `jti` accepted, in bytes.
pub(crate) const MAX_JTI: usize = 256;

/// An `aud` claim: one string or several.
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

/// Seconds as the engine counts them; a JSON number out of range saturates.
pub(crate) fn seconds(value: f64) -> UnixTime {
    value as UnixTime
}

/// Whether `client_id` names `client`, by Id or by Key.
pub(crate) fn names(client: &Client, client_id: &str) -> bool {
    match ClientRef::parse(client_id) {
        ClientRef::Id(id) => id == client.id,
        ClientRef::Key(key) => key == client.key,
    }
}

/// The signature and claims with the client's HMAC secret (`client_secret_jwt`).
pub(crate) fn verify_with_secret<T: DeserializeOwned>(
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
pub(crate) const NO_MATCHING_KEY: &str = "no registered key matches the assertion's kid and alg";

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

/// The times of an assertion (RFC 7523 §3 items 4 to 6), against the engine's clock `now`
/// with [`crate::jose::CLIENT_JWT_SKEW`] of tolerance: `exp` not past and at most
/// [`crate::jose::CLIENT_JWT_MAX_LIFETIME`] ahead (a long-lived assertion would be a bearer
/// credential and would fill the replay store), `nbf` and `iat` not in the future.
pub(crate) fn check_times(
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    now: UnixTime,
) -> Result<(), &'static str> {
    use crate::jose::{CLIENT_JWT_MAX_LIFETIME as MAX_LIFETIME, CLIENT_JWT_SKEW as SKEW};
    let exp = seconds(exp);
    // Saturating: `exp` is the sender's number (a huge one must not overflow).
    if exp.saturating_add(SKEW) <= now {
        return Err("expired");
    }
    if exp > now + MAX_LIFETIME + SKEW {
        return Err("exp is more than an hour ahead");
    }
    if nbf.is_some_and(|nbf| seconds(nbf) > now + SKEW) {
        return Err("not valid yet (nbf)");
    }
    if iat.is_some_and(|iat| seconds(iat) > now + SKEW) {
        return Err("issued in the future (iat)");
    }
    Ok(())
}

/// A `jti` of 1 to [`MAX_JTI`] bytes.
pub(crate) fn check_jti(jti: &str) -> Result<(), &'static str> {
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err("jti must have 1 to 256 bytes");
    }
    Ok(())
}
