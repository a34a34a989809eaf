//! Past 700 lines, still one idea: every storage port with the guarantees it must keep, read as
//! one contract (the contract kit checks it whole).
//!
//! What the engine needs from the outside world. Storage ports are small verb-first traits;
//! atomic operations (redeem a code once, rotate a refresh token once) are single operations of
//! the port, so that an adapter can make them one statement or one transaction.
//!
//! # Implementing the storage ports
//!
//! Doorward's own adapters are `doorward_core::memory::MemoryStore` (tests) and, in
//! `doorward-store`, SQLite and PostgreSQL. An application may bring its own: one type that
//! implements the sixteen storage traits is a [`Store`] (blanket impl), and the engine holds it as
//! a [`SharedStore`]. What every implementation must guarantee:
//!
//! - **Concurrency.** The engine calls the store from many tasks at once, and several engines
//!   (instances) may share one database. Every method is one unit: it sees and leaves a
//!   consistent state. The methods documented as atomic ([`CodeStore::redeem_code`],
//!   [`TokenStore::rotate_refresh_token`], [`UserStore::upsert_user`],
//!   [`ConsentStore::record_consent`], [`SecretStore::ensure_server_secret`],
//!   [`KeyStore::insert_signing_key`], [`ThrottleStore::record_failure`]) must stay correct
//!   however many calls race, from however many instances: one statement, a transaction, or a
//!   lock around the whole method.
//!   Never read, decide and write in separate steps.
//! - **Hashes, not secrets.** Codes, access and refresh tokens and session ids reach the store
//!   as their SHA-256 digest ([`TokenHash`]), which is their key; the credential itself never
//!   does, so a leaked database holds none. Passwords and client secrets arrive as Argon2id
//!   PHC strings, private signing keys sealed when the server has a key-encryption secret, and
//!   so does the secret of a `client_secret_jwt` client, which the server must be able to MAC
//!   with (`ClientPolicy::sealed_jwt_secret`). Store
//!   every value exactly as given. Server secrets ([`SecretStore`]) are real secrets.
//! - **Absence is an answer.** A lookup of what does not exist returns `Ok(None)`, a redemption
//!   [`Redemption::Unknown`], and a delete or revocation of it succeeds doing nothing. Errors
//!   are for failures (see [`StoreError`]).
//! - **Time comes from the engine.** Methods that record a time take it as `now`; a store never
//!   reads a clock of its own, so that instances agree and tests need no sleeping. Nor does
//!   it judge expiry: an expired row is returned like any other until
//!   [`MaintenanceStore::purge_expired`] deletes it; the engine checks `expires_at`. (The one
//!   exception is [`ThrottleStore::record_failure`], which restarts an expired counter in the
//!   same statement that counts, so that no failure is lost between a read and a write.)
//! - **Grant families.** Each authorization code starts a family ([`CodeStore::insert_code`]);
//!   every token issued from the code, and from the refresh tokens that descend from it,
//!   carries its `family_id`. Revoking a family ([`TokenStore::revoke_family`],
//!   [`ConsentStore::revoke_consent`]) revokes its tokens and is remembered, so that tokens
//!   inserted into it later are stored revoked.
//!
//! The `testkit` feature publishes the contract suite that Doorward runs against each of its
//! adapters, for an implementation's own tests (`doorward_core::testkit`). It checks each
//! method one call at a time; races against a real backend need tests of their own.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::audit::{AuditEvent, EventFilter};
use crate::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, DeviceAuthorization,
    DeviceState, InitialTokenRecord, InvitationRecord, NewUser, PasskeyRecord, RefreshTokenRecord,
    RegistrationRecord, SessionRecord, SigningKeyRecord, TotpRecord, User, UserChange, UserFilter,
};
use crate::opaque::TokenHash;

pub use crate::clock::{Clock, OsRandom, Random, SystemClock, UnixTime};
pub use crate::fetch::{FetchError, Fetched, Fetcher};

