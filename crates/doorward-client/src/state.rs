//! The `state` parameter (RFC 6749 §10.12, RFC 9700 §4.7): by default a compact JWS signed with
//! the application's key (seed 000's scheme), so any worker or process holding the key verifies
//! the callback with no shared store; or an opaque random value kept in a [`StateStore`].
//!
//! The PKCE verifier and the OIDC nonce of a JWS state are derived from it with the key
//! (HMAC-SHA-256 of its request-forgery nonce): the state travels through the browser and the
//! provider, so it must not carry the verifier itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::constant_time_eq;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::error::{ConfigError, InvalidState, StateStoreError};

type HmacSha256 = Hmac<Sha256>;

/// The application's key for signed states (HS256). At least 32 bytes; every process that may
/// receive a callback needs the same key.
#[derive(Clone)]
pub struct StateKey(Arc<[u8]>);

impl StateKey {
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let bytes = bytes.as_ref();
        if bytes.len() < 32 {
            return Err(ConfigError::StateKeyTooShort);
        }
        Ok(Self(bytes.into()))
    }

    /// A random key, for a single process (callbacks handled elsewhere will not verify).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes.into())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// HMAC-SHA-256 of `label`, a zero byte and `rfp`, base64url: the derived secrets of a
    /// state, and the MAC of the sign-in routes' cookie.
    pub(crate) fn derive(&self, label: &str, rfp: &str) -> String {
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(rfp.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey([redacted])")
    }
}

/// How a client makes and checks `state`.
#[derive(Clone, Debug)]
pub enum StateMode {
    /// A compact JWS (HS256) carrying the action, the authorization server, `iat`, `exp` and a
    /// request-forgery nonce; verified with the key, no storage.
    Signed(StateKey),
    /// A random value; what the callback needs is kept in the store until it comes back.
    Opaque(Arc<dyn StateStore>),
}

/// Storage for opaque states (seed 001's `store_user_state` / `check_user_state`).
/// `take_state` must return a state at most once.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    async fn store_state(
        &self,
        state: &str,
        pending: PendingAuthorization,
    ) -> Result<(), StateStoreError>;
    async fn take_state(
        &self,
        state: &str,
    ) -> Result<Option<PendingAuthorization>, StateStoreError>;
}

/// What the callback needs to finish an authorization started with an opaque state. It holds
/// the PKCE verifier: store it server-side only.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub authorization_server: String,
    pub created_at: i64,
    pub expires_at: i64,
    code_verifier: Option<String>,
    nonce: Option<String>,
    #[serde(default)]
    max_age: Option<u64>,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("authorization_server", &self.authorization_server)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An in-memory [`StateStore`] for one process, holding at most a fixed number of pending
/// authorizations ([`MemoryStateStore::CAPACITY`] by default).
///
/// Every visit to a sign-in route makes a state, so anyone can fill the store. When it is
/// full, expired entries go first, then the oldest pending authorization is evicted: a new
/// sign-in is never refused. The trade-off: a flood of more than `capacity` visits while a
/// genuine user is at the provider evicts that user's state, and their callback fails with
/// [`InvalidState::Unknown`](crate::InvalidState::Unknown) (they click again); memory stays
/// bounded either way. The default signed states ([`StateMode::Signed`]) keep nothing on the
/// server and cannot be filled: prefer them unless a state must be single-use.
pub struct MemoryStateStore {
    capacity: usize,
    entries: Mutex<Entries>,
}

/// The pending authorizations, and their insertion order for eviction.
#[derive(Default)]
struct Entries {
    by_state: HashMap<String, (u64, PendingAuthorization)>,
    order: BTreeMap<u64, String>,
    next: u64,
    /// When expired entries were last dropped (the clock of `created_at`).
    purged_at: i64,
}

impl MemoryStateStore {
    pub const CAPACITY: usize = 100_000;

    /// Expired entries are dropped, at most once per second, from this many entries on.
    const PURGE_FROM: usize = 1024;

    /// A store holding at most `capacity` pending authorizations (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::default(),
        }
    }

    /// How many authorizations are pending.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.by_state.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl fmt::Debug for MemoryStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStateStore")
            .field("capacity", &self.capacity)
            .field("pending", &self.len())
            .finish()
    }
}

