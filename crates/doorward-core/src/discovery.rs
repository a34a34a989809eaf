//! Discovery: the authorization server metadata (RFC 8414 §2), which is also the OpenID
//! Provider metadata (OIDC Discovery §3), and the paths of the endpoints it names.

use serde_json::{json, Value};

use crate::config::RegistrationMode;
use crate::jose::{CLIENT_KEY_ALGS, CLIENT_SECRET_ALGS};
use crate::model::AuthMethod;
use crate::Engine;

/// The paths of the endpoints, below the issuer (kept on the values floor, in
/// [`crate::config`], so that the flows that check an `aud` can name them too).
pub use crate::config::paths;

impl Engine {
    /// The authorization server metadata (RFC 8414 §2) that is also the OpenID Provider
    /// metadata (OIDC Discovery §3): generated from what is enabled, nothing more.
    pub fn metadata(&self) -> Value {
        let issuer = &self.config.issuer;
        let url = |path: &str| format!("{issuer}{path}");
        let algs: Vec<&str> = self
            .config
            .keys
            .algorithms
            .iter()
            .map(|a| a.as_str())
            .collect();
        let mut pkce = vec!["S256"];
        if self.config.allow_plain_pkce {
            pkce.push("plain");
        }
        let scopes: Vec<&str> = self.config.scopes.iter().map(|s| s.as_str()).collect();
        let auth_methods: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        // For `private_key_jwt` and `client_secret_jwt` (RFC 8414 §2; never `none`).
        let auth_algs: Vec<&str> = CLIENT_KEY_ALGS
            .iter()
            .chain(&CLIENT_SECRET_ALGS)
            .map(|a| a.as_str())
            .collect();
        // Public clients (RFC 6749 §2.1) name themselves at the token endpoint only.
        let token_auth_methods: Vec<&str> = auth_methods
            .iter()
            .copied()
            .chain([AuthMethod::None.as_str()])
            .collect();
        // The modes `check_authorization` accepts (OAuth 2.0 Multiple Response Types §2.1, Form
        // Post Response Mode §2): `query` for a code only, never for a token.
        let response_modes = ["query", "fragment", "form_post"];
        let request_object_algs: Vec<&str> = CLIENT_KEY_ALGS
            .iter()
            .chain(CLIENT_SECRET_ALGS.iter())
            .map(|a| a.as_str())
            .collect();
        let mut metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": url(paths::AUTHORIZE),
            "token_endpoint": url(paths::TOKEN),
            "userinfo_endpoint": url(paths::USERINFO),
            "jwks_uri": url(paths::JWKS),
            "introspection_endpoint": url(paths::INTROSPECT),
            "revocation_endpoint": url(paths::REVOKE),
            "end_session_endpoint": url(paths::END_SESSION),
            "scopes_supported": scopes,
            "response_types_supported": self.supported_response_types(),
            "response_modes_supported": response_modes,
            "grant_types_supported": self.supported_grant_types(),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "token_endpoint_auth_methods_supported": token_auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": auth_algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": auth_algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": auth_algs,
            "code_challenge_methods_supported": pkce,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "acr",
                "name", "preferred_username", "email", "email_verified"
            ],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "acr_values_supported": crate::acr::SUPPORTED,
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            // RFC 9101: by value, signed by the client's keys (or its client_secret_jwt secret).
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": request_object_algs,
            // OIDC Discovery §3: a `request_uri` the server fetches; only this server's pushed
            // requests are accepted (below).
            "request_uri_parameter_supported": false,
            // RFC 9126 §5.
            "pushed_authorization_request_endpoint": url(paths::PAR),
            "require_pushed_authorization_requests": self.config.require_pushed_requests,
        });
        // RFC 9449 §5.1: the algorithms of DPoP proofs, when DPoP is on.
        if self.config.dpop.enabled {
            metadata["dpop_signing_alg_values_supported"] = crate::dpop::DPOP_ALGS.into();
        }
        // RFC 8628 §4: only when the grant is on.
        if self.config.grants.device_code {
            metadata["device_authorization_endpoint"] = url(paths::DEVICE_AUTHORIZATION).into();
        }
        // RFC 8414 §2, RFC 7591 §3: only when registration is on.
        if self.config.registration.mode != RegistrationMode::Off {
            metadata["registration_endpoint"] = url(paths::REGISTER).into();
        }
        // draft-ietf-oauth-client-id-metadata-document-02 §6: only when it is on.
        if self.config.client_documents.enabled {
            metadata["client_id_metadata_document_supported"] = json!(true);
        }
        metadata
    }
}

impl Engine {
    /// The Protected Resource Metadata (RFC 9728 §2) of the issuer's own API (UserInfo, the
    /// Eternaltwin API): its resource identifier is the issuer identifier, which a client may
    /// name as `resource` (RFC 8707), and this server issues its tokens. RFC 8414 has no
    /// member for the resources a server knows, so the server's metadata names none.
    pub fn resource_metadata(&self) -> Value {
        let issuer = &self.config.issuer;
        let scopes: Vec<&str> = self.config.scopes.iter().map(|s| s.as_str()).collect();
        json!({
            "resource": issuer,
            "authorization_servers": [issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
        })
    }
}
