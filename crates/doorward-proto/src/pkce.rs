//! Proof Key for Code Exchange (RFC 7636).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::secret::constant_time_eq;

/// `code_challenge_method` (RFC 7636 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeChallengeMethod {
    S256,
    /// `plain` offers no protection if the authorization request leaks (RFC 9700 §2.1.1); the
    /// server accepts it only when configured to.
    Plain,
}

impl CodeChallengeMethod {
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        match value {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            _ => Err(PkceError::UnknownMethod),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    #[error("code_challenge_method must be S256 or plain")]
    UnknownMethod,
    #[error("the value must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)")]
    Malformed,
}

/// `code_challenge` (RFC 7636 §4.2): the same alphabet and length as a verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// `code_verifier` (RFC 7636 §4.1). It cannot be cloned or printed.
pub struct CodeVerifier(String);

fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl CodeChallenge {
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if well_formed(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(PkceError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` answers this challenge (RFC 7636 §4.6), compared in constant time.
    pub fn verify(&self, method: CodeChallengeMethod, verifier: &CodeVerifier) -> bool {
        match method {
            CodeChallengeMethod::S256 => {
                let digest = Sha256::digest(verifier.0.as_bytes());
                let computed = URL_SAFE_NO_PAD.encode(digest);
                constant_time_eq(computed.as_bytes(), self.0.as_bytes())
            }
            CodeChallengeMethod::Plain => {
                constant_time_eq(verifier.0.as_bytes(), self.0.as_bytes())
            }
        }
    }
}

impl CodeVerifier {
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if well_formed(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(PkceError::Malformed)
        }
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn s256_matches_the_rfc_example() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert!(challenge.verify(CodeChallengeMethod::S256, &verifier));
        let other = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx").unwrap();
        assert!(!challenge.verify(CodeChallengeMethod::S256, &other));
    }

    #[test]
    fn plain_compares_the_strings() {
        let value = "a".repeat(43);
        let challenge = CodeChallenge::parse(&value).unwrap();
        assert!(challenge.verify(
            CodeChallengeMethod::Plain,
            &CodeVerifier::parse(&value).unwrap()
        ));
    }

    #[test]
    fn refuses_malformed_values() {
        assert_eq!(
            CodeVerifier::parse("short").err(),
            Some(PkceError::Malformed)
        );
        assert_eq!(
            CodeChallenge::parse(&"a".repeat(129)).err(),
            Some(PkceError::Malformed)
        );
        assert_eq!(
            CodeChallenge::parse(&"+".repeat(43)).err(),
            Some(PkceError::Malformed)
        );
        assert_eq!(
            CodeChallengeMethod::parse("S512"),
            Err(PkceError::UnknownMethod)
        );
    }
}
