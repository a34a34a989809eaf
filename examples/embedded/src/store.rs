//! Past 700 lines, still one idea: it is meant to be read as one piece, the whole of what an
//! application implements to hold Doorward's records, one `impl` block per port.
//!
//! The application's own store: every storage port of `doorward_core::ports`, over plain maps
//! behind one async mutex. It is what an application with a database of its own writes (here
//! the "database" is memory), and it proves itself with Doorward's contract test kit (the test
//! at the bottom).
//!
//! One lock around every table makes each port method one transaction, which is what the
//! atomic methods need: a code is spent and its tokens stored under the same guard, so two
//! concurrent redemptions cannot both find it unspent. A method that might fail checks
//! everything before it changes anything, so that a failure leaves the tables as they were.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use doorward_core::audit::{AuditEvent, EventFilter};
use doorward_core::jose::SigningAlg;
use doorward_core::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, DeviceAuthorization,
    DeviceState, InitialTokenRecord, InvitationRecord, NewUser, PasskeyRecord, RefreshTokenRecord,
    RegistrationRecord, SessionRecord, SigningKeyRecord, TotpRecord, User, UserChange, UserFilter,
};
use doorward_core::ports::{
    AssertionStore, ClientRef, ClientStore, CodeStore, ConsentStore, DeviceStore, EventStore,
    Failures, InvitationStore, InvitedSignUp, Issue, KeyStore, MaintenanceStore, Redemption,
    Registered, RegistrationStore, SecondFactorStore, SecretStore, SessionStore, StoreError,
    StoreResult, ThrottleStore, TokenStore, UnixTime, UserStore, MAX_REFRESH_GRACE,
};
use doorward_core::TokenHash;
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Every storage port over in-process tables; nothing survives a restart.
pub struct ExampleStore {
    tables: Mutex<Tables>,
}

impl ExampleStore {
    pub fn new() -> Self {
        Self {
            tables: Mutex::new(Tables::default()),
        }
    }

    async fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().await
    }
}

impl Default for ExampleStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The SHA-256 digest of a credential, as the tables key it. The credential itself never
/// reaches the store.
type Digest = [u8; 32];

#[derive(Default)]
struct Tables {
    /// By Key, the name clients use at the endpoints; `client_keys` finds the Key of an Id.
    clients: HashMap<String, Client>,
    client_keys: HashMap<Uuid, String>,
    /// By username, the name people sign in with; `usernames` finds the username of an id.
    users: HashMap<String, User>,
    usernames: HashMap<Uuid, String>,
    sessions: HashMap<Digest, SessionRecord>,
    consents: HashMap<Approval, ConsentRecord>,
    grants: HashMap<Uuid, Grant>,
    codes: HashMap<Digest, IssuedCode>,
    access_tokens: HashMap<Digest, AccessTokenRecord>,
    /// `used_at` and `successor` of each record are kept up to date in place.
    refresh_tokens: HashMap<Digest, RefreshTokenRecord>,
    server_secrets: HashMap<String, Vec<u8>>,
    /// By algorithm and generation, which is what makes a key unique.
    signing_keys: BTreeMap<(SigningAlg, i64), SigningKeyRecord>,
    /// The throttle's failure counters, by key.
    failures: HashMap<String, Failures>,
    /// The `jti` of client assertions used, by client, with when each may be forgotten.
    assertion_jtis: HashMap<(Uuid, String), UnixTime>,
    /// Initial access tokens of dynamic client registration, by digest.
    initial_tokens: HashMap<Digest, InitialTokenRecord>,
    /// Registered clients' registrations, by client Id (deleted with the client).
    registrations: HashMap<Uuid, RegistrationRecord>,
    /// Device authorizations (RFC 8628), by the digest of their device code.
    devices: HashMap<Digest, DeviceAuthorization>,
    /// The audit trail, by increasing id.
    events: Vec<AuditEvent>,
    /// Invitations to sign up, by the digest of their code.
    invitations: HashMap<Digest, InvitationRecord>,
    /// Authenticator apps, by user.
    totp: HashMap<Uuid, TotpRecord>,
    /// Recovery codes by user: each one's HMAC and whether it was spent.
    recovery: HashMap<Uuid, Vec<(Digest, bool)>>,
    /// Passkeys by credential id (unique across users).
    passkeys: std::collections::BTreeMap<Vec<u8>, PasskeyRecord>,
}

