//! Where the provider is mounted in the application's router (`/auth`, or nothing at the root).
//!
//! The provider's router sets the mount path for the requests it serves ([`scoped`]); pages and
//! redirects to the provider's own paths go through [`path`], so the same handlers serve at the
//! root (`doorward serve`) and under any path of an embedding application.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static MOUNT: Arc<str>;
}

/// Runs `future` (a request to the provider) with the provider mounted at `mount`.
pub async fn scoped<F: Future>(mount: Arc<str>, future: F) -> F::Output {
    MOUNT.scope(mount, future).await
}

/// A path of the provider (`/login`) as the browser must request it (`/auth/login`).
pub fn path(provider_path: &str) -> String {
    MOUNT
        .try_with(|mount| format!("{mount}{provider_path}"))
        .unwrap_or_else(|_| provider_path.to_owned())
}

/// A location: the provider's own paths (`/…`, never `//host`) get the mount path; absolute
/// URLs (a client's redirect URI) are left alone.
pub fn location(location: &str) -> String {
    if location.starts_with('/') && !location.starts_with("//") {
        path(location)
    } else {
        location.to_owned()
    }
}
