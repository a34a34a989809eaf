//! HTTP tests through the router (`oneshot`, no socket), over the in-memory store. One file per
//! subject; the requests, readers and servers they share are in `support`.

mod support;

mod availability;
mod browser_flow;
mod embedded_provider;
mod fuzz;
mod grant_types;
mod pages;
mod protected_resources;
mod registration;
mod resource_metadata;
mod response_modes;
mod token_endpoint;

#[cfg(feature = "remote")]
mod dpop;
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "remote")]
mod token_places;