/// Who approved which client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Approval {
    user: Uuid,
    client: Uuid,
}

/// A grant family: what a code started, and whether it was revoked. Tokens refer to it by
/// `family_id`; a revoked family outlives its tokens for a while, so that a token inserted
/// after the revocation is born revoked.
struct Grant {
    /// `None` for a family known only from its revocation.
    owner: Option<Approval>,
    revoked: bool,
    /// When the family was started or revoked; it is forgotten `keep_spent` seconds later once
    /// nothing refers to it.
    since: UnixTime,
    /// What the application attached to the grant (`CodeRecord::grant_data`).
    data: serde_json::Map<String, serde_json::Value>,
    /// How the user authenticated for it (`CodeRecord::amr`).
    amr: Vec<String>,
}

struct IssuedCode {
    record: CodeRecord,
    used_at: Option<UnixTime>,
}

impl Tables {
    /// What disabling or removing a user ends: its sessions, its outstanding codes, its
    /// grant families with their tokens.
    fn end_access(&mut self, user: Uuid, now: UnixTime) {
        self.sessions.retain(|_, s| s.user_id != user);
        for code in self.codes.values_mut() {
            if code.record.user_id == user && code.used_at.is_none() {
                code.used_at = Some(now);
            }
        }
        self.revoke_families(now, |_, grant| {
            grant.owner.is_some_and(|owner| owner.user == user)
        });
    }

    /// The data of a grant family (empty when it has none).
    fn grant_data(&self, family: Uuid) -> serde_json::Map<String, serde_json::Value> {
        self.grants
            .get(&family)
            .map(|grant| grant.data.clone())
            .unwrap_or_default()
    }

    /// The code and its grant family (the code's first): `insert_code`, and an approved device.
    fn insert_code(&mut self, code: &CodeRecord) -> StoreResult<()> {
        let tables = self;
        if tables.codes.contains_key(&code.hash.0) {
            return Err(StoreError::Conflict("code hash exists".into()));
        }
        if tables.grants.contains_key(&code.family_id) {
            return Err(StoreError::Conflict("the code's family exists".into()));
        }
        tables.grants.insert(
            code.family_id,
            Grant {
                owner: Some(Approval {
                    user: code.user_id,
                    client: code.client_id,
                }),
                revoked: false,
                since: code.issued_at,
                data: code.grant_data.clone(),
                amr: code.amr.clone(),
            },
        );
        tables.codes.insert(
            code.hash.0,
            IssuedCode {
                record: code.clone(),
                used_at: None,
            },
        );
        Ok(())
    }

    fn client_by_id(&self, id: Uuid) -> Option<&Client> {
        self.client_keys
            .get(&id)
            .and_then(|key| self.clients.get(key))
    }

    fn user_by_id(&self, id: Uuid) -> Option<&User> {
        self.usernames
            .get(&id)
            .and_then(|name| self.users.get(name))
    }

    fn family_revoked(&self, family: Uuid) -> bool {
        self.grants.get(&family).is_some_and(|g| g.revoked)
    }