/// The error of every storage port. An error means the operation did not happen: a method that
/// fails must leave the store as it was (a code that failed to be redeemed stays unspent, so
/// that the client may retry).
///
/// Absence is not an error: lookups answer `Ok(None)`, redemptions [`Redemption::Unknown`],
/// and deletes and revocations of what does not exist succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A row that the operation cannot do without does not exist, where the method has no
    /// other way to say so. No storage method needs it today (see above); the engine uses it
    /// when a signing key it has just made cannot be read back. Ends as a 500.
    #[error("not found")]
    NotFound,
    /// The write would break a uniqueness that the method does not resolve itself: a client
    /// upserted with the Key of another client, a user id taken under another username, a
    /// code, token or session whose hash is stored already (256-bit random values: a bug,
    /// never chance). The upserts, [`KeyStore::insert_signing_key`] and
    /// [`SecretStore::ensure_server_secret`] resolve their own conflicts and never return it.
    /// Doorward's SQL adapters report these constraint violations as [`StoreError::Other`];
    /// either ends as a 500.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is unreachable or not serving now (connection lost, restarting, pool
    /// exhausted, statement timeout): nothing was written, and a retry may succeed. HTTP
    /// answers 503 with `Retry-After`. Return it only when both hold.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other failure: a refused statement, a corrupt row. The client gets an opaque 500;
    /// the log gets the source chain.
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The [`StoreError`] in `error`'s source chain, if any.
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<StoreError>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }

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
    /// The value was unused and is now spent: this caller is the only one to get it. Carries
    /// the record as it is after spending (a refresh token with `used_at` and `successor`
    /// set).
    Fresh(T),
    /// The value exists for this client but was spent before: a replay (RFC 6749 §4.1.2,
    /// RFC 9700 §4.14.2). Carries the record as the first use left it (its `used_at` and
    /// `successor`), unchanged by this call.
    Spent(T),
    /// No such value for this client: never stored, purged, or issued to another client
    /// (which must neither learn that it exists nor spend it).
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

/// Registered OAuth clients. A client is unique by Id and by Key.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The client with this Id, or with exactly this Key (a byte-for-byte match: no case
    /// folding, no prefix). Every field comes back as stored: the redirect URIs in order and
    /// as registered, since they are compared as exact strings (RFC 6749 §3.1.2.3).
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>>;
    /// Creates the client or replaces it (same Id), every field, Key included, except
    /// `created_at`, which an existing client keeps. Idempotent: the binary upserts its
    /// configured clients at every start.
    async fn upsert_client(&self, client: &Client) -> StoreResult<()>;
    /// Creates the client when neither its Id nor its Key is taken; `false`, and nothing
    /// written, when one is (`doorward clients add`). Atomic: of two inserts of one Key, one
    /// succeeds.
    async fn insert_client(&self, client: &Client) -> StoreResult<bool>;
    /// Every client, ordered by Key.
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes the client and, in the same transaction, everything it was granted: its grant
    /// families and their access and refresh tokens are revoked at `now`, its outstanding
    /// codes spent at `now`, its consents deleted. A token or code of the client is refused
    /// from then on even if a client with the same Id is registered again (a configured
    /// client comes back at the next start with its stable Id). `false` when no client had
    /// this Id. Found by the tokens' `client_id`, not through users: tokens without a user
    /// go too.
    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool>;
}

