//! Past 700 lines, still one idea: key material and compact JWS, the server's and its
//! clients' (which algorithms and keys a client may sign with, and for how long its JWTs hold).
//!
//! JOSE key material (RFC 7515, RFC 7517, RFC 7518): the algorithms Doorward signs with, key
//! generation, public JWKs with RFC 7638 thumbprints, private keys sealed at rest, and the ring
//! of loaded keys that signs and verifies compact JWS. No storage and no schedule: when a key
//! signs is [`crate::keys`]' business (staged rotation).

//!
//! Private keys (and the server's secrets) are sealed with XChaCha20-Poly1305 when a
//! key-encryption secret is configured, so the store never holds them in the clear. With a
//! secret configured, a key stored in the clear is refused, never used: anyone who can write
//! to the database could otherwise plant a key of their own and sign tokens this server would
//! accept. Rows written before the secret was set are sealed once by `doorward keys seal`
//! ([`crate::keys::seal_stored_keys`]).

use std::fmt;
use std::sync::{Arc, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
/// A JWK Set (RFC 7517 §5): a client's public keys ([`parse_client_jwks`]).
pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::{Random, UnixTime};

/// A JWS algorithm Doorward signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256: the default (small keys, fast signatures).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key: what OIDC requires every provider
    /// to support (OIDC Core §15.1) and the default of `id_token_signed_response_alg`.
    Rs256,
    /// Ed25519, under the name `EdDSA` that today's clients expect (RFC 8037), which RFC 9864
    /// §4 deprecates.
    EdDsa,
    /// Ed25519 under its fully-specified name (RFC 9864 §2.2): the same signature as
    /// [`SigningAlg::EdDsa`], its own key. The JWS library does not know the name, so these
    /// tokens are signed and verified by [`KeyRing`] itself; the key's JWK has no `alg`.
    Ed25519,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 4] = [
        SigningAlg::Es256,
        SigningAlg::Rs256,
        SigningAlg::EdDsa,
        SigningAlg::Ed25519,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The names `parse` accepts, for messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            // The signature is EdDSA's; only the header's name differs.
            Self::EdDsa | Self::Ed25519 => Algorithm::EdDSA,
        }
    }

    pub(crate) fn from_jwt(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::ES256 => Some(Self::Es256),
            Algorithm::RS256 => Some(Self::Rs256),
            Algorithm::EdDSA => Some(Self::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a JWS was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed with an unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("issued by another server")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("invalid claims")]
    InvalidClaims,
}

/// Why a JWS could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("no active signing key for {0}")]
    NoActiveKey(SigningAlg),
    #[error("JWS encoding failed")]
    Encode(#[source] jsonwebtoken::errors::Error),
}

/// A key ready to sign and verify.
pub(crate) struct LoadedKey {
    pub(crate) record: KeyMeta,
    encoding: EncodingKey,
    /// The private key parsed once, for the algorithms whose parse costs as much as a
    /// signature (the JWS library parses its DER at every signature: BENCHMARKS.md).
    signer: Option<ParsedSigner>,
    decoding: DecodingKey,
    pub(crate) jwk: Jwk,
}

/// A private key parsed once at load.
enum ParsedSigner {
    Es256(p256::ecdsa::SigningKey),
    Rs256(rsa::pkcs1v15::SigningKey<sha2::Sha256>),
    /// `EdDSA` and `Ed25519` (one signature, two names).
    Ed25519(ed25519_dalek::SigningKey),
}

impl ParsedSigner {
    /// The key of `der` (as [`generate_der`] writes it); `None` when the DER does not parse
    /// (the JWS library then signs, and says what is wrong).
    fn parse(alg: SigningAlg, der: &[u8]) -> Option<Self> {
        match alg {
            SigningAlg::Es256 => {
                use p256::pkcs8::DecodePrivateKey;
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .ok()
                    .map(Self::Es256)
            }
            SigningAlg::Rs256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                rsa::RsaPrivateKey::from_pkcs1_der(der)
                    .ok()
                    .map(|key| Self::Rs256(rsa::pkcs1v15::SigningKey::new(key)))
            }
            SigningAlg::EdDsa | SigningAlg::Ed25519 => {
                // The 48-byte PKCS#8 form of `generate_der`: the seed is its last 32 bytes.
                let seed: [u8; 32] = der
                    .strip_prefix(&ED25519_PKCS8_PREFIX[..])?
                    .try_into()
                    .ok()?;
                Some(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
        }
    }

    /// The JWS signature of `message` (RFC 7518 §3.3 RSASSA-PKCS1-v1_5 with SHA-256; §3.4
    /// ECDSA P-256 SHA-256 as the 64 bytes of R and S).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding, Signer};
        match self {
            Self::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Self::Rs256(key) => key.sign(message).to_vec(),
            Self::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
        }
    }
}

