//! Opaque credentials (codes, tokens, session ids): 256 random bits, base64url, with a short
//! prefix that names the kind so that secret scanners and people can tell them apart. Only
//! their SHA-256 digest is stored: a leaked database gives no usable credential, and a
//! high-entropy value needs no slow hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::clock::Random;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpaqueKind {
    AuthorizationCode,
    AccessToken,
    RefreshToken,
    Session,
    Csrf,
    /// A registration access token (RFC 7592 §1).
    RegistrationAccess,
    /// An initial access token (RFC 7591 §3).
    InitialAccess,
}

impl OpaqueKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "dwc_",
            Self::AccessToken => "dwat_",
            Self::RefreshToken => "dwrt_",
            Self::Session => "dws_",
            Self::Csrf => "dwx_",
            Self::RegistrationAccess => "dwra_",
            Self::InitialAccess => "dwia_",
        }
    }
}

/// Makes a new credential of `kind`.
pub fn generate(kind: OpaqueKind, random: &dyn Random) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    let mut out = String::with_capacity(48);
    out.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// The SHA-256 digest of a credential: its storage key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Rebuilds a hash read from storage; `None` if it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    #[test]
    fn credentials_have_a_prefix_and_256_bits() {
        let value = generate(OpaqueKind::AccessToken, &SeqRandom::default());
        assert!(value.starts_with("dwat_"));
        assert_eq!(value.len(), 5 + 43);
    }

    #[test]
    fn hashes_are_stable() {
        assert_eq!(TokenHash::of("a"), TokenHash::of("a"));
        assert_ne!(TokenHash::of("a"), TokenHash::of("b"));
    }
}
