//! Doorward's authorization-server engine.
//!
//! The engine holds the protocol rules of RFC 6749 and its companions; it performs no I/O.
//! Everything it needs from the outside comes through the ports in [`ports`]: storage, the
//! clock and randomness. The HTTP adapter (`doorward-axum`) parses requests into the engine's
//! inputs and renders its outputs; the storage adapters (`doorward-store`) implement the ports.
//!
//! # Floors
//! The modules are read bottom-up; each imports only from floors below it.
//! 1. Values: [`clock`], [`opaque`], [`jose`] (key material), [`passwords`], [`model`] (the
//!    records), [`redirect`] (which redirect URIs match and may be registered), [`ports`],
//!    [`throttle`] (failure counters), [`config`], [`error`], [`request`]
//!    (parsed requests), [`claims`], [`grant`] (what a grant issues), [`resource_indicators`]
//!    (RFC 8707: which resources a token is for, its audience), [`fetch`] (the outbound
//!    port), [`client_keys`] (fetched `jwks_uri` key sets), [`client_document`] (Client ID
//!    Metadata Documents: validation and cache times), `assertion` (what JWT assertions
//!    share), [`trusted_issuer`] (issuers of JWT bearer assertions), [`claims_hook`] (the
//!    added-claims port), [`token_format`] (the access-token format port).
//! 2. [`Engine`] itself (`engine.rs`): its state, clients and users from configuration, and the
//!    one port that calls back into it, [`extension_grant::ExtensionGrant`].
//! 3. Flows, each an `impl Engine` block of its own that no other flow imports:
//!    [`authorize`] (the authorization endpoint), [`token`] (the token endpoint and token
//!    issuing), [`client_credentials`], [`device`] (RFC 8628), [`session`] (browser sign-in, CSRF), [`embedding`] (users the application
//!    signed in), [`resource`] (bearer tokens at a protected resource), [`account`],
//!    [`introspection`], [`revocation`], [`userinfo`], [`discovery`], [`logout`], [`pushed`] (RFC 9126), [`request_object`] (RFC 9101), [`keys`]
//!    (staged key rotation), [`registration`] (RFC 7591, RFC 7592), [`token_exchange`] (RFC
//!    8693), [`extension_grant`] (RFC 6749 §4.5) and [`jwt_bearer`] (RFC 7523 §2.1) on it,
//!    `claims_added`, [`access_token`] (the format tokens are minted in) and the legacy grants.
//! 4. Around them: [`memory`] (an in-memory store), `testing` and `testkit` (feature
//!    `testkit`).

pub mod access_token;
pub mod account;
pub mod account_fields;
pub mod acr;
mod assertion;
pub mod audit;
pub mod audit_writer;
mod audited;
pub mod authorize;
pub mod cache;
mod changes;
pub mod claims;
mod claims_added;
pub mod claims_hook;
pub mod client_assertion;
pub mod client_credentials;
pub mod client_document;
pub mod client_keys;
pub mod clients;
pub mod clock;
pub mod config;
pub mod counters;
pub mod device;
pub mod discovery;
pub mod dpop;
mod dpop_check;
pub mod embedding;
mod engine;
pub mod error;
pub mod extension_grant;
pub mod fetch;
pub mod grant;
pub mod introspection;
pub mod jose;
pub mod jwt_bearer;
pub mod keys;
mod legacy;
pub mod logout;
pub mod memory;
pub mod model;
mod opaque;
pub mod passkeys;
pub mod password_rules;
pub mod passwords;
pub mod ports;
pub mod pushed;
pub mod redirect;
pub mod registration;
mod relying_party;
pub mod request;
pub mod request_object;
pub mod resource;
pub mod resource_indicators;
pub mod revocation;
pub mod second_factor;
pub mod self_service;
pub mod session;
mod sign_in_error;
#[cfg(any(test, feature = "testkit"))]
pub mod testing;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod throttle;
pub mod token;
pub mod token_exchange;
pub mod token_format;
pub mod trusted_issuer;
pub mod userinfo;
pub mod users;

#[cfg(test)]
mod tests;

pub use config::{ClientSpec, DpopPolicy, EngineConfig, Grants, Lifetimes, UserSpec};
pub use engine::Engine;
pub use error::Error;
pub use opaque::{OpaqueKind, TokenHash};
