//! DPoP proofs (RFC 9449): the JWT a client signs with its own key for one HTTP request, which
//! binds tokens to that key (`cnf.jkt`). This module checks a proof against the request it came
//! with (§4.3) and makes and checks the server's nonces (§8); it does no I/O. The `jti` of
//! each accepted proof is recorded through the store by the engine (`dpop_check.rs`), so a
//! proof is accepted once across every instance.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use doorward_proto::{ErrorCode, OAuthError};

use crate::clock::UnixTime;
use crate::jose::PRIVATE_JWK_MEMBERS;

/// The algorithms a proof may be signed with (§4.2: asymmetric only, never `none`): what the
/// metadata lists as `dpop_signing_alg_values_supported` (§5.1).
pub const DPOP_ALGS: [&str; 6] = ["ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519"];

/// How old a proof may be (its `iat`): five minutes, node-oidc-provider's tolerance too. A
/// server nonce (§8) bounds freshness further when it is required.
pub const PROOF_MAX_AGE: i64 = 300;

/// How far in the future a proof's `iat` may be: the clock difference tolerated (§11.1).
pub const PROOF_FUTURE_SKEW: i64 = 30;

/// The longest proof accepted (a JWS with an RSA key in its header is about 1.5 KiB).
const MAX_PROOF_LEN: usize = 8 * 1024;

/// The shortest RSA modulus accepted in a proof's key (2048 bits, RFC 7518 §3.3).
const MIN_RSA_BYTES: usize = 256;

/// The `DPoP` header(s) of a request, as the HTTP adapter found them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DpopHeader {
    /// No `DPoP` header: a bearer request.
    #[default]
    Absent,
    /// Exactly one header (§4.3 check 1).
    One(String),
    /// More than one, or a value that is not text: always refused (§4.3 check 1).
    Malformed,
}

impl DpopHeader {
    /// From the values of every `DPoP` header of a request.
    pub fn from_values<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Self {
        match (values.next(), values.next()) {
            (None, _) => Self::Absent,
            (Some(one), None) => std::str::from_utf8(one)
                .map(|v| Self::One(v.trim().to_owned()))
                .unwrap_or(Self::Malformed),
            (Some(_), Some(_)) => Self::Malformed,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

/// The HTTP request a proof must be for.
#[derive(Clone, Copy, Debug)]
pub struct ProofTarget<'a> {
    /// `htm`: the request's method.
    pub method: &'a str,
    /// `htu`: the URL the request was sent to; its query and fragment are ignored (§4.3 check 9).
    pub url: &'a str,
    /// The access token presented with the proof, whose hash the proof must carry (`ath`,
    /// §4.3 check 12); `None` at the token endpoint.
    pub access_token: Option<&'a str>,
}

/// Where a proof is checked: which nonce rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofAt {
    /// The token or pushed-request endpoint: a nonce when [`crate::DpopPolicy::require_nonce`].
    AuthorizationServer,
    /// A protected resource: no nonce (§9 lets a resource server ask; this one does not).
    Resource,
}

/// A proof that passed every check of §4.3 but the `jti`'s uniqueness and the nonce, which
/// the caller checks with its own state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key: what tokens are bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: UnixTime,
    pub nonce: Option<String>,
}

/// Why a proof was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// `invalid_dpop_proof` (§7.1).
    #[error("{0}")]
    Invalid(String),
    /// `use_dpop_nonce`: the proof lacks the current nonce (§8).
    #[error("the DPoP proof must carry the server's current nonce")]
    NonceNeeded,
}

