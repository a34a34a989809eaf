//! ID-token validation, OIDC Core §3.1.3.7: signature with the provider's key (an allow-list of
//! asymmetric algorithms: never `none`, never HMAC, so a public key can never serve as an HMAC
//! secret), then `iss`, `aud`, `azp`, `exp`/`iat` with a leeway, `nonce` and `at_hash`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{at_hash, constant_time_eq};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::discovery::KeySet;
use crate::error::IdTokenError;

/// The algorithms accepted by default: every asymmetric JWS algorithm the JOSE crate verifies.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The validated claims of an ID token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IdTokenClaims {
    pub issuer: String,
    /// The user's identifier at the provider: with `issuer`, the key to link an account to.
    pub subject: String,
    pub audience: Vec<String>,
    pub expires_at: i64,
    pub issued_at: i64,
    pub auth_time: Option<i64>,
    pub nonce: Option<String>,
    pub authorized_party: Option<String>,
    /// Every claim, including the ones above (`name`, `email`, …).
    pub claims: Map<String, Value>,
}

impl IdTokenClaims {
    /// A string claim such as `email`, `name` or `preferred_username`.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// What the ID token must match.
pub(crate) struct Expectations<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) access_token: Option<&'a str>,
    pub(crate) leeway: u64,
    pub(crate) now: i64,
}

/// The JOSE header's algorithm, checked against the allow-list, and its `kid`.
pub(crate) fn header(
    token: &str,
    allowed: &[Algorithm],
) -> Result<(Algorithm, Option<String>), IdTokenError> {
    let encoded = token.split('.').next().ok_or(IdTokenError::Malformed)?;
    if token.split('.').count() != 3 {
        return Err(IdTokenError::Malformed);
    }
    let header: Value = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(IdTokenError::Malformed)?;
    let name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    // RFC 9864 §2.2: `Ed25519` is the fully-specified name of EdDSA over Ed25519, the same
    // signature; allowed wherever EdDSA is.
    let parsed = match name {
        FULLY_SPECIFIED_ED25519 => Some(Algorithm::EdDSA),
        other => other.parse::<Algorithm>().ok(),
    };
    let alg = parsed
        .filter(|alg| allowed.contains(alg) && !is_hmac(*alg))
        .ok_or_else(|| IdTokenError::UnsupportedAlgorithm(name.to_owned()))?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg, kid))
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The keys of `set` that may have signed a token with this header: the one with its `kid`
/// (or every key when the token names none), of a type that fits the algorithm, meant for
/// signatures.
pub(crate) fn candidate_keys(set: &KeySet, alg: Algorithm, kid: Option<&str>) -> Vec<DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
        .filter(|jwk| fits(jwk, alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .collect()
}

fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    if let Some(declared) = jwk.common.key_algorithm {
        if declared != KeyAlgorithm::UNKNOWN_ALGORITHM
            && format!("{declared:?}") != format!("{alg:?}")
        {
            return false;
        }
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        // An Ed25519 public key is 32 bytes; jsonwebtoken 11 slices `x` to 32 bytes when it
        // verifies, so a shorter one would panic there and a longer one be truncated.
        AlgorithmParameters::OctetKeyPair(okp) => {
            okp.curve == EllipticCurve::Ed25519
                && alg == Algorithm::EdDSA
                && URL_SAFE_NO_PAD.decode(&okp.x).is_ok_and(|x| x.len() == 32)
        }
        // Symmetric keys never verify ID tokens here.
        _ => false,
    }
}

/// Verifies the signature with the first candidate key that fits, then the claims.
pub(crate) fn validate(
    token: &str,
    alg: Algorithm,
    keys: &[DecodingKey],
    expect: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    check_claims(verify_signature(token, alg, keys)?, alg, expect)
}

/// RFC 9864's name for EdDSA with Ed25519.
const FULLY_SPECIFIED_ED25519: &str = "Ed25519";

/// The claims of a JWS whose signature one of `keys` verifies (nothing else checked).
pub(crate) fn verify_signature(
    token: &str,
    alg: Algorithm,
    keys: &[DecodingKey],
) -> Result<Map<String, Value>, IdTokenError> {
    if header_alg(token).as_deref() == Some(FULLY_SPECIFIED_ED25519) {
        return verify_ed25519(token, keys);
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    Ok(keys
        .iter()
        .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation).ok())
        .ok_or(IdTokenError::BadSignature)?
        .claims)
}

/// The JOSE header's `alg`, as written.
fn header_alg(token: &str) -> Option<String> {
    let encoded = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// A JWS whose header says `Ed25519` (RFC 9864), which the JWS library does not name: the
/// signature over `header.payload` checked as EdDSA with each key, then the payload read.
fn verify_ed25519(token: &str, keys: &[DecodingKey]) -> Result<Map<String, Value>, IdTokenError> {
    let (message, signature) = token.rsplit_once('.').ok_or(IdTokenError::Malformed)?;
    let verified = keys.iter().any(|key| {
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, Algorithm::EdDSA)
            .unwrap_or(false)
    });
    if !verified {
        return Err(IdTokenError::BadSignature);
    }
    let payload = message.split('.').nth(1).ok_or(IdTokenError::Malformed)?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(IdTokenError::Malformed)
}

