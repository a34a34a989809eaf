//! Signing keys: generation, staged rotation, the JWK Set, and JWS signing and verification
//! (RFC 7515, RFC 7517, RFC 7518; OIDC Core §10.1 on rotation).
//!
//! # Staged rotation
//! Relying parties cache the JWK Set. A key that signs before they have seen it makes them
//! reject valid tokens (the complaint behind node-oidc-provider #651 and Hydra #2535), so every
//! key goes through four stages, all derived from times stored with the key:
//!
//! | stage     | published in JWKS | signs | until                                         |
//! |-----------|-------------------|-------|-----------------------------------------------|
//! | next      | yes               | no    | `activate_at` (≥ creation + publish delay)     |
//! | active    | yes               | yes   | its successor's `activate_at`                 |
//! | retiring  | yes               | no    | `remove_at` (the last token it signed expired)|
//! | removed   | no                | no    | deleted from the store                        |
//!
//! The signer of an algorithm at time `t` is the key with the highest generation whose
//! `activate_at ≤ t`. Instances sharing a store agree on it without talking to each other: a
//! key is created once per `(algorithm, generation)` (the store refuses a second insert, and the
//! loser reloads), and activation happens at a stored time, not when an instance notices.
//!
//! Private keys are sealed with XChaCha20-Poly1305 when a key-encryption secret is configured,
//! so the store never holds them in the clear.

use std::fmt;
use std::sync::{Arc, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::Error;
use crate::model::SigningKeyRecord;
use crate::ports::{Random, StoreError, UnixTime};
use crate::Engine;

/// A JWS algorithm Doorward signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256: the default (small keys, fast signatures).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key: what OIDC requires every provider
    /// to support (OIDC Core §15.1) and the default of `id_token_signed_response_alg`.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    fn from_jwt(alg: Algorithm) -> Option<Self> {
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

/// The key schedule.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    /// Algorithms to keep a key for; the first signs JWT access tokens.
    pub algorithms: Vec<SigningAlg>,
    /// How long a new key is published before it signs. Must exceed the JWKS cache lifetime
    /// announced to relying parties plus the instances' reload interval.
    pub publish_delay: i64,
    /// How long a key signs before its successor takes over.
    pub rotation_period: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            algorithms: vec![SigningAlg::Es256, SigningAlg::Rs256],
            publish_delay: 24 * 3600,
            rotation_period: 90 * 24 * 3600,
        }
    }
}

/// How often an instance reloads the keys from the store (the serve loop's period). Keys are
/// created a publish delay ahead of use, so a reload this late still sees them in time.
pub const RELOAD_INTERVAL: i64 = 30;

/// Where a key is in its life (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStage {
    Next,
    Active,
    Retiring,
}

impl KeyStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
        }
    }
}

/// A key as an operator sees it.
#[derive(Clone, Debug)]
pub struct KeyStatus {
    pub kid: String,
    pub alg: SigningAlg,
    pub generation: i64,
    pub stage: KeyStage,
    pub created_at: UnixTime,
    pub activate_at: UnixTime,
    pub remove_at: Option<UnixTime>,
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

/// A key ready to sign and verify.
struct LoadedKey {
    record: KeyMeta,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

#[derive(Clone)]
struct KeyMeta {
    kid: String,
    alg: SigningAlg,
    generation: i64,
    created_at: UnixTime,
    activate_at: UnixTime,
    remove_at: Option<UnixTime>,
}

/// The keys an instance has loaded from the store.
#[derive(Default)]
pub(crate) struct KeyRing {
    keys: RwLock<Arc<Vec<LoadedKey>>>,
}

impl KeyRing {
    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, keys: Vec<LoadedKey>) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }
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

    fn seal(&self, kid: &str, der: &[u8], random: &dyn Random) -> Vec<u8> {
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

    fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, KeyLoadError> {
        if let Some(der) = stored.strip_prefix(PLAIN) {
            return Ok(der.to_vec());
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
}

/// Why the stored keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLoadError {
    #[error("signing key {0} is encrypted but no key-encryption secret is configured")]
    SecretMissing(String),
    #[error("signing key {0} does not decrypt with the configured key-encryption secret")]
    WrongSecret(String),
    #[error("signing key {0} is stored in an unknown format")]
    Corrupt(String),
}

impl From<KeyLoadError> for StoreError {
    fn from(e: KeyLoadError) -> Self {
        StoreError::Other(Box::new(e))
    }
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

/// A new private key in the DER form the JWS library reads: PKCS#8 for EC and Ed25519, PKCS#1
/// for RSA.
fn generate_der(alg: SigningAlg, random: &dyn Random) -> Vec<u8> {
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
        SigningAlg::EdDsa => {
            // PKCS#8 v1 (RFC 8410 §7) without the optional public key: the 48-byte form.
            let key = ed25519_dalek::SigningKey::generate(&mut rng);
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend_from_slice(key.as_bytes());
            der
        }
    }
}

fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(der),
        SigningAlg::Rs256 => EncodingKey::from_rsa_der(der),
        SigningAlg::EdDsa => EncodingKey::from_ed_der(der),
    }
}