    /// Refuses tokens whose digest is taken: they are 256-bit random values, so a repeat is a
    /// bug, never chance.
    fn check_new_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        if self.access_tokens.contains_key(&access.hash.0) {
            return Err(StoreError::Conflict("access token hash exists".into()));
        }
        if refresh.is_some_and(|r| self.refresh_tokens.contains_key(&r.hash.0)) {
            return Err(StoreError::Conflict("refresh token hash exists".into()));
        }
        Ok(())
    }

    /// Stores tokens checked by [`Tables::check_new_tokens`]; a revoked family's are born
    /// revoked.
    fn put_tokens(&mut self, access: &AccessTokenRecord, refresh: Option<&RefreshTokenRecord>) {
        let revoked = access.revoked || self.family_revoked(access.family_id);
        self.access_tokens.insert(
            access.hash.0,
            AccessTokenRecord {
                revoked,
                ..access.clone()
            },
        );
        if let Some(refresh) = refresh {
            let revoked = refresh.revoked || self.family_revoked(refresh.family_id);
            self.refresh_tokens.insert(
                refresh.hash.0,
                RefreshTokenRecord {
                    revoked,
                    used_at: None,
                    successor: None,
                    ..refresh.clone()
                },
            );
        }
    }

    fn check_issue(&self, issue: Option<Issue<'_>>) -> StoreResult<()> {
        match issue {
            Some(issue) => self.check_new_tokens(issue.access, issue.refresh),
            None => Ok(()),
        }
    }

    fn put_issue(&mut self, issue: Option<Issue<'_>>) {
        if let Some(issue) = issue {
            self.put_tokens(issue.access, issue.refresh);
        }
    }

    /// Revokes every token of the families `selected`, and remembers them revoked.
    fn revoke_families(&mut self, now: UnixTime, selected: impl Fn(Uuid, &Grant) -> bool) {
        let families: Vec<Uuid> = self
            .grants
            .iter()
            .filter(|(id, grant)| selected(**id, grant))
            .map(|(id, _)| *id)
            .collect();
        for family in &families {
            if let Some(grant) = self.grants.get_mut(family) {
                if !grant.revoked {
                    grant.revoked = true;
                    grant.since = now;
                }
            }
        }
        for token in self.access_tokens.values_mut() {
            token.revoked |= families.contains(&token.family_id);
        }
        for token in self.refresh_tokens.values_mut() {
            token.revoked |= families.contains(&token.family_id);
        }
    }
}

#[async_trait]
impl ClientStore for ExampleStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        let tables = self.tables().await;
        Ok(match client {
            ClientRef::Id(id) => tables.client_by_id(id).cloned(),
            ClientRef::Key(key) => tables.clients.get(key).cloned(),
        })
    }

    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        let mut tables = self.tables().await;
        if let Some(holder) = tables.clients.get(&client.key) {
            if holder.id != client.id {
                return Err(StoreError::Conflict(format!(
                    "the client Key {} belongs to another client",
                    client.key
                )));
            }
        }
        let mut client = client.clone();
        if let Some(existing) = tables.client_by_id(client.id) {
            client.created_at = existing.created_at;
        }
        if let Some(old_key) = tables.client_keys.insert(client.id, client.key.clone()) {
            tables.clients.remove(&old_key);
        }
        tables.clients.insert(client.key.clone(), client);
        Ok(())
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        if tables.clients.contains_key(&client.key) || tables.client_keys.contains_key(&client.id) {
            return Ok(false);
        }
        tables.client_keys.insert(client.id, client.key.clone());
        tables.clients.insert(client.key.clone(), client.clone());
        Ok(true)
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let tables = self.tables().await;
        let mut clients: Vec<Client> = tables.clients.values().cloned().collect();
        clients.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(clients)
    }

    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let existed = match tables.client_keys.remove(&id) {
            Some(key) => tables.clients.remove(&key).is_some(),
            None => false,
        };
        tables.registrations.remove(&id);
        tables.consents.retain(|approval, _| approval.client != id);
        for code in tables.codes.values_mut() {
            if code.record.client_id == id && code.used_at.is_none() {
                code.used_at = Some(now);
            }
        }
        tables.revoke_families(now, |_, grant| {
            grant.owner.is_some_and(|owner| owner.client == id)
        });
        // Tokens whose family is not the client's grant (none today) go by client_id.
        for token in tables.access_tokens.values_mut() {
            token.revoked |= token.client_id == id;
        }
        for token in tables.refresh_tokens.values_mut() {
            token.revoked |= token.client_id == id;
        }
        Ok(existed)
    }
}