/// The JOSE header's `typ`, lower-cased.
pub(crate) fn header_type(token: &str) -> Option<String> {
    let encoded = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    header.get("typ")?.as_str().map(str::to_ascii_lowercase)
}

/// The validated claims of a JWT access token (RFC 9068).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JwtAccessToken {
    pub issuer: String,
    pub subject: String,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    pub expires_at: i64,
    pub claims: Map<String, Value>,
}

/// RFC 9068 §4: `typ` is `at+jwt`, `iss` is the issuer, `aud` holds this resource, not expired.
pub(crate) fn check_access_token(
    token: &str,
    claims: Map<String, Value>,
    issuer: &str,
    audience: &str,
    leeway: u64,
    now: i64,
) -> Result<JwtAccessToken, IdTokenError> {
    let typ = header_type(token);
    if !matches!(typ.as_deref(), Some("at+jwt") | Some("application/at+jwt")) {
        return Err(IdTokenError::WrongType { got: typ });
    }
    let text = |name: &'static str| string_claim(&claims, name);
    let got = text("iss")?;
    if got != issuer {
        return Err(IdTokenError::WrongIssuer {
            expected: issuer.to_owned(),
            got,
        });
    }
    let subject = text("sub")?;
    // RFC 9068 §2.2: these are required too.
    text("client_id")?;
    text("jti")?;
    if !claims.get("iat").is_some_and(Value::is_number) {
        return Err(IdTokenError::MissingClaim("iat"));
    }
    let aud: Vec<String> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !aud.iter().any(|a| a == audience) {
        return Err(IdTokenError::WrongAudience {
            client_id: audience.to_owned(),
            audience: aud,
        });
    }
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(IdTokenError::MissingClaim("exp"))?;
    if now > expires_at.saturating_add_unsigned(leeway) {
        return Err(IdTokenError::Expired {
            exp: expires_at,
            now,
            leeway,
        });
    }
    let scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(JwtAccessToken {
        issuer: got,
        subject,
        client_id: claims
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        scopes,
        audience: aud,
        expires_at,
        claims,
    })
}

/// A string claim, or `MissingClaim` when it is absent or not a string.
fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, IdTokenError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(IdTokenError::MissingClaim(name))
}

fn check_claims(
    claims: Map<String, Value>,
    alg: Algorithm,
    expect: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let text = |name: &'static str| string_claim(&claims, name);
    let number = |name: &'static str| match claims.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or(IdTokenError::MissingClaim(name)),
        _ => Err(IdTokenError::MissingClaim(name)),
    };
    let issuer = text("iss")?;
    if issuer != expect.issuer {
        return Err(IdTokenError::WrongIssuer {
            expected: expect.issuer.to_owned(),
            got: issuer,
        });
    }
    let subject = text("sub")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::MissingClaim("sub"))?;
    let audience: Vec<String> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(IdTokenError::MissingClaim("aud"))?,
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !audience.iter().any(|a| a == expect.client_id) {
        return Err(IdTokenError::WrongAudience {
            client_id: expect.client_id.to_owned(),
            audience,
        });
    }
    let authorized_party = claims.get("azp").and_then(Value::as_str).map(str::to_owned);
    if audience.len() > 1 && authorized_party.is_none() {
        return Err(IdTokenError::MissingAzp);
    }
    if let Some(azp) = &authorized_party {
        if azp != expect.client_id {
            return Err(IdTokenError::WrongAzp { got: azp.clone() });
        }
    }
    let expires_at = number("exp")?;
    if expect.now > expires_at.saturating_add_unsigned(expect.leeway) {
        return Err(IdTokenError::Expired {
            exp: expires_at,
            now: expect.now,
            leeway: expect.leeway,
        });
    }
    let issued_at = number("iat")?;
    if issued_at > expect.now.saturating_add_unsigned(expect.leeway) {
        return Err(IdTokenError::IssuedInFuture {
            iat: issued_at,
            now: expect.now,
        });
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(expected) = expect.nonce {
        let got = nonce.as_deref().ok_or(IdTokenError::MissingNonce)?;
        if !constant_time_eq(got.as_bytes(), expected.as_bytes()) {
            return Err(IdTokenError::WrongNonce);
        }
    }
    if let (Some(claimed), Some(access_token)) = (
        claims.get("at_hash").and_then(Value::as_str),
        expect.access_token,
    ) {
        if !constant_time_eq(
            claimed.as_bytes(),
            at_hash(&jws_name(alg), access_token).as_bytes(),
        ) {
            return Err(IdTokenError::WrongAtHash);
        }
    }
    let auth_time = claims.get("auth_time").and_then(Value::as_i64);
    Ok(IdTokenClaims {
        issuer,
        subject,
        audience,
        expires_at,
        issued_at,
        auth_time,
        nonce,
        authorized_party,
        claims,
    })
}

/// The JOSE header name of `alg` (RFC 7518 §3.1), as [`doorward_proto::at_hash`] takes it.
pub(crate) fn jws_name(alg: Algorithm) -> String {
    // jsonwebtoken writes an algorithm as its JOSE name, and reads that name back (`FromStr`).
    serde_json::to_value(alg)
        .ok()
        .and_then(|name| name.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{alg:?}"))
}

/// The `sub` of an ID token this client validated earlier (no signature check).
pub(crate) fn unverified_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}
