use std::sync::Arc;

use doorward_proto::{OAuthError, RedirectUri, ScopeSet, Secret};
use uuid::Uuid;

use crate::keys::{KeyPolicy, KeyRing, Sealer};
use crate::model::{Client, ClientPolicy, NewUser, User};
use crate::passwords::{self, Busy, CacheAnswer, HashCost, HashLimiter, SecretCache};
use crate::ports::{ClientRef, Clock, Random, SharedStore, StoreError, UnixTime};

/// How long each credential lives, in seconds.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    /// 7200 s by default, like Eternaltwin.
    pub access_token: i64,
    /// At most 60 s: a code is redeemed right after the redirect (RFC 6749 §4.1.2 recommends a
    /// maximum of 10 minutes; shorter narrows the window of a leaked code).
    pub code: i64,
    pub refresh_token: i64,
    /// A browser session at the server.
    pub session: i64,
    /// OIDC ID tokens.
    pub id_token: i64,
    /// The refresh-rotation grace window: the same client presenting the same refresh token
    /// again within it (two requests racing, a retry after a lost answer) gets the same answer
    /// instead of having its grant revoked for reuse. 0 disables it; at most
    /// [`crate::ports::MAX_REFRESH_GRACE`].
    pub refresh_grace: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 7200,
            code: 60,
            refresh_token: 30 * 24 * 3600,
            session: 14 * 24 * 3600,
            id_token: 3600,
            refresh_grace: 10,
        }
    }
}

/// The engine's policy.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The issuer identifier (RFC 8414 §2, OIDC Core §2): the server's external URL without a
    /// trailing slash. Every endpoint URL starts with it.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    /// Accept `code_challenge_method=plain` (RFC 7636 §4.2). Off by default: `plain` protects
    /// nothing once the authorization request leaks (RFC 9700 §2.1.1).
    pub allow_plain_pkce: bool,
    /// The scopes this server grants.
    pub scopes: ScopeSet,
    /// What a request that names no scope gets (RFC 6749 §3.3), within the client's scopes.
    pub default_scopes: ScopeSet,
    pub hash_cost: HashCost,
    pub keys: KeyPolicy,
    /// Seals private signing keys at rest when set.
    pub key_encryption_secret: Option<Secret>,
    /// The grant types this server answers.
    pub grants: Grants,
}

/// The grant types a server answers; the others get `unsupported_response_type` at the
/// authorization endpoint (RFC 6749 §4.1.2.1) and `unsupported_grant_type` at the token
/// endpoint (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {
    /// `response_type=code` and `grant_type=authorization_code` (RFC 6749 §4.1).
    pub authorization_code: bool,
    /// `grant_type=refresh_token` (RFC 6749 §6). Refresh tokens are issued only when on.
    pub refresh_token: bool,
    /// `grant_type=password`, the resource owner password credentials grant (RFC 6749 §4.3),
    /// for parity with TxOAuth2 and Authlib.
    ///
    /// # Security
    /// RFC 9700 §2.4: it "MUST NOT be used". The client sees the user's password, the user
    /// learns to type it into other applications, and nothing but a password can sign them in
    /// (no second factor, no consent page). Each request also costs an Argon2 verification.
    pub insecure_password: bool,
    /// `response_type=token`, the implicit grant (RFC 6749 §4.2), for parity with TxOAuth2.
    ///
    /// # Security
    /// RFC 9700 §2.1.2: clients "SHOULD NOT" use it. The access token travels in the URL
    /// fragment, where browser history, extensions and referrers can leak it (RFC 9700 §4.3),
    /// and nothing binds it to the client that asked. No refresh token is issued with it.
    pub insecure_implicit: bool,
}

impl Grants {
    /// Nothing enabled: an embedding application names what it wants.
    pub const NONE: Grants = Grants {
        authorization_code: false,
        refresh_token: false,
        insecure_password: false,
        insecure_implicit: false,
    };
    /// The authorization-code grant with refresh tokens, what `doorward serve` runs.
    pub const CODE_AND_REFRESH: Grants = Grants {
        authorization_code: true,
        refresh_token: true,
        insecure_password: false,
        insecure_implicit: false,
    };
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            issuer: "http://localhost".to_owned(),
            lifetimes: Lifetimes::default(),
            allow_plain_pkce: false,
            // Invariant: these are valid scope tokens.
            scopes: ScopeSet::parse("base openid profile email").expect("valid scopes"),
            default_scopes: ScopeSet::parse("base").expect("`base` is a valid scope"),
            hash_cost: HashCost::Default,
            keys: KeyPolicy::default(),
            key_encryption_secret: None,
            grants: Grants::CODE_AND_REFRESH,
        }
    }
}

/// A failure of an engine operation: a protocol error for the client, or a storage failure that
/// the adapter reports as an opaque server error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// A logout request that must be refused on a page (never redirected).
    #[error(transparent)]
    EndSession(crate::oidc::EndSessionError),
}

impl From<Busy> for Error {
    fn from(_: Busy) -> Self {
        Self::OAuth(OAuthError::new(
            doorward_proto::ErrorCode::TemporarilyUnavailable,
            "the server is busy; retry in a moment",
        ))
    }
}

/// The authorization server: protocol rules over the storage, clock and randomness ports.
pub struct Engine {
    pub(crate) store: SharedStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
    pub(crate) config: EngineConfig,
    pub(crate) secret_cache: SecretCache,
    pub(crate) hashes: HashLimiter,
    pub(crate) csrf_key: Vec<u8>,
    pub(crate) keys: KeyRing,
    pub(crate) sealer: Sealer,
    pub(crate) password_attempts: crate::legacy::PasswordAttempts,
}

