//! Redirect URIs: which a client may register, and how a sent one matches a registered one.
//!
//! Matching is by exact string (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), with one exception, the
//! native apps' loopback redirect (RFC 8252 §7.3): a registered `http://127.0.0.1/path` or
//! `http://[::1]/path` without a port matches the same URI with any port, since the app picks
//! a free port when it starts; the path and query still match exactly.
//!
//! Registration rules (RFC 8252):
//! - a private-use scheme (§7.1) must be in reverse-domain form (`com.example.app:/cb`: a dot
//!   in the scheme) and is allowed for public clients only (§8.4: a confidential client has no
//!   use for one, and anyone can claim the scheme);
//! - a public client may not register `http://localhost…` (§8.3: "NOT RECOMMENDED", the name
//!   may resolve elsewhere or be taken by a firewall); Doorward refuses it rather than warn,
//!   since the loopback IP literal works everywhere `localhost` does. Confidential clients keep
//!   the exact-match `http://localhost:PORT/…` URIs they have (the Eternaltwin form uses them);
//! - fragments are refused by [`RedirectUri::parse`] already (RFC 6749 §3.1.2).

use doorward_proto::RedirectUri;

/// The loopback prefixes whose port is not compared (RFC 8252 §7.3).
const LOOPBACKS: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// Whether `sent` matches the `registered` redirect URI: exact string equality, or a
/// portless loopback URI and the same URI with a port (RFC 8252 §7.3).
///
/// ```
/// use doorward_core::redirect::matches;
/// use doorward_proto::RedirectUri;
/// let uri = |s| RedirectUri::parse(s).unwrap();
/// assert!(matches(&uri("http://127.0.0.1/cb"), &uri("http://127.0.0.1:51004/cb")));
/// assert!(!matches(&uri("http://127.0.0.1/cb"), &uri("http://127.0.0.1:51004/other")));
/// assert!(!matches(&uri("http://localhost/cb"), &uri("http://localhost:51004/cb")));
/// ```
pub fn matches(registered: &RedirectUri, sent: &RedirectUri) -> bool {
    let (registered, sent) = (registered.as_str(), sent.as_str());
    if registered == sent {
        return true;
    }
    LOOPBACKS.iter().any(|prefix| {
        let Some(rest) = portless_rest(registered, prefix) else {
            return false;
        };
        let Some(after) = sent.strip_prefix(prefix) else {
            return false;
        };
        let Some(after) = after.strip_prefix(':') else {
            return false;
        };
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let port_ok = (1..=5).contains(&digits)
            && after[..digits]
                .parse::<u32>()
                .is_ok_and(|p| (1..=65535).contains(&p));
        port_ok && &after[digits..] == rest
    })
}

/// What follows `prefix` in a loopback URI registered without a port: a path (or query), or
/// nothing. `None` when `uri` is not such a URI.
fn portless_rest<'a>(uri: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

/// Why a client may not register a redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// A private-use scheme for a confidential client (RFC 8252 §7.1, §8.4).
    PrivateSchemeForConfidential(String),
    /// A private-use scheme not in reverse-domain form (RFC 8252 §7.1).
    SchemeNotReverseDomain(String),
    /// `http://localhost` for a public client (RFC 8252 §8.3).
    LocalhostForPublic,
}

impl std::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PrivateSchemeForConfidential(s) => write!(
                f,
                "the private-use scheme {s:?} is allowed for public clients only \
                 (RFC 8252 section 7.1)"
            ),
            Self::SchemeNotReverseDomain(s) => write!(
                f,
                "the private-use scheme {s:?} must be in reverse-domain form, like \
                 com.example.app (RFC 8252 section 7.1)"
            ),
            Self::LocalhostForPublic => f.write_str(
                "a public client must use http://127.0.0.1 or http://[::1] rather than \
                 http://localhost (RFC 8252 section 8.3)",
            ),
        }
    }
}

impl std::error::Error for RegistrationError {}

/// Whether a client (public or confidential) may register `uri` (see the module's rules).
///
/// ```
/// use doorward_core::redirect::check_registration;
/// use doorward_proto::RedirectUri;
/// let uri = |s| RedirectUri::parse(s).unwrap();
/// assert!(check_registration(&uri("com.example.app:/cb"), true).is_ok());
/// assert!(check_registration(&uri("com.example.app:/cb"), false).is_err());
/// assert!(check_registration(&uri("http://localhost/cb"), true).is_err());
/// assert!(check_registration(&uri("http://127.0.0.1/cb"), true).is_ok());
/// ```
pub fn check_registration(uri: &RedirectUri, public: bool) -> Result<(), RegistrationError> {
    let value = uri.as_str();
    let scheme = value.split(':').next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "https" => Ok(()),
        "http" => {
            let host = value["http://".len().min(value.len())..]
                .split(['/', '?', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if public && (host == "localhost" || host.ends_with(".localhost")) {
                Err(RegistrationError::LocalhostForPublic)
            } else {
                Ok(())
            }
        }
        _ if !public => Err(RegistrationError::PrivateSchemeForConfidential(scheme)),
        _ if !scheme.contains('.') => Err(RegistrationError::SchemeNotReverseDomain(scheme)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> RedirectUri {
        RedirectUri::parse(s).unwrap()
    }

    #[test]
    fn loopback_without_port_matches_any_port_and_nothing_else() {
        for registered in ["http://127.0.0.1/cb?x=1", "http://[::1]/cb?x=1"] {
            let host = &registered[..registered.find("/cb").unwrap()];
            let r = uri(registered);
            assert!(matches(&r, &uri(&format!("{host}:51234/cb?x=1"))));
            assert!(matches(&r, &uri(registered)));
            for wrong in [
                format!("{host}:51234/cb?x=2"),
                format!("{host}:51234/cb/"),
                format!("{host}:0/cb?x=1"),
                format!("{host}:99999/cb?x=1"),
                format!("{host}:/cb?x=1"),
                format!("{host}.evil.example:80/cb?x=1"),
                format!("{host}:80@evil.example/cb?x=1"),
                "http://localhost:51234/cb?x=1".to_owned(),
            ] {
                // Some of them are not even URIs (`[::1].evil`, port 99999).
                if let Ok(wrong_uri) = RedirectUri::parse(&wrong) {
                    assert!(!matches(&r, &wrong_uri), "{wrong}");
                }
            }
        }
        // With a port registered, the port is compared like the rest.
        let r = uri("http://127.0.0.1:8000/cb");
        assert!(!matches(&r, &uri("http://127.0.0.1:8001/cb")));
        // Other hosts never get the exception.
        let r = uri("http://localhost/cb");
        assert!(!matches(&r, &uri("http://localhost:8000/cb")));
        let r = uri("https://127.0.0.1/cb");
        assert!(!matches(&r, &uri("https://127.0.0.1:8443/cb")));
    }

    #[test]
    fn registration_rules() {
        assert!(check_registration(&uri("https://app.example/cb"), false).is_ok());
        assert!(check_registration(&uri("http://localhost:8000/cb"), false).is_ok());
        assert_eq!(
            check_registration(&uri("http://localhost:8000/cb"), true),
            Err(RegistrationError::LocalhostForPublic)
        );
        assert!(check_registration(&uri("http://app.localhost/cb"), true).is_err());
        assert!(check_registration(&uri("http://[::1]/cb"), true).is_ok());
        assert!(check_registration(&uri("myapp:/cb"), true).is_err());
        assert!(check_registration(&uri("com.example.app:/cb"), true).is_ok());
        assert!(check_registration(&uri("com.example.app:/cb"), false).is_err());
    }
}
