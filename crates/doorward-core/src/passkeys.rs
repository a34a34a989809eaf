//! Passkeys (W3C WebAuthn Level 3, verified by `webauthn-rs`): a public-key credential of an
//! authenticator that verifies its user (a PIN or a biometric: user verification is required
//! in every ceremony), used two ways:
//!
//! - **alone** (`/login`): a discoverable credential names its user (the user handle is the
//!   user's id), so no username or password is typed. The sign-in's `amr` is `["hwk", "mfa"]`
//!   (or `swk` for a passkey that a platform synchronises: backup eligible), `acr` is
//!   `urn:doorward:acr:mfa` (possession and the verification: two factors, RFC 8176 §2);
//! - **as the second factor** after a password, beside or instead of an authenticator app:
//!   `["pwd", "hwk", "mfa"]`.
//!
//! **Ceremonies.** A ceremony's state (its challenge, the credentials allowed) is not kept in
//! the store: it travels in the page's form, MACed with the server's key and bound to its kind,
//! its user and five minutes, and is spent once when the browser's answer comes back (through
//! [`AssertionStore::record_jti`](crate::ports::AssertionStore::record_jti) under
//! [`CEREMONY_NAMESPACE`], shared by every instance) before that answer is verified: a replayed
//! or stale answer is refused (W3C WebAuthn §13.4.3, a challenge is used once), and a refused
//! one spends its ceremony too. A page that offers a passkey therefore writes nothing.
//!
//! **Registration** asks for the password again (a stolen session must not add a lasting way
//! in), refuses a credential id registered already to anyone (WebAuthn §7.1 step 26), and
//! gives recovery codes when the passkey is the account's first second factor (a lost
//! passkey must not lock its user out).

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{constant_time_eq, Secret};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Webauthn,
};

use webauthn_rs_proto::options::ResidentKeyRequirement;

use crate::audit::{kinds, Actor, AuditEvent};
use crate::engine::Engine;
use crate::model::{PasskeyRecord, SignedIn, User};
use crate::ports::{Change, StoreError};
use crate::sign_in_error::Purpose;
use crate::sign_in_error::SecondFactorError;

/// How long a ceremony's page waits for the authenticator.
pub const CEREMONY_LIFETIME: i64 = 300;
/// The most passkeys one account keeps.
pub const MAX_PASSKEYS: usize = 10;
/// The longest name of a passkey, in characters.
pub const MAX_NAME: usize = 64;
/// The largest answer of a browser read (a credential with its attestation is a few KB).
pub const MAX_ANSWER: usize = 16 * 1024;
/// The namespace under which ceremonies are spent in the `jti` store: a fixed random UUID,
/// no client's id.
pub const CEREMONY_NAMESPACE: Uuid = Uuid::from_u128(0x6f5c_9b0e_4d1a_5e62_9a3e_1c7b_2f48_d913);

/// A ceremony for a page: the options for `navigator.credentials` (JSON), and the state the
/// page's form carries back.
#[derive(Clone, Debug)]
pub struct Ceremony {
    pub options: String,
    pub state: String,
}

/// Why a passkey step did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// This server's issuer is not a domain: no passkeys.
    #[error("passkeys are not available on this server")]
    Unavailable,
    /// The ceremony is forged, another's, expired, or was answered already.
    #[error("this request has expired; try again")]
    Expired,
    /// The browser's answer did not verify, or names no passkey of this server.
    #[error("the passkey was not accepted")]
    Refused,
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    #[error("this account has the most passkeys it may have ({MAX_PASSKEYS})")]
    TooMany,
    #[error("a passkey's name is 1 to {MAX_NAME} characters, without control characters")]
    BadName,
    /// The password asked again was wrong, or the throttle refused it.
    #[error(transparent)]
    SecondFactor(#[from] SecondFactorError),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Register,
    SignIn,
    SecondFactor,
}

/// What a ceremony's form carries, MACed.
#[derive(Serialize, Deserialize)]
struct Sealed<S> {
    id: String,
    kind: Kind,
    user: Option<Uuid>,
    expires_at: i64,
    state: S,
}