#[async_trait]
impl UserStore for ExampleStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        Ok(self.tables().await.user_by_id(id).cloned())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.tables().await.users.get(username).cloned())
    }

    async fn upsert_user(&self, new: &NewUser) -> StoreResult<User> {
        let mut tables = self.tables().await;
        if let Some(user) = tables.users.get_mut(&new.username) {
            user.display_name.clone_from(&new.display_name);
            user.password_hash.clone_from(&new.password_hash);
            user.email.clone_from(&new.email);
            user.email_verified = new.email_verified;
            user.claims.clone_from(&new.claims);
            user.admin |= new.admin;
            user.source = new.source;
            return Ok(user.clone());
        }
        if tables.usernames.contains_key(&new.id) {
            return Err(StoreError::Conflict(format!(
                "the user id {} belongs to another username",
                new.id
            )));
        }
        let user = User {
            disabled_at: None,
            ..new.clone()
        };
        tables.usernames.insert(user.id, user.username.clone());
        tables.users.insert(user.username.clone(), user.clone());
        Ok(user)
    }

    async fn insert_user(&self, new: &NewUser) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        if tables.users.contains_key(&new.username) || tables.usernames.contains_key(&new.id) {
            return Ok(false);
        }
        tables.usernames.insert(new.id, new.username.clone());
        tables.users.insert(new.username.clone(), new.clone());
        Ok(true)
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        let tables = self.tables().await;
        let search = filter.search.as_deref().map(str::to_ascii_lowercase);
        let holds = |text: &str, search: &str| text.to_ascii_lowercase().contains(search);
        let mut users: Vec<User> = tables
            .users
            .values()
            .filter(|u| {
                filter
                    .after
                    .as_deref()
                    .is_none_or(|after| u.username.as_str() > after)
            })
            .filter(|u| {
                search.as_deref().is_none_or(|s| {
                    holds(&u.username, s)
                        || holds(&u.display_name, s)
                        || u.email.as_deref().is_some_and(|e| holds(e, s))
                })
            })
            .cloned()
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users.truncate(filter.limit as usize);
        Ok(users)
    }

    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let Some(username) = tables.usernames.get(&id).cloned() else {
            return Ok(false);
        };
        if let Some(stored) = tables.users.get_mut(&username) {
            *stored = change.applied_to(stored);
        }
        Ok(true)
    }

    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let Some(username) = tables.usernames.get(&id).cloned() else {
            return Ok(false);
        };
        if let Some(user) = tables.users.get_mut(&username) {
            user.disabled_at = disabled_at;
        }
        if disabled_at.is_some() {
            tables.end_access(id, now);
        }
        Ok(true)
    }

    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64> {
        let mut tables = self.tables().await;
        let before = tables.sessions.len();
        tables.sessions.retain(|_, s| s.user_id != id);
        Ok((before - tables.sessions.len()) as u64)
    }

    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let Some(username) = tables.usernames.remove(&id) else {
            return Ok(false);
        };
        tables.users.remove(&username);
        tables.totp.remove(&id);
        tables.recovery.remove(&id);
        tables.passkeys.retain(|_, p| p.user_id != id);
        tables.end_access(id, now);
        tables.consents.retain(|approval, _| approval.user != id);
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for ExampleStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let mut tables = self.tables().await;
        if tables.sessions.contains_key(&session.hash.0) {
            return Err(StoreError::Conflict("session hash exists".into()));
        }
        tables.sessions.insert(session.hash.0, session.clone());
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        Ok(self.tables().await.sessions.get(&hash.0).cloned())
    }

    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        self.tables().await.sessions.remove(&hash.0);
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for ExampleStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        let approval = Approval { user, client };
        Ok(self.tables().await.consents.get(&approval).cloned())
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        let approval = Approval {
            user: consent.user_id,
            client: consent.client_id,
        };
        let mut tables = self.tables().await;
        let merged = match tables.consents.get(&approval) {
            Some(earlier) => ConsentRecord {
                scopes: earlier.scopes.union(&consent.scopes),
                ..consent.clone()
            },
            None => consent.clone(),
        };
        tables.consents.insert(approval, merged);
        Ok(())
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        let tables = self.tables().await;
        let mut consents: Vec<ConsentRecord> = tables
            .consents
            .values()
            .filter(|c| c.user_id == user)
            .cloned()
            .collect();
        consents.sort_by_key(|c| (c.granted_at, c.client_id));
        Ok(consents)
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let approval = Approval { user, client };
        let mut tables = self.tables().await;
        tables.consents.remove(&approval);
        let theirs = |grant: &Grant| grant.owner == Some(approval);
        for code in tables.codes.values_mut() {
            let owner = Approval {
                user: code.record.user_id,
                client: code.record.client_id,
            };
            if owner == approval && code.used_at.is_none() {
                code.used_at = Some(now);
            }
        }
        tables.revoke_families(now, |_, grant| theirs(grant));
        Ok(())
    }
}