/// Resource owners. A user is unique by id and by username.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with this id (the `sub` of its tokens).
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>>;
    /// The user with exactly this username (the sign-in name).
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Creates the user, or updates the display name, password hash, e-mail address and
    /// `email_verified` of the user with this username. Returns the stored user, as it is
    /// after the call. An existing user keeps its id and `created_at` (the `id` of `user` is
    /// used only to create): the `sub` of a user never changes. Atomic: concurrent upserts of
    /// one username make one user. Idempotent.
    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User>;
    /// Creates the user unless its username (or id) is taken: false then, and nothing is
    /// written. Records [`Change::User`] when it creates.
    async fn insert_user(&self, user: &NewUser) -> StoreResult<bool>;
    /// The users the filter keeps, ordered by username (never more than `filter.limit`).
    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>>;
    /// Writes what `change` names of the user with this id, in one statement: the fields it
    /// leaves `None` keep their stored value, whatever was read before (a whole row written
    /// back would undo a change made meanwhile). False when there is no such user. Records
    /// [`Change::User`].
    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool>;
    /// Disables the user (`disabled_at` set) or enables it (`None`). Disabling ends, in the
    /// same transaction, everything the user holds: its sessions are deleted, its grant
    /// families revoked with their access and refresh tokens, its outstanding codes spent
    /// (as [`ConsentStore::revoke_consent`] does for one client; consents stay). False when
    /// there is no such user. Records [`Change::User`].
    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Deletes the user's sessions (signs it out of every browser); returns how many.
    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64>;
    /// Ends what the user holds as [`Self::set_user_disabled`] does, then deletes the user with
    /// its consents. Its revoked tokens stay until the purge. False when there is no such
    /// user. Records [`Change::User`].
    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool>;
}

/// Signed-in browsers, keyed by the digest of the session cookie's value.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session; its hash is new.
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session, expired or not (the engine checks `expires_at`).
    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>>;
    /// Deletes the session (sign-out); nothing happens for an unknown one.
    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()>;
}

/// Users' approvals of clients, one per user and client.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The user's approval of the client.
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>>;
    /// Records the approval, merging its scopes with any earlier approval of the same client:
    /// the stored scopes are the union, `granted_at` the new one. Atomic: of two concurrent
    /// approvals, both scopes are kept. Idempotent.
    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    /// Every approval of the user, and no one else's. The account page shows them in this
    /// order; Doorward's adapters sort by `granted_at`, then client Id.
    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>>;
    /// Forgets the approval and revokes every token the client holds for the user, in one
    /// transaction: every grant family that a code of this user and client started is revoked
    /// as by [`TokenStore::revoke_family`] (its tokens revoked, and the family remembered, so
    /// that a redemption or rotation racing this call stores its tokens revoked), and the
    /// family's unspent codes are spent, so that a code issued before the revocation can
    /// never be redeemed ([`Redemption::Spent`], which the engine treats as a replay).
    /// Nothing happens without an approval or families.
    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()>;
}

/// Tokens stored in the same transaction as a redemption: either the code (or refresh token)
/// is spent and these exist, or neither happened (a database failure in between leaves the
/// code usable for a retry). They are stored as by [`TokenStore::insert_tokens`], and only by
/// the call that gets [`Redemption::Fresh`].
#[derive(Clone, Copy, Debug)]
pub struct Issue<'a> {
    pub access: &'a AccessTokenRecord,
    pub refresh: Option<&'a RefreshTokenRecord>,
}

/// Authorization codes (RFC 6749 §4.1.2), keyed by digest. Each works once.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a new, unspent code, and starts its grant family: `code.family_id` is new, and
    /// the family belongs to the code's user and client (for
    /// [`ConsentStore::revoke_consent`]).
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()>;
    /// The code issued to `client`, spent or not, expired or not (`None` for another
    /// client's).
    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>>;
    /// Marks the code issued to `client` as spent and stores `issue` with it, atomically: of
    /// two concurrent calls, exactly one gets [`Redemption::Fresh`], and only its tokens are
    /// stored (inserted revoked when the family was revoked, like
    /// [`TokenStore::insert_tokens`]). RFC 6749 §4.1.2: "The client MUST NOT use the
    /// authorization code more than once"; the engine revokes the family of a code that comes
    /// back [`Redemption::Spent`].
    ///
    /// A code issued to another client is [`Redemption::Unknown`] and stays as it was (not
    /// spent). The store does not judge expiry. `issue` is `None` when the engine only burns
    /// the code (a token request that failed its checks, so that a PKCE verifier cannot be
    /// guessed twice): the code is spent all the same.
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>>;
}

