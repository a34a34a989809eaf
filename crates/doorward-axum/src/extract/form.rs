//! A page's form, checked against cross-site request forgery: every `POST` form of the
//! provider (sign-in, sign-out, consent, revoke, logout confirmation) goes through it.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::body;
use crate::response::page::PageError;
use crate::state::AppState;

/// The fields of an `application/x-www-form-urlencoded` body whose `csrf` field goes with the
/// browser's CSRF and session cookies (see `doorward_core::session`). A body that cannot be
/// read is a 400 page; a missing or wrong token a 403 page.
pub(crate) struct CsrfForm(pub HashMap<String, String>);

impl CsrfForm {
    /// The field `name`, or `""`.
    pub(crate) fn field(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = PageError;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(PageError::BadForm);
        }
        let bytes = body::read(body).await.map_err(|_| PageError::BadForm)?;
        let form = body::form_parameters(&bytes).map_err(|_| PageError::BadForm)?;
        let browser = super::Browser::of(app, &parts.headers);
        if !browser.csrf_ok(form.get("csrf").map(String::as_str)) {
            return Err(PageError::CsrfFailed);
        }
        Ok(Self(form))
    }
}