fn invalid(why: impl Into<String>) -> DpopError {
    DpopError::Invalid(why.into())
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Value>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks `proof` against `target` at `now` (RFC 9449 §4.3 checks 2 to 9, 11 and 12: form,
/// `typ`, algorithm, signature with the embedded public key, `htm`, `htu`, `iat`, `ath`).
pub fn verify_proof(
    proof: &str,
    target: ProofTarget<'_>,
    now: UnixTime,
) -> Result<Proof, DpopError> {
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is empty or too long"));
    }
    let header_b64 = proof
        .split('.')
        .next()
        .filter(|_| proof.split('.').count() == 3)
        .ok_or_else(|| invalid("the DPoP proof is not a compact JWS"))?;
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("the DPoP proof's header is not JSON"))?;
    if header.get("typ").and_then(|t| t.as_str()) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg_name = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    let alg = match alg_name {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        // RFC 9864 §2.2: the same signature by its fully-specified name.
        "EdDSA" | "Ed25519" => Algorithm::EdDSA,
        _ => {
            return Err(invalid(format!(
                "the DPoP proof's alg must be one of {}",
                DPOP_ALGS.join(", ")
            )))
        }
    };
    let jwk_value = header
        .get("jwk")
        .and_then(|j| j.as_object())
        .ok_or_else(|| invalid("the DPoP proof has no jwk header"))?;
    if let Some(member) = PRIVATE_JWK_MEMBERS
        .iter()
        .find(|m| jwk_value.contains_key(**m))
    {
        return Err(invalid(format!(
            "the DPoP proof's jwk has the private member `{member}`"
        )));
    }
    check_key_shape(jwk_value, alg)?;
    let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(jwk_value.clone()))
        .map_err(|_| invalid("the DPoP proof's jwk is not a public key"))?;
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| invalid("the DPoP proof's jwk is not a usable key"))?;
    let bad_signature = || invalid("the DPoP proof's signature does not verify with its jwk");
    let claims = if alg_name == "Ed25519" {
        // The JWS library does not read this name: the signature checked as EdDSA's.
        let (message, signature) = proof.rsplit_once('.').ok_or_else(bad_signature)?;
        if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg).unwrap_or(false)
        {
            return Err(bad_signature());
        }
        let payload = message.split('.').nth(1).unwrap_or("");
        URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ProofClaims>(&bytes).ok())
            .ok_or_else(|| invalid("the DPoP proof's claims are not JSON"))?
    } else {
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|_| bad_signature())?
            .claims
    };
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid("the DPoP proof has no jti"))?;
    if claims.htm.as_deref() != Some(target.method) {
        return Err(invalid(format!(
            "the DPoP proof's htm must be {}",
            target.method
        )));
    }
    let htu = claims
        .htu
        .ok_or_else(|| invalid("the DPoP proof has no htu"))?;
    if !same_target_uri(&htu, target.url) {
        return Err(invalid(format!(
            "the DPoP proof's htu must be {}",
            without_query(target.url)
        )));
    }
    let iat = match claims.iat {
        Some(serde_json::Value::Number(n)) => {
            n.as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| invalid("the DPoP proof's iat is not a time"))?
        }
        _ => return Err(invalid("the DPoP proof has no iat")),
    };
    if iat > now + PROOF_FUTURE_SKEW {
        return Err(invalid("the DPoP proof is dated in the future"));
    }
    if iat < now - PROOF_MAX_AGE {
        return Err(invalid("the DPoP proof is too old"));
    }
    match (target.access_token, claims.ath.as_deref()) {
        (None, _) => {}
        (Some(_), None) => return Err(invalid("the DPoP proof has no ath")),
        (Some(token), Some(ath)) => {
            if !doorward_proto::constant_time_eq(
                ath.as_bytes(),
                access_token_hash(token).as_bytes(),
            ) {
                return Err(invalid(
                    "the DPoP proof's ath is not the hash of the access token",
                ));
            }
        }
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| invalid("the DPoP proof's jwk has no thumbprint"))?;
    Ok(Proof {
        jkt,
        jti,
        iat,
        nonce: claims.nonce,
    })
}