impl Entries {
    fn purge_expired(&mut self, now: i64) {
        self.purged_at = now;
        self.by_state.retain(|_, (_, p)| p.expires_at >= now);
        let by_state = &self.by_state;
        self.order.retain(|_, state| by_state.contains_key(state));
    }

    fn evict_oldest(&mut self) {
        if let Some((_, state)) = self.order.pop_first() {
            self.by_state.remove(&state);
        }
    }

    fn remove(&mut self, state: &str) -> Option<PendingAuthorization> {
        let (seq, pending) = self.by_state.remove(state)?;
        self.order.remove(&seq);
        Some(pending)
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn store_state(
        &self,
        state: &str,
        pending: PendingAuthorization,
    ) -> Result<(), StateStoreError> {
        let mut entries = self.entries.lock().map_err(|_| "state store poisoned")?;
        let now = pending.created_at;
        entries.remove(state);
        if entries.by_state.len() >= Self::PURGE_FROM.min(self.capacity) && now > entries.purged_at
        {
            entries.purge_expired(now);
        }
        while entries.by_state.len() >= self.capacity {
            entries.evict_oldest();
        }
        let seq = entries.next;
        entries.next += 1;
        entries.order.insert(seq, state.to_owned());
        entries.by_state.insert(state.to_owned(), (seq, pending));
        Ok(())
    }

    async fn take_state(
        &self,
        state: &str,
    ) -> Result<Option<PendingAuthorization>, StateStoreError> {
        let mut entries = self.entries.lock().map_err(|_| "state store poisoned")?;
        Ok(entries.remove(state))
    }
}

/// What a new authorization request carries besides the state.
pub(crate) struct Secrets {
    pub(crate) code_verifier: Option<String>,
    pub(crate) nonce: Option<String>,
    /// The `max_age` sent: the ID token's `auth_time` must be within it.
    pub(crate) max_age: Option<u64>,
}

/// What start and finish agree on.
pub(crate) struct StateParams<'a> {
    pub(crate) authorization_server: &'a str,
    pub(crate) ttl: u64,
    pub(crate) pkce: bool,
    pub(crate) oidc: bool,
    pub(crate) leeway: u64,
    /// The state sent to this browser must be given back at the callback.
    pub(crate) bound: bool,
    /// OIDC `max_age` sent with the request.
    pub(crate) max_age: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    a: String,
    #[serde(rename = "as")]
    authorization_server: String,
    iat: i64,
    exp: i64,
    rfp: String,
    /// An OIDC nonce was sent: the callback must bring an ID token carrying it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    oidc: bool,
    /// The `max_age` sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ma: Option<u64>,
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl StateMode {
    pub(crate) async fn issue(
        &self,
        params: &StateParams<'_>,
        now: i64,
    ) -> Result<(String, Secrets), StateStoreError> {
        match self {
            StateMode::Signed(key) => {
                let claims = Claims {
                    a: "authorize".into(),
                    authorization_server: params.authorization_server.to_owned(),
                    iat: now,
                    exp: now.saturating_add_unsigned(params.ttl),
                    rfp: random_token(),
                    oidc: params.oidc,
                    ma: params.max_age,
                };
                let secrets = signed_secrets(key, &claims, params.pkce);
                Ok((sign(key, &claims), secrets))
            }
            StateMode::Opaque(store) => {
                let state = random_token();
                let secrets = Secrets {
                    code_verifier: params.pkce.then(random_token),
                    nonce: params.oidc.then(random_token),
                    max_age: params.max_age,
                };
                let pending = PendingAuthorization {
                    authorization_server: params.authorization_server.to_owned(),
                    created_at: now,
                    expires_at: now.saturating_add_unsigned(params.ttl),
                    code_verifier: secrets.code_verifier.clone(),
                    nonce: secrets.nonce.clone(),
                    max_age: secrets.max_age,
                };
                store.store_state(&state, pending).await?;
                Ok((state, secrets))
            }
        }
    }

    /// Checks the state that came back (and, when the application kept it, the one it sent:
    /// binding the callback to the browser that started it, RFC 9700 §4.7.1).
    pub(crate) async fn verify(
        &self,
        returned: Option<&str>,
        sent: Option<&str>,
        params: &StateParams<'_>,
        now: i64,
    ) -> Result<Secrets, InvalidState> {
        let returned = returned.ok_or(InvalidState::Missing)?;
        match self {
            StateMode::Signed(key) => {
                let claims = verify_signed(key, returned)?;
                if claims.a != "authorize" {
                    return Err(InvalidState::WrongAction(claims.a));
                }
                if claims.exp < now {
                    return Err(InvalidState::Expired);
                }
                if claims.iat > now.saturating_add_unsigned(params.leeway) {
                    return Err(InvalidState::IssuedInFuture);
                }
                if claims.authorization_server != params.authorization_server {
                    return Err(InvalidState::OtherAuthorizationServer {
                        expected: params.authorization_server.to_owned(),
                        got: claims.authorization_server,
                    });
                }
                check_sent(returned, sent, params.bound)?;
                Ok(signed_secrets(key, &claims, params.pkce))
            }
            StateMode::Opaque(store) => {
                check_sent(returned, sent, params.bound)?;
                let pending = store
                    .take_state(returned)
                    .await
                    .map_err(|e| InvalidState::Store(e.to_string()))?
                    .ok_or(InvalidState::Unknown)?;
                if pending.expires_at < now {
                    return Err(InvalidState::Expired);
                }
                if pending.authorization_server != params.authorization_server {
                    return Err(InvalidState::OtherAuthorizationServer {
                        expected: params.authorization_server.to_owned(),
                        got: pending.authorization_server,
                    });
                }
                Ok(Secrets {
                    code_verifier: pending.code_verifier,
                    nonce: pending.nonce,
                    max_age: pending.max_age,
                })
            }
        }
    }
}

/// The callback must come back to the browser that started the authorization (RFC 6749
/// §10.12, RFC 9700 §4.7.1): the state this browser was given must be the one returned. Without
/// it, anyone could send a victim to a callback URL of their own sign-in (the PKCE verifier and
/// nonce of a signed state are derived from the state, so they would match too).
fn check_sent(returned: &str, sent: Option<&str>, bound: bool) -> Result<(), InvalidState> {
    match sent {
        Some(sent) if !constant_time_eq(sent.as_bytes(), returned.as_bytes()) => {
            Err(InvalidState::Mismatch)
        }
        Some(_) => Ok(()),
        None if bound => Err(InvalidState::NotBound),
        None => Ok(()),
    }
}

fn signed_secrets(key: &StateKey, claims: &Claims, pkce: bool) -> Secrets {
    Secrets {
        code_verifier: pkce.then(|| key.derive("doorward-client pkce", &claims.rfp)),
        nonce: claims
            .oidc
            .then(|| key.derive("doorward-client nonce", &claims.rfp)),
        max_age: claims.ma,
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn sign(key: &StateKey, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("state claims serialize");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = key.mac();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

fn verify_signed(key: &StateKey, token: &str) -> Result<Claims, InvalidState> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidState::NotAJws);
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(InvalidState::NotAJws)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "HS256" {
        return Err(InvalidState::UnsupportedAlgorithm(alg.to_owned()));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| InvalidState::BadSignature)?;
    let mut mac = key.mac();
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| InvalidState::BadSignature)?;
    let payload: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(InvalidState::MalformedClaim("payload"))?;
    let text = |name: &'static str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(InvalidState::MalformedClaim(name))
    };
    let number = |name: &'static str| {
        payload
            .get(name)
            .and_then(Value::as_i64)
            .ok_or(InvalidState::MalformedClaim(name))
    };
    Ok(Claims {
        a: text("a")?,
        authorization_server: text("as")?,
        iat: number("iat")?,
        exp: number("exp")?,
        rfp: text("rfp")?,
        oidc: payload
            .get("oidc")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ma: payload.get("ma").and_then(Value::as_u64),
    })
}

#[cfg(test)]
pub(crate) mod tests;