impl LoadedKey {
    /// Opens a stored key: `private_key` as [`Sealer::seal`] wrote it, `public_jwk` as JSON.
    pub(crate) fn open(
        record: KeyMeta,
        private_key: &[u8],
        public_jwk: &str,
        sealer: &Sealer,
    ) -> Result<Self, KeyLoadError> {
        let der = sealer.open(&record.kid, private_key)?;
        let corrupt = || KeyLoadError::Corrupt(record.kid.clone());
        let jwk: Jwk = serde_json::from_str(public_jwk).map_err(|_| corrupt())?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| corrupt())?;
        Ok(Self {
            encoding: encoding_key(record.alg, &der),
            signer: ParsedSigner::parse(record.alg, &der),
            decoding,
            jwk,
            record,
        })
    }
}

/// What is known of a key besides its material: the times of its stages.
#[derive(Clone)]
pub(crate) struct KeyMeta {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlg,
    pub(crate) generation: i64,
    pub(crate) created_at: UnixTime,
    pub(crate) activate_at: UnixTime,
    pub(crate) remove_at: Option<UnixTime>,
}

/// The keys an instance has loaded from the store.
#[derive(Default)]
pub(crate) struct KeyRing {
    keys: RwLock<Arc<Vec<LoadedKey>>>,
}

impl KeyRing {
    pub(crate) fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn replace(&self, keys: Vec<LoadedKey>) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// Whether `alg` has a key that signs at `now`.
    pub(crate) fn has_active(&self, alg: SigningAlg, now: UnixTime) -> bool {
        self.snapshot().iter().any(|k| {
            k.record.alg == alg
                && k.record.activate_at <= now
                && k.record.remove_at.is_none_or(|t| t > now)
        })
    }

    /// Signs `claims` as a compact JWS with the key of `alg` that signs at `now` (the highest
    /// generation already active), with header `typ` when given (RFC 9068 §2.1 wants `at+jwt`).
    pub(crate) fn sign<T: Serialize>(
        &self,
        alg: SigningAlg,
        now: UnixTime,
        typ: Option<&str>,
        claims: &T,
    ) -> Result<String, SignError> {
        let keys = self.snapshot();
        let key = keys
            .iter()
            .filter(|k| k.record.alg == alg && k.record.activate_at <= now)
            .max_by_key(|k| k.record.generation)
            .ok_or(SignError::NoActiveKey(alg))?;
        if let Some(signer) = &key.signer {
            return compact(alg.as_str(), &key.record.kid, typ, claims, |message| {
                Ok(signer.sign(message))
            });
        }
        if alg == SigningAlg::Ed25519 {
            // A name the JWS library cannot write, and a key that did not parse.
            return Err(SignError::Encode(
                jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into(),
            ));
        }
        let mut header = Header::new(alg.jwt());
        header.kid = Some(key.record.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(SignError::Encode)
    }

    /// Verifies a JWS (not an RFC 9068 access token) signed with a key of this ring: signature,
    /// `iss` = `issuer`, and `exp` unless `allow_expired`. Audience is the caller's to check.
    pub(crate) fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        allow_expired: bool,
    ) -> Result<T, JwsError> {
        if raw_header(token)
            .as_ref()
            .and_then(|h| h.get("alg"))
            .and_then(|a| a.as_str())
            == Some("Ed25519")
        {
            return self.verify_ed25519(token, issuer, allow_expired);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwsError::Malformed)?;
        if header.typ.as_deref() == Some("at+jwt") {
            // An access token is not an ID token (RFC 9068 §4).
            return Err(JwsError::InvalidClaims);
        }
        let alg = SigningAlg::from_jwt(header.alg).ok_or(JwsError::BadSignature)?;
        let kid = header.kid.ok_or(JwsError::UnknownKey)?;
        let keys = self.snapshot();
        let key = keys
            .iter()
            .find(|k| k.record.kid == kid && k.record.alg == alg)
            .ok_or(JwsError::UnknownKey)?;
        let mut validation = Validation::new(alg.jwt());
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = !allow_expired;
        validation.leeway = 60;
        validation.set_required_spec_claims(&["iss", "sub", "exp"]);
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => JwsError::BadSignature,
                    ErrorKind::InvalidIssuer => JwsError::WrongIssuer,
                    ErrorKind::ExpiredSignature => JwsError::Expired,
                    ErrorKind::InvalidToken | ErrorKind::Base64(_) => JwsError::Malformed,
                    _ => JwsError::InvalidClaims,
                }
            })
    }
}

