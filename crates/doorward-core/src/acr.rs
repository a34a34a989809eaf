//! Authentication context classes (OIDC Core §2 `acr`): what an ID token says of how strongly
//! its user authenticated, derived from the methods of the sign-in (`amr`, RFC 8176), and what
//! an authorization request may ask for with `acr_values`.
//!
//! | `acr` | when |
//! |---|---|
//! | [`PASSWORD`] `urn:doorward:acr:pwd` | one factor (a password) |
//! | [`MFA`] `urn:doorward:acr:mfa` | two factors (`mfa` in `amr`: a password and a one-time code, a passkey alone, or a password and a passkey) |
//!
//! No `acr` when the sign-in said nothing of its methods (an embedding application's).

/// One factor.
pub const PASSWORD: &str = "urn:doorward:acr:pwd";
/// Two factors.
pub const MFA: &str = "urn:doorward:acr:mfa";

/// The classes this server answers (its metadata's `acr_values_supported`), weakest first.
pub const SUPPORTED: [&str; 2] = [PASSWORD, MFA];

/// The class of a sign-in whose methods were `amr`.
pub fn of(amr: &[String]) -> Option<&'static str> {
    if amr.iter().any(|m| m == "mfa") {
        Some(MFA)
    } else if amr.is_empty() {
        None
    } else {
        Some(PASSWORD)
    }
}

/// Whether a sign-in of methods `amr` satisfies an `acr_values` request: the weakest class
/// asked for that this server knows must be met (`acr_values` is a preference list, OIDC
/// Core §3.1.2.1: any of them will do; classes it does not know are left to the ID token's
/// `acr` to tell).
pub fn satisfies(amr: &[String], acr_values: &str) -> bool {
    let wanted = acr_values
        .split(' ')
        .filter_map(|v| SUPPORTED.iter().position(|s| *s == v))
        .min();
    match wanted {
        None => true,
        Some(rank) => of(amr)
            .and_then(|have| SUPPORTED.iter().position(|s| *s == have))
            .is_some_and(|have| have >= rank),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amr(methods: &[&str]) -> Vec<String> {
        methods.iter().map(|m| (*m).to_owned()).collect()
    }

    #[test]
    fn classes_follow_the_methods() {
        assert_eq!(of(&amr(&["pwd"])), Some(PASSWORD));
        assert_eq!(of(&amr(&["pwd", "otp", "mfa"])), Some(MFA));
        assert_eq!(of(&[]), None);
        assert!(satisfies(&amr(&["pwd"]), PASSWORD));
        assert!(!satisfies(&amr(&["pwd"]), MFA));
        assert!(satisfies(&amr(&["pwd", "otp", "mfa"]), MFA));
        assert!(satisfies(&amr(&["pwd"]), "urn:example:unknown"));
        // A preference list: the weakest known class asked for is enough.
        assert!(satisfies(&amr(&["pwd"]), &format!("{MFA} {PASSWORD}")));
    }
}
