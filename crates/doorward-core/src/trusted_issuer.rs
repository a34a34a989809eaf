//! An issuer a client trusts to sign the assertions of its JWT bearer grants (RFC 7523 §2.1,
//! §3): who it is (`iss`), its public keys, and whose tokens its assertions may ask for.
//! A value of the client's policy ([`crate::model::ClientPolicy::assertion_issuers`]); the
//! grant itself is [`crate::jwt_bearer`].

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

/// An issuer of JWT bearer assertions for one client.
///
/// With neither [`Self::jwks`] nor [`Self::jwks_uri`], the issuer is the client itself
/// (`issuer` is its Key) and its own registered keys check the assertions: the entry then
/// only says what the client's own assertions may ask for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrustedIssuer {
    /// The assertions' `iss`, compared byte for byte.
    pub issuer: String,
    /// The issuer's public keys, inline (no private or symmetric key: checked by
    /// [`crate::jose::parse_client_jwks`] when configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Where the issuer publishes its public keys; fetched through the
    /// [`crate::fetch::Fetcher`] port and cached like a client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<url::Url>,
    /// The assertions' `sub` may name a user of this server (by id or username), who then
    /// gets a token for this client without being asked: the issuer is trusted to speak for
    /// every user (Google's "domain-wide delegation"). `false`: only the client itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub users: bool,
    /// The `sub` by which this issuer names the client itself (a workload identity such as
    /// `system:serviceaccount:games:scores`), besides the client's Key and Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_subject: Option<String>,
}

impl TrustedIssuer {
    /// Whether the client's own keys check this issuer's assertions.
    pub fn uses_client_keys(&self) -> bool {
        self.jwks.is_none() && self.jwks_uri.is_none()
    }
}
