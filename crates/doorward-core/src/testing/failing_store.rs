//! A store that fails on demand: every port of another store, delegated, except where a test
//! has asked for [`StoreError::Unavailable`] (the database restarting, a failover, a full
//! pool). A failed call does nothing, as the ports require of a real backend: the failure
//! happens before the call reaches the inner store, which is how a transaction that never
//! committed looks from outside.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
    Registered, RegistrationStore, SecondFactorStore, SecretStore, SessionStore, SharedStore,
    StoreError, StoreResult, ThrottleStore, TokenStore, UnixTime, UserStore,
};

/// Wraps a store; [`FailingStore::set_down`] fails every call, [`FailingStore::fail_next`]
/// the next call of one method (by its name in [`crate::ports`]).
pub struct FailingStore {
    inner: SharedStore,
    down: AtomicBool,
    next: Mutex<HashSet<&'static str>>,
}

impl FailingStore {
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            next: Mutex::new(HashSet::new()),
        }
    }

    /// While `down`, every call fails with [`StoreError::Unavailable`].
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next call of `method` (e.g. `"redeem_code"`) fails with
    /// [`StoreError::Unavailable`].
    pub fn fail_next(&self, method: &'static str) {
        self.next.lock().unwrap().insert(method);
    }

    fn check(&self, method: &'static str) -> StoreResult<()> {
        let once = self.next.lock().unwrap().remove(method);
        if once || self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                format!("the test made {method} fail").into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl ClientStore for FailingStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        self.check("find_client")?;
        self.inner.find_client(client).await
    }
    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        self.check("upsert_client")?;
        self.inner.upsert_client(client).await
    }
    async fn insert_client(&self, client: &Client) -> StoreResult<bool> {
        self.check("insert_client")?;
        self.inner.insert_client(client).await
    }
    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.check("list_clients")?;
        self.inner.list_clients().await
    }
    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        self.check("delete_client")?;
        self.inner.delete_client(id, now).await
    }
}

#[async_trait]
impl UserStore for FailingStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        self.check("find_user")?;
        self.inner.find_user(id).await
    }
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.check("find_user_by_username")?;
        self.inner.find_user_by_username(username).await
    }
    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User> {
        self.check("upsert_user")?;
        self.inner.upsert_user(user).await
    }
    async fn insert_user(&self, user: &NewUser) -> StoreResult<bool> {
        self.check("insert_user")?;
        self.inner.insert_user(user).await
    }
    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        self.check("list_users")?;
        self.inner.list_users(filter).await
    }
    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool> {
        self.check("update_user")?;
        self.inner.update_user(id, change).await
    }
    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.check("set_user_disabled")?;
        self.inner.set_user_disabled(id, disabled_at, now).await
    }
    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64> {
        self.check("delete_user_sessions")?;
        self.inner.delete_user_sessions(id).await
    }
    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        self.check("delete_user")?;
        self.inner.delete_user(id, now).await
    }
}

#[async_trait]
impl SessionStore for FailingStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.check("insert_session")?;
        self.inner.insert_session(session).await
    }
    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.check("find_session")?;
        self.inner.find_session(hash).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        self.check("delete_session")?;
        self.inner.delete_session(hash).await
    }
}

#[async_trait]
impl ConsentStore for FailingStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        self.check("find_consent")?;
        self.inner.find_consent(user, client).await
    }
    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        self.check("record_consent")?;
        self.inner.record_consent(consent).await
    }
    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        self.check("list_consents")?;
        self.inner.list_consents(user).await
    }
    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        self.check("revoke_consent")?;
        self.inner.revoke_consent(user, client, now).await
    }
}

#[async_trait]
impl CodeStore for FailingStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        self.check("insert_code")?;
        self.inner.insert_code(code).await
    }
    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        self.check("find_code")?;
        self.inner.find_code(hash, client).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>> {
        self.check("redeem_code")?;
        self.inner.redeem_code(hash, client, now, issue).await
    }
}

