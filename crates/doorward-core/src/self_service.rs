//! What people do for themselves: sign up (`[accounts] sign_up`: with an invitation or
//! openly), change their password, delete their account. And the invitations an operator
//! hands out (`doorward users invite`, the admin console).
//!
//! - **Sign-up** checks the username, name, address and password as every new account
//!   ([`crate::users`]), counts each account created per client address (a few an hour:
//!   [`crate::throttle::SIGN_UP`]) and signs the person in. With an invitation, the account
//!   and the spending of the invitation are one transaction
//!   ([`crate::ports::InvitationStore::sign_up_invited`]).
//! - **A password change** asks for the current password (throttled and counted like a
//!   sign-in), checks the new one, signs the account out of every browser and opens a new
//!   session for this one.
//! - **Deleting one's account** asks for the password too; an account of the configuration
//!   file or of an embedding application is not the person's to delete (the next start, or
//!   the application, would bring it back).

use std::net::IpAddr;

use doorward_proto::Secret;
use uuid::Uuid;

use crate::account_fields::{checked_email, AccountError, NewAccount};
use crate::audit::{kinds, Actor, AuditEvent};
use crate::config::SignUpMode;
use crate::engine::Engine;
use crate::model::{InvitationRecord, SignedIn, UserSource};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::passwords::Busy;
use crate::ports::{InvitedSignUp, StoreError};
use crate::sign_in_error::SignInError;
use crate::throttle::{Counter, Guard, Refusal, Throttled};

/// The longest an invitation lasts: 30 days.
pub const MAX_INVITATION_LIFETIME: i64 = 30 * 24 * 3600;

/// What the sign-up form sent.
#[derive(Debug)]
pub struct SignUpForm {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Secret,
    /// The invitation's code (`[accounts] sign_up = "invite"`).
    pub invitation: Option<String>,
}

/// Why a sign-up, a password change or a deletion did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfServiceError {
    #[error("sign-up is closed")]
    Closed,
    #[error("this invitation is unknown, used or expired")]
    InvitationInvalid,
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The current password is wrong (a change, a deletion).
    #[error("the current password is wrong")]
    WrongPassword,
    /// The account is the configuration file's or an application's.
    #[error("this account is managed by {0}: it cannot be deleted here")]
    Managed(&'static str),
    #[error(transparent)]
    Throttled(Throttled),
    /// The account was created, but this server requires a second factor: the new account
    /// sets one up before its first session (`pending` waits for the enrolment).
    #[error("a second factor must be set up")]
    SecondFactor { pending: String },
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl From<Refusal> for SelfServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(t) => Self::Throttled(t),
            Refusal::Store(e) => Self::Store(e),
        }
    }
}

impl From<SignInError> for SelfServiceError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials
            | SignInError::Disabled
            | SignInError::SecondFactor { .. } => Self::WrongPassword,
            SignInError::Throttled(t) => Self::Throttled(t),
            SignInError::Busy(b) => Self::Busy(b),
            SignInError::Store(e) => Self::Store(e),
        }
    }
}

impl Engine {
    /// An invitation to sign up, valid `lifetime` seconds (1 s to 30 days), optionally for an
    /// e-mail address (shown on the sign-up page). Its code is returned here and nowhere
    /// else: the store keeps its digest.
    pub async fn create_invitation(
        &self,
        email: Option<&str>,
        lifetime: i64,
        by: &Actor,
    ) -> Result<(Secret, InvitationRecord), AccountError> {
        let email = match email.map(str::trim) {
            None | Some("") => None,
            Some(address) => Some(checked_email(address)?),
        };
        let code = self.new_credential(OpaqueKind::Invitation);
        let now = self.now();
        let record = InvitationRecord {
            hash: TokenHash::of(&code),
            id: self.new_uuid(),
            created_at: now,
            expires_at: now + lifetime.clamp(1, MAX_INVITATION_LIFETIME),
            created_by: by.to_text(),
            email,
            used_at: None,
            used_by: None,
        };
        self.store.insert_invitation(&record).await?;
        self.record(
            AuditEvent::new(kinds::INVITATION_CREATED, by.clone())
                .with("invitation", record.id.to_string())
                .with("expires_at", record.expires_at),
        )
        .await?;
        Ok((Secret::new(code), record))
    }

    /// The invitations neither used nor expired, newest first.
    pub async fn open_invitations(&self) -> Result<Vec<InvitationRecord>, StoreError> {
        self.store.list_invitations(self.now()).await
    }

    /// Withdraws an unused invitation; false when there is none unused with this id.
    pub async fn withdraw_invitation(&self, id: Uuid, by: &Actor) -> Result<bool, StoreError> {
        let done = self.store.delete_invitation(id).await?;
        if done {
            self.record(
                AuditEvent::new(kinds::INVITATION_WITHDRAWN, by.clone())
                    .with("invitation", id.to_string()),
            )
            .await?;
        }
        Ok(done)
    }