/// The public JWK of a private key, with `kid` = its RFC 7638 thumbprint, `use: sig`, `alg`.
fn public_jwk(alg: SigningAlg, der: &[u8]) -> Result<Jwk, jsonwebtoken::errors::Error> {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, der), alg.jwt())?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

fn load(record: &SigningKeyRecord, sealer: &Sealer) -> Result<LoadedKey, StoreError> {
    let der = sealer.open(&record.kid, &record.private_key)?;
    let corrupt = || StoreError::from(KeyLoadError::Corrupt(record.kid.clone()));
    let jwk: Jwk = serde_json::from_str(&record.public_jwk).map_err(|_| corrupt())?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| corrupt())?;
    Ok(LoadedKey {
        record: KeyMeta {
            kid: record.kid.clone(),
            alg: record.alg,
            generation: record.generation,
            created_at: record.created_at,
            activate_at: record.activate_at,
            remove_at: record.remove_at,
        },
        encoding: encoding_key(record.alg, &der),
        decoding,
        jwk,
    })
}

/// The stage of `key` among `keys` at `now`; `None` once removed.
fn stage_of(key: &KeyMeta, keys: &[&KeyMeta], now: UnixTime) -> Option<KeyStage> {
    if key.remove_at.is_some_and(|t| t <= now) {
        return None;
    }
    if key.activate_at > now {
        return Some(KeyStage::Next);
    }
    let superseded = keys.iter().any(|other| {
        other.alg == key.alg && other.generation > key.generation && other.activate_at <= now
    });
    Some(if superseded {
        KeyStage::Retiring
    } else {
        KeyStage::Active
    })
}

/// The half hash of OIDC Core §3.1.3.6 (`at_hash`): the left half of the hash of the token with
/// the hash function of the ID token's algorithm, base64url without padding. Ed25519 signs
/// with SHA-512, so EdDSA tokens use SHA-512 (what Authlib checks).
pub fn half_hash(alg: SigningAlg, token: &str) -> String {
    use base64::Engine as _;
    let encode = |half: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half);
    match alg {
        SigningAlg::Es256 | SigningAlg::Rs256 => encode(&Sha256::digest(token.as_bytes())[..16]),
        SigningAlg::EdDsa => encode(&sha2::Sha512::digest(token.as_bytes())[..32]),
    }
}