impl KeyRing {
    /// [`KeyRing::verify`] for a JWS whose header says `Ed25519` (RFC 9864): the signature
    /// checked as EdDSA with the ring's `Ed25519` key of its `kid`, then the same claims.
    fn verify_ed25519<T: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        allow_expired: bool,
    ) -> Result<T, JwsError> {
        let header = raw_header(token).ok_or(JwsError::Malformed)?;
        if header.get("typ").and_then(|t| t.as_str()) == Some("at+jwt") {
            return Err(JwsError::InvalidClaims);
        }
        let kid = header
            .get("kid")
            .and_then(|k| k.as_str())
            .ok_or(JwsError::UnknownKey)?;
        let keys = self.snapshot();
        let key = keys
            .iter()
            .find(|k| k.record.kid == kid && k.record.alg == SigningAlg::Ed25519)
            .ok_or(JwsError::UnknownKey)?;
        let (message, signature) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
        let good = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.decoding,
            Algorithm::EdDSA,
        )
        .map_err(|_| JwsError::Malformed)?;
        if !good {
            return Err(JwsError::BadSignature);
        }
        let claims: serde_json::Value = unverified_claims(token)?;
        if claims.get("iss").and_then(|i| i.as_str()) != Some(issuer) {
            return Err(JwsError::WrongIssuer);
        }
        if claims.get("sub").is_none() {
            return Err(JwsError::InvalidClaims);
        }
        let exp = claims
            .get("exp")
            .and_then(|e| e.as_i64())
            .ok_or(JwsError::InvalidClaims)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if !allow_expired && exp + 60 < now {
            return Err(JwsError::Expired);
        }
        serde_json::from_value(claims).map_err(|_| JwsError::InvalidClaims)
    }
}

/// The JOSE header of a compact JWS as JSON, unchecked.
fn raw_header(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A compact JWS (RFC 7515 §7.1) written here: the header (`alg`, `kid`, `typ`) and claims
/// encoded, `sign` given the signing input and answering the signature's bytes. For the keys
/// parsed once ([`ParsedSigner`]), `alg: Ed25519` (RFC 9864 §2.2) among them, a name the JWS
/// library cannot write in a header.
fn compact<T: Serialize>(
    alg: &str,
    kid: &str,
    typ: Option<&str>,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, SignError>,
) -> Result<String, SignError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({ "alg": alg, "kid": kid });
    if let Some(typ) = typ {
        header["typ"] = typ.into();
    }
    // Invariant: JSON values and serializable claims encode.
    let header = b64.encode(serde_json::to_vec(&header).expect("a JSON object encodes"));
    let payload = b64.encode(
        serde_json::to_vec(claims)
            .map_err(|e| SignError::Encode(jsonwebtoken::errors::Error::from(e)))?,
    );
    let message = format!("{header}.{payload}");
    let signature = b64.encode(sign(message.as_bytes())?);
    Ok(format!("{message}.{signature}"))
}

/// The claims of a compact JWS, read WITHOUT checking its signature: only for a value that
/// may restrict what happens and never vouch for anything (an `id_token_hint` whose key is
/// gone, see `authorize.rs`).
pub(crate) fn unverified_claims<T: DeserializeOwned>(token: &str) -> Result<T, JwsError> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwsError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwsError::InvalidClaims)
}

/// Seals private keys at rest with a key derived from the operator's secret.
#[derive(Clone, Default)]
pub(crate) struct Sealer(Option<[u8; 32]>);

const SEALED: &[u8] = b"x1";
const PLAIN: &[u8] = b"p1";