#[async_trait]
impl TokenStore for FailingStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        self.check("insert_tokens")?;
        self.inner.insert_tokens(access, refresh).await
    }
    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        self.check("find_access_token")?;
        self.inner.find_access_token(hash).await
    }
    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        self.check("find_bearer")?;
        self.inner.find_bearer(hash).await
    }
    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>> {
        self.check("list_delegated_tokens")?;
        self.inner.list_delegated_tokens(user, now).await
    }
    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>> {
        self.check("rotate_refresh_token")?;
        self.inner
            .rotate_refresh_token(hash, client, now, issue, successor)
            .await
    }
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        self.check("find_refresh_token")?;
        self.inner.find_refresh_token(hash).await
    }
    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()> {
        self.check("revoke_access_token")?;
        self.inner.revoke_access_token(hash, now).await
    }
    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        self.check("revoke_family")?;
        self.inner.revoke_family(family, now).await
    }
}

#[async_trait]
impl MaintenanceStore for FailingStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        self.check("purge_expired")?;
        self.inner.purge_expired(now, keep_spent).await
    }
}

#[async_trait]
impl SecretStore for FailingStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        self.check("ensure_server_secret")?;
        self.inner.ensure_server_secret(name, candidate).await
    }
    async fn reseal_server_secret(
        &self,
        name: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        self.check("reseal_server_secret")?;
        self.inner
            .reseal_server_secret(name, expected, sealed)
            .await
    }
}

#[async_trait]
impl KeyStore for FailingStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.check("list_signing_keys")?;
        self.inner.list_signing_keys().await
    }
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        self.check("insert_signing_key")?;
        self.inner.insert_signing_key(key).await
    }
    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        self.check("schedule_key_removal")?;
        self.inner.schedule_key_removal(kid, remove_at).await
    }
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.check("delete_signing_key")?;
        self.inner.delete_signing_key(kid).await
    }
    async fn reseal_signing_key(
        &self,
        kid: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> StoreResult<bool> {
        self.check("reseal_signing_key")?;
        self.inner.reseal_signing_key(kid, expected, sealed).await
    }
}

#[async_trait]
impl ThrottleStore for FailingStore {
    async fn find_failures(&self, key: &str) -> StoreResult<Option<Failures>> {
        self.check("find_failures")?;
        self.inner.find_failures(key).await
    }
    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<Failures> {
        self.check("record_failure")?;
        self.inner.record_failure(key, now, expires_at).await
    }
    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.check("clear_failures")?;
        self.inner.clear_failures(key).await
    }
}

#[async_trait]
impl AssertionStore for FailingStore {
    async fn record_jti(
        &self,
        client: Uuid,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.check("record_jti")?;
        self.inner.record_jti(client, jti, expires_at, now).await
    }
}

#[async_trait]
impl DeviceStore for FailingStore {
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool> {
        self.check("insert_device_authorization")?;
        self.inner.insert_device_authorization(record).await
    }

    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        self.check("find_device_by_user_code")?;
        self.inner.find_device_by_user_code(user_code).await
    }

    async fn poll_device(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        self.check("poll_device")?;
        self.inner.poll_device(hash, now).await
    }

    async fn settle_device(
        &self,
        hash: &TokenHash,
        state: DeviceState,
        code: Option<&CodeRecord>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.check("settle_device")?;
        self.inner.settle_device(hash, state, code, now).await
    }
}

#[async_trait]
impl RegistrationStore for FailingStore {
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()> {
        self.check("insert_initial_token")?;
        self.inner.insert_initial_token(token).await
    }

    async fn find_initial_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<InitialTokenRecord>> {
        self.check("find_initial_token")?;
        self.inner.find_initial_token(hash).await
    }

    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered> {
        self.check("insert_registration")?;
        self.inner
            .insert_registration(client, registration, max, spend, now)
            .await
    }

    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>> {
        self.check("find_registration")?;
        self.inner.find_registration(token).await
    }

    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool> {
        self.check("update_registration")?;
        self.inner.update_registration(client, registration).await
    }
}