impl Engine {
    /// Creates what the schedule needs now (the first key of each algorithm, the next key when
    /// the active one nears the end of its period), schedules removals, deletes removed keys,
    /// and reloads the ring. Every instance runs it; the store arbitrates races.
    pub async fn maintain_keys(&self) -> Result<(), Error> {
        let now = self.now();
        let policy = &self.config.keys;
        let mut records = self.store.list_signing_keys().await?;
        for &alg in &policy.algorithms {
            let of_alg: Vec<&SigningKeyRecord> = records.iter().filter(|k| k.alg == alg).collect();
            let newest = of_alg.iter().map(|k| k.generation).max();
            let signer = of_alg
                .iter()
                .filter(|k| k.activate_at <= now)
                .max_by_key(|k| k.generation);
            let pending = of_alg.iter().any(|k| k.activate_at > now);
            match (newest, signer) {
                (None, _) => {
                    // On first start no relying party can have cached a JWKS, so the first
                    // keys sign at once. An algorithm added to a running deployment waits
                    // for the publish delay like any new key (the others sign meanwhile).
                    let activate_at = if records.is_empty() {
                        now
                    } else {
                        now + policy.publish_delay
                    };
                    self.create_key(alg, 1, activate_at).await?;
                }
                (Some(newest), Some(signer))
                    if !pending
                        && now
                            >= signer.activate_at + policy.rotation_period
                                - policy.publish_delay =>
                {
                    let activate_at = (now + policy.publish_delay)
                        .max(signer.activate_at + policy.rotation_period);
                    let signer_kid = signer.kid.clone();
                    if self.create_key(alg, newest + 1, activate_at).await? {
                        self.store
                            .schedule_key_removal(&signer_kid, activate_at + self.key_retention())
                            .await?;
                    }
                }
                _ => {}
            }
        }
        // Retirement, idempotently: a superseded key without a removal time (its successor's
        // insert succeeded but the scheduling did not), or a key of an algorithm no longer
        // configured, gets one.
        let retention = self.key_retention();
        for key in &records {
            if key.remove_at.is_some() {
                continue;
            }
            let successor = records
                .iter()
                .filter(|k| k.alg == key.alg && k.generation > key.generation)
                .map(|k| k.activate_at)
                .min();
            let remove_at = match successor {
                Some(activate_at) => Some(activate_at + retention),
                None if !policy.algorithms.contains(&key.alg) => Some(now + retention),
                None => None,
            };
            if let Some(remove_at) = remove_at {
                self.store.schedule_key_removal(&key.kid, remove_at).await?;
            }
        }
        for key in &records {
            if key.remove_at.is_some_and(|t| t <= now) {
                self.store.delete_signing_key(&key.kid).await?;
            }
        }
        records = self.store.list_signing_keys().await?;
        // A key that cannot be opened is left out, not the whole ring: the others keep
        // signing and verifying. The first failure is reported after the reload.
        let mut loaded = Vec::new();
        let mut failure = None;
        for record in records
            .iter()
            .filter(|k| k.remove_at.is_none_or(|t| t > now))
        {
            match load(record, &self.sealer) {
                Ok(key) => loaded.push(key),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        self.keys.replace(loaded);
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Starts a rotation now: a new key of `alg`, published at once and signing after the
    /// publish delay. When a rotation is already pending, returns that key instead.
    pub async fn rotate_key(&self, alg: SigningAlg) -> Result<KeyStatus, Error> {
        let now = self.now();
        let records = self.store.list_signing_keys().await?;
        let of_alg: Vec<&SigningKeyRecord> = records.iter().filter(|k| k.alg == alg).collect();
        let pending = of_alg
            .iter()
            .filter(|k| k.activate_at > now)
            .max_by_key(|k| k.generation);
        if pending.is_none() {
            let newest = of_alg.iter().map(|k| k.generation).max().unwrap_or(0);
            let signer = of_alg
                .iter()
                .filter(|k| k.activate_at <= now)
                .max_by_key(|k| k.generation)
                .map(|k| k.kid.clone());
            let activate_at = if signer.is_some() {
                now + self.config.keys.publish_delay
            } else {
                now
            };
            if self.create_key(alg, newest + 1, activate_at).await? {
                if let Some(kid) = signer {
                    self.store
                        .schedule_key_removal(&kid, activate_at + self.key_retention())
                        .await?;
                }
            }
        }
        self.maintain_keys().await?;
        self.key_status()
            .into_iter()
            .filter(|k| k.alg == alg)
            .max_by_key(|k| k.generation)
            .ok_or_else(|| StoreError::NotFound.into())
    }

    /// How long a key stays published after its last signature: the longest lifetime of what
    /// it signs, plus the reload lag of other instances and a minute of clock skew.
    fn key_retention(&self) -> i64 {
        let lifetimes = &self.config.lifetimes;
        lifetimes.id_token.max(lifetimes.access_token) + 2 * RELOAD_INTERVAL + 60
    }

    /// Generates and stores key `generation` of `alg`. `false` when another instance stored
    /// that generation first.
    async fn create_key(
        &self,
        alg: SigningAlg,
        generation: i64,
        activate_at: UnixTime,
    ) -> Result<bool, Error> {
        let random = std::sync::Arc::clone(&self.random);
        let der = tokio::task::spawn_blocking(move || generate_der(alg, random.as_ref()))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let jwk = public_jwk(alg, &der).map_err(|e| StoreError::Other(Box::new(e)))?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let record = SigningKeyRecord {
            private_key: self.sealer.seal(&kid, &der, self.random.as_ref()),
            public_jwk: serde_json::to_string(&jwk).map_err(|e| StoreError::Other(Box::new(e)))?,
            kid,
            alg,
            generation,
            created_at: self.now(),
            activate_at,
            remove_at: None,
        };
        Ok(self.store.insert_signing_key(&record).await?)
    }

    /// Every key not yet removed, with its stage now.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        let now = self.now();
        let keys = self.keys.snapshot();
        let metas: Vec<&KeyMeta> = keys.iter().map(|k| &k.record).collect();
        let mut out: Vec<KeyStatus> = metas
            .iter()
            .filter_map(|k| {
                stage_of(k, &metas, now).map(|stage| KeyStatus {
                    kid: k.kid.clone(),
                    alg: k.alg,
                    generation: k.generation,
                    stage,
                    created_at: k.created_at,
                    activate_at: k.activate_at,
                    remove_at: k.remove_at,
                })
            })
            .collect();
        out.sort_by_key(|k| (k.alg, k.generation));
        out
    }

    /// The JWK Set (RFC 7517 §5): every published key, public parameters only.
    pub fn jwks(&self) -> JwkSet {
        let now = self.now();
        let keys = self.keys.snapshot();
        let metas: Vec<&KeyMeta> = keys.iter().map(|k| &k.record).collect();
        JwkSet {
            keys: keys
                .iter()
                .filter(|k| stage_of(&k.record, &metas, now).is_some())
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// The algorithms that have a signing key.
    pub fn signing_algs(&self) -> Vec<SigningAlg> {
        self.config.keys.algorithms.clone()
    }

    /// The algorithm actually used when `wanted` is asked for: `wanted` when it has an active
    /// key, else the first configured algorithm that has one. Signing then cannot fail for
    /// want of a key, which matters because it happens after a code or refresh token has
    /// been spent.
    pub(crate) fn effective_alg(&self, wanted: SigningAlg) -> SigningAlg {
        let now = self.now();
        let keys = self.keys.snapshot();
        let active = |alg: SigningAlg| {
            keys.iter().any(|k| {
                k.record.alg == alg
                    && k.record.activate_at <= now
                    && k.record.remove_at.is_none_or(|t| t > now)
            })
        };
        if active(wanted) {
            return wanted;
        }
        self.config
            .keys
            .algorithms
            .iter()
            .copied()
            .find(|&alg| active(alg))
            .unwrap_or(wanted)
    }

    /// Signs `claims` as a compact JWS with the active key of `alg`, with header `typ` when
    /// given (RFC 9068 §2.1 wants `at+jwt`).
    pub fn sign_jws<T: Serialize>(
        &self,
        alg: SigningAlg,
        typ: Option<&str>,
        claims: &T,
    ) -> Result<String, Error> {
        let now = self.now();
        let keys = self.keys.snapshot();
        let key = keys
            .iter()
            .filter(|k| k.record.alg == alg && k.record.activate_at <= now)
            .max_by_key(|k| k.record.generation)
            .ok_or_else(|| StoreError::Other(format!("no active signing key for {alg}").into()))?;
        let mut header = Header::new(alg.jwt());
        header.kid = Some(key.record.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| StoreError::Other(Box::new(e)).into())
    }

    /// Verifies a JWS (not an RFC 9068 access token) this server signed with a key still published: signature, `iss`, and
    /// `exp` unless `allow_expired`. Audience is the caller's to check.
    pub fn verify_own_jws<T: DeserializeOwned>(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<T, JwsError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwsError::Malformed)?;
        if header.typ.as_deref() == Some("at+jwt") {
            // An access token is not an ID token (RFC 9068 §4).
            return Err(JwsError::InvalidClaims);
        }
        let alg = SigningAlg::from_jwt(header.alg).ok_or(JwsError::BadSignature)?;
        let kid = header.kid.ok_or(JwsError::UnknownKey)?;
        let keys = self.keys.snapshot();
        let key = keys
            .iter()
            .find(|k| k.record.kid == kid && k.record.alg == alg)
            .ok_or(JwsError::UnknownKey)?;
        let mut validation = Validation::new(alg.jwt());
        validation.set_issuer(&[self.config.issuer.as_str()]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_hash_matches_the_oidc_example() {
        // OIDC Core, Appendix A.3 (ID Token with at_hash, RS256).
        assert_eq!(
            half_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // SHA-512("abc") starts ddaf35a193617aba cc417349ae204131 12e6fa4e89a97ea2 0a9eeee64b55d39a.
        assert_eq!(
            half_hash(SigningAlg::EdDsa, "abc"),
            "3a81oZNherrMQXNJriBBMRLm-k6JqX6iCp7u5ktV05o"
        );
    }

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
        let plain = Sealer::new(None).seal("kid1", b"der", &random);
        assert_eq!(sealer.open("kid1", &plain).unwrap(), b"der");
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
}
