//! OAuth 2.0 vocabulary shared by every Doorward crate: typed protocol values that are parsed
//! once at the edge, secret types that never print, the RFC 6749 error codes, PKCE (RFC 7636),
//! the token response document and OpenID Connect's `at_hash`.
//!
//! Nothing here performs I/O.

mod at_hash;
mod error;
mod pkce;
mod resource;
mod scope;
mod secret;
mod token;
mod values;

pub use at_hash::at_hash;
pub use error::{parameter_for_description, ErrorCode, OAuthError};
pub use pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier, PkceError};
pub use resource::{ResourceUri, ResourceUriError};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::{constant_time_eq, Secret};
pub use token::{TokenResponse, TokenType};
pub use values::{form_decode, RedirectUri, RedirectUriError, State};
