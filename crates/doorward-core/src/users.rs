//! Accounts managed while servers run (`doorward users …`, later the admin console and
//! sign-up): created with a checked username, name, e-mail address and password
//! ([`crate::password_rules`]), given a new password, disabled, enabled, removed, unlocked.
//! Running engines read users from the store at every sign-in and session lookup, and the
//! read caches of every instance hear of a change through the store's change feed
//! ([`Change::User`]), so a change made here reaches them at their next request.
//!
//! Disabling or removing a user ends, in one transaction, its sessions, its grants with their
//! tokens and its outstanding codes ([`crate::ports::UserStore::set_user_disabled`]); a
//! disabled user cannot sign in, and a session or grant that raced the change finds it
//! disabled ([`crate::session`], the password grant, extension grants).

use doorward_proto::Secret;
use uuid::Uuid;

use crate::account_fields::{checked_display_name, checked_email, checked_username};
pub use crate::account_fields::{
    AccountError, NewAccount, MAX_DISPLAY_NAME, MAX_EMAIL, MAX_USERNAME,
};
use crate::audit::{kinds, Actor, AuditEvent};
use crate::engine::Engine;
use crate::model::{NewUser, User, UserChange, UserFilter};
use crate::password_rules::PasswordProblem;
use crate::passwords::Busy;
use crate::ports::{Change, Failures, StoreError, UnixTime};
use crate::throttle::{self, Counter};

impl Engine {
    /// Creates an account with a checked username, display name, e-mail address and password
    /// (the address is not verified). [`AccountError::Taken`] when the username is.
    pub async fn create_account(
        &self,
        account: NewAccount,
        by: &Actor,
    ) -> Result<User, AccountError> {
        let user = self.new_account(account).await?;
        if !self.store.insert_user(&user).await? {
            return Err(AccountError::Taken(user.username));
        }
        self.record_account_change(
            kinds::USER_CREATED,
            &user,
            by,
            &[
                ("admin", user.admin.into()),
                ("source", user.source.as_str().into()),
            ],
        )
        .await?;
        Ok(user)
    }

    /// The user `account` describes, checked and its password hashed, not stored yet.
    pub(crate) async fn new_account(&self, account: NewAccount) -> Result<NewUser, AccountError> {
        let username = checked_username(&account.username)?;
        let display_name = match account.display_name.as_deref() {
            Some(name) => checked_display_name(name)?,
            None => username.clone(),
        };
        let email = account.email.as_deref().map(checked_email).transpose()?;
        self.check_new_password(&account.password, &[&username, &display_name])?;
        if self.store.find_user_by_username(&username).await?.is_some() {
            return Err(AccountError::Taken(username));
        }
        let password_hash = self.hash_new_password(&account.password, &username).await?;
        let user = NewUser {
            id: self.new_uuid(),
            username,
            display_name,
            password_hash,
            email,
            email_verified: false,
            created_at: self.now(),
            claims: serde_json::Map::new(),
            admin: account.admin,
            disabled_at: None,
            second_factor_required: false,
            source: account.source,
        };
        Ok(user)
    }

    /// The user named by `name_or_id`: its username, else its id.
    pub async fn find_account(&self, name_or_id: &str) -> Result<Option<User>, StoreError> {
        if let Some(user) = self.store.find_user_by_username(name_or_id).await? {
            return Ok(Some(user));
        }
        match Uuid::parse_str(name_or_id) {
            Ok(id) => self.store.find_user(id).await,
            Err(_) => Ok(None),
        }
    }

    /// Like [`Engine::find_account`], but an absent user is [`AccountError::Unknown`].
    pub async fn account(&self, name_or_id: &str) -> Result<User, AccountError> {
        self.find_account(name_or_id)
            .await?
            .ok_or_else(|| AccountError::Unknown(name_or_id.to_owned()))
    }

    pub async fn list_accounts(&self, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        self.store.list_users(filter).await
    }