impl Sealer {
    pub(crate) fn new(secret: Option<&str>) -> Self {
        Self(secret.map(|s| {
            let mut hasher = Sha256::new();
            hasher.update(b"doorward key encryption v1\0");
            hasher.update(s.as_bytes());
            hasher.finalize().into()
        }))
    }

    pub(crate) fn seal(&self, kid: &str, der: &[u8], random: &dyn Random) -> Vec<u8> {
        let Some(key) = &self.0 else {
            return [PLAIN, der].concat();
        };
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut nonce = [0u8; 24];
        random.fill(&mut nonce);
        // Invariant: encryption with a valid key and nonce does not fail.
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: der,
                    aad: kid.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail");
        [SEALED, &nonce, &sealed].concat()
    }

    pub(crate) fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, KeyLoadError> {
        if let Some(der) = stored.strip_prefix(PLAIN) {
            return match self.0 {
                None => Ok(der.to_vec()),
                Some(_) => Err(KeyLoadError::Unsealed(kid.to_owned())),
            };
        }
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Err(KeyLoadError::Corrupt(kid.to_owned()));
        };
        let Some(key) = &self.0 else {
            return Err(KeyLoadError::SecretMissing(kid.to_owned()));
        };
        if rest.len() < 24 {
            return Err(KeyLoadError::Corrupt(kid.to_owned()));
        }
        let (nonce, sealed) = rest.split_at(24);
        XChaCha20Poly1305::new(key.into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyLoadError::WrongSecret(kid.to_owned()))
    }

    /// Whether a secret is configured (what [`Sealer::seal`] writes is then sealed).
    pub(crate) fn is_sealing(&self) -> bool {
        self.0.is_some()
    }

    /// A stored private key sealed, when it was stored in the clear (`None` when it already is
    /// sealed, or when no secret is configured).
    pub(crate) fn reseal(&self, kid: &str, stored: &[u8], random: &dyn Random) -> Option<Vec<u8>> {
        let der = stored.strip_prefix(PLAIN)?;
        self.is_sealing().then(|| self.seal(kid, der, random))
    }

    /// A server secret (the CSRF and re-authentication HMAC key) as the store keeps it: sealed
    /// under the name `name` when a secret is configured, else as is.
    pub(crate) fn seal_secret(&self, name: &str, value: &[u8], random: &dyn Random) -> Vec<u8> {
        match self.0 {
            None => value.to_vec(),
            Some(_) => self.seal(&secret_aad(name), value, random),
        }
    }

    /// The server secret `name` from what the store keeps. Secrets written before sealing are
    /// the bare 32 random bytes; with a secret configured they are refused like a plaintext key.
    pub(crate) fn open_secret(&self, name: &str, stored: &[u8]) -> Result<Vec<u8>, KeyLoadError> {
        let aad = secret_aad(name);
        match (self.0, is_sealed_secret(stored)) {
            (None, false) => Ok(stored.to_vec()),
            (Some(_), false) => Err(KeyLoadError::Unsealed(aad)),
            (_, true) => self.open(&aad, stored),
        }
    }
}

/// The associated data of a sealed server secret: its name, apart from every `kid`.
fn secret_aad(name: &str) -> String {
    format!("server-secret:{name}")
}

/// A sealed server secret: the prefix, a 24-byte nonce, 32 bytes and the 16-byte tag. A
/// secret in the clear is 32 random bytes, so the two lengths tell them apart.
pub(crate) fn is_sealed_secret(stored: &[u8]) -> bool {
    stored.starts_with(SEALED) && stored.len() == SEALED.len() + 24 + SERVER_SECRET_LEN + 16
}

/// The name of the server secret that keys CSRF tokens and re-authentication markers.
pub(crate) const CSRF_SECRET: &str = "csrf";

/// The length of the server's secrets (HMAC-SHA256 keys).
pub(crate) const SERVER_SECRET_LEN: usize = 32;

/// Why the stored keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLoadError {
    #[error("key {0} is sealed but no key-encryption secret is configured")]
    SecretMissing(String),
    #[error("key {0} does not decrypt with the configured key-encryption secret")]
    WrongSecret(String),
    #[error("signing key {0} is stored in an unknown format")]
    Corrupt(String),
    #[error(
        "key {0} is stored in the clear although a key-encryption secret is configured: it is not \
         used (seal the keys written before the secret was set with `doorward keys seal`)"
    )]
    Unsealed(String),
}