impl Engine {
    /// Whether this server offers passkeys (its issuer's host is a domain).
    pub fn passkeys_available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().ok_or(PasskeyError::Unavailable)
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
        self.store.list_passkeys(user).await
    }

    /// Starts adding a passkey named `name` to the signed-in user's account, its password
    /// asked again (the name is checked first, and again when the passkey comes back).
    pub async fn passkey_registration(
        &self,
        signed_in: &SignedIn,
        name: &str,
        password: &Secret,
        from: Option<IpAddr>,
    ) -> Result<Ceremony, PasskeyError> {
        let webauthn = self.webauthn()?;
        passkey_name(name)?;
        let user = self.password_again(signed_in, password, from).await?;
        let existing = self.store.list_passkeys(user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let (mut options, state) = webauthn
            .start_passkey_registration(user.id, &user.username, &user.display_name, Some(exclude))
            .map_err(|_| PasskeyError::Refused)?;
        // A passkey is discoverable where the authenticator can keep it (WebAuthn §5.4.6): the
        // sign-in without a username needs it. The library's state does not depend on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        self.ceremony(Kind::Register, Some(user.id), &options, state)
    }

    /// Finishes adding a passkey named `name`: stores it, and returns the new recovery codes
    /// when it is the account's first second factor (else none).
    pub async fn register_passkey(
        &self,
        signed_in: &SignedIn,
        state: &str,
        answer: &str,
        name: &str,
        from: Option<IpAddr>,
    ) -> Result<Vec<String>, PasskeyError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        let user = &signed_in.user;
        let registration: PasskeyRegistration = self
            .spend_ceremony(state, Kind::Register, Some(user.id))
            .await?;
        let answer: RegisterPublicKeyCredential = parse_answer(answer)?;
        let passkey = webauthn
            .finish_passkey_registration(&answer, &registration)
            .map_err(|_| PasskeyError::Refused)?;
        let before = self.second_factors(user.id).await?;
        if before.passkeys.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let record = PasskeyRecord {
            id: self.new_uuid(),
            user_id: user.id,
            credential_id: passkey.cred_id().to_vec(),
            name,
            credential: serde_json::to_string(&passkey).map_err(corrupt)?,
            created_at: self.now(),
            last_used_at: None,
        };
        if !self.store.insert_passkey(&record).await? {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let codes = if before.any() {
            Vec::new()
        } else {
            let (codes, hashes) = self.new_recovery_codes();
            self.store.replace_recovery_codes(user.id, &hashes).await?;
            codes
        };
        self.forget(&Change::User(user.id));
        self.record(
            AuditEvent::new(kinds::SECOND_FACTOR_ENROLLED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("method", "passkey")
                .with("passkey", record.id.to_string()),
        )
        .await?;
        Ok(codes)
    }

    /// A sign-in with a passkey alone, for the sign-in page: no user named, the authenticator
    /// offers the passkeys it holds for this server. `None` without passkeys.
    pub fn passkey_sign_in(&self) -> Option<Ceremony> {
        let webauthn = self.webauthn.as_ref()?;
        let (mut options, state) = webauthn.start_discoverable_authentication().ok()?;
        // Asked from a button, not the autofill list.
        options.mediation = None;
        self.ceremony(Kind::SignIn, None, &options, state).ok()
    }

    /// Finishes a sign-in with a passkey alone; opens the session (its cookie value).
    pub async fn sign_in_with_passkey(
        &self,
        state: &str,
        answer: &str,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), PasskeyError> {
        let webauthn = self.webauthn()?;
        let ceremony: DiscoverableAuthentication =
            self.spend_ceremony(state, Kind::SignIn, None).await?;
        let answer: PublicKeyCredential = parse_answer(answer)?;
        let (handle, credential_id) = webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(|_| PasskeyError::Refused)?;
        let Some(record) = self.store.find_passkey(credential_id).await? else {
            self.passkey_failed(None, from, "unknown_passkey");
            return Err(PasskeyError::Refused);
        };
        // The user handle is the user's id: the passkey must be that user's.
        if record.user_id != handle {
            self.passkey_failed(Some(record.user_id), from, "wrong_user_handle");
            return Err(PasskeyError::Refused);
        }
        let mut passkey = stored_passkey(&record)?;
        let result = webauthn
            .finish_discoverable_authentication_v2(&answer, ceremony, &passkey)
            .map_err(|_| {
                self.passkey_failed(Some(record.user_id), from, "bad_signature");
                PasskeyError::Refused
            })?;
        let user = self.passkey_user(&record, from).await?;
        let amr = self.used(&record, &mut passkey, &result).await?;
        let amr = vec![amr.to_owned(), "mfa".to_owned()];
        Ok(self.passkey_session(user, amr, from).await?)
    }

    /// The second-factor ceremony of a pending sign-in's user, over its `passkeys` (as
    /// [`Engine::second_factors`] listed them): `None` when it has none.
    pub fn passkey_second_factor(
        &self,
        user: &User,
        passkeys: &[PasskeyRecord],
    ) -> Option<Ceremony> {
        let webauthn = self.webauthn.as_ref()?;
        let passkeys: Vec<Passkey> = passkeys
            .iter()
            .filter_map(|r| stored_passkey(r).ok())
            .collect();
        if passkeys.is_empty() {
            return None;
        }
        let (options, state) = webauthn.start_passkey_authentication(&passkeys).ok()?;
        self.ceremony(Kind::SecondFactor, Some(user.id), &options, state)
            .ok()
    }

    /// Finishes a pending sign-in with a passkey as the second factor.
    pub async fn finish_sign_in_with_passkey(
        &self,
        pending: &str,
        state: &str,
        answer: &str,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), PasskeyError> {
        let webauthn = self.webauthn()?;
        let user = self.pending_user(pending, Purpose::Code).await?;
        let ceremony: PasskeyAuthentication = self
            .spend_ceremony(state, Kind::SecondFactor, Some(user.id))
            .await?;
        let answer: PublicKeyCredential = parse_answer(answer)?;
        let Some(record) = self.store.find_passkey(answer.get_credential_id()).await? else {
            self.passkey_failed(Some(user.id), from, "unknown_passkey");
            return Err(PasskeyError::Refused);
        };
        if record.user_id != user.id {
            self.passkey_failed(Some(user.id), from, "wrong_user_handle");
            return Err(PasskeyError::Refused);
        }
        let mut passkey = stored_passkey(&record)?;
        let result = webauthn
            .finish_passkey_authentication(&answer, &ceremony)
            .map_err(|_| {
                self.passkey_failed(Some(user.id), from, "bad_signature");
                PasskeyError::Refused
            })?;
        let amr = self.used(&record, &mut passkey, &result).await?;
        let amr = vec!["pwd".to_owned(), amr.to_owned(), "mfa".to_owned()];
        Ok(self.passkey_session(user, amr, from).await?)
    }

    /// Removes one of the signed-in user's passkeys, its password asked again. The recovery
    /// codes go with the last second factor.
    pub async fn remove_own_passkey(
        &self,
        signed_in: &SignedIn,
        id: Uuid,
        password: &Secret,
        from: Option<IpAddr>,
    ) -> Result<bool, PasskeyError> {
        let user = self.password_again(signed_in, password, from).await?;
        if !self.store.delete_passkey(user.id, id).await? {
            return Ok(false);
        }
        if !self.second_factors(user.id).await?.any() {
            self.store.replace_recovery_codes(user.id, &[]).await?;
        }
        self.forget(&Change::User(user.id));
        self.record(
            AuditEvent::new(kinds::SECOND_FACTOR_REMOVED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("method", "passkey")
                .with("passkey", id.to_string()),
        )
        .await?;
        Ok(true)
    }

    /// The passkey's user, while it may sign in.
    async fn passkey_user(
        &self,
        record: &PasskeyRecord,
        from: Option<IpAddr>,
    ) -> Result<User, PasskeyError> {
        match self.store.find_user(record.user_id).await? {
            Some(user) if !user.is_disabled() => Ok(user),
            Some(user) => {
                self.note(
                    AuditEvent::new(kinds::SIGN_IN_DISABLED, Actor::User(user.id))
                        .user(user.id)
                        .from_address(from)
                        .with("method", "passkey"),
                );
                Err(PasskeyError::Refused)
            }
            None => Err(PasskeyError::Refused),
        }
    }

    /// Records a use (the counter and backup state as the authenticator now says); the `amr`
    /// value of the key: `swk` when a platform may synchronise it, else `hwk`.
    async fn used(
        &self,
        record: &PasskeyRecord,
        passkey: &mut Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<&'static str, StoreError> {
        passkey.update_credential(result);
        let credential = serde_json::to_string(&passkey).map_err(corrupt)?;
        self.store
            .update_passkey(&record.credential_id, &credential, self.now())
            .await?;
        Ok(if result.backup_eligible() {
            "swk"
        } else {
            "hwk"
        })
    }

    async fn passkey_session(
        &self,
        user: User,
        amr: Vec<String>,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), StoreError> {
        self.note(
            AuditEvent::new(kinds::SECOND_FACTOR_USED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("method", "passkey"),
        );
        self.note(
            AuditEvent::new(kinds::SIGN_IN_SUCCEEDED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("amr", serde_json::json!(amr)),
        );
        self.open_session(user, amr).await
    }

    fn passkey_failed(&self, user: Option<Uuid>, from: Option<IpAddr>, reason: &str) {
        let actor = user.map_or(Actor::Anonymous, Actor::User);
        let mut event = AuditEvent::new(kinds::SIGN_IN_FAILED, actor)
            .from_address(from)
            .with("method", "passkey")
            .with("reason", reason);
        if let Some(user) = user {
            event = event.user(user);
        }
        self.note(event);
    }

    /// The options and the MACed state of a new ceremony.
    fn ceremony<O: Serialize, S: Serialize>(
        &self,
        kind: Kind,
        user: Option<Uuid>,
        options: &O,
        state: S,
    ) -> Result<Ceremony, PasskeyError> {
        let mut id = [0u8; 16];
        self.random.fill(&mut id);
        let sealed = Sealed {
            id: URL_SAFE_NO_PAD.encode(id),
            kind,
            user,
            expires_at: self.now() + CEREMONY_LIFETIME,
            state,
        };
        let payload = serde_json::to_vec(&sealed).map_err(corrupt)?;
        let mac = self.keyed(b"doorward-passkey-ceremony:", &[&payload]);
        Ok(Ceremony {
            options: serde_json::to_string(options).map_err(corrupt)?,
            state: format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode(mac)
            ),
        })
    }

    /// Opens a ceremony's state of `kind` for `user`, and spends it (once, on any instance).
    async fn spend_ceremony<S: for<'de> Deserialize<'de>>(
        &self,
        state: &str,
        kind: Kind,
        user: Option<Uuid>,
    ) -> Result<S, PasskeyError> {
        let (payload, mac) = state.split_once('.').ok_or(PasskeyError::Expired)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| PasskeyError::Expired)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| PasskeyError::Expired)?;
        let want = self.keyed(b"doorward-passkey-ceremony:", &[&payload]);
        if !constant_time_eq(&want, &mac) {
            return Err(PasskeyError::Expired);
        }
        let sealed: Sealed<S> =
            serde_json::from_slice(&payload).map_err(|_| PasskeyError::Expired)?;
        let now = self.now();
        if sealed.kind != kind || sealed.user != user || sealed.expires_at <= now {
            return Err(PasskeyError::Expired);
        }
        if !self
            .store
            .record_jti(CEREMONY_NAMESPACE, &sealed.id, sealed.expires_at, now)
            .await?
        {
            return Err(PasskeyError::Expired);
        }
        Ok(sealed.state)
    }
}

/// A passkey's name as typed: trimmed, 1 to [`MAX_NAME`] characters, no control characters.
fn passkey_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME || name.chars().any(char::is_control) {
        return Err(PasskeyError::BadName);
    }
    Ok(name.to_owned())
}

/// The browser's answer (`PublicKeyCredential.toJSON()`), bounded.
fn parse_answer<T: for<'de> Deserialize<'de>>(answer: &str) -> Result<T, PasskeyError> {
    if answer.len() > MAX_ANSWER {
        return Err(PasskeyError::Refused);
    }
    serde_json::from_str(answer).map_err(|_| PasskeyError::Refused)
}

/// A value that does not (de)serialize: a corrupt row, or a bug.
fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Other(Box::new(error))
}

fn stored_passkey(record: &PasskeyRecord) -> Result<Passkey, StoreError> {
    serde_json::from_str(&record.credential).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_printable() {
        assert_eq!(passkey_name("  Laptop ✓ ").unwrap(), "Laptop ✓");
        assert!(matches!(passkey_name(" "), Err(PasskeyError::BadName)));
        assert!(matches!(
            passkey_name("a\u{7}b"),
            Err(PasskeyError::BadName)
        ));
        assert!(passkey_name(&"é".repeat(MAX_NAME)).is_ok());
        assert!(passkey_name(&"é".repeat(MAX_NAME + 1)).is_err());
    }
}