#[async_trait]
impl CodeStore for ExampleStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        self.tables().await.insert_code(code)
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        Ok(self
            .tables()
            .await
            .codes
            .get(&hash.0)
            .filter(|code| code.record.client_id == client)
            .map(|code| code.record.clone()))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>> {
        let mut tables = self.tables().await;
        match tables.codes.get(&hash.0) {
            Some(code) if code.record.client_id == client => {
                if code.used_at.is_some() {
                    return Ok(Redemption::Spent(code.record.clone()));
                }
            }
            _ => return Ok(Redemption::Unknown),
        }
        tables.check_issue(issue)?;
        // Invariant: found above, under the same guard.
        let code = tables.codes.get_mut(&hash.0).expect("the code exists");
        code.used_at = Some(now);
        let record = code.record.clone();
        tables.put_issue(issue);
        Ok(Redemption::Fresh(record))
    }
}

#[async_trait]
impl TokenStore for ExampleStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        let mut tables = self.tables().await;
        tables.check_new_tokens(access, refresh)?;
        tables.put_tokens(access, refresh);
        Ok(())
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        Ok(self.tables().await.access_tokens.get(&hash.0).cloned())
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        let tables = self.tables().await;
        let Some(token) = tables.access_tokens.get(&hash.0) else {
            return Ok(None);
        };
        let Some(client) = tables.client_by_id(token.client_id) else {
            return Ok(None);
        };
        // No user: a client_credentials token; a user that is gone: no token.
        let user = match token.user_id {
            Some(id) => match tables.user_by_id(id) {
                Some(user) => Some(user.clone()),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(BearerRecord {
            token: token.clone(),
            user: user.map(std::sync::Arc::new),
            client: client.clone().into(),
            grant_data: tables.grant_data(token.family_id).into(),
        }))
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>> {
        let mut tables = self.tables().await;
        match tables.refresh_tokens.get(&hash.0) {
            Some(token) if token.client_id == client => {
                if token.used_at.is_some() {
                    return Ok(Redemption::Spent(token.clone()));
                }
            }
            _ => return Ok(Redemption::Unknown),
        }
        tables.check_issue(issue)?;
        // Invariant: found above, under the same guard.
        let token = tables
            .refresh_tokens
            .get_mut(&hash.0)
            .expect("the refresh token exists");
        token.used_at = Some(now);
        token.successor = successor.map(<[u8]>::to_vec);
        let record = token.clone();
        tables.put_issue(issue);
        Ok(Redemption::Fresh(record))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let tables = self.tables().await;
        Ok(tables
            .refresh_tokens
            .get(&hash.0)
            .map(|record| RefreshTokenRecord {
                grant_data: tables.grant_data(record.family_id),
                amr: tables
                    .grants
                    .get(&record.family_id)
                    .map(|grant| grant.amr.clone())
                    .unwrap_or_default(),
                ..record.clone()
            }))
    }

    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>> {
        let tables = self.tables().await;
        let mut delegated: Vec<_> = tables
            .access_tokens
            .values()
            .filter(|t| t.user_id == Some(user) && t.act.is_some())
            .filter(|t| !t.revoked && now < t.expires_at)
            .cloned()
            .collect();
        delegated.sort_by_key(|t| (t.issued_at, t.hash.0));
        Ok(delegated)
    }

    async fn revoke_access_token(&self, hash: &TokenHash, _now: UnixTime) -> StoreResult<()> {
        if let Some(token) = self.tables().await.access_tokens.get_mut(&hash.0) {
            token.revoked = true;
        }
        Ok(())
    }

    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        let mut tables = self.tables().await;
        tables.grants.entry(family).or_insert(Grant {
            owner: None,
            revoked: false,
            since: now,
            data: serde_json::Map::new(),
            amr: Vec::new(),
        });
        tables.revoke_families(now, |id, _| id == family);
        Ok(())
    }
}