/// `rand_core` over the engine's [`Random`] port, for key generation.
struct PortRng<'a>(&'a dyn Random);

impl rand::RngCore for PortRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand::CryptoRng for PortRng<'_> {}

/// The PKCS#8 v1 header of an Ed25519 private key without its public key (RFC 8410 §7): the
/// 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new private key in the DER form the JWS library reads: PKCS#8 for EC and Ed25519, PKCS#1
/// for RSA.
pub(crate) fn generate_der(alg: SigningAlg, random: &dyn Random) -> Vec<u8> {
    let mut rng = PortRng(random);
    match alg {
        SigningAlg::Es256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::random(&mut rng);
            // Invariant: encoding a valid P-256 key does not fail.
            key.to_pkcs8_der()
                .expect("a P-256 key encodes as PKCS#8")
                .as_bytes()
                .to_vec()
        }
        SigningAlg::Rs256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            // Invariant: 2048-bit generation from a working generator does not fail.
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA-2048 key generation");
            key.to_pkcs1_der()
                .expect("an RSA key encodes as PKCS#1")
                .as_bytes()
                .to_vec()
        }
        SigningAlg::EdDsa | SigningAlg::Ed25519 => {
            // PKCS#8 v1 (RFC 8410 §7) without the optional public key: the 48-byte form.
            let key = ed25519_dalek::SigningKey::generate(&mut rng);
            let mut der = ED25519_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(key.as_bytes());
            der
        }
    }
}

pub(crate) fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(der),
        SigningAlg::Rs256 => EncodingKey::from_rsa_der(der),
        SigningAlg::EdDsa | SigningAlg::Ed25519 => EncodingKey::from_ed_der(der),
    }
}

/// The public JWK of a private key, with `kid` = its RFC 7638 thumbprint, `use: sig`, `alg`
/// (but for [`SigningAlg::Ed25519`]).
pub(crate) fn public_jwk(alg: SigningAlg, der: &[u8]) -> Result<Jwk, jsonwebtoken::errors::Error> {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, der), alg.jwt())?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid);
    if alg == SigningAlg::Ed25519 {
        // The JWK library has no `Ed25519` value for `alg`, and a key marked `EdDSA` must
        // not verify `Ed25519` tokens: the member is left out (optional, RFC 7517 §4.4).
        jwk.common.key_algorithm = None;
    }
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

/// The members of a JWK that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2,
/// §6.4; RFC 8037 §2): a client's registered key set must hold none.
pub(crate) const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The most keys a client may register.
const MAX_CLIENT_KEYS: usize = 16;