    /// Gives the user a new password (checked), and signs it out of every browser: a password
    /// set by someone else answers a lost or stolen one. Its tokens stay.
    pub async fn set_account_password(
        &self,
        user: &User,
        password: &Secret,
        by: &Actor,
    ) -> Result<User, AccountError> {
        self.check_new_password(password, &[&user.username, &user.display_name])?;
        let password_hash = self.hash_new_password(password, &user.username).await?;
        // The password alone: a change made meanwhile (the admin role, a second factor
        // required) is kept.
        let change = UserChange {
            password_hash: Some(password_hash),
            ..UserChange::default()
        };
        if !self.store.update_user(user.id, &change).await? {
            return Err(AccountError::Unknown(user.username.clone()));
        }
        // The user as stored now (what changed meanwhile included), for the caller to show.
        let changed = match self.store.find_user(user.id).await? {
            Some(stored) => stored,
            None => change.applied_to(user),
        };
        self.store.delete_user_sessions(user.id).await?;
        self.forget(&Change::User(user.id));
        self.record_account_change(kinds::USER_PASSWORD_SET, user, by, &[])
            .await?;
        Ok(changed)
    }

    /// Changes the display name and e-mail address, each when given (checked as at
    /// creation; an empty address removes it, and a new one is not verified).
    pub async fn update_account_profile(
        &self,
        user: &User,
        display_name: Option<&str>,
        email: Option<&str>,
        by: &Actor,
    ) -> Result<User, AccountError> {
        let mut changed = user.clone();
        if let Some(name) = display_name {
            changed.display_name = checked_display_name(name)?;
        }
        match email.map(str::trim) {
            Some("") => {
                changed.email = None;
                changed.email_verified = false;
            }
            Some(address) => {
                let address = checked_email(address)?;
                if user.email.as_deref() != Some(address.as_str()) {
                    changed.email_verified = false;
                }
                changed.email = Some(address);
            }
            None => {}
        }
        if changed.display_name == user.display_name && changed.email == user.email {
            return Ok(changed);
        }
        // What differs only: a field this call leaves keeps what the store has now.
        let new_email = changed.email != user.email;
        let change = UserChange {
            display_name: (changed.display_name != user.display_name)
                .then(|| changed.display_name.clone()),
            email: new_email.then(|| changed.email.clone()),
            email_verified: new_email.then_some(changed.email_verified),
            ..UserChange::default()
        };
        if !self.store.update_user(user.id, &change).await? {
            return Err(AccountError::Unknown(user.username.clone()));
        }
        self.forget(&Change::User(user.id));
        let mut what = Vec::new();
        if changed.display_name != user.display_name {
            what.push(("display_name", changed.display_name.clone().into()));
        }
        if changed.email != user.email {
            what.push(("email", changed.email.clone().into()));
        }
        self.record_account_change(kinds::USER_UPDATED, user, by, &what)
            .await?;
        Ok(changed)
    }

    /// Gives or takes the admin role.
    pub async fn set_account_admin(
        &self,
        user: &User,
        admin: bool,
        by: &Actor,
    ) -> Result<User, AccountError> {
        let changed = User {
            admin,
            ..user.clone()
        };
        if changed.admin == user.admin {
            return Ok(changed);
        }
        let change = UserChange {
            admin: Some(admin),
            ..UserChange::default()
        };
        if !self.store.update_user(user.id, &change).await? {
            return Err(AccountError::Unknown(user.username.clone()));
        }
        self.forget(&Change::User(user.id));
        self.record_account_change(kinds::USER_UPDATED, user, by, &[("admin", admin.into())])
            .await?;
        Ok(changed)
    }

    /// Disables the user, ending its sessions, grants, tokens and codes at once (a user
    /// already disabled keeps its first date). False when it is gone.
    pub async fn disable_account(&self, user: &User, by: &Actor) -> Result<bool, StoreError> {
        let at = user.disabled_at.unwrap_or_else(|| self.now());
        let done = self
            .store
            .set_user_disabled(user.id, Some(at), self.now())
            .await?;
        self.forget(&Change::User(user.id));
        if done {
            self.record_account_change(kinds::USER_DISABLED, user, by, &[])
                .await?;
        }
        Ok(done)
    }