/// Access and refresh tokens, keyed by digest, grouped in grant families.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores an access token and, when given, its refresh token, together (both or neither).
    /// Their hashes are new; the refresh token is stored unspent, with no successor. When the
    /// family is remembered as revoked, both are stored revoked: a rotation that raced
    /// [`TokenStore::revoke_family`] must not leave a live token behind.
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()>;
    /// The access token, revoked or expired or not (the engine checks).
    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>>;
    /// The access token with its user and client, in one read (the hot path of every
    /// protected call). `None` when the token, its client or (for a token with a user) its
    /// user does not exist; a token without a user (`client_credentials`) has `user: None`.
    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>>;
    /// Marks the refresh token issued to `client` as spent (`used_at = now`), keeps
    /// `successor` (the sealed answer, for the grace window of `Engine::refresh`) with it, and
    /// stores `issue`, all atomically (see [`CodeStore::redeem_code`]): refresh token rotation,
    /// RFC 9700 §4.14.2. Of concurrent calls exactly one gets [`Redemption::Fresh`]; the
    /// others get [`Redemption::Spent`] with the winner's `used_at` and `successor`, so that
    /// a client racing itself gets the same answer, and store nothing. A spent token is never
    /// un-spent and its `successor` never replaced.
    ///
    /// Like a code, another client's token is [`Redemption::Unknown`] and left unspent. A
    /// revoked or expired token is not refused here: it rotates ([`Redemption::Fresh`] with
    /// `revoked` as stored); the engine checks both before it calls.
    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>>;
    /// The refresh token, whichever client it was issued to, spent or not: `used_at` says
    /// when it was spent, `revoked` whether its family (or the token) was revoked, `successor`
    /// what its rotation sealed (until [`MaintenanceStore::purge_expired`] forgets it).
    async fn find_refresh_token(&self, hash: &TokenHash)
        -> StoreResult<Option<RefreshTokenRecord>>;
    /// The user's live delegated access tokens (issued by a token exchange, RFC 8693: `act`
    /// set, not revoked, `expires_at > now`), for their account page. Doorward's adapters
    /// sort them by `issued_at`, then hash.
    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>>;
    /// Revokes one access token (RFC 7009), and nothing else: its refresh token stays.
    /// Idempotent; nothing happens for an unknown token.
    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()>;
    /// Revokes every access and refresh token of a grant family (the tokens that descend from
    /// one authorization code), and remembers the family as revoked: tokens inserted into it
    /// afterwards (a rotation that raced the revocation) are stored revoked. The engine calls
    /// it on a replayed code (RFC 6749 §4.1.2) or refresh token (RFC 9700 §4.14.2). The
    /// family's codes are left as they are (a replay spent them already). Idempotent; an
    /// unknown family is remembered all the same.
    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()>;
}

/// The longest refresh-rotation grace window; successors are forgotten after it.
pub const MAX_REFRESH_GRACE: i64 = 300;

/// Housekeeping, called periodically by the binary (every 10 minutes).
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes expired sessions, access and refresh tokens, and codes expired for more than
    /// `keep_spent` seconds (kept that long so that a late replay is still recognised and
    /// revokes its family), and forgets the sealed successors of refresh tokens spent more than
    /// [`MAX_REFRESH_GRACE`] seconds ago. Returns the number of rows deleted.
    ///
    /// Precisely: a row goes when `expires_at <= now` (codes: `<= now - keep_spent`), spent,
    /// revoked or not; a successor is forgotten when `used_at < now - MAX_REFRESH_GRACE`. The
    /// count is of sessions, codes and tokens deleted, not of successors forgotten, of failure
    /// counters ([`ThrottleStore`]) or initial access tokens ([`RegistrationStore`]) deleted
    /// with `expires_at <= now` (both are deleted then), nor of an adapter's own
    /// bookkeeping. A revoked family may be forgotten only once nothing refers to
    /// it and `keep_spent` seconds have passed. An adapter shared by several instances may let
    /// one purge at a time and answer 0 to the others.
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64>;

    /// The store's connections right now, for the metrics; `None` (the default) for a store
    /// without a pool.
    fn pool_use(&self) -> Option<PoolUse> {
        None
    }
}

