//! Why a sign-in stops: the answer of `Engine::sign_in` and `Engine::check_password`
//! (`session.rs`), which the account page's checks of a password share (`self_service.rs`);
//! what a sign-in stopped for its second factor waits for, and why a second-factor step did
//! nothing (`second_factor.rs`, `passkeys.rs`).

use crate::ports::StoreError;
use crate::throttle::{Refusal, Throttled};

/// Why a sign-in failed. A wrong password and an unknown username are not told apart to the
/// user, nor are their throttles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The password was right but the account is disabled (`doorward users disable`, the
    /// console). Said only after the right password, so it tells a guesser nothing.
    #[error("this account is disabled")]
    Disabled,
    /// Too many failures for this username or from this address: refused before the password
    /// was checked (RFC 6819 §4.4.3.6, [`crate::throttle`]).
    #[error(transparent)]
    Throttled(Throttled),
    /// The password was right; a second factor must follow (`enrol`: one must be set up
    /// first). `pending` names the sign-in for five minutes (`crate::second_factor`).
    #[error("a second factor is needed")]
    SecondFactor { pending: String, enrol: bool },
    #[error(transparent)]
    Busy(#[from] crate::passwords::Busy),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl From<Refusal> for SignInError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(t) => Self::Throttled(t),
            Refusal::Store(e) => Self::Store(e),
        }
    }
}

/// What a pending sign-in waits for: a code of the app the user has, or the enrolment of one
/// (the user has none and must). Part of its MAC: a pending sign-in of one purpose cannot be
/// used for the other (a password alone must never set up a new app over an existing one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Code,
    Enrol,
}

impl Purpose {
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Code => "c",
            Self::Enrol => "e",
        }
    }
}

/// Why a second factor step did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecondFactorError {
    /// The pending sign-in or the enrolment form is forged, for another user, or expired.
    #[error("this sign-in has expired; sign in again")]
    Expired,
    #[error("this code is wrong, or was used already")]
    WrongCode,
    #[error(transparent)]
    Throttled(Throttled),
    #[error("the password is wrong")]
    WrongPassword,
    /// An app is set up already: it must be turned off (with the password) before another.
    #[error("an authenticator app is set up already")]
    AlreadyEnrolled,
    #[error("storage failure")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Busy(#[from] crate::passwords::Busy),
}

impl From<Refusal> for SecondFactorError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(t) => Self::Throttled(t),
            Refusal::Store(e) => Self::Store(e),
        }
    }
}