    /// Lets a disabled user sign in again; nothing it held comes back.
    pub async fn enable_account(&self, user: &User, by: &Actor) -> Result<bool, StoreError> {
        let done = self
            .store
            .set_user_disabled(user.id, None, self.now())
            .await?;
        self.forget(&Change::User(user.id));
        if done {
            self.record_account_change(kinds::USER_ENABLED, user, by, &[])
                .await?;
        }
        Ok(done)
    }

    /// Removes the user, its sessions, consents, grants and tokens. Its id is never given to
    /// another user (ids are random UUIDs).
    pub async fn remove_account(&self, user: &User, by: &Actor) -> Result<bool, StoreError> {
        let done = self.store.delete_user(user.id, self.now()).await?;
        self.forget(&Change::User(user.id));
        if done {
            self.record_account_change(kinds::USER_REMOVED, user, by, &[])
                .await?;
        }
        Ok(done)
    }

    /// Signs the user out of every browser; returns how many sessions ended.
    pub async fn end_account_sessions(&self, user: &User, by: &Actor) -> Result<u64, StoreError> {
        let ended = self.store.delete_user_sessions(user.id).await?;
        self.record_account_change(
            kinds::USER_SIGNED_OUT,
            user,
            by,
            &[("sessions", ended.into())],
        )
        .await?;
        Ok(ended)
    }

    /// Clears the failed sign-ins counted for the user's username, which lifts its lock
    /// ([`crate::throttle`]); the counters of client addresses stay. True when there was one.
    pub async fn unlock_account(&self, user: &User, by: &Actor) -> Result<bool, StoreError> {
        let counter = Counter::account(&user.username);
        let held = self.store.find_failures(counter.key()).await?.is_some();
        self.store.clear_failures(counter.key()).await?;
        self.forget(&Change::Failures(counter.key().to_owned()));
        if held {
            self.record_account_change(kinds::USER_UNLOCKED, user, by, &[])
                .await?;
        }
        Ok(held)
    }

    /// The audit event of a change to `user`, written before the change is answered.
    async fn record_account_change(
        &self,
        kind: &str,
        user: &User,
        by: &Actor,
        detail: &[(&str, serde_json::Value)],
    ) -> Result<(), StoreError> {
        let mut event = AuditEvent::new(kind, by.clone())
            .user(user.id)
            .with("username", user.username.clone());
        for (name, value) in detail {
            event = event.with(name, value.clone());
        }
        self.record(event).await
    }

    /// The failed sign-ins counted for this username, and until when they lock it
    /// ([`crate::throttle::ACCOUNT`]); `None` when none are counted.
    pub async fn account_failures(
        &self,
        username: &str,
    ) -> Result<Option<(Failures, Option<UnixTime>)>, StoreError> {
        let counter = Counter::account(username);
        let now = self.now();
        Ok(self
            .store
            .find_failures(counter.key())
            .await?
            .map(|failures| {
                let until = throttle::ACCOUNT.locked_until(&failures, now);
                (failures, until)
            }))
    }

    /// [`crate::password_rules`] with the service's name and `context` as the words a
    /// password may not be built on.
    fn check_new_password(
        &self,
        password: &Secret,
        context: &[&str],
    ) -> Result<(), PasswordProblem> {
        let host = url::Url::parse(&self.config.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let mut words: Vec<&str> = context.to_vec();
        words.extend(["doorward", host.as_str()]);
        self.config.passwords.check(password.secret(), &words)
    }

    /// Argon2id in the shared queue, on behalf of the account (its line is the one its
    /// sign-ins use).
    async fn hash_new_password(&self, password: &Secret, username: &str) -> Result<String, Busy> {
        self.hashes
            .hash(
                password.clone(),
                self.config.hash_cost,
                self.random.as_ref(),
                vec![Counter::account(username).key().to_owned()],
            )
            .await
    }
}