/// A client's JWK Set for `private_key_jwt` (OIDC Registration `jwks`, RFC 7517 §5), checked:
/// a `keys` array of 1 to 16 public keys, each RSA, EC P-256 or OKP Ed25519, with no private
/// or symmetric member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`), usable for verification,
/// with `use` `sig` if any and an `alg` (if any) that `private_key_jwt` accepts. A private
/// key pasted by mistake is refused, never stored.
///
/// ```
/// use doorward_core::jose::parse_client_jwks;
///
/// // RFC 7517 Appendix A.1's EC public key.
/// let public = r#"{"kty":"EC","crv":"P-256","kid":"1",
///     "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///     "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#;
/// let set = parse_client_jwks(&format!(r#"{{"keys":[{public}]}}"#)).unwrap();
/// assert_eq!(set.keys.len(), 1);
/// // The same key with its private part (A.2's `d`) is refused.
/// let private = public.replace(r#""kid""#, r#""d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","kid""#);
/// let refused = parse_client_jwks(&format!(r#"{{"keys":[{private}]}}"#)).unwrap_err();
/// assert!(refused.contains("`d`"));
/// ```
pub fn parse_client_jwks(json: &str) -> Result<JwkSet, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("a JWK Set is an object with a `keys` array")?;
    if keys.is_empty() || keys.len() > MAX_CLIENT_KEYS {
        return Err(format!("a client registers 1 to {MAX_CLIENT_KEYS} keys"));
    }
    for (i, key) in keys.iter().enumerate() {
        let object = key.as_object().ok_or(format!("key {i} is not an object"))?;
        if let Some(member) = PRIVATE_JWK_MEMBERS
            .iter()
            .find(|m| object.contains_key(**m))
        {
            return Err(format!(
                "key {i} has the private member `{member}`: register public keys only"
            ));
        }
        match (
            object.get("kty").and_then(serde_json::Value::as_str),
            object.get("crv").and_then(serde_json::Value::as_str),
        ) {
            (Some("RSA"), _) | (Some("EC"), Some("P-256")) | (Some("OKP"), Some("Ed25519")) => {}
            _ => return Err(format!("key {i}: only RSA, EC P-256 and OKP Ed25519 keys")),
        }
        // The JWS library reads an Ed25519 key's first 32 bytes without checking its length:
        // a shorter one would panic at the first assertion, a longer one verify as its prefix.
        let length = |name: &str| {
            use base64::Engine as _;
            object
                .get(name)
                .and_then(serde_json::Value::as_str)
                .and_then(|v| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v)
                        .ok()
                })
                .map(|v| v.len())
        };
        let whole = match object.get("kty").and_then(serde_json::Value::as_str) {
            Some("OKP") => length("x") == Some(32),
            Some("EC") => length("x") == Some(32) && length("y") == Some(32),
            _ => true,
        };
        if !whole {
            return Err(format!(
                "key {i}: its coordinates are not those of a whole key"
            ));
        }
        if object.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(format!("key {i}: `use` must be `sig`"));
        }
        if let Some(alg) = object.get("alg") {
            if !alg
                .as_str()
                .is_some_and(|a| CLIENT_KEY_ALGS.iter().any(|ok| ok.as_str() == a))
            {
                return Err(format!(
                    "key {i}: `alg` must be one of {}",
                    client_key_alg_names().join(", ")
                ));
            }
        }
    }
    let set: JwkSet = serde_json::from_value(value).map_err(|e| format!("not a JWK Set: {e}"))?;
    for (i, jwk) in set.keys.iter().enumerate() {
        DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i} is not usable: {e}"))?;
    }
    Ok(set)
}

/// The algorithms a `private_key_jwt` assertion may be signed with (never `none`, never HMAC:
/// a public key is no HMAC secret).
pub const CLIENT_KEY_ALGS: [AlgName; 4] = [
    AlgName::Rs256,
    AlgName::Ps256,
    AlgName::Es256,
    AlgName::EdDsa,
];

/// How far ahead the `exp` of a JWT a client made (an assertion, a request object) may be: one
/// hour, the bound Okta and Google's JWT bearer also set, and what Authlib's `PrivateKeyJWT`
/// and `ClientSecretJWT` give their assertions (`exp = iat + 3600`, not configurable through
/// those classes); a 5-minute bound would refuse them.
pub const CLIENT_JWT_MAX_LIFETIME: i64 = 3600;

/// The clock difference tolerated between a client and this server (30 s).
pub const CLIENT_JWT_SKEW: i64 = 30;

/// The algorithms a `client_secret_jwt` assertion may be MACed with.
pub const CLIENT_SECRET_ALGS: [AlgName; 3] = [AlgName::Hs256, AlgName::Hs384, AlgName::Hs512];

/// A JWS algorithm accepted from clients (their assertions), by its registered name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgName {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

impl AlgName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Hs256 => Algorithm::HS256,
            Self::Hs384 => Algorithm::HS384,
            Self::Hs512 => Algorithm::HS512,
        }
    }

    /// The shortest HMAC key for this algorithm: the size of the hash output (RFC 7518 §3.2).
    pub(crate) fn min_secret_len(self) -> usize {
        match self {
            Self::Hs384 => 48,
            Self::Hs512 => 64,
            _ => 32,
        }
    }
}