/// A store's connections ([`MaintenanceStore::pool_use`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open.
    pub open: u32,
    /// Of those, the ones in use.
    pub busy: u32,
    /// The most the store opens.
    pub max: u32,
}

/// Secrets of the server itself (the key of its CSRF tokens and signed markers), shared by
/// every instance. Protect them like the private signing keys.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Returns the server secret named `name`, storing `candidate` first if there is none, so
    /// that several instances sharing a store agree on one value. Atomic: of concurrent calls
    /// with different candidates, all return the one stored; a stored secret is never
    /// replaced.
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
    /// Replaces the value of the secret `name` by `sealed` if it still is `expected` (compare
    /// and set: `doorward keys seal` seals secrets stored in the clear). `false` when it was
    /// not: another run sealed it first, or there is no such secret.
    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool>;
}

/// Signing keys (see [`crate::keys`]), shared by every instance: each instance runs the same
/// schedule, and the store arbitrates. A key is unique by `kid` and by algorithm and
/// generation.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, in any order, removal scheduled or not; `private_key` exactly as
    /// stored (sealed or not).
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Stores the key unless one of the same algorithm and generation exists; `false` then
    /// (another instance created it first). Atomic: of instances racing to make a generation,
    /// one gets `true`, and every instance then signs with that key. Records [`Change::Keys`]
    /// when it stores.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool>;
    /// Sets when the key is removed, unless an earlier time is set already: the earlier time
    /// wins, whichever instance calls first. Nothing happens for an unknown `kid`. Records
    /// [`Change::Keys`] when the time changes.
    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()>;
    /// Deletes the key; nothing happens for an unknown `kid`. Records [`Change::Keys`] when it
    /// deletes.
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
    /// Replaces the `private_key` of `kid` by `sealed` if it still is `expected` (compare and
    /// set, as [`SecretStore::reseal_server_secret`]); `false` when it was not.
    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool>;
}

/// Failed attempts counted under one key of [`ThrottleStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    /// Failures since the counter started (at least 1).
    pub count: u32,
    /// When the last one was recorded.
    pub last_at: UnixTime,
    /// When the counter is forgotten: past it, the next failure starts a new count at 1.
    pub expires_at: UnixTime,
}

/// Counters of failed sign-ins and client authentications, shared by every instance so that
/// spreading guesses over several instances gains an attacker nothing (RFC 6819 §5.1.4.2.3,
/// see [`crate::throttle`]). Keys are the engine's: ASCII, at most 80 bytes, never a username
/// or address in the clear.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// The counter under `key`, expired or not (the engine checks `expires_at`).
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>>;
    /// Counts one more failure under `key` and returns the counter as it is after the call:
    /// `count` one more than before, or 1 when there was none or it had expired
    /// (`expires_at <= now`); `last_at = now` and `expires_at` as given. Atomic, one statement
    /// (an upsert): of concurrent calls from any number of instances, none is lost.
    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures>;
    /// Forgets the counter under `key` (a successful sign-in); nothing happens without one.
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;
}

