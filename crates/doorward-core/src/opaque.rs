//! Opaque credentials (codes, tokens, session ids): base64url, with a short prefix that names
//! the kind so that secret scanners and people can tell them apart. Only a digest is stored: a
//! leaked database gives no usable credential, and a high-entropy value needs no slow hash.
//!
//! # Dated credentials
//! A credential is 33 bytes: a version byte (`1`), the time it was made in milliseconds (6
//! bytes, big-endian), then 208 random bits (RFC 6749 §10.10 asks for at least 128; RFC 6819
//! §5.1.4.2.2). Its storage key ([`TokenHash`]) is those 6 time bytes followed by the first 26
//! bytes of the SHA-256 digest of the whole credential. Keys therefore grow with time: the
//! credentials a server issues in one second are inserted side by side at the end of the
//! store's B-tree (a few pages written per group commit) instead of at random places (one page
//! each). The time in a credential is no secret: a JWT access token says as much in `iat`.
//! Credentials of the earlier form (32 random bytes, 43 characters) and any other string
//! (a JWT access token) keep the full SHA-256 digest as their key, so that what was issued
//! before stays valid.

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
    /// A device code (RFC 8628 §3.2).
    DeviceCode,
    /// An invitation to sign up.
    Invitation,
}

impl OpaqueKind {
    const ALL: [Self; 9] = [
        Self::AuthorizationCode,
        Self::AccessToken,
        Self::RefreshToken,
        Self::Session,
        Self::Csrf,
        Self::RegistrationAccess,
        Self::InitialAccess,
        Self::DeviceCode,
        Self::Invitation,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "dwc_",
            Self::AccessToken => "dwat_",
            Self::RefreshToken => "dwrt_",
            Self::Session => "dws_",
            Self::Csrf => "dwx_",
            Self::RegistrationAccess => "dwra_",
            Self::InitialAccess => "dwia_",
            Self::DeviceCode => "dwdc_",
            Self::Invitation => "dwi_",
        }
    }
}

/// The version byte of a dated credential.
const DATED: u8 = 1;
/// The length of a dated credential's bytes: version, 6 bytes of time, 26 random bytes.
const DATED_LEN: usize = 33;
/// The characters of a dated credential after its prefix (33 bytes in base64url).
const DATED_CHARS: usize = 44;

/// Makes a new credential of `kind`, dated `millis` (Unix time in milliseconds: see the
/// module's documentation).
pub fn generate(kind: OpaqueKind, random: &dyn Random, millis: i64) -> String {
    let mut bytes = [0u8; DATED_LEN];
    bytes[0] = DATED;
    let millis = u64::try_from(millis).unwrap_or(0).to_be_bytes();
    bytes[1..7].copy_from_slice(&millis[2..]);
    random.fill(&mut bytes[7..]);
    let mut out = String::with_capacity(kind.prefix().len() + DATED_CHARS);
    out.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// The storage key of a credential: for a dated one its time and 208 bits of its SHA-256
/// digest, for anything else its whole SHA-256 digest (see the module's documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(value: &str) -> Self {
        let mut key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        if let Some(time) = dated(value) {
            key.copy_within(0..26, 6);
            key[..6].copy_from_slice(&time);
        }
        Self(key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Rebuilds a hash read from storage; `None` if it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

/// The 6 time bytes of a dated credential (one of the kinds' prefixes, then 44 base64url
/// characters that decode to 33 bytes, the first of which is the version), if `value` is one.
/// Anything else (a JWT whose signature happens to hold `_` and such bytes among them) is not.
fn dated(value: &str) -> Option<[u8; 6]> {
    let (kind, encoded) = value.split_once('_')?;
    if encoded.len() != DATED_CHARS
        || !OpaqueKind::ALL
            .iter()
            .any(|k| &k.prefix()[..k.prefix().len() - 1] == kind)
    {
        return None;
    }
    let mut bytes = [0u8; DATED_LEN];
    if URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes).ok()? != DATED_LEN || bytes[0] != DATED {
        return None;
    }
    let mut time = [0u8; 6];
    time.copy_from_slice(&bytes[1..7]);
    Some(time)
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

    const MILLIS: i64 = 1_764_806_400_123;

    #[test]
    fn credentials_have_a_prefix_a_date_and_208_random_bits() {
        let random = SeqRandom::default();
        let value = generate(OpaqueKind::AccessToken, &random, MILLIS);
        assert!(value.starts_with("dwat_"));
        assert_eq!(value.len(), 5 + 44);
        let bytes = URL_SAFE_NO_PAD.decode(&value[5..]).unwrap();
        assert_eq!(bytes[0], DATED);
        assert_eq!(&bytes[1..7], &MILLIS.to_be_bytes()[2..]);
        let other = generate(OpaqueKind::AccessToken, &random, MILLIS);
        assert_ne!(value, other, "the random part differs");
    }

    #[test]
    fn keys_of_dated_credentials_start_with_their_time_and_grow_with_it() {
        let random = SeqRandom::default();
        let early = generate(OpaqueKind::RefreshToken, &random, MILLIS);
        let late = generate(OpaqueKind::RefreshToken, &random, MILLIS + 1);
        let (k1, k2) = (TokenHash::of(&early), TokenHash::of(&late));
        assert_eq!(&k1.0[..6], &MILLIS.to_be_bytes()[2..]);
        assert!(k1.0 < k2.0, "keys are ordered by time");
        let digest: [u8; 32] = Sha256::digest(early.as_bytes()).into();
        assert_eq!(
            &k1.0[6..],
            &digest[..26],
            "the rest is the credential's digest"
        );
    }

    #[test]
    fn other_strings_keep_their_whole_digest() {
        assert_eq!(TokenHash::of("a"), TokenHash::of("a"));
        assert_ne!(TokenHash::of("a"), TokenHash::of("b"));
        // The earlier form: 32 random bytes, 43 characters.
        let legacy = format!("dwat_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        let digest: [u8; 32] = Sha256::digest(legacy.as_bytes()).into();
        assert_eq!(TokenHash::of(&legacy).0, digest);
        // 44 characters whose first byte is not the version.
        let odd = format!("dwat_{}", URL_SAFE_NO_PAD.encode([9u8; 33]));
        let digest: [u8; 32] = Sha256::digest(odd.as_bytes()).into();
        assert_eq!(TokenHash::of(&odd).0, digest);
        // Not base64url at all.
        let digest: [u8; 32] = Sha256::digest("dwat_!!!!".as_bytes()).into();
        assert_eq!(TokenHash::of("dwat_!!!!").0, digest);
        // The form of a dated credential after another prefix than a kind's (a JWT's
        // signature may hold `_` followed by 44 such characters).
        let mut dated_bytes = [1u8; 33];
        dated_bytes[1..7].copy_from_slice(&MILLIS.to_be_bytes()[2..]);
        let foreign = format!("eyJh.eyJ.sig_{}", URL_SAFE_NO_PAD.encode(dated_bytes));
        let digest: [u8; 32] = Sha256::digest(foreign.as_bytes()).into();
        assert_eq!(TokenHash::of(&foreign).0, digest);
        // A kind's prefix, but the rest does not decode.
        let broken = format!("dwat_{}!", &URL_SAFE_NO_PAD.encode(dated_bytes)[..43]);
        let digest: [u8; 32] = Sha256::digest(broken.as_bytes()).into();
        assert_eq!(TokenHash::of(&broken).0, digest);
    }
}
