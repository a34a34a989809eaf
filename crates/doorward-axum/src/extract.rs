//! Extractors for what the provider's handlers would otherwise parse by hand, each rejecting
//! with the one answer type of its audience (modelled on [`crate::protect::Authenticated`]):
//!
//! - [`ClientRequest`]: a client-authenticated request (token, introspection, revocation) —
//!   HTTP Basic credentials and the body's parameters; refused with a
//!   `TokenError`.
//! - [`CsrfForm`]: a page's form, read and checked against the browser's CSRF token; refused
//!   with a `PageError`.
//! - [`Browser`]: the browser's session and CSRF cookies, and what follows from them.
//! - [`ClientAddress`]: the peer address of the connection, for the throttle.

mod address;
mod browser;
mod client;
mod form;

pub(crate) use address::ClientAddress;
pub(crate) use browser::{pending_cookie, session_cookie, Browser};
pub(crate) use client::ClientRequest;
pub(crate) use form::CsrfForm;
