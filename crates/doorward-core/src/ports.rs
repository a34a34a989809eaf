//! What the engine needs from the outside world. Storage ports are small verb-first traits;
//! atomic operations (redeem a code once, rotate a refresh token once) are single operations of
//! the port, so that an adapter can make them one statement or one transaction.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, NewUser,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord, User,
};
use crate::opaque::TokenHash;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// The source of the current time, injectable so that expiry is tested without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixTime;
}

/// A cryptographically secure source of random bytes, injectable so that tests are repeatable.
pub trait Random: Send + Sync {
    fn fill(&self, dest: &mut [u8]);
}

/// The error of every storage port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is unreachable or not serving now (connection lost, restarting, pool
    /// exhausted, statement timeout): nothing was written, and a retry may succeed. HTTP
    /// answers 503 with `Retry-After`.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether `error` or one of its sources is [`StoreError::Unavailable`].
    pub fn is_unavailable_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(error);
        while let Some(e) = current {
            if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::Unavailable(_))
            ) {
                return true;
            }
            current = e.source();
        }
        false
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The outcome of a single-use redemption (authorization codes, refresh tokens).
#[derive(Debug)]
pub enum Redemption<T> {
    /// The value was unused and is now spent: this caller is the only one to get it.
    Fresh(T),
    /// The value exists for this client but was spent before: a replay (RFC 6749 §4.1.2,
    /// RFC 9700 §4.14.2).
    Spent(T),
    /// No such value for this client.
    Unknown,
}

/// How a client is named in a request: its UUID Id or its Key (`NAME@clients`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRef<'a> {
    Id(Uuid),
    Key(&'a str),
}

impl<'a> ClientRef<'a> {
    /// A UUID is an Id; anything else is a Key.
    pub fn parse(client_id: &'a str) -> Self {
        match Uuid::try_parse(client_id) {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Key(client_id),
        }
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>>;
    /// Creates the client or replaces it (same Id).
    async fn upsert_client(&self, client: &Client) -> StoreResult<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>>;
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Creates the user, or updates the display name and password hash of the user with this
    /// username. Returns the stored user.
    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>>;
    /// Records the approval, merging its scopes with any earlier approval of the same client.
    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>>;
    /// Forgets the approval and revokes every token the client holds for the user.
    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()>;
}

/// Tokens stored in the same transaction as a redemption: either the code (or refresh token)
/// is spent and these exist, or neither happened (a database failure in between leaves the
/// code usable for a retry).
#[derive(Clone, Copy, Debug)]
pub struct Issue<'a> {
    pub access: &'a AccessTokenRecord,
    pub refresh: Option<&'a RefreshTokenRecord>,
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()>;
    /// The code issued to `client`, spent or not (`None` for another client's).
    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>>;
    /// Marks the code issued to `client` as spent and stores `issue` with it, atomically: of
    /// two concurrent calls, exactly one gets [`Redemption::Fresh`], and only its tokens are
    /// stored (inserted revoked when the family was revoked, like
    /// [`TokenStore::insert_tokens`]).
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores an access token and, when given, its refresh token, together.
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()>;
    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>>;
    /// The access token with its user and client, in one read (the hot path of every
    /// protected call). `None` when the token, its user or its client does not exist.
    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>>;
    /// Marks the refresh token issued to `client` as spent, keeps `successor` (the sealed
    /// answer, for the grace window of `Engine::refresh`) with it, and stores `issue`, all
    /// atomically (see [`CodeStore::redeem_code`]).
    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>>;
    /// The refresh token, spent or not: `used_at` says when it was spent, `revoked` whether
    /// its family (or the token) was revoked.
    async fn find_refresh_token(&self, hash: &TokenHash)
        -> StoreResult<Option<RefreshTokenRecord>>;
    /// Revokes one access token (RFC 7009).
    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()>;
    /// Revokes every access and refresh token of a grant family (the tokens that descend from
    /// one authorization code), and remembers the family as revoked: tokens inserted into it
    /// afterwards (a rotation that raced the revocation) are stored revoked.
    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()>;
}

/// The longest refresh-rotation grace window; successors are forgotten after it.
pub const MAX_REFRESH_GRACE: i64 = 300;

#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes expired sessions, access and refresh tokens, and codes expired for more than
    /// `keep_spent` seconds (kept that long so that a late replay is still recognised and
    /// revokes its family), and forgets the sealed successors of refresh tokens spent more than
    /// [`MAX_REFRESH_GRACE`] seconds ago. Returns the number of rows deleted.
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64>;
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Returns the server secret named `name`, storing `candidate` first if there is none, so
    /// that several instances sharing a store agree on one value.
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
}

/// Signing keys (see [`crate::keys`]).
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Stores the key unless one of the same algorithm and generation exists; `false` then
    /// (another instance created it first).
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool>;
    /// Sets when the key is removed, unless an earlier time is set already.
    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()>;
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
}

/// Every port of the engine's storage, implemented by one adapter.
pub trait Store:
    ClientStore
    + UserStore
    + SessionStore
    + ConsentStore
    + CodeStore
    + TokenStore
    + SecretStore
    + KeyStore
    + MaintenanceStore
{
}

impl<T> Store for T where
    T: ClientStore
        + UserStore
        + SessionStore
        + ConsentStore
        + CodeStore
        + TokenStore
        + SecretStore
        + KeyStore
        + MaintenanceStore
{
}

pub type SharedStore = Arc<dyn Store>;

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The operating system's CSPRNG, through a thread-local ChaCha generator reseeded from it.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        use rand::RngCore;
        rand::thread_rng().fill_bytes(dest);
    }
}
