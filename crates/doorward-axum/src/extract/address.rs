//! The address a request came from, as the server's socket saw it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The peer address of the connection, when the server was started with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as `doorward serve` is); `None`
/// otherwise. Failed sign-ins are counted per address and each address gets a bounded share
/// of the Argon2 queue ([`doorward_core::throttle`]); without it, only the per-account and
/// per-client counters apply. A proxy's `X-Forwarded-For` is not read: behind a proxy every
/// request would come from the proxy's address.
pub(crate) struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer(&parts.extensions)))
    }
}

/// The peer address among a request's extensions.
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}
