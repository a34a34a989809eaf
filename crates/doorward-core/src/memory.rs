//! Past 700 lines, still one idea: every storage port over one locked map, meant to be read
//! beside the contract kit it passes; split per port, each piece would share the same lock.
//!
//! An in-memory implementation of every storage port, for tests and experiments. Each
//! operation holds one lock for its whole duration, which makes the atomic operations atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use uuid::Uuid;

use crate::audit::{AuditEvent, EventFilter};
use crate::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, DeviceAuthorization,
    DeviceState, InitialTokenRecord, InvitationRecord, NewUser, PasskeyRecord, RefreshTokenRecord,
    RegistrationRecord, SessionRecord, SigningKeyRecord, TotpRecord, User, UserChange, UserFilter,
};
use crate::opaque::TokenHash;
use crate::ports::{
    AssertionStore, ClientRef, ClientStore, CodeStore, ConsentStore, DeviceStore, EventStore,
    Failures, InvitationStore, InvitedSignUp, Issue, KeyStore, MaintenanceStore, Redemption,
    Registered, RegistrationStore, SecondFactorStore, SecretStore, SessionStore, StoreResult,
    ThrottleStore, TokenStore, UnixTime, UserStore,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// A recovery code's hash and when it was spent.
type RecoveryCode = ([u8; 32], Option<UnixTime>);

#[derive(Default)]
struct Inner {
    clients: HashMap<Uuid, Client>,
    users: HashMap<Uuid, User>,
    sessions: HashMap<TokenHash, SessionRecord>,
    consents: Vec<ConsentRecord>,
    codes: HashMap<TokenHash, (CodeRecord, Option<UnixTime>)>,
    access: HashMap<TokenHash, AccessTokenRecord>,
    refresh: HashMap<TokenHash, (RefreshTokenRecord, Option<UnixTime>)>,
    secrets: HashMap<String, Vec<u8>>,
    revoked_families: std::collections::HashSet<Uuid>,
    keys: Vec<SigningKeyRecord>,
    failures: HashMap<String, Failures>,
    jtis: HashMap<(Uuid, String), UnixTime>,
    initial_tokens: HashMap<TokenHash, InitialTokenRecord>,
    /// By client Id; deleted with the client.
    registrations: HashMap<Uuid, RegistrationRecord>,
    devices: HashMap<TokenHash, DeviceAuthorization>,
    /// The grant families' data, by family (from the code that starts each).
    grant_data: HashMap<Uuid, serde_json::Map<String, serde_json::Value>>,
    /// The grant families' authentication methods, by family (from the code that starts each).
    grant_amr: HashMap<Uuid, Vec<String>>,
    /// The audit trail, by increasing id.
    events: Vec<AuditEvent>,
    invitations: HashMap<TokenHash, InvitationRecord>,
    totp: HashMap<Uuid, TotpRecord>,
    /// By user: each code's hash and when it was spent.
    recovery: HashMap<Uuid, Vec<RecoveryCode>>,
    passkeys: Vec<PasskeyRecord>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        let inner = self.lock();
        Ok(match client {
            ClientRef::Id(id) => inner.clients.get(&id).cloned(),
            ClientRef::Key(key) => inner.clients.values().find(|c| c.key == key).cloned(),
        })
    }

    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        let mut inner = self.lock();
        let mut client = client.clone();
        if let Some(existing) = inner.clients.get(&client.id) {
            client.created_at = existing.created_at;
        }
        inner.clients.insert(client.id, client);
        Ok(())
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<bool> {
        let mut inner = self.lock();
        let taken = inner
            .clients
            .values()
            .any(|c| c.id == client.id || c.key == client.key);
        if !taken {
            inner.clients.insert(client.id, client.clone());
        }
        Ok(!taken)
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let mut clients: Vec<Client> = self.lock().clients.values().cloned().collect();
        clients.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(clients)
    }

    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut inner = self.lock();
        let existed = inner.clients.remove(&id).is_some();
        inner.registrations.remove(&id);
        inner.consents.retain(|c| c.client_id != id);
        let mut families = Vec::new();
        for (code, used) in inner.codes.values_mut() {
            if code.client_id == id {
                families.push(code.family_id);
                used.get_or_insert(now);
            }
        }
        for token in inner.access.values_mut() {
            if token.client_id == id {
                families.push(token.family_id);
                token.revoked = true;
            }
        }
        for (token, _) in inner.refresh.values_mut() {
            if token.client_id == id {
                families.push(token.family_id);
                token.revoked = true;
            }
        }
        inner.revoked_families.extend(families);
        Ok(existed)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn upsert_user(&self, new: &NewUser) -> StoreResult<User> {
        let mut inner = self.lock();
        if let Some(user) = inner
            .users
            .values_mut()
            .find(|u| u.username == new.username)
        {
            user.display_name = new.display_name.clone();
            user.password_hash = new.password_hash.clone();
            user.email = new.email.clone();
            user.email_verified = new.email_verified;
            user.claims = new.claims.clone();
            user.admin |= new.admin;
            user.source = new.source;
            return Ok(user.clone());
        }
        let user = User {
            disabled_at: None,
            ..new.clone()
        };
        inner.users.insert(user.id, user.clone());
        Ok(user)
    }

    async fn insert_user(&self, new: &NewUser) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner.users.contains_key(&new.id)
            || inner.users.values().any(|u| u.username == new.username)
        {
            return Ok(false);
        }
        inner.users.insert(new.id, new.clone());
        Ok(true)
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        let inner = self.lock();
        let search = filter.search.as_deref().map(str::to_ascii_lowercase);
        let contains = |text: &str, search: &str| text.to_ascii_lowercase().contains(search);
        let mut users: Vec<User> = inner
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
                    contains(&u.username, s)
                        || contains(&u.display_name, s)
                        || u.email.as_deref().is_some_and(|e| contains(e, s))
                })
            })
            .cloned()
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users.truncate(filter.limit as usize);
        Ok(users)
    }

    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(stored) = inner.users.get_mut(&id) else {
            return Ok(false);
        };
        *stored = change.applied_to(stored);
        Ok(true)
    }

    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(user) = inner.users.get_mut(&id) else {
            return Ok(false);
        };
        user.disabled_at = disabled_at;
        if disabled_at.is_some() {
            inner.end_access(id, now);
        }
        Ok(true)
    }

    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| s.user_id != id);
        Ok((before - inner.sessions.len()) as u64)
    }

    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner.users.remove(&id).is_none() {
            return Ok(false);
        }
        inner.end_access(id, now);
        inner.consents.retain(|c| c.user_id != id);
        inner.totp.remove(&id);
        inner.recovery.remove(&id);
        inner.passkeys.retain(|p| p.user_id != id);
        Ok(true)
    }
}