/// The proof's key must be of the kind its algorithm signs with, and whole: the JWS library
/// reads an OKP key's first 32 bytes without checking its length (a short `x` would panic, a
/// long one give one key many thumbprints).
fn check_key_shape(
    jwk: &serde_json::Map<String, serde_json::Value>,
    alg: Algorithm,
) -> Result<(), DpopError> {
    let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let bytes = |name: &str| {
        text(name)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .unwrap_or_default()
    };
    let fits = match alg {
        Algorithm::EdDSA => {
            text("kty") == Some("OKP") && text("crv") == Some("Ed25519") && bytes("x").len() == 32
        }
        Algorithm::ES256 => {
            text("kty") == Some("EC")
                && text("crv") == Some("P-256")
                && bytes("x").len() == 32
                && bytes("y").len() == 32
        }
        Algorithm::ES384 => {
            text("kty") == Some("EC")
                && text("crv") == Some("P-384")
                && bytes("x").len() == 48
                && bytes("y").len() == 48
        }
        Algorithm::RS256 | Algorithm::PS256 => {
            let n = bytes("n");
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if text("kty") == Some("RSA") && significant < MIN_RSA_BYTES {
                return Err(invalid(
                    "the DPoP proof's RSA key is shorter than 2048 bits",
                ));
            }
            text("kty") == Some("RSA") && !bytes("e").is_empty()
        }
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(invalid(
            "the DPoP proof's jwk is not a whole key of the kind its alg signs with",
        ))
    }
}

