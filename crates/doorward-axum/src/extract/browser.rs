//! The browser as the provider knows it: its session cookie (who is signed in) and its CSRF
//! cookie (what its forms must carry).

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use doorward_core::model::SignedIn;
use doorward_core::ports::StoreError;

use crate::cookies;
use crate::state::AppState;

/// The browser's cookies, with the provider's state to read them against.
pub(crate) struct Browser {
    app: AppState,
    session: Option<String>,
    csrf: Option<String>,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(app, &parts.headers))
    }
}

impl Browser {
    pub(crate) fn of(app: &AppState, headers: &HeaderMap) -> Self {
        let get = |name| cookies::get(headers, name).map(str::to_owned);
        Self {
            session: get(cookies::session_name(app.secure_cookies)),
            csrf: get(cookies::csrf_name(app.secure_cookies)),
            app: app.clone(),
        }
    }

    /// The signed-in user of the session cookie, if any.
    pub(crate) async fn signed_in(&self) -> Result<Option<SignedIn>, StoreError> {
        match &self.session {
            Some(cookie) => self.app.engine.session(cookie).await,
            None => Ok(None),
        }
    }

    /// The CSRF token for this browser's forms (bound to its session cookie, if any), and the
    /// `Set-Cookie` to send when the browser had no CSRF cookie yet.
    pub(crate) fn csrf(&self) -> (String, Option<HeaderValue>) {
        let engine = &self.app.engine;
        let session = self.session.as_deref();
        match &self.csrf {
            Some(cookie) => (engine.csrf_token(cookie, session), None),
            None => {
                let cookie = engine.new_csrf_cookie();
                let name = cookies::csrf_name(self.app.secure_cookies);
                let set = cookies::set(name, &cookie, 365 * 24 * 3600, self.app.secure_cookies);
                (engine.csrf_token(&cookie, session), Some(set))
            }
        }
    }

    /// Whether a form's `csrf` field goes with this browser's CSRF and session cookies.
    pub(crate) fn csrf_ok(&self, token: Option<&str>) -> bool {
        self.app
            .engine
            .verify_csrf(self.csrf.as_deref(), self.session.as_deref(), token)
    }

    /// Ends, in the store, the session the browser held before a new sign-in: a sign-in gets a
    /// new session id and the old one is worth nothing afterwards (no session fixation, and a
    /// copy of the old cookie does not outlive the sign-in; RFC 6819 §5.1.4.1.2 in spirit).
    pub(crate) async fn end_previous_session(&self) -> Result<(), StoreError> {
        match &self.session {
            Some(cookie) => self.app.engine.sign_out(cookie).await,
            None => Ok(()),
        }
    }

    /// Ends the browser's session in the store; the `Set-Cookie` that deletes its cookie.
    pub(crate) async fn sign_out(&self) -> Result<HeaderValue, StoreError> {
        if let Some(cookie) = &self.session {
            self.app.engine.sign_out(cookie).await?;
        }
        let secure = self.app.secure_cookies;
        Ok(cookies::clear(cookies::session_name(secure), secure))
    }
}

/// The `Set-Cookie` of a sign-in waiting for its second factor (`second_factor.rs`).
pub(crate) fn pending_cookie(app: &AppState, pending: &str) -> HeaderValue {
    let secure = app.secure_cookies;
    cookies::set(
        cookies::pending_name(secure),
        pending,
        doorward_core::second_factor::PENDING_LIFETIME,
        secure,
    )
}

/// The `Set-Cookie` of a new provider session.
pub(crate) fn session_cookie(app: &AppState, value: &str) -> HeaderValue {
    cookies::set(
        cookies::session_name(app.secure_cookies),
        value,
        app.engine.config().lifetimes.session,
        app.secure_cookies,
    )
}