impl Inner {
    /// What disabling or removing a user ends: its sessions, its grant families with their
    /// tokens, its outstanding codes (as the SQL adapters do by the `grants` rows of the user).
    fn end_access(&mut self, user: Uuid, now: UnixTime) {
        self.sessions.retain(|_, s| s.user_id != user);
        let mut families = std::collections::HashSet::new();
        for (code, used) in self.codes.values_mut() {
            if code.user_id == user {
                families.insert(code.family_id);
                if used.is_none() {
                    *used = Some(now);
                }
            }
        }
        for token in self.access.values() {
            if token.user_id == Some(user) {
                families.insert(token.family_id);
            }
        }
        for (token, _) in self.refresh.values() {
            if token.user_id == user {
                families.insert(token.family_id);
            }
        }
        for token in self.access.values_mut() {
            if families.contains(&token.family_id) {
                token.revoked = true;
            }
        }
        for (token, _) in self.refresh.values_mut() {
            if families.contains(&token.family_id) {
                token.revoked = true;
            }
        }
        self.revoked_families.extend(families);
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.lock().sessions.insert(session.hash, session.clone());
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        Ok(self.lock().sessions.get(hash).cloned())
    }

    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        self.lock().sessions.remove(hash);
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        Ok(self
            .lock()
            .consents
            .iter()
            .find(|c| c.user_id == user && c.client_id == client)
            .cloned())
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner
            .consents
            .iter_mut()
            .find(|c| c.user_id == consent.user_id && c.client_id == consent.client_id)
        {
            Some(existing) => {
                existing.scopes = existing.scopes.union(&consent.scopes);
                existing.granted_at = consent.granted_at;
            }
            None => inner.consents.push(consent.clone()),
        }
        Ok(())
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        Ok(self
            .lock()
            .consents
            .iter()
            .filter(|c| c.user_id == user)
            .cloned()
            .collect())
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let mut inner = self.lock();
        inner
            .consents
            .retain(|c| !(c.user_id == user && c.client_id == client));
        for (code, used) in inner.codes.values_mut() {
            if code.user_id == user && code.client_id == client && used.is_none() {
                *used = Some(now);
            }
        }
        // The grants are revoked too: tokens a racing rotation inserts afterwards are born
        // revoked, as in the SQL adapters.
        let families: Vec<Uuid> = inner
            .codes
            .values()
            .filter(|(code, _)| code.user_id == user && code.client_id == client)
            .map(|(code, _)| code.family_id)
            .collect();
        inner.revoked_families.extend(families.iter().copied());
        // The families' tokens, whatever their client (a token exchange's belong to the
        // family of the token they came from), as the SQL adapters revoke by family.
        for token in inner.access.values_mut() {
            if (token.user_id == Some(user) && token.client_id == client)
                || families.contains(&token.family_id)
            {
                token.revoked = true;
            }
        }
        for (token, _) in inner.refresh.values_mut() {
            if token.user_id == user && token.client_id == client {
                token.revoked = true;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        inner
            .grant_data
            .entry(code.family_id)
            .or_insert_with(|| code.grant_data.clone());
        inner
            .grant_amr
            .entry(code.family_id)
            .or_insert_with(|| code.amr.clone());
        inner.codes.insert(code.hash, (code.clone(), None));
        Ok(())
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        Ok(self
            .lock()
            .codes
            .get(hash)
            .filter(|(c, _)| c.client_id == client)
            .map(|(c, _)| c.clone()))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>> {
        let mut inner = self.lock();
        let outcome = match inner.codes.get_mut(hash) {
            Some((record, _)) if record.client_id != client => Redemption::Unknown,
            Some((record, used @ None)) => {
                *used = Some(now);
                Redemption::Fresh(record.clone())
            }
            Some((record, Some(_))) => Redemption::Spent(record.clone()),
            None => Redemption::Unknown,
        };
        if let (Redemption::Fresh(_), Some(issue)) = (&outcome, issue) {
            inner.insert(issue.access, issue.refresh);
        }
        Ok(outcome)
    }
}

impl Inner {
    fn insert(&mut self, access: &AccessTokenRecord, refresh: Option<&RefreshTokenRecord>) {
        let mut access = access.clone();
        access.revoked |= self.revoked_families.contains(&access.family_id);
        self.access.insert(access.hash, access);
        if let Some(refresh) = refresh {
            let mut refresh = refresh.clone();
            refresh.revoked |= self.revoked_families.contains(&refresh.family_id);
            self.refresh.insert(refresh.hash, (refresh, None));
        }
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        self.lock().insert(access, refresh);
        Ok(())
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        Ok(self.lock().access.get(hash).cloned())
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        let inner = self.lock();
        let Some(token) = inner.access.get(hash) else {
            return Ok(None);
        };
        // A token with no user (client_credentials) stands for its client; one whose user is
        // gone stands for nothing.
        let user = match token.user_id {
            Some(id) => match inner.users.get(&id) {
                Some(user) => Some(user.clone()),
                None => return Ok(None),
            },
            None => None,
        };
        let client = inner.clients.get(&token.client_id);
        Ok(client.map(|client| BearerRecord {
            token: token.clone(),
            user: user.map(Arc::new),
            client: Arc::new(client.clone()),
            grant_data: Arc::new(
                inner
                    .grant_data
                    .get(&token.family_id)
                    .cloned()
                    .unwrap_or_default(),
            ),
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
        let mut inner = self.lock();
        let outcome = match inner.refresh.get_mut(hash) {
            Some((record, _)) if record.client_id != client => Redemption::Unknown,
            Some((record, used @ None)) => {
                *used = Some(now);
                record.used_at = Some(now);
                record.successor = successor.map(<[u8]>::to_vec);
                Redemption::Fresh(record.clone())
            }
            Some((record, Some(_))) => Redemption::Spent(record.clone()),
            None => Redemption::Unknown,
        };
        if let (Redemption::Fresh(_), Some(issue)) = (&outcome, issue) {
            inner.insert(issue.access, issue.refresh);
        }
        Ok(outcome)
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let inner = self.lock();
        Ok(inner
            .refresh
            .get(hash)
            .map(|(record, _)| RefreshTokenRecord {
                grant_data: inner
                    .grant_data
                    .get(&record.family_id)
                    .cloned()
                    .unwrap_or_default(),
                amr: inner
                    .grant_amr
                    .get(&record.family_id)
                    .cloned()
                    .unwrap_or_default(),
                ..record.clone()
            }))
    }

    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>> {
        let mut tokens: Vec<AccessTokenRecord> = self
            .lock()
            .access
            .values()
            .filter(|t| {
                t.user_id == Some(user) && t.act.is_some() && !t.revoked && t.expires_at > now
            })
            .cloned()
            .collect();
        tokens.sort_by(|a, b| {
            (a.issued_at, a.hash.as_bytes()).cmp(&(b.issued_at, b.hash.as_bytes()))
        });
        Ok(tokens)
    }

    async fn revoke_access_token(&self, hash: &TokenHash, _now: UnixTime) -> StoreResult<()> {
        if let Some(token) = self.lock().access.get_mut(hash) {
            token.revoked = true;
        }
        Ok(())
    }

    async fn revoke_family(&self, family: Uuid, _now: UnixTime) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.revoked_families.insert(family);
        for token in inner.access.values_mut() {
            if token.family_id == family {
                token.revoked = true;
            }
        }
        for (token, _) in inner.refresh.values_mut() {
            if token.family_id == family {
                token.revoked = true;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner
            .devices
            .values()
            .any(|d| d.user_code == record.user_code)
        {
            return Ok(false);
        }
        inner.devices.insert(record.hash, record.clone());
        Ok(true)
    }

    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        Ok(self
            .lock()
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
        let mut inner = self.lock();
        Ok(inner.devices.get_mut(hash).map(|d| {
            let before = d.clone();
            d.polled_at = Some(now);
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
        let mut inner = self.lock();
        let Some(device) = inner.devices.get_mut(hash) else {
            return Ok(false);
        };
        if device.state != DeviceState::Pending || device.expires_at <= now {
            return Ok(false);
        }
        device.state = state;
        if let Some(code) = code {
            inner.codes.insert(code.hash, (code.clone(), None));
        }
        Ok(true)
    }
}

#[async_trait]
impl MaintenanceStore for MemoryStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before =
            inner.sessions.len() + inner.codes.len() + inner.access.len() + inner.refresh.len();
        inner.sessions.retain(|_, s| s.expires_at > now);
        inner
            .codes
            .retain(|_, (c, _)| c.expires_at > now - keep_spent);
        inner.access.retain(|_, t| t.expires_at > now);
        inner.refresh.retain(|_, (t, _)| t.expires_at > now);
        for (token, used) in inner.refresh.values_mut() {
            if used.is_some_and(|t| t < now - crate::ports::MAX_REFRESH_GRACE) {
                token.successor = None;
            }
        }
        let after =
            inner.sessions.len() + inner.codes.len() + inner.access.len() + inner.refresh.len();
        inner.failures.retain(|_, f| f.expires_at > now);
        inner.jtis.retain(|_, expires_at| *expires_at > now);
        inner.initial_tokens.retain(|_, t| t.expires_at > now);
        inner.devices.retain(|_, d| d.expires_at > now);
        // A family's data goes with the last code and token of the family.
        let live: std::collections::HashSet<Uuid> = inner
            .codes
            .values()
            .map(|(c, _)| c.family_id)
            .chain(inner.access.values().map(|t| t.family_id))
            .chain(inner.refresh.values().map(|(t, _)| t.family_id))
            .collect();
        inner.grant_data.retain(|family, _| live.contains(family));
        inner.grant_amr.retain(|family, _| live.contains(family));
        Ok((before - after) as u64)
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        Ok(self.lock().failures.get(key).copied())
    }

    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        let mut inner = self.lock();
        let entry = inner.failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last_at: now,
            expires_at,
        });
        if entry.expires_at <= now {
            entry.count = 0;
        }
        *entry = Failures {
            count: entry.count.saturating_add(1),
            last_at: now,
            expires_at,
        };
        Ok(*entry)
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.lock().failures.remove(key);
        Ok(())
    }
}

#[async_trait]
impl AssertionStore for MemoryStore {
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let entry = inner.jtis.entry((client, jti.to_owned())).or_insert(now);
        if *entry > now {
            return Ok(false);
        }
        *entry = expires_at;
        Ok(true)
    }
}

#[async_trait]
impl RegistrationStore for MemoryStore {
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()> {
        self.lock().initial_tokens.insert(token.hash, token.clone());
        Ok(())
    }

    async fn find_initial_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<InitialTokenRecord>> {
        Ok(self.lock().initial_tokens.get(hash).cloned())
    }

    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered> {
        let mut inner = self.lock();
        if let Some(hash) = spend {
            let live = inner
                .initial_tokens
                .get(hash)
                .is_some_and(|t| t.uses_left > 0 && now < t.expires_at);
            if !live {
                return Ok(Registered::TokenRefused);
            }
        }
        if max.is_some_and(|max| inner.registrations.len() as u64 >= max) {
            return Ok(Registered::Full);
        }
        if inner
            .clients
            .values()
            .any(|c| c.id == client.id || c.key == client.key)
        {
            return Ok(Registered::Taken);
        }
        if let Some(token) = spend.and_then(|hash| inner.initial_tokens.get_mut(hash)) {
            token.uses_left -= 1;
        }
        inner.clients.insert(client.id, client.clone());
        inner.registrations.insert(client.id, registration.clone());
        Ok(Registered::Stored)
    }

    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>> {
        let inner = self.lock();
        Ok(inner
            .registrations
            .values()
            .find(|r| r.token_hash == *token)
            .and_then(|r| Some((inner.clients.get(&r.client_id)?.clone(), r.clone()))))
    }

    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        if !inner.registrations.contains_key(&registration.client_id) {
            return Ok(false);
        }
        let mut client = client.clone();
        if let Some(existing) = inner.clients.get(&client.id) {
            client.created_at = existing.created_at;
        }
        inner.clients.insert(client.id, client);
        inner
            .registrations
            .insert(registration.client_id, registration.clone());
        Ok(true)
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        Ok(self
            .lock()
            .secrets
            .entry(name.to_owned())
            .or_insert_with(|| candidate.to_vec())
            .clone())
    }

    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        match self.lock().secrets.get_mut(name) {
            Some(value) if value.as_slice() == expected => {
                *value = sealed.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        Ok(self.lock().keys.clone())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner
            .keys
            .iter()
            .any(|k| k.alg == key.alg && k.generation == key.generation)
        {
            return Ok(false);
        }
        inner.keys.push(key.clone());
        Ok(true)
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        if let Some(key) = self.lock().keys.iter_mut().find(|k| k.kid == kid) {
            key.remove_at = Some(key.remove_at.map_or(remove_at, |t| t.min(remove_at)));
        }
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.lock().keys.retain(|k| k.kid != kid);
        Ok(())
    }

    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        match self.lock().keys.iter_mut().find(|k| k.kid == kid) {
            Some(key) if key.private_key == expected => {
                key.private_key = sealed.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut inner = self.lock();
        for event in events {
            let id = inner.events.last().map_or(1, |last| last.id + 1);
            inner.events.push(AuditEvent {
                id,
                ..event.clone()
            });
        }
        Ok(())
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        let inner = self.lock();
        let kept = inner.events.iter().filter(|e| filter.keeps(e)).cloned();
        Ok(match filter.after {
            Some(after) => kept
                .filter(|e| e.id > after)
                .take(filter.limit as usize)
                .collect(),
            None => {
                let mut newest: Vec<AuditEvent> = kept.collect();
                newest.reverse();
                newest.truncate(filter.limit as usize);
                newest
            }
        })
    }

    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.events.len();
        inner.events.retain(|e| e.at_ms >= before_ms);
        Ok((before - inner.events.len()) as u64)
    }
}

#[async_trait]
impl InvitationStore for MemoryStore {
    async fn insert_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        self.lock()
            .invitations
            .insert(invitation.hash, invitation.clone());
        Ok(())
    }

    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>> {
        Ok(self.lock().invitations.get(hash).cloned())
    }

    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>> {
        let mut open: Vec<InvitationRecord> = self
            .lock()
            .invitations
            .values()
            .filter(|i| i.used_at.is_none() && i.expires_at > now)
            .cloned()
            .collect();
        open.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(open)
    }

    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool> {
        let mut inner = self.lock();
        let before = inner.invitations.len();
        inner
            .invitations
            .retain(|_, i| !(i.id == id && i.used_at.is_none()));
        Ok(inner.invitations.len() < before)
    }

    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp> {
        let mut inner = self.lock();
        match inner.invitations.get(invitation) {
            Some(i) if i.used_at.is_none() && i.expires_at > now => {}
            _ => return Ok(InvitedSignUp::InvitationInvalid),
        }
        if inner.users.contains_key(&user.id)
            || inner.users.values().any(|u| u.username == user.username)
        {
            return Ok(InvitedSignUp::UsernameTaken);
        }
        inner.users.insert(user.id, user.clone());
        if let Some(i) = inner.invitations.get_mut(invitation) {
            i.used_at = Some(now);
            i.used_by = Some(user.id);
        }
        Ok(InvitedSignUp::Created)
    }
}

#[async_trait]
impl SecondFactorStore for MemoryStore {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>> {
        Ok(self.lock().totp.get(&user).cloned())
    }

    async fn set_totp(&self, totp: &TotpRecord, recovery: &[[u8; 32]]) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.totp.insert(totp.user_id, totp.clone());
        inner.recovery.insert(
            totp.user_id,
            recovery.iter().map(|hash| (*hash, None)).collect(),
        );
        Ok(())
    }

    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool> {
        Ok(self.lock().totp.remove(&user).is_some())
    }

    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool> {
        let mut inner = self.lock();
        inner.recovery.remove(&user);
        let before = inner.passkeys.len();
        inner.passkeys.retain(|p| p.user_id != user);
        let passkeys = inner.passkeys.len() != before;
        Ok(inner.totp.remove(&user).is_some() || passkeys)
    }

    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner
            .passkeys
            .iter()
            .any(|p| p.credential_id == passkey.credential_id || p.id == passkey.id)
        {
            return Ok(false);
        }
        inner.passkeys.push(passkey.clone());
        Ok(true)
    }

    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let mut found: Vec<PasskeyRecord> = self
            .lock()
            .passkeys
            .iter()
            .filter(|p| p.user_id == user)
            .cloned()
            .collect();
        found.sort_by_key(|p| (p.created_at, p.id));
        Ok(found)
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        Ok(self
            .lock()
            .passkeys
            .iter()
            .find(|p| p.credential_id == credential_id)
            .cloned())
    }

    async fn update_passkey(
        &self,
        credential_id: &[u8],
        credential: &str,
        used_at: UnixTime,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner
            .passkeys
            .iter_mut()
            .find(|p| p.credential_id == credential_id)
        {
            Some(p) => {
                p.credential = credential.to_owned();
                p.last_used_at = Some(used_at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool> {
        let mut inner = self.lock();
        let before = inner.passkeys.len();
        inner
            .passkeys
            .retain(|p| !(p.user_id == user && p.id == id));
        Ok(inner.passkeys.len() != before)
    }

    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner.totp.get_mut(&user) {
            Some(totp) if totp.last_step < step => {
                totp.last_step = step;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &[u8; 32],
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let code = inner.recovery.get_mut(&user).and_then(|codes| {
            codes
                .iter_mut()
                .find(|(h, used)| h == hash && used.is_none())
        });
        Ok(match code {
            Some((_, used)) => {
                *used = Some(now);
                true
            }
            None => false,
        })
    }

    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[[u8; 32]]) -> StoreResult<()> {
        self.lock()
            .recovery
            .insert(user, hashes.iter().map(|hash| (*hash, None)).collect());
        Ok(())
    }

    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32> {
        Ok(self.lock().recovery.get(&user).map_or(0, |codes| {
            codes.iter().filter(|(_, used)| used.is_none()).count() as u32
        }))
    }
}