/// `ath`: the base64url SHA-256 of the access token's ASCII (§4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Whether `htu` names `url` (§4.3 check 9): both parsed as URLs, which applies RFC 3986's
/// syntax- and scheme-based normalization (case of scheme and host, default port, dot
/// segments, percent-encoding case), and compared without query and fragment.
pub fn same_target_uri(htu: &str, url: &str) -> bool {
    match (url::Url::parse(htu), url::Url::parse(url)) {
        (Ok(mut a), Ok(mut b)) => {
            for u in [&mut a, &mut b] {
                u.set_query(None);
                u.set_fragment(None);
            }
            a == b
        }
        _ => false,
    }
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Whether `jkt` looks like an RFC 7638 SHA-256 thumbprint (43 base64url characters): what
/// `dpop_jkt` at the authorization endpoint must be (§10).
pub fn is_thumbprint(jkt: &str) -> bool {
    jkt.len() == 43
        && jkt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Authorization` scheme a token came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750 §2.1).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1), with a proof in the `DPoP` header.
    Dpop,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// An access token as a protected resource received it: what RFC 9449 §7 checks.
#[derive(Clone, Copy, Debug)]
pub struct Presentation<'a> {
    pub token: &'a str,
    pub scheme: Scheme,
    pub dpop: &'a DpopHeader,
    /// The request's method and URL (the resource's public URL, without query), for `htm`
    /// and `htu`.
    pub method: &'a str,
    pub url: &'a str,
}

/// No `DPoP` header, for a [`Presentation::bearer`].
static ABSENT: DpopHeader = DpopHeader::Absent;

impl<'a> Presentation<'a> {
    /// A token that came as `Authorization: Bearer` without a proof.
    pub fn bearer(token: &'a str) -> Self {
        Self {
            token,
            scheme: Scheme::Bearer,
            dpop: &ABSENT,
            method: "GET",
            url: "",
        }
    }
}

impl Presentation<'_> {
    /// Whether a proof must be checked: the token came with the `DPoP` scheme, or is bound.
    pub fn needs_proof(&self, bound: Option<&str>) -> bool {
        self.scheme == Scheme::Dpop || bound.is_some()
    }

    pub fn target(&self) -> ProofTarget<'_> {
        ProofTarget {
            method: self.method,
            url: self.url,
            access_token: Some(self.token),
        }
    }
}

/// The rules of a protected resource (RFC 9449 §7.1, §7.2) once the token is known: a token
/// bound to a key (`bound`) comes with the `DPoP` scheme and a valid proof by that key; a
/// bearer token never with the `DPoP` scheme (a proof cannot make a bearer token bound).
/// `proof` is the verified proof of the request, if it had one.
pub fn check_binding(
    scheme: Scheme,
    bound: Option<&str>,
    proof: Option<&Proof>,
) -> Result<(), OAuthError> {
    match (scheme, bound, proof) {
        (Scheme::Bearer, None, _) => Ok(()),
        (Scheme::Bearer, Some(_), _) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "this token is bound to a DPoP key: present it with Authorization: DPoP and a proof",
        )),
        (Scheme::Dpop, None, _) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "this token is not bound to a DPoP key: present it with Authorization: Bearer",
        )),
        (Scheme::Dpop, Some(_), None) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "a DPoP proof is needed in the DPoP header",
        )),
        (Scheme::Dpop, Some(bound), Some(proof)) => {
            if doorward_proto::constant_time_eq(bound.as_bytes(), proof.jkt.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "the DPoP proof is not made with the key the token is bound to",
                ))
            }
        }
    }
}

/// How long one nonce window lasts: a nonce is accepted in its window and the next one, so
/// for 5 to 10 minutes.
pub const NONCE_WINDOW: i64 = 300;

/// The server's DPoP nonces (§8), kept by no one: a nonce is its time window and a MAC of it
/// under a key derived from the server secret, so that every instance makes and accepts the
/// same ones without a table.
#[derive(Clone)]
pub struct NonceKey {
    key: [u8; 32],
}

impl NonceKey {
    /// A nonce key derived from `secret` (the server's CSRF secret).
    pub fn derive(secret: &[u8]) -> Self {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
        mac.update(b"doorward-dpop-nonce-key");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn tag(&self, window: i64) -> [u8; 16] {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(&window.to_be_bytes());
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: UnixTime) -> String {
        let window = now.div_euclid(NONCE_WINDOW);
        let mut raw = window.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.tag(window));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` was handed out in this window or the previous one.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != 24 {
            return false;
        }
        let mut window = [0u8; 8];
        window.copy_from_slice(&raw[..8]);
        let window = i64::from_be_bytes(window);
        let current = now.div_euclid(NONCE_WINDOW);
        (window == current || window == current - 1)
            && doorward_proto::constant_time_eq(&raw[8..], &self.tag(window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_last_two_windows_and_need_the_key() {
        let key = NonceKey::derive(b"secret");
        let nonce = key.current(1_000_000);
        assert!(key.accepts(&nonce, 1_000_000));
        assert!(key.accepts(&nonce, 1_000_000 + NONCE_WINDOW));
        assert!(!key.accepts(&nonce, 1_000_000 + 2 * NONCE_WINDOW));
        assert!(!NonceKey::derive(b"other").accepts(&nonce, 1_000_000));
        assert!(!key.accepts("bm9ub25jZQ", 1_000_000));
        assert!(!key.accepts("!!", 1_000_000));
    }

    #[test]
    fn target_uris_compare_normalized_without_query() {
        assert!(same_target_uri(
            "HTTPS://Example.com:443/a/./b?x=1#f",
            "https://example.com/a/b"
        ));
        assert!(!same_target_uri(
            "https://example.com/a",
            "https://example.com/b"
        ));
        assert!(!same_target_uri(
            "http://example.com/a",
            "https://example.com/a"
        ));
        assert!(!same_target_uri("/a", "https://example.com/a"));
    }

    #[test]
    fn headers_are_one_text_value() {
        assert_eq!(
            DpopHeader::from_values(std::iter::empty()),
            DpopHeader::Absent
        );
        assert_eq!(
            DpopHeader::from_values([&b"a.b.c"[..]].into_iter()),
            DpopHeader::One("a.b.c".into())
        );
        assert_eq!(
            DpopHeader::from_values([&b"a"[..], &b"b"[..]].into_iter()),
            DpopHeader::Malformed
        );
        assert_eq!(
            DpopHeader::from_values([&[0xff][..]].into_iter()),
            DpopHeader::Malformed
        );
    }

    #[test]
    fn thumbprints_are_43_base64url_characters() {
        assert!(is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert!(!is_thumbprint("short"));
        assert!(!is_thumbprint(
            "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        ));
    }
}