#[async_trait]
impl MaintenanceStore for ExampleStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        let mut tables = self.tables().await;
        let mut deleted = 0;
        let mut count = |before: usize, after: usize| deleted += (before - after) as u64;

        let before = tables.sessions.len();
        tables.sessions.retain(|_, s| s.expires_at > now);
        count(before, tables.sessions.len());
        let before = tables.codes.len();
        tables
            .codes
            .retain(|_, c| c.record.expires_at > now - keep_spent);
        count(before, tables.codes.len());
        let before = tables.access_tokens.len();
        tables.access_tokens.retain(|_, t| t.expires_at > now);
        count(before, tables.access_tokens.len());
        let before = tables.refresh_tokens.len();
        tables.refresh_tokens.retain(|_, t| t.expires_at > now);
        count(before, tables.refresh_tokens.len());

        tables.failures.retain(|_, f| f.expires_at > now);
        tables
            .assertion_jtis
            .retain(|_, expires_at| *expires_at > now);
        tables.initial_tokens.retain(|_, t| t.expires_at > now);
        tables.devices.retain(|_, d| d.expires_at > now);
        // Past the longest grace window a sealed answer may not be read again.
        for token in tables.refresh_tokens.values_mut() {
            if token.used_at.is_some_and(|t| t < now - MAX_REFRESH_GRACE) {
                token.successor = None;
            }
        }
        // A family goes once nothing refers to it and its revocation is old news (not counted:
        // bookkeeping, not a row the engine stored).
        let Tables {
            grants,
            codes,
            access_tokens,
            refresh_tokens,
            ..
        } = &mut *tables;
        grants.retain(|family, grant| {
            grant.since > now - keep_spent
                || codes.values().any(|c| c.record.family_id == *family)
                || access_tokens.values().any(|t| t.family_id == *family)
                || refresh_tokens.values().any(|t| t.family_id == *family)
        });
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for ExampleStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let mut tables = self.tables().await;
        let stored = tables
            .server_secrets
            .entry(name.to_owned())
            .or_insert_with(|| candidate.to_vec());
        Ok(stored.clone())
    }

    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        match tables.server_secrets.get_mut(name) {
            Some(value) if value.as_slice() == expected => {
                *value = sealed.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl KeyStore for ExampleStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        Ok(self.tables().await.signing_keys.values().cloned().collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let slot = (key.alg, key.generation);
        let kid_taken = tables.signing_keys.values().any(|k| k.kid == key.kid);
        if kid_taken || tables.signing_keys.contains_key(&slot) {
            return Ok(false);
        }
        tables.signing_keys.insert(slot, key.clone());
        Ok(true)
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        let mut tables = self.tables().await;
        if let Some(key) = tables.signing_keys.values_mut().find(|k| k.kid == kid) {
            key.remove_at = Some(match key.remove_at {
                Some(earlier) => earlier.min(remove_at),
                None => remove_at,
            });
        }
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.tables()
            .await
            .signing_keys
            .retain(|_, key| key.kid != kid);
        Ok(())
    }

    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        match tables.signing_keys.values_mut().find(|k| k.kid == kid) {
            Some(key) if key.private_key == expected => {
                key.private_key = sealed.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl ThrottleStore for ExampleStore {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        Ok(self.tables().await.failures.get(key).copied())
    }

    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        let mut tables = self.tables().await;
        let count = match tables.failures.get(key) {
            Some(f) if f.expires_at > now => f.count.saturating_add(1),
            _ => 1,
        };
        let counted = Failures {
            count,
            last_at: now,
            expires_at,
        };
        tables.failures.insert(key.to_owned(), counted);
        Ok(counted)
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.tables().await.failures.remove(key);
        Ok(())
    }
}

#[async_trait]
impl AssertionStore for ExampleStore {
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let key = (client, jti.to_owned());
        if tables.assertion_jtis.get(&key).is_some_and(|t| *t > now) {
            return Ok(false);
        }
        tables.assertion_jtis.insert(key, expires_at);
        Ok(true)
    }
}

#[async_trait]
impl DeviceStore for ExampleStore {
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let taken = tables.devices.contains_key(&record.hash.0)
            || tables
                .devices
                .values()
                .any(|d| d.user_code == record.user_code);
        if !taken {
            tables.devices.insert(record.hash.0, record.clone());
        }
        Ok(!taken)
    }

    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        let tables = self.tables().await;
        Ok(tables
            .devices
            .values()
            .find(|d| d.user_code == user_code)
            .cloned())
    }

    async fn poll_device(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        let mut tables = self.tables().await;
        Ok(tables.devices.get_mut(&hash.0).map(|device| {
            let before = device.clone();
            device.polled_at = Some(now);
            before
        }))
    }

    async fn settle_device(
        &self,
        hash: &TokenHash,
        state: DeviceState,
        code: Option<&CodeRecord>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        match tables.devices.get(&hash.0) {
            Some(d) if d.state == DeviceState::Pending && d.expires_at > now => {}
            _ => return Ok(false),
        }
        // The code first: when it is refused, the authorization stays pending.
        if let Some(code) = code {
            tables.insert_code(code)?;
        }
        if let Some(device) = tables.devices.get_mut(&hash.0) {
            device.state = state;
        }
        Ok(true)
    }
}

