//! Browser sessions at the server and CSRF tokens for its forms.
//!
//! # CSRF
//! Every form carries a token derived from a random per-browser cookie and from the session
//! cookie: `HMAC-SHA256(server key, csrf cookie, session cookie)` (the "signed double-submit
//! cookie" pattern, bound to the session). A cross-site attacker cannot read either cookie; one
//! who can plant a CSRF cookie (a sibling subdomain) can get a token for it only by loading a
//! page with their own session, and that token does not match the victim's session. Over https
//! the cookies carry the `__Host-` prefix, which a subdomain cannot set at all. The key lives in
//! the store so that every instance agrees.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{constant_time_eq, Secret};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::{kinds, Actor, AuditEvent};
use crate::model::{SessionRecord, SignedIn, User};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::passwords;
use crate::ports::StoreError;
use crate::throttle::{self, Guard, Refusal};
use crate::Engine;

pub use crate::sign_in_error::SignInError;

impl Engine {
    /// Checks a username and password sent from the address `from` (when the adapter knows
    /// it); on success opens a session and returns its cookie value. An unknown username costs
    /// the same Argon2 verification as a wrong password, and is counted the same way.
    ///
    /// Online guessing is throttled before any Argon2 work (RFC 6749 §10.10, RFC 6819
    /// §4.4.3.6, §5.1.4.2.3-4): failures are counted per username and per address in the
    /// store, and past their limits the attempt is refused as [`SignInError::Throttled`]
    /// whatever the password (see [`crate::throttle`]). A success clears the username's
    /// counter.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &Secret,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), SignInError> {
        let user = self.check_password(username, password, from).await?;
        self.second_factor_step(&user).await?;
        self.note(
            AuditEvent::new(kinds::SIGN_IN_SUCCEEDED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("amr", serde_json::json!(["pwd"])),
        );
        Ok(self.open_session(user, vec!["pwd".to_owned()]).await?)
    }

    /// The user whose password this is, under the throttle and in the Argon2 queue as
    /// [`Engine::sign_in`] checks it (failures counted and audited alike), without opening a
    /// session: a password asked again before a change (the account page).
    pub async fn check_password(
        &self,
        username: &str,
        password: &Secret,
        from: Option<IpAddr>,
    ) -> Result<User, SignInError> {
        // The counters of a password are read from the store, not the read cache: `succeeded`
        // clears the account's counter only when it saw one, and a cached absence may be up to
        // the cache's bound old (a failure just counted by another instance).
        let guard = match Guard::check(
            &*self.store,
            throttle::password_counters(username, from),
            self.now(),
        )
        .await
        {
            Ok(guard) => guard,
            Err(refusal) => {
                if let Refusal::Throttled(_) = &refusal {
                    self.note(
                        AuditEvent::new(kinds::SIGN_IN_THROTTLED, Actor::Anonymous)
                            .from_address(from),
                    );
                }
                return Err(refusal.into());
            }
        };
        let user = self.store.find_user_by_username(username).await?;
        let phc = passwords::verifiable_hash(user.as_ref().map(|u| u.password_hash.as_str()));
        let ok = self
            .hashes
            .verify(phc, password.clone(), guard.owners())
            .await?;
        let user = match user {
            Some(user) if ok => user,
            _ => {
                guard.failed(&*self.store, self.now()).await?;
                // The account when it exists; never what was typed.
                self.note(
                    AuditEvent::new(kinds::SIGN_IN_FAILED, Actor::Anonymous)
                        .user(user.map(|u| u.id))
                        .from_address(from),
                );
                return Err(SignInError::InvalidCredentials);
            }
        };
        guard.succeeded(&*self.store).await?;
        if user.is_disabled() {
            self.note(
                AuditEvent::new(kinds::SIGN_IN_DISABLED, Actor::Anonymous)
                    .user(user.id)
                    .from_address(from),
            );
            return Err(SignInError::Disabled);
        }
        Ok(user)
    }

    /// Opens a session for a user already authenticated; returns its cookie value.
    pub(crate) async fn open_session(
        &self,
        user: User,
        amr: Vec<String>,
    ) -> Result<(String, SignedIn), StoreError> {
        let value = self.new_credential(OpaqueKind::Session);
        let now = self.now();
        let session = SessionRecord {
            hash: TokenHash::of(&value),
            user_id: user.id,
            created_at: now,
            expires_at: now + self.config.lifetimes.session,
            amr,
        };
        self.store.insert_session(&session).await?;
        Ok((value, SignedIn { user, session }))
    }

    /// The signed-in user of a session cookie, if the session is live.
    pub async fn session(&self, cookie: &str) -> Result<Option<SignedIn>, StoreError> {
        let Some(session) = self.store.find_session(&TokenHash::of(cookie)).await? else {
            return Ok(None);
        };
        if session.expires_at <= self.now() {
            return Ok(None);
        }
        // Disabling deletes the sessions; a session opened by a sign-in that raced it still
        // finds the user disabled here.
        let user = self.store.find_user(session.user_id).await?;
        Ok(user
            .filter(|user| !user.is_disabled())
            .map(|user| SignedIn { user, session }))
    }

    pub async fn sign_out(&self, cookie: &str) -> Result<(), StoreError> {
        self.store.delete_session(&TokenHash::of(cookie)).await
    }

    /// A new value for the per-browser CSRF cookie.
    pub fn new_csrf_cookie(&self) -> String {
        self.new_credential(OpaqueKind::Csrf)
    }

    /// The form token that goes with a CSRF cookie and the session cookie (if any).
    pub fn csrf_token(&self, cookie: &str, session: Option<&str>) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf_mac(cookie, session))
    }

    /// Whether a form's token matches the browser's CSRF and session cookies, in constant time.
    pub fn verify_csrf(
        &self,
        cookie: Option<&str>,
        session: Option<&str>,
        token: Option<&str>,
    ) -> bool {
        let (Some(cookie), Some(token)) = (cookie, token) else {
            return false;
        };
        let Ok(token) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        constant_time_eq(&self.csrf_mac(cookie, session), &token)
    }

    fn csrf_mac(&self, cookie: &str, session: Option<&str>) -> [u8; 32] {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(b"doorward-csrf:");
        mac.update(cookie.as_bytes());
        // Cookie values are base64url, so a NUL separates them unambiguously.
        mac.update(&[0]);
        mac.update(session.unwrap_or("").as_bytes());
        mac.finalize().into_bytes().into()
    }
}
