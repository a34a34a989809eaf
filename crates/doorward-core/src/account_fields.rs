//! The fields of a new or changed account, checked before anything is stored: the username,
//! the display name, the e-mail address; and the errors of account operations. The flows are
//! `users.rs` (the operator's) and `self_service.rs` (the person's own).

use doorward_proto::Secret;

use crate::model::UserSource;
use crate::password_rules::PasswordProblem;
use crate::passwords::Busy;
use crate::ports::StoreError;

/// The longest username: 64 characters.
pub const MAX_USERNAME: usize = 64;
/// The longest display name: 100 characters.
pub const MAX_DISPLAY_NAME: usize = 100;
/// The longest e-mail address (RFC 5321 §4.5.3.1.3 path limit).
pub const MAX_EMAIL: usize = 254;

/// An account to create (`Engine::create_account`, the sign-up page).
#[derive(Debug)]
pub struct NewAccount {
    /// 2 to 64 of `a-z 0-9 . _ - @ +`, starting with a letter or digit; upper-case ASCII
    /// letters are lowered.
    pub username: String,
    /// What pages and ID tokens show; the username when absent.
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Secret,
    pub admin: bool,
    pub source: UserSource,
}

/// Why an account operation did nothing. The messages are meant for the person who typed
/// the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    #[error("username: {0}")]
    Username(&'static str),
    #[error("display name: {0}")]
    DisplayName(&'static str),
    #[error("e-mail address: {0}")]
    Email(&'static str),
    #[error("password: {0}")]
    Password(PasswordProblem),
    #[error("the username `{0}` is taken")]
    Taken(String),
    #[error("no user `{0}` (give its username or id)")]
    Unknown(String),
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl From<PasswordProblem> for AccountError {
    fn from(problem: PasswordProblem) -> Self {
        Self::Password(problem)
    }
}

/// A username for a new account, lower-cased.
pub(crate) fn checked_username(name: &str) -> Result<String, AccountError> {
    let name = name.trim().to_ascii_lowercase();
    let length = name.chars().count();
    if !(2..=MAX_USERNAME).contains(&length) {
        return Err(AccountError::Username("use 2 to 64 characters"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@+".contains(c);
    if !name.chars().all(allowed) {
        return Err(AccountError::Username(
            "use only letters a-z, digits and . _ - @ +",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(AccountError::Username("start with a letter or a digit"));
    }
    Ok(name)
}

/// A display name: trimmed, 1 to 100 characters, no control or invisible formatting
/// characters (bidirectional overrides could make it read as another name). Markup is kept as
/// text: every page escapes it.
pub(crate) fn checked_display_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    let length = name.chars().count();
    if !(1..=MAX_DISPLAY_NAME).contains(&length) {
        return Err(AccountError::DisplayName("use 1 to 100 characters"));
    }
    if name.chars().any(is_hidden) {
        return Err(AccountError::DisplayName(
            "control and invisible formatting characters are not allowed",
        ));
    }
    Ok(name.to_owned())
}

/// An e-mail address: one `@` between non-empty parts, printable ASCII or Unicode without
/// spaces, controls or markup, at most 254 bytes.
pub(crate) fn checked_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim();
    if email.len() > MAX_EMAIL {
        return Err(AccountError::Email("use at most 254 bytes"));
    }
    let well_formed = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
        }
        None => false,
    };
    let clean = !email
        .chars()
        .any(|c| c.is_whitespace() || is_hidden(c) || "<>\"'\\,;".contains(c));
    if !(well_formed && clean) {
        return Err(AccountError::Email("write it as name@example.com"));
    }
    Ok(email.to_owned())
}

/// Control characters and the invisible formatting ones (zero-width and bidirectional).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowered_and_kept_to_a_plain_alphabet() {
        assert_eq!(
            checked_username(" Alice.Smith ").ok().as_deref(),
            Some("alice.smith")
        );
        assert_eq!(
            checked_username("ada+1@x.io").ok().as_deref(),
            Some("ada+1@x.io")
        );
        for bad in [
            "a",
            "-alice",
            "al ice",
            "<b>x</b>",
            "élodie",
            "a\u{202e}b",
            &"x".repeat(65),
        ] {
            assert!(checked_username(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn display_names_keep_markup_as_text_but_no_hidden_characters() {
        assert_eq!(
            checked_display_name("<b>Ada</b> 🦀").ok().as_deref(),
            Some("<b>Ada</b> 🦀")
        );
        for bad in [
            "",
            "   ",
            "Ada\u{202e}reversed",
            "Ada\u{200b}",
            "a\nb",
            &"x".repeat(101),
        ] {
            assert!(
                checked_display_name(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn email_addresses_have_one_at_and_no_markup() {
        assert!(checked_email("ada@example.com").is_ok());
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "a@b@c.d",
            "ada@localhost",
            "<a>@x.io",
            "a b@x.io",
        ] {
            assert!(checked_email(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