#[async_trait]
impl RegistrationStore for ExampleStore {
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()> {
        let mut tables = self.tables().await;
        tables.initial_tokens.insert(token.hash.0, token.clone());
        Ok(())
    }

    async fn find_initial_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<InitialTokenRecord>> {
        Ok(self.tables().await.initial_tokens.get(&hash.0).cloned())
    }

    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered> {
        let mut tables = self.tables().await;
        // Everything is checked before anything changes.
        if let Some(hash) = spend {
            let live = tables
                .initial_tokens
                .get(&hash.0)
                .is_some_and(|t| t.uses_left > 0 && now < t.expires_at);
            if !live {
                return Ok(Registered::TokenRefused);
            }
        }
        let count = u64::try_from(tables.registrations.len()).unwrap_or(u64::MAX);
        if max.is_some_and(|max| count >= max) {
            return Ok(Registered::Full);
        }
        if tables.clients.contains_key(&client.key) || tables.client_keys.contains_key(&client.id) {
            return Ok(Registered::Taken);
        }
        if let Some(token) = spend.and_then(|hash| tables.initial_tokens.get_mut(&hash.0)) {
            token.uses_left -= 1;
        }
        tables.client_keys.insert(client.id, client.key.clone());
        tables.clients.insert(client.key.clone(), client.clone());
        tables.registrations.insert(client.id, registration.clone());
        Ok(Registered::Stored)
    }

    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>> {
        let tables = self.tables().await;
        Ok(tables
            .registrations
            .values()
            .find(|r| r.token_hash == *token)
            .and_then(|r| Some((tables.client_by_id(r.client_id)?.clone(), r.clone()))))
    }

    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let Some(existing) = tables.client_by_id(client.id).cloned() else {
            return Ok(false);
        };
        if !tables.registrations.contains_key(&registration.client_id) {
            return Ok(false);
        }
        if tables
            .clients
            .get(&client.key)
            .is_some_and(|holder| holder.id != client.id)
        {
            return Err(StoreError::Conflict(format!(
                "the client Key {} belongs to another client",
                client.key
            )));
        }
        let mut client = client.clone();
        client.created_at = existing.created_at;
        tables.clients.remove(&existing.key);
        tables.client_keys.insert(client.id, client.key.clone());
        tables.clients.insert(client.key.clone(), client);
        tables
            .registrations
            .insert(registration.client_id, registration.clone());
        Ok(true)
    }
}

#[async_trait]
impl EventStore for ExampleStore {
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut tables = self.tables().await;
        for event in events {
            let id = tables.events.last().map_or(1, |last| last.id + 1);
            tables.events.push(AuditEvent {
                id,
                ..event.clone()
            });
        }
        Ok(())
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        let tables = self.tables().await;
        let kept = tables.events.iter().filter(|e| filter.keeps(e));
        let limit = filter.limit as usize;
        Ok(match filter.after {
            Some(after) => kept.filter(|e| e.id > after).take(limit).cloned().collect(),
            None => kept.rev().take(limit).cloned().collect(),
        })
    }

    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64> {
        let mut tables = self.tables().await;
        let before = tables.events.len();
        tables.events.retain(|e| e.at_ms >= before_ms);
        Ok((before - tables.events.len()) as u64)
    }
}