/// A client to register from configuration.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// `NAME@clients`.
    pub key: String,
    pub display_name: String,
    pub app_uri: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub secret: Secret,
    pub policy: ClientPolicy,
}

/// A user to create or update from configuration.
#[derive(Clone, Debug)]
pub struct UserSpec {
    pub username: String,
    pub display_name: String,
    pub password: Secret,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl Engine {
    /// Builds the engine, creating the server's CSRF key and signing keys in the store on first
    /// start.
    pub async fn new(
        store: SharedStore,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        config: EngineConfig,
    ) -> Result<Self, Error> {
        let mut candidate = [0u8; 32];
        random.fill(&mut candidate);
        let csrf_key = store.ensure_server_secret("csrf", &candidate).await?;
        // Computed now rather than at the first failed sign-in, which would wait for it.
        let _ = tokio::task::spawn_blocking(passwords::dummy_hash).await;
        let sealer = Sealer::new(config.key_encryption_secret.as_ref().map(Secret::secret));
        let engine = Self {
            store,
            clock,
            random,
            config,
            secret_cache: SecretCache::default(),
            hashes: HashLimiter::default(),
            csrf_key,
            keys: KeyRing::default(),
            sealer,
            password_attempts: Default::default(),
        };
        engine.maintain_keys().await?;
        Ok(engine)
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// A time-ordered UUID (v7): grant families are indexed, and ids that grow with time are
    /// appended at the end of the index instead of splitting pages all over it.
    pub(crate) fn new_time_ordered_uuid(&self) -> Uuid {
        let mut random = [0u8; 10];
        self.random.fill(&mut random);
        let millis = u64::try_from(self.now()).unwrap_or(0) * 1000;
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    pub(crate) fn new_uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.random.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Looks a client up by the `client_id` of a request: its UUID Id or its Key.
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.store.find_client(ClientRef::parse(client_id)).await
    }

    /// The stable Id of a client declared in configuration: a UUID v5 of its Key, so that it
    /// stays the same across restarts and instances (unlike Eternaltwin's, which changes at
    /// every start).
    pub fn client_id_for_key(key: &str) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2a1e_8d3b_4c6f_9a7e_1b2c_3d4e_5f60);
        Uuid::new_v5(&NAMESPACE, key.as_bytes())
    }

    /// Creates or updates a client declared in configuration. The stored secret hash is kept
    /// when it still matches the configured secret.
    pub async fn register_client(&self, spec: ClientSpec) -> Result<Client, StoreError> {
        let id = Self::client_id_for_key(&spec.key);
        let existing = self.store.find_client(ClientRef::Id(id)).await?;
        let kept_hash = existing
            .and_then(|c| c.secret_hash)
            .filter(|phc| passwords::verify(phc, spec.secret.secret()));
        let secret_hash = kept_hash.unwrap_or_else(|| {
            passwords::hash(
                spec.secret.secret(),
                self.config.hash_cost,
                self.random.as_ref(),
            )
        });
        let client = Client {
            id,
            key: spec.key,
            display_name: spec.display_name,
            app_uri: spec.app_uri,
            redirect_uris: spec.redirect_uris,
            secret_hash: Some(secret_hash),
            policy: spec.policy,
        };
        self.store.upsert_client(&client).await?;
        Ok(client)
    }

    /// Creates a user, or updates the display name and password of the user with this username.
    pub async fn seed_user(&self, spec: &UserSpec) -> Result<User, StoreError> {
        let existing = self.store.find_user_by_username(&spec.username).await?;
        let password = &spec.password;
        let password_hash = match existing {
            Some(user) if passwords::verify(&user.password_hash, password.secret()) => {
                user.password_hash
            }
            _ => passwords::hash(
                password.secret(),
                self.config.hash_cost,
                self.random.as_ref(),
            ),
        };
        self.store
            .upsert_user(&NewUser {
                id: self.new_uuid(),
                username: spec.username.clone(),
                display_name: spec.display_name.clone(),
                password_hash,
                email: spec.email.clone(),
                email_verified: spec.email_verified,
                created_at: self.now(),
            })
            .await
    }

    /// Deletes what has expired (see [`crate::ports::MaintenanceStore::purge_expired`]); spent
    /// codes are kept a day past their expiry so that a late replay still revokes its family.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.store.purge_expired(self.now(), 24 * 3600).await
    }

    /// Whether `secret` is the client's secret, in constant time, without Argon2 on the hot
    /// path (see [`crate::passwords`]).
    pub(crate) async fn verify_client_secret(
        &self,
        client: &Client,
        secret: &Secret,
    ) -> Result<bool, Busy> {
        let Some(phc) = client.secret_hash.as_deref() else {
            return Ok(false);
        };
        match self.secret_cache.check(client.id, phc, secret.secret()) {
            CacheAnswer::Correct => Ok(true),
            CacheAnswer::Wrong => Ok(false),
            CacheAnswer::Unknown => {
                let cached = || match self.secret_cache.check(client.id, phc, secret.secret()) {
                    CacheAnswer::Correct => Some(true),
                    CacheAnswer::Wrong => Some(false),
                    CacheAnswer::Unknown => None,
                };
                let ok = self
                    .hashes
                    .verify_unless(phc.to_owned(), secret.clone(), cached)
                    .await?;
                if ok {
                    self.secret_cache.remember(client.id, phc, secret.secret());
                }
                Ok(ok)
            }
        }
    }
}
