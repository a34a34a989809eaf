//! What a new password must be, after NIST SP 800-63B-4 §3.1.1.2: long enough (15 characters
//! for a password that is the only factor, at least 8 when an operator lowers it because a
//! second factor is required), up to 256 characters (more than the 64 it asks to allow),
//! any printable Unicode, spaces included, and no composition rules (no "one digit, one
//! symbol"). It must not be one of the most common passwords, nor built on the account's own
//! names or the service's, nor a repetition or a sequence.
//!
//! The common passwords are the 11,611 of 8 or more characters among the 30,000 of zxcvbn's
//! frequency list (MIT licence), lower-cased and sorted: `data/common-passwords.txt`. A
//! password shorter than 8 characters is refused for its length anyway.
//!
//! These rules apply to passwords set from now on (`doorward users`, sign-up, the account
//! page, the console); a seed's password in the configuration file is the operator's
//! choice.

use std::sync::OnceLock;

const COMMON: &str = include_str!("../data/common-passwords.txt");

/// The fewest characters an operator may configure (SP 800-63B-4: 8, when the password is
/// one factor of two).
pub const MIN_LENGTH_FLOOR: usize = 8;
/// The default: a password that is the only factor (SP 800-63B-4 §3.1.1.2).
pub const DEFAULT_MIN_LENGTH: usize = 15;
/// The most characters a password may have: long passphrases pass, a megabyte does not reach
/// Argon2.
pub const MAX_LENGTH: usize = 256;

/// The rules of new passwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordRules {
    /// In characters (Unicode scalar values), at least [`MIN_LENGTH_FLOOR`].
    pub min_length: usize,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
        }
    }
}

/// Why a new password is refused; the message says it to the person choosing it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("use at least {min} characters")]
    TooShort { min: usize },
    #[error("use at most {max} characters")]
    TooLong { max: usize },
    #[error("a password cannot hold control characters")]
    ControlCharacters,
    #[error("this password is one of the most common ones; choose another")]
    Common,
    #[error("a password cannot be built on your username, your name or this service's name")]
    ContextWord,
    #[error("a password cannot be a repetition or a sequence (like aaaa… or 1234…)")]
    Repetitive,
}

impl PasswordRules {
    /// Checks a new password. `context` holds the words it must not be built on: the
    /// username, the display name, the service's name. A word counts when removing it
    /// (wherever it appears, without case) leaves fewer than `min_length` characters.
    pub fn check(&self, password: &str, context: &[&str]) -> Result<(), PasswordProblem> {
        let length = password.chars().count();
        if length < self.min_length.max(MIN_LENGTH_FLOOR) {
            return Err(PasswordProblem::TooShort {
                min: self.min_length.max(MIN_LENGTH_FLOOR),
            });
        }
        if length > MAX_LENGTH {
            return Err(PasswordProblem::TooLong { max: MAX_LENGTH });
        }
        if password.chars().any(char::is_control) {
            return Err(PasswordProblem::ControlCharacters);
        }
        let lower = password.to_lowercase();
        if is_common(&lower) {
            return Err(PasswordProblem::Common);
        }
        for word in context {
            let word = word.trim().to_lowercase();
            if word.chars().count() >= 3 && lower.contains(&word) {
                let rest = lower.replace(&word, "").chars().count();
                if rest < self.min_length {
                    return Err(PasswordProblem::ContextWord);
                }
            }
        }
        if is_repetitive(&lower, self.min_length) {
            return Err(PasswordProblem::Repetitive);
        }
        Ok(())
    }
}

/// Whether the (lower-cased) password is in the bundled list.
fn is_common(lower: &str) -> bool {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    let list = LIST.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect());
    list.binary_search(&lower).is_ok()
}

/// Fewer than four different characters; a repeated unit that is short or common
/// (`abcabcabc…`, `passwordpassword`); or mostly a run of neighbouring characters
/// (`123456789012345`, `abcdefghijklmno`).
fn is_repetitive(lower: &str, min_length: usize) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return true;
    }
    for unit in 1..=chars.len() / 2 {
        if chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit]) {
            let unit: String = chars[..unit].iter().collect();
            if unit.chars().count() < min_length || is_common(&unit) {
                return true;
            }
        }
    }
    let steps = chars
        .windows(2)
        .filter(|pair| {
            let (a, b) = (pair[0] as i64, pair[1] as i64);
            (a - b).abs() == 1 || matches!((pair[0], pair[1]), ('9', '0') | ('0', '9'))
        })
        .count();
    steps * 5 >= (chars.len() - 1) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Result<(), PasswordProblem> {
        PasswordRules::default().check(password, &["alice", "Alice Liddell", "doorward"])
    }

    #[test]
    fn long_passphrases_of_any_script_pass_without_composition_rules() {
        assert_eq!(check("correct horse battery staple"), Ok(()));
        assert_eq!(check("ünïcödé pässwörd wïth spaces"), Ok(()));
        assert_eq!(check("パスワードは長い文章でもいいです"), Ok(()));
        assert_eq!(check("alllowercaseletters"), Ok(()));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(check("ééééééé"), Err(PasswordProblem::TooShort { min: 15 }));
        assert_eq!(
            check(&"x".repeat(300)),
            Err(PasswordProblem::TooLong { max: 256 })
        );
        let rules = PasswordRules { min_length: 3 };
        assert_eq!(
            rules.check("short", &[]),
            Err(PasswordProblem::TooShort { min: 8 }),
            "the floor holds whatever the configuration says"
        );
    }

    #[test]
    fn common_context_and_repetitive_passwords_are_refused() {
        let eight = PasswordRules { min_length: 8 };
        assert_eq!(eight.check("Password", &[]), Err(PasswordProblem::Common));
        assert_eq!(eight.check("iloveyou", &[]), Err(PasswordProblem::Common));
        assert_eq!(check("1qaz2wsx3edc4rfv"), Err(PasswordProblem::Common));
        assert_eq!(
            check("alice-alice-2026!"),
            Err(PasswordProblem::ContextWord)
        );
        assert_eq!(
            check("DoorwardDoorward1"),
            Err(PasswordProblem::ContextWord)
        );
        assert_eq!(
            check("aaaaaaaaaaaaaaaaaa"),
            Err(PasswordProblem::Repetitive)
        );
        assert_eq!(
            check("abcabcabcabcabcabc"),
            Err(PasswordProblem::Repetitive)
        );
        assert_eq!(check("passwordpassword"), Err(PasswordProblem::Repetitive));
        assert_eq!(
            check("123456789012345678"),
            Err(PasswordProblem::Repetitive)
        );
        assert_eq!(check("abcdefghijklmnopq"), Err(PasswordProblem::Repetitive));
        assert_eq!(
            check("tab\there and more text"),
            Err(PasswordProblem::ControlCharacters)
        );
        // A name inside a long passphrase leaves enough: it passes.
        assert_eq!(check("alice walks through the looking glass"), Ok(()));
    }

    #[test]
    fn the_bundled_list_is_sorted_lower_case_and_unique() {
        let lines: Vec<&str> = COMMON.lines().collect();
        assert!(lines.len() > 10_000);
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
        assert!(lines.iter().all(|l| *l == l.to_lowercase() && l.len() >= 8));
    }
}
