//! Doorward's authorization-server engine.
//!
//! The engine holds the protocol rules of RFC 6749 and its companions; it performs no I/O.
//! Everything it needs from the outside comes through the ports in [`ports`]: storage, the
//! clock and randomness. The HTTP adapter (`doorward-axum`) parses requests into the engine's
//! inputs and renders its outputs; the storage adapters (`doorward-store`) implement the ports.
//!
//! One module per flow: [`authorize`] (the authorization endpoint), [`token`] (the token
//! endpoint), [`session`] (browser sign-in, CSRF), [`resource`] (bearer tokens at a protected
//! resource), [`account`] (what a signed-in user sees and revokes).

pub mod account;
pub mod authorize;
pub mod embedding;
mod engine;
pub mod keys;
mod legacy;
pub mod memory;
pub mod model;
pub mod oidc;
mod opaque;
pub mod passwords;
pub mod ports;
pub mod resource;
pub mod session;
pub mod testing;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod token;

#[cfg(test)]
mod tests;

pub use engine::{ClientSpec, Engine, EngineConfig, Error, Grants, Lifetimes, UserSpec};
pub use opaque::{OpaqueKind, TokenHash};