#[async_trait]
impl EventStore for FailingStore {
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        self.check("insert_events")?;
        self.inner.insert_events(events).await
    }
    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        self.check("list_events")?;
        self.inner.list_events(filter).await
    }
    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64> {
        self.check("purge_events")?;
        self.inner.purge_events(before_ms).await
    }
}

#[async_trait]
impl InvitationStore for FailingStore {
    async fn insert_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        self.check("insert_invitation")?;
        self.inner.insert_invitation(invitation).await
    }
    async fn find_invitation(&self, hash: &TokenHash) -> StoreResult<Option<InvitationRecord>> {
        self.check("find_invitation")?;
        self.inner.find_invitation(hash).await
    }
    async fn list_invitations(&self, now: UnixTime) -> StoreResult<Vec<InvitationRecord>> {
        self.check("list_invitations")?;
        self.inner.list_invitations(now).await
    }
    async fn delete_invitation(&self, id: Uuid) -> StoreResult<bool> {
        self.check("delete_invitation")?;
        self.inner.delete_invitation(id).await
    }
    async fn sign_up_invited(
        &self,
        user: &NewUser,
        invitation: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<InvitedSignUp> {
        self.check("sign_up_invited")?;
        self.inner.sign_up_invited(user, invitation, now).await
    }
}

#[async_trait]
impl SecondFactorStore for FailingStore {
    async fn find_totp(&self, user: Uuid) -> StoreResult<Option<TotpRecord>> {
        self.check("find_totp")?;
        self.inner.find_totp(user).await
    }
    async fn set_totp(&self, totp: &TotpRecord, recovery: &[[u8; 32]]) -> StoreResult<()> {
        self.check("set_totp")?;
        self.inner.set_totp(totp, recovery).await
    }
    async fn delete_second_factors(&self, user: Uuid) -> StoreResult<bool> {
        self.check("delete_second_factors")?;
        self.inner.delete_second_factors(user).await
    }
    async fn delete_totp(&self, user: Uuid) -> StoreResult<bool> {
        self.check("delete_totp")?;
        self.inner.delete_totp(user).await
    }
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        self.check("insert_passkey")?;
        self.inner.insert_passkey(passkey).await
    }
    async fn list_passkeys(&self, user: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        self.check("list_passkeys")?;
        self.inner.list_passkeys(user).await
    }
    async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        self.check("find_passkey")?;
        self.inner.find_passkey(credential_id).await
    }
    async fn update_passkey(
        &self,
        credential_id: &[u8],
        credential: &str,
        used_at: UnixTime,
    ) -> StoreResult<bool> {
        self.check("update_passkey")?;
        self.inner
            .update_passkey(credential_id, credential, used_at)
            .await
    }
    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> StoreResult<bool> {
        self.check("delete_passkey")?;
        self.inner.delete_passkey(user, id).await
    }
    async fn accept_totp_step(&self, user: Uuid, step: i64) -> StoreResult<bool> {
        self.check("accept_totp_step")?;
        self.inner.accept_totp_step(user, step).await
    }
    async fn spend_recovery_code(
        &self,
        user: Uuid,
        hash: &[u8; 32],
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.check("spend_recovery_code")?;
        self.inner.spend_recovery_code(user, hash, now).await
    }
    async fn replace_recovery_codes(&self, user: Uuid, hashes: &[[u8; 32]]) -> StoreResult<()> {
        self.check("replace_recovery_codes")?;
        self.inner.replace_recovery_codes(user, hashes).await
    }
    async fn count_recovery_codes(&self, user: Uuid) -> StoreResult<u32> {
        self.check("count_recovery_codes")?;
        self.inner.count_recovery_codes(user).await
    }
}