    /// The invitation of this code, while it can be used.
    pub async fn usable_invitation(
        &self,
        code: &str,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let now = self.now();
        Ok(self
            .store
            .find_invitation(&TokenHash::of(code))
            .await?
            .filter(|i| i.used_at.is_none() && i.expires_at > now))
    }

    /// Creates the account of the sign-up form and signs the person in (its session cookie's
    /// value). See the module documentation.
    pub async fn sign_up(
        &self,
        form: SignUpForm,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), SelfServiceError> {
        let mode = self.config.sign_up;
        if mode == SignUpMode::Off {
            return Err(SelfServiceError::Closed);
        }
        let invitation = match (mode, form.invitation.as_deref().map(str::trim)) {
            (SignUpMode::Invite, None | Some("")) => {
                return Err(SelfServiceError::InvitationInvalid)
            }
            (SignUpMode::Invite, Some(code)) => Some(TokenHash::of(code)),
            _ => None,
        };
        // The invitation first: without a usable one nothing else is looked at (no username
        // is said taken, no password hashed).
        if let Some(hash) = &invitation {
            let now = self.now();
            let usable = self
                .store
                .find_invitation(hash)
                .await?
                .is_some_and(|i| i.used_at.is_none() && i.expires_at > now);
            if !usable {
                return Err(SelfServiceError::InvitationInvalid);
            }
        }
        let guard = Guard::check(
            &*self.store,
            from.map(Counter::sign_up).into_iter().collect(),
            self.now(),
        )
        .await?;
        let user = self
            .new_account(NewAccount {
                username: form.username,
                display_name: form.display_name,
                email: form.email,
                password: form.password,
                admin: false,
                source: UserSource::SignUp,
            })
            .await?;
        match invitation {
            Some(hash) => match self.store.sign_up_invited(&user, &hash, self.now()).await? {
                InvitedSignUp::Created => {}
                InvitedSignUp::UsernameTaken => {
                    return Err(AccountError::Taken(user.username).into())
                }
                InvitedSignUp::InvitationInvalid => {
                    return Err(SelfServiceError::InvitationInvalid)
                }
            },
            None => {
                if !self.store.insert_user(&user).await? {
                    return Err(AccountError::Taken(user.username).into());
                }
            }
        }
        guard.failed(&*self.store, self.now()).await?;
        let mut event = AuditEvent::new(kinds::ACCOUNT_SIGNED_UP, Actor::User(user.id))
            .user(user.id)
            .from_address(from)
            .with("username", user.username.clone());
        if let Some(hash) = invitation {
            if let Some(used) = self.store.find_invitation(&hash).await? {
                event = event.with("invitation", used.id.to_string());
            }
        }
        self.note(event);
        // A server that requires a second factor of everyone: the new account sets one up
        // before its first session.
        match self.second_factor_step(&user).await {
            Ok(()) => Ok(self.open_session(user, vec!["pwd".to_owned()]).await?),
            Err(SignInError::SecondFactor { pending, .. }) => {
                Err(SelfServiceError::SecondFactor { pending })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Changes the signed-in user's password (the current one asked again), signs the
    /// account out of every browser and returns a new session for this one.
    pub async fn change_own_password(
        &self,
        signed_in: &SignedIn,
        current: &Secret,
        new: &Secret,
        from: Option<IpAddr>,
    ) -> Result<(String, SignedIn), SelfServiceError> {
        let user = self
            .check_password(&signed_in.user.username, current, from)
            .await?;
        let changed = self
            .set_account_password(&user, new, &Actor::User(user.id))
            .await?;
        self.note(
            AuditEvent::new(kinds::ACCOUNT_PASSWORD_CHANGED, Actor::User(user.id))
                .user(user.id)
                .from_address(from),
        );
        // The new session keeps how this one was opened (its second factor too).
        Ok(self
            .open_session(changed, signed_in.session.amr.clone())
            .await?)
    }

    /// Deletes the signed-in user's account, its password asked again.
    pub async fn delete_own_account(
        &self,
        signed_in: &SignedIn,
        password: &Secret,
        from: Option<IpAddr>,
    ) -> Result<(), SelfServiceError> {
        match signed_in.user.source {
            UserSource::Config => {
                return Err(SelfServiceError::Managed("the server's configuration"))
            }
            UserSource::Application => return Err(SelfServiceError::Managed("the application")),
            UserSource::Cli | UserSource::SignUp => {}
        }
        let user = self
            .check_password(&signed_in.user.username, password, from)
            .await?;
        self.store.delete_user(user.id, self.now()).await?;
        self.forget(&crate::ports::Change::User(user.id));
        self.note(
            AuditEvent::new(kinds::ACCOUNT_DELETED, Actor::User(user.id))
                .user(user.id)
                .from_address(from)
                .with("username", user.username),
        );
        Ok(())
    }
}
