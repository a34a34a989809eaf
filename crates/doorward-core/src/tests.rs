//! Engine tests: the flows end to end over the in-memory store, with a fixed clock and a
//! repeatable generator, so that expiry and rotation are tested without sleeping. One file per
//! flow; the harness they share is in `support`.

mod support;

mod accounts;
mod authorization;
mod claims_hooks;
mod client_assertions;
mod client_authentication;
mod client_documents;
mod client_management;
mod clients;
mod code_redemption;
mod device;
mod dpop;
mod extension_grants;
mod fuzz;
mod id_tokens;
mod interaction;
mod introspection;
mod key_rotation;
mod pkce;
mod pushed;
mod refresh;
mod registration;
mod request_objects;
mod resources;
mod sessions;
mod token_exchange;
mod token_formats;
