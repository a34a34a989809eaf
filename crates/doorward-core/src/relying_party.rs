//! The WebAuthn relying party of this server: its origin, and its host as the RP ID (W3C
//! WebAuthn §5.1.3). Made once with the engine; the passkeys' ceremonies ([`crate::passkeys`])
//! use it.

use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

/// The relying party of `issuer`. `None` when the issuer's host is not a domain (an IP
/// address), where browsers offer no WebAuthn.
pub(crate) fn relying_party(issuer: &str) -> Option<Webauthn> {
    let issuer = Url::parse(issuer).ok()?;
    let rp_id = issuer.domain()?.to_owned();
    let origin = Url::parse(&issuer.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .rp_name("Doorward")
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_domain() {
        assert!(relying_party("https://id.example.com").is_some());
        assert!(relying_party("https://id.example.com/auth").is_some());
        assert!(relying_party("http://localhost:8080").is_some());
        // Browsers offer no WebAuthn on an IP address.
        assert!(relying_party("http://127.0.0.1:8080").is_none());
        assert!(relying_party("not a url").is_none());
    }
}
