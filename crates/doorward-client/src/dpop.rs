//! DPoP (RFC 9449) on the client side: the key that tokens are bound to, the proof made for
//! each request, and the server nonces (§8) remembered per origin.
//!
//! With a [`DpopKey`] ([`crate::ClientBuilder::dpop`], or `dpop = true` in a provider's
//! config), the client sends a proof with every token and pushed-authorization request, names
//! its key's thumbprint as `dpop_jkt` in authorization requests (§10), and presents a token
//! whose `token_type` is `DPoP` with `Authorization: DPoP` and a proof carrying the token's
//! hash (`ath`, §7). A `use_dpop_nonce` answer is retried once with the nonce it carries.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::ConfigError;
use crate::state::random_token;

/// The key a client binds its tokens to (ES256, P-256). Cheap to clone; keep the same key for
/// as long as the tokens bound to it are used (a refresh token of a public client is bound to
/// it too).
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    encoding: EncodingKey,
    jwk: Jwk,
    thumbprint: String,
    /// The PKCS#8 DER of the private key, for [`DpopKey::to_pkcs8_der`].
    der: Vec<u8>,
}

impl DpopKey {
    /// A new random P-256 key.
    pub fn generate() -> Self {
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        // Invariant: a valid P-256 key encodes as PKCS#8.
        let der = secret
            .to_pkcs8_der()
            .expect("a P-256 key encodes as PKCS#8")
            .as_bytes()
            .to_vec();
        // Invariant: the DER just made is a P-256 key.
        Self::from_pkcs8_der(&der).expect("a generated key loads")
    }

    /// A P-256 private key in PKCS#8 DER (what [`DpopKey::to_pkcs8_der`] wrote), to keep one
    /// key across restarts.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            provider: String::new(),
            reason,
        };
        let encoding = EncodingKey::from_ec_der(der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|e| invalid(format!("the DPoP key is not a P-256 key: {e}")))?;
        jwk.common.key_algorithm = None;
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| invalid(format!("the DPoP key has no thumbprint: {e}")))?;
        Ok(Self {
            inner: Arc::new(KeyInner {
                encoding,
                jwk,
                thumbprint,
                der: der.to_vec(),
            }),
        })
    }

    /// The private key in PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.inner.der.clone()
    }

    /// The RFC 7638 thumbprint of the public key: `dpop_jkt`, and the `cnf.jkt` of the tokens
    /// bound to it.
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// A proof (RFC 9449 §4.2) for a `method` request to `url` (its query and fragment left
    /// out of `htu`), with the hash of `access_token` (`ath`) and `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = serde_json::json!({
            "jti": random_token(),
            "htm": method,
            "htu": htu.as_str(),
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.inner.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.inner.encoding)
    }
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.inner.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The latest `DPoP-Nonce` each origin (an authorization server, a resource server) sent.
#[derive(Default)]
pub(crate) struct Nonces {
    by_origin: Mutex<HashMap<String, String>>,
}

/// Nonces kept at most (origins a client talks to are few).
const MAX_ORIGINS: usize = 64;

impl Nonces {
    pub(crate) fn get(&self, url: &Url) -> Option<String> {
        let nonces = self.by_origin.lock().unwrap_or_else(|e| e.into_inner());
        nonces.get(&url.origin().ascii_serialization()).cloned()
    }

    /// Keeps the `DPoP-Nonce` of a response from `url`'s origin, if it has one.
    pub(crate) fn remember(&self, url: &Url, headers: &HeaderMap) {
        let Some(nonce) = headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 1024)
        else {
            return;
        };
        let mut nonces = self.by_origin.lock().unwrap_or_else(|e| e.into_inner());
        if nonces.len() >= MAX_ORIGINS {
            nonces.clear();
        }
        nonces.insert(url.origin().ascii_serialization(), nonce.to_owned());
    }
}

/// Whether an authorization server's answer asks for a nonce (§8: 400 `use_dpop_nonce`).
pub(crate) fn token_endpoint_wants_nonce(status: u16, body: &[u8], headers: &HeaderMap) -> bool {
    status == 400
        && headers.contains_key("dpop-nonce")
        && serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v["error"] == "use_dpop_nonce")
}

/// Whether a resource server's answer asks for a nonce (§9: 401 with a `DPoP` challenge
/// whose error is `use_dpop_nonce`).
pub(crate) fn resource_wants_nonce(status: u16, headers: &HeaderMap) -> bool {
    status == 401
        && headers.contains_key("dpop-nonce")
        && headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("use_dpop_nonce"))
}

/// The `DPoP` header value of a proof.
pub(crate) fn header_value(proof: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(proof).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_carries_its_key_and_the_request() {
        let key = DpopKey::generate();
        let url = Url::parse("https://as.example/token?x=1#f").unwrap();
        let proof = key
            .proof("POST", &url, Some("tok"), Some("n1"), 1_700_000_000)
            .unwrap();
        let header = jsonwebtoken::decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            key.thumbprint()
        );
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &proof,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["htu"], "https://as.example/token");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok"))
        );
        let again = DpopKey::from_pkcs8_der(&key.to_pkcs8_der()).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
    }
}
