//! The left-half hash OpenID Connect binds an access token to its ID token with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The `at_hash` of `token` in an ID token signed with the JWS algorithm `alg` (OIDC Core
/// §3.1.3.6): the left half of the hash of the token's ASCII octets, base64url without padding.
/// `c_hash` (OIDC Core §3.3.2.11) is made the same way from a code.
///
/// The hash is the one of the algorithm: SHA-384 for the `*384` algorithms, SHA-512 for the
/// `*512` ones and for `EdDSA` (Ed25519 signs with SHA-512; Authlib checks it so), SHA-256 for
/// every other. `alg` is the JOSE header's name, case-sensitive (RFC 7515 §4.1.1).
///
/// ```
/// // OIDC Core, Appendix A.3: an RS256 ID token and its access token.
/// let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
/// assert_eq!(doorward_proto::at_hash("RS256", token), "77QmUPtjPfzWtF2AnpK9RQ");
/// ```
pub fn at_hash(alg: &str, token: &str) -> String {
    let octets = token.as_bytes();
    let digest = if alg.ends_with("384") {
        Sha384::digest(octets).to_vec()
    } else if alg.ends_with("512") || alg == "EdDSA" || alg == "Ed25519" {
        Sha512::digest(octets).to_vec()
    } else {
        Sha256::digest(octets).to_vec()
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_half<D: Digest>(token: &str) -> String {
        let digest = D::digest(token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }

    #[test]
    fn known_vectors() {
        // OIDC Core, Appendix A.3 (RS256).
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash("RS256", token), "77QmUPtjPfzWtF2AnpK9RQ");
        // Computed apart (Python's hashlib): the left half of SHA-256, SHA-384 and SHA-512
        // of "abc".
        assert_eq!(at_hash("ES256", "abc"), "ungWv48Bz-pBQUDeXa4iIw");
        assert_eq!(at_hash("ES384", "abc"), "ywB1P0WjXou1oD1pmsZQBycsMqsO3tFj");
        assert_eq!(
            at_hash("EdDSA", "abc"),
            "3a81oZNherrMQXNJriBBMRLm-k6JqX6iCp7u5ktV05o"
        );
    }

    #[test]
    fn each_algorithm_uses_its_hash() {
        let token = "access-token-value";
        let (sha256, sha384, sha512) = (
            left_half::<Sha256>(token),
            left_half::<Sha384>(token),
            left_half::<Sha512>(token),
        );
        assert_eq!(sha256.len(), 22);
        assert_eq!(sha512.len(), 43);
        for alg in ["HS256", "RS256", "PS256", "ES256", "ES256K", "none", ""] {
            assert_eq!(at_hash(alg, token), sha256, "{alg}");
        }
        for alg in ["HS384", "RS384", "PS384", "ES384"] {
            assert_eq!(at_hash(alg, token), sha384, "{alg}");
        }
        for alg in ["HS512", "RS512", "PS512", "ES512", "EdDSA", "Ed25519"] {
            assert_eq!(at_hash(alg, token), sha512, "{alg}");
        }
        // Names are case-sensitive: "eddsa" is no JWS algorithm, so it gets the default.
        assert_eq!(at_hash("eddsa", token), sha256);
    }
}
