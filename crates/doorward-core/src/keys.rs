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
//!
//! The key material itself (generation, sealing, signing) is [`crate::jose`].

use jsonwebtoken::jwk::JwkSet;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{Random, UnixTime};
use crate::error::Error;
use crate::jose::{
    generate_der, is_sealed_secret, public_jwk, JwsError, KeyLoadError, KeyMeta, LoadedKey, Sealer,
    SigningAlg, CSRF_SECRET, SERVER_SECRET_LEN,
};
use crate::model::SigningKeyRecord;
use crate::ports::{Store, StoreError};
use crate::Engine;

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

impl From<KeyLoadError> for StoreError {
    fn from(e: KeyLoadError) -> Self {
        StoreError::Other(Box::new(e))
    }
}

fn load(record: &SigningKeyRecord, sealer: &Sealer) -> Result<LoadedKey, KeyLoadError> {
    let meta = KeyMeta {
        kid: record.kid.clone(),
        alg: record.alg,
        generation: record.generation,
        created_at: record.created_at,
        activate_at: record.activate_at,
        remove_at: record.remove_at,
    };
    LoadedKey::open(meta, &record.private_key, &record.public_jwk, sealer)
}

/// What [`seal_stored_keys`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Private signing keys sealed now (they were stored in the clear).
    pub keys: usize,
    /// Server secrets sealed now.
    pub secrets: usize,
    /// Keys and secrets that were sealed already, and open with `secret`.
    pub already_sealed: usize,
}

/// Seals in place, under `secret`, the private signing keys and server secrets stored in the
/// clear (written before a key-encryption secret was configured): `doorward keys seal`. An
/// engine with a secret refuses such rows, so this runs on the store alone, before any engine.
/// Each row is replaced only if it is still what was read (a concurrent run seals it once).
/// Fails, sealing nothing more, at a row already sealed under another secret.
pub async fn seal_stored_keys(
    store: &dyn Store,
    secret: &str,
    random: &dyn Random,
) -> Result<SealReport, Error> {
    let sealer = Sealer::new(Some(secret));
    let mut report = SealReport::default();
    for key in store.list_signing_keys().await? {
        match sealer.reseal(&key.kid, &key.private_key, random) {
            Some(sealed) => {
                if store
                    .reseal_signing_key(&key.kid, &key.private_key, &sealed)
                    .await?
                {
                    report.keys += 1;
                }
            }
            None => {
                sealer
                    .open(&key.kid, &key.private_key)
                    .map_err(StoreError::from)?;
                report.already_sealed += 1;
            }
        }
    }
    let mut candidate = [0u8; SERVER_SECRET_LEN];
    random.fill(&mut candidate);
    let stored = store
        .ensure_server_secret(
            CSRF_SECRET,
            &sealer.seal_secret(CSRF_SECRET, &candidate, random),
        )
        .await?;
    if is_sealed_secret(&stored) {
        sealer
            .open_secret(CSRF_SECRET, &stored)
            .map_err(StoreError::from)?;
        report.already_sealed += 1;
    } else {
        let sealed = sealer.seal_secret(CSRF_SECRET, &stored, random);
        if store
            .reseal_server_secret(CSRF_SECRET, &stored, &sealed)
            .await?
        {
            report.secrets += 1;
        }
    }
    Ok(report)
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
            Some(e) => Err(StoreError::from(e).into()),
            None => Ok(()),
        }
    }

    /// Starts a rotation now: a new key of `alg`, published at once and signing after the
    /// publish delay. When a rotation is already pending, returns that key instead.
    pub async fn rotate_key(
        &self,
        alg: SigningAlg,
        by: &crate::audit::Actor,
    ) -> Result<KeyStatus, Error> {
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
        let status = self
            .key_status()
            .into_iter()
            .filter(|k| k.alg == alg)
            .max_by_key(|k| k.generation)
            .ok_or(StoreError::NotFound)?;
        self.record(
            crate::audit::AuditEvent::new(crate::audit::kinds::KEYS_ROTATED, by.clone())
                .with("alg", alg.as_str())
                .with("kid", status.kid.clone())
                .with("activate_at", status.activate_at),
        )
        .await?;
        Ok(status)
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
        let active = |alg: SigningAlg| self.keys.has_active(alg, now);
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
        self.keys
            .sign(alg, self.now(), typ, claims)
            .map_err(|e| StoreError::Other(Box::new(e)).into())
    }

    /// Verifies a JWS (not an RFC 9068 access token) this server signed with a key still
    /// published: signature, `iss`, and `exp` unless `allow_expired`. Audience is the caller's
    /// to check.
    pub fn verify_own_jws<T: DeserializeOwned>(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<T, JwsError> {
        self.keys.verify(token, &self.config.issuer, allow_expired)
    }
}