#[async_trait]
impl InvitationStore for ExampleStore {
    async fn insert_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        let mut tables = self.tables().await;
        if tables.invitations.contains_key(&invitation.hash.0) {
            return Err(StoreError::Conflict("invitation hash exists".into()));
        }
        tables
            .invitations
            .insert(invitation.hash.0, invitation.clone());
        Ok(())
    }

    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>> {
        Ok(self.tables().await.invitations.get(&hash.0).cloned())
    }

    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>> {
        let tables = self.tables().await;
        let mut open: Vec<InvitationRecord> = tables
            .invitations
            .values()
            .filter(|i| i.used_at.is_none() && i.expires_at > now)
            .cloned()
            .collect();
        open.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(open)
    }

    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let found = tables
            .invitations
            .iter()
            .find(|(_, i)| i.id == id && i.used_at.is_none())
            .map(|(hash, _)| *hash);
        Ok(found.is_some_and(|hash| tables.invitations.remove(&hash).is_some()))
    }

    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp> {
        let mut tables = self.tables().await;
        let usable = tables
            .invitations
            .get(&invitation.0)
            .is_some_and(|i| i.used_at.is_none() && i.expires_at > now);
        if !usable {
            return Ok(InvitedSignUp::InvitationInvalid);
        }
        if tables.users.contains_key(&user.username) || tables.usernames.contains_key(&user.id) {
            return Ok(InvitedSignUp::UsernameTaken);
        }
        tables.usernames.insert(user.id, user.username.clone());
        tables.users.insert(user.username.clone(), user.clone());
        if let Some(i) = tables.invitations.get_mut(&invitation.0) {
            i.used_at = Some(now);
            i.used_by = Some(user.id);
        }
        Ok(InvitedSignUp::Created)
    }
}

#[async_trait]
impl SecondFactorStore for ExampleStore {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>> {
        Ok(self.tables().await.totp.get(&user).cloned())
    }

    async fn set_totp(&self, totp: &TotpRecord, recovery: &[Digest]) -> StoreResult<()> {
        let mut tables = self.tables().await;
        tables.totp.insert(totp.user_id, totp.clone());
        tables
            .recovery
            .insert(totp.user_id, recovery.iter().map(|h| (*h, false)).collect());
        Ok(())
    }

    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool> {
        Ok(self.tables().await.totp.remove(&user).is_some())
    }

    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        tables.recovery.remove(&user);
        let had_passkeys = tables.passkeys.values().any(|p| p.user_id == user);
        tables.passkeys.retain(|_, p| p.user_id != user);
        Ok(tables.totp.remove(&user).is_some() || had_passkeys)
    }

    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let taken = tables.passkeys.contains_key(&passkey.credential_id)
            || tables.passkeys.values().any(|p| p.id == passkey.id);
        if !taken {
            tables
                .passkeys
                .insert(passkey.credential_id.clone(), passkey.clone());
        }
        Ok(!taken)
    }

    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let tables = self.tables().await;
        let mut mine: Vec<PasskeyRecord> = tables
            .passkeys
            .values()
            .filter(|p| p.user_id == user)
            .cloned()
            .collect();
        mine.sort_unstable_by_key(|p| (p.created_at, p.id));
        Ok(mine)
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        Ok(self.tables().await.passkeys.get(credential_id).cloned())
    }

    async fn update_passkey(
        &self,
        credential_id: &[u8],
        credential: &str,
        used_at: UnixTime,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let Some(passkey) = tables.passkeys.get_mut(credential_id) else {
            return Ok(false);
        };
        passkey.credential = credential.to_owned();
        passkey.last_used_at = Some(used_at);
        Ok(true)
    }

    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let key = tables
            .passkeys
            .iter()
            .find(|(_, p)| p.user_id == user && p.id == id)
            .map(|(k, _)| k.clone());
        Ok(key.is_some_and(|k| tables.passkeys.remove(&k).is_some()))
    }

    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        Ok(match tables.totp.get_mut(&user) {
            Some(totp) if totp.last_step < step => {
                totp.last_step = step;
                true
            }
            _ => false,
        })
    }

    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &Digest,
        _now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tables = self.tables().await;
        let code = tables
            .recovery
            .get_mut(&user)
            .and_then(|codes| codes.iter_mut().find(|(h, spent)| h == hash && !*spent));
        Ok(code.map(|(_, spent)| *spent = true).is_some())
    }

    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[Digest]) -> StoreResult<()> {
        self.tables()
            .await
            .recovery
            .insert(user, hashes.iter().map(|h| (*h, false)).collect());
        Ok(())
    }

    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32> {
        Ok(self.tables().await.recovery.get(&user).map_or(0, |codes| {
            codes.iter().filter(|(_, spent)| !spent).count() as u32
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use doorward_core::ports::SharedStore;
    use doorward_core::testkit;

    use super::ExampleStore;

    #[tokio::test]
    async fn example_store_passes_the_contract() {
        testkit::run_contract(|| async { Arc::new(ExampleStore::new()) as SharedStore }).await;
    }
}