/// The `jti` of client assertions already used (RFC 7523 §3 item 7, OIDC Core §9: a client
/// assertion is single-use), shared by every instance so that an assertion replayed at another
/// instance is refused too. The engine bounds the length of a `jti` (at most 256 bytes). It
/// spends other single-use values here too: pushed requests, DPoP proofs, and WebAuthn
/// ceremonies (under `passkeys::CEREMONY_NAMESPACE`, no client's id).
#[async_trait]
pub trait AssertionStore: Send + Sync {
    /// Records that `client` used the assertion `jti`, valid until `expires_at`, and says
    /// whether it was fresh: `true` when no row of this client and `jti` existed, or only one
    /// that had expired by `now` (`expires_at <= now`, then replaced); `false` otherwise,
    /// changing nothing. Two clients' `jti`s are independent. Atomic, one statement (an insert
    /// that does nothing on a live conflict): of concurrent calls with one `jti` from any
    /// number of instances, exactly one gets `true`. Rows with `expires_at <= now` go with
    /// [`MaintenanceStore::purge_expired`] (not counted in its answer).
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool>;
}

/// Device authorizations (RFC 8628). Rows past `expires_at` go with
/// [`MaintenanceStore::purge_expired`].
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new pending authorization. `false`, storing nothing, when its user code is
    /// already another's (expired or not, until purged): the engine draws another.
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool>;
    /// The authorization of a user code (normalized), expired or not.
    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>>;
    /// The authorization of a device code's hash as it was, its `polled_at` the previous poll's,
    /// and records `now` as its last poll. Atomic: of two concurrent polls, the second sees the
    /// first's time.
    async fn poll_device(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceAuthorization>>;
    /// The user's answer to a pending authorization that has not expired by `now`: `Approved`
    /// or `Denied` (never `Pending`). With an approval, `code` (a code record whose hash is the
    /// device code's) is inserted in the same transaction, as [`CodeStore::insert_code`] would.
    /// `false`, changing nothing, when it was not pending or had expired. Atomic: of concurrent
    /// answers, one wins.
    async fn settle_device(
        &self,
        hash: &TokenHash,
        state: DeviceState,
        code: Option<&CodeRecord>,
        now: UnixTime,
    ) -> StoreResult<bool>;
}

/// What [`RegistrationStore::insert_registration`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    Stored,
    /// The initial access token could not be spent (unknown, used up or expired).
    TokenRefused,
    /// The cap on registrations is reached.
    Full,
    /// The client's Id or Key is another client's.
    Taken,
}

/// Dynamic client registration (RFC 7591, RFC 7592): initial access tokens, and what is kept of
/// each registered client beside its [`Client`] row ([`RegistrationRecord`]). Tokens reach the
/// store as digests only.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Stores a new initial access token (its hash is new).
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()>;
    /// The initial access token, expired or spent or not (the engine checks).
    async fn find_initial_token(&self, hash: &TokenHash)
        -> StoreResult<Option<InitialTokenRecord>>;
    /// Stores the client (as [`ClientStore::insert_client`]) and its registration, and spends
    /// one use of the initial access token `spend` when one is given, all in one transaction:
    /// - [`Registered::TokenRefused`] when the token is unknown, has no use left, or `now` is
    ///   not before its `expires_at`;
    /// - [`Registered::Full`] when `max` is given and `max` registrations exist;
    /// - [`Registered::Taken`] when the client's Id or Key is taken;
    /// - else [`Registered::Stored`].
    ///
    /// Anything but `Stored` writes nothing (the token keeps its use), and neither does a
    /// failure. Atomic: of concurrent calls, at most `max` registrations are ever kept, and a
    /// token with `n` uses left registers at most `n` clients.
    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered>;
    /// The registration whose registration access token has the digest `token`, with its
    /// client; `None` when there is none, or its client was deleted
    /// ([`ClientStore::delete_client`] deletes the registration with the client).
    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>>;
    /// Replaces the client (as [`ClientStore::upsert_client`], same Id) and its registration
    /// (token digest and metadata) together, in one transaction; `false`, and nothing
    /// written, when no registration of `registration.client_id` exists (it was deleted).
    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool>;
}