fn client_key_alg_names() -> Vec<&'static str> {
    CLIENT_KEY_ALGS.iter().map(|a| a.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let random = crate::testing::SeqRandom::default();
        let sealer = Sealer::new(Some("s3cret"));
        let sealed = sealer.seal("kid1", b"private der", &random);
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.windows(11).any(|w| w == b"private der"));
        assert_eq!(sealer.open("kid1", &sealed).unwrap(), b"private der");
        assert!(matches!(
            sealer.open("kid2", &sealed),
            Err(KeyLoadError::WrongSecret(_))
        ));
        assert!(matches!(
            Sealer::new(Some("other")).open("kid1", &sealed),
            Err(KeyLoadError::WrongSecret(_))
        ));
        assert!(matches!(
            Sealer::new(None).open("kid1", &sealed),
            Err(KeyLoadError::SecretMissing(_))
        ));
    }

    /// With a secret configured, a key stored in the clear (planted by anyone who can write to
    /// the database) is refused, and `reseal` turns it into a sealed one.
    #[test]
    fn plaintext_keys_are_refused_once_a_secret_is_configured() {
        let random = crate::testing::SeqRandom::default();
        let plain = Sealer::new(None).seal("kid1", b"der", &random);
        assert_eq!(Sealer::new(None).open("kid1", &plain).unwrap(), b"der");
        let sealer = Sealer::new(Some("s3cret"));
        assert!(matches!(
            sealer.open("kid1", &plain),
            Err(KeyLoadError::Unsealed(kid)) if kid == "kid1"
        ));
        let resealed = sealer.reseal("kid1", &plain, &random).unwrap();
        assert_eq!(sealer.open("kid1", &resealed).unwrap(), b"der");
        assert!(sealer.reseal("kid1", &resealed, &random).is_none());
        assert!(Sealer::new(None).reseal("kid1", &plain, &random).is_none());
    }

    #[test]
    fn server_secrets_are_sealed_and_plaintext_ones_refused_with_a_secret() {
        let random = crate::testing::SeqRandom::default();
        let value = [7u8; SERVER_SECRET_LEN];
        let sealer = Sealer::new(Some("s3cret"));
        let sealed = sealer.seal_secret("csrf", &value, &random);
        assert!(is_sealed_secret(&sealed));
        assert_eq!(sealer.open_secret("csrf", &sealed).unwrap(), value);
        assert!(sealer.open_secret("other", &sealed).is_err());
        assert!(matches!(
            sealer.open_secret("csrf", &value),
            Err(KeyLoadError::Unsealed(_))
        ));
        let plain = Sealer::new(None);
        assert_eq!(plain.seal_secret("csrf", &value, &random), value);
        assert_eq!(plain.open_secret("csrf", &value).unwrap(), value);
        assert!(matches!(
            plain.open_secret("csrf", &sealed),
            Err(KeyLoadError::SecretMissing(_))
        ));
    }

    /// A client's Ed25519 or EC key must be whole: the JWS library would panic on a short
    /// Ed25519 key at the first assertion.
    #[test]
    fn client_keys_with_short_coordinates_are_refused() {
        for key in [
            r#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#,
        ] {
            let refused = parse_client_jwks(&format!(r#"{{"keys":[{key}]}}"#));
            assert!(refused.is_err(), "{key}");
        }
    }

    #[test]
    fn generated_keys_sign_and_verify_with_their_public_jwk() {
        let random = crate::testing::SeqRandom::default();
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
            let der = generate_der(alg, &random);
            let jwk = public_jwk(alg, &der).unwrap();
            let value = serde_json::to_value(&jwk).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(value.get(private).is_none(), "{alg}: {private} published");
            }
            let token = jsonwebtoken::encode(
                &Header::new(alg.jwt()),
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                &encoding_key(alg, &der),
            )
            .unwrap();
            let mut validation = Validation::new(alg.jwt());
            validation.validate_aud = false;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            );
            assert!(decoded.is_ok(), "{alg}: {decoded:?}");
        }
    }

    /// The keys parsed once sign what the JWS library verifies with the public JWK (RS256,
    /// ES256, EdDSA), and the header names the algorithm and the key.
    #[test]
    fn parsed_signers_write_what_the_library_verifies() {
        let random = crate::testing::SeqRandom::default();
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            let der = generate_der(alg, &random);
            let signer = ParsedSigner::parse(alg, &der).expect("a generated key parses");
            let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
            let token = compact(alg.as_str(), "k1", Some("at+jwt"), &claims, |m| {
                Ok(signer.sign(m))
            })
            .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(
                (header.kid.as_deref(), header.typ.as_deref()),
                (Some("k1"), Some("at+jwt"))
            );
            let mut validation = Validation::new(alg.jwt());
            validation.validate_aud = false;
            let jwk = public_jwk(alg, &der).unwrap();
            let decoded = jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            );
            assert!(decoded.is_ok(), "{alg}: {decoded:?}");
        }
        assert!(ParsedSigner::parse(SigningAlg::Es256, b"not a key").is_none());
        assert!(ParsedSigner::parse(SigningAlg::Ed25519, &[0; 48]).is_none());
    }
}
