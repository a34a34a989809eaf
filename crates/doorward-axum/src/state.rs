//! What every handler of the provider shares.

use std::sync::Arc;

use doorward_core::Engine;

use crate::authenticator::Authenticator;

/// The provider's state: its engine, how its cookies are named, where it is mounted, and the
/// application's way of signing users in.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    /// Cookies get `Secure` when the server's external URI is https.
    pub(crate) secure_cookies: bool,
    /// Where the provider is mounted (`""` at the root, `/auth`): the issuer URL's path.
    pub(crate) mount: Arc<str>,
    /// The application's way of signing users in, instead of Doorward's page.
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
}