/// A change that other instances' read caches must hear of (`crate::cache`): what a store
/// method that changes a cached record records, in the same transaction as the change itself.
///
/// The methods that record one: [`TokenStore::revoke_access_token`] ([`Change::AccessToken`]),
/// [`TokenStore::revoke_family`] ([`Change::Family`]), [`ConsentStore::revoke_consent`]
/// ([`Change::Consent`]), [`ClientStore::upsert_client`], [`ClientStore::delete_client`] and
/// [`RegistrationStore::update_registration`] ([`Change::Client`]), [`UserStore::upsert_user`],
/// [`UserStore::update_user`], [`UserStore::set_user_disabled`] and [`UserStore::delete_user`]
/// ([`Change::User`]), [`ThrottleStore::record_failure`] and [`ThrottleStore::clear_failures`]
/// ([`Change::Failures`]), [`KeyStore::insert_signing_key`], [`KeyStore::schedule_key_removal`]
/// and [`KeyStore::delete_signing_key`] when they change a row ([`Change::Keys`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// One access token was revoked.
    AccessToken(TokenHash),
    /// Every token of a grant family was revoked.
    Family(Uuid),
    /// A client was changed or removed (and, when removed, its tokens revoked).
    Client(Uuid),
    /// A user was changed, disabled or removed (and then its tokens revoked).
    User(Uuid),
    /// A user's consent to a client was revoked, and their grants with it.
    Consent { user: Uuid, client: Uuid },
    /// A failure counter of the throttle was counted up or cleared (its key).
    Failures(String),
    /// A signing key was stored, scheduled for removal or removed: instances reload their keys
    /// (rather than at their next periodic reload, `keys::RELOAD_INTERVAL`).
    Keys,
    /// Changes may have been missed (a feed that lost its connection): forget everything.
    Everything,
}

impl Change {
    /// The change as one line of ASCII (a PostgreSQL `NOTIFY` payload, a SQLite row):
    /// `t:` and the token hash in hex, `f:`, `c:` or `u:` and a UUID, `g:USER:CLIENT`, `k:` and
    /// a throttle key (no line break in any: they are made of names, addresses and UUIDs), `s:`
    /// (the signing keys), `*`.
    pub fn to_wire(&self) -> String {
        match self {
            Change::AccessToken(hash) => {
                let mut out = String::with_capacity(66);
                out.push_str("t:");
                for byte in hash.as_bytes() {
                    out.push_str(&format!("{byte:02x}"));
                }
                out
            }
            Change::Family(id) => format!("f:{id}"),
            Change::Client(id) => format!("c:{id}"),
            Change::User(id) => format!("u:{id}"),
            Change::Consent { user, client } => format!("g:{user}:{client}"),
            Change::Failures(key) => format!("k:{key}"),
            Change::Keys => "s:".to_owned(),
            Change::Everything => "*".to_owned(),
        }
    }

    /// The change that [`Change::to_wire`] wrote; anything else (a newer writer's kind of
    /// change) is [`Change::Everything`], which is always safe.
    pub fn from_wire(wire: &str) -> Self {
        let uuid = |s: &str| Uuid::try_parse(s).ok();
        let parsed = match wire.split_once(':') {
            Some(("t", hex)) if hex.len() == 64 && hex.is_ascii() => (0..32)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
                .and_then(|bytes| TokenHash::from_slice(&bytes))
                .map(Change::AccessToken),
            Some(("f", id)) => uuid(id).map(Change::Family),
            Some(("c", id)) => uuid(id).map(Change::Client),
            Some(("u", id)) => uuid(id).map(Change::User),
            Some(("k", key)) if !key.is_empty() => Some(Change::Failures(key.to_owned())),
            Some(("s", "")) => Some(Change::Keys),
            Some(("g", ids)) => ids.split_once(':').and_then(|(user, client)| {
                Some(Change::Consent {
                    user: uuid(user)?,
                    client: uuid(client)?,
                })
            }),
            _ => None,
        };
        parsed.unwrap_or(Change::Everything)
    }
}

/// How an instance hears of the changes that every instance (itself included) commits to the
/// store, so that its read cache (`crate::cache`) forgets what they made stale. Optional: an
/// engine without one caches nothing ([`crate::Engine::with_change_feed`]).
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The changes committed since the previous call, without waiting; the first call may
    /// answer [`Change::Everything`]. `Ok` promises that every change committed before the
    /// call began is in this answer or an earlier one; an error promises nothing (the cache
    /// then empties itself and is not used until a call succeeds again).
    async fn changes(&self) -> StoreResult<Vec<Change>>;
}

/// Users' second factors: an authenticator app (TOTP), passkeys (WebAuthn) and the recovery
/// codes, each code stored as an HMAC under the server's key.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>>;
    /// Sets the user's TOTP secret (replacing one) and its recovery codes, in one transaction.
    async fn set_totp(&self, totp: &TotpRecord, recovery: &[[u8; 32]]) -> StoreResult<()>;
    /// Deletes the user's TOTP secret only (its passkeys and recovery codes stay); false when
    /// it had none.
    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool>;
    /// Deletes every second factor of the user, in one transaction: the TOTP secret, the
    /// passkeys and the recovery codes; false when it had neither a secret nor a passkey.
    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool>;
    /// Stores a new passkey; false, storing nothing, when its credential id is registered
    /// already (to this user or another: W3C WebAuthn §7.1 step 26).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool>;
    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey of this credential id, whoever's it is.
    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>>;
    /// After a use: the credential as updated (its counter and backup state) and the time;
    /// false when the passkey is gone.
    async fn update_passkey(
        &self,
        credential_id: &[u8],
        credential: &str,
        used_at: UnixTime,
    ) -> StoreResult<bool>;
    /// Deletes one passkey of the user; false when the user has none of this id.
    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Atomic: makes `step` the last accepted when it is later than the last one; false
    /// otherwise (a replayed or older code), and when the user has no secret.
    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool>;
    /// Atomic: spends one unused recovery code of the user with this hash; false when none.
    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &[u8; 32],
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Replaces the user's recovery codes.
    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[[u8; 32]]) -> StoreResult<()>;
    /// The user's unused recovery codes.
    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32>;
}

/// Invitations to sign up, and the sign-up that spends one.
#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Stores a new invitation (its hash and id are new).
    async fn insert_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()>;
    /// The invitation, used or expired or not (the engine checks).
    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>>;
    /// The invitations neither used nor expired at `now`, newest first.
    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>>;
    /// Deletes an unused invitation by id (withdrawn); false when there is none unused.
    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool>;
    /// Atomic: spends the invitation (unused and unexpired at `now`, then used by the new
    /// user) and creates the user, or does neither: a taken username leaves the invitation
    /// usable, and two sign-ups racing on one invitation create one account. Records
    /// [`Change::User`] when it creates.
    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp>;
}

/// What [`InvitationStore::sign_up_invited`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitedSignUp {
    Created,
    /// Nothing happened: the username (or id) is another user's.
    UsernameTaken,
    /// Nothing happened: no such invitation, or used, or expired.
    InvitationInvalid,
}

/// Audit events ([`crate::audit`]), kept for the operator's retention.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the events in one transaction, each given the next id (ids increase with the
    /// order of insertion).
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()>;
    /// The events the filter keeps (see [`EventFilter`] for the order).
    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>>;
    /// Deletes the events older than `before_ms`; returns how many.
    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64>;
}

/// Every port of the engine's storage, implemented by one adapter. Implement the sixteen
/// traits and this one comes with them.
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
    + ThrottleStore
    + AssertionStore
    + RegistrationStore
    + DeviceStore
    + EventStore
    + InvitationStore
    + SecondFactorStore
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
        + ThrottleStore
        + AssertionStore
        + RegistrationStore
        + DeviceStore
        + EventStore
        + InvitationStore
        + SecondFactorStore
{
}

/// The store as the engine holds it: one value shared by every request.
pub type SharedStore = Arc<dyn Store>;
