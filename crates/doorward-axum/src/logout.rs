//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2): `GET /oauth/end_session`
//! shows a confirmation page, so that a link cannot sign a user out behind their back; its
//! form (`POST`) signs out. A browser with no session goes straight on to the client, unless
//! the client is unverified (self-registered or known by its metadata document).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use doorward_core::logout::EndSession;
use doorward_core::request::query_pairs;

use crate::extract::{Browser, CsrfForm};
use crate::pages;
use crate::response::page::{page, see_other, with_cookie, PageError};
use crate::state::AppState;

pub(crate) async fn end_session_page(
    State(app): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let checked = checked(&app, &query).await?;
    let Some(user) = browser.signed_in().await? else {
        // A client no operator registered chose its URI itself: without a sign-out to confirm,
        // following it would make this server an open redirector (RFC 9700 §4.11.2).
        if checked.client.as_ref().is_some_and(|c| !c.is_verified()) {
            return Ok(page(StatusCode::OK, pages::signed_out()));
        }
        return Ok(after_sign_out(checked));
    };
    let (token, set_cookie) = browser.csrf();
    let client = checked.client.as_ref().map(|c| c.display_name.as_str());
    Ok(with_cookie(
        page(
            StatusCode::OK,
            pages::end_session(&user.user, client, &token, &query),
        ),
        set_cookie,
    ))
}

/// The confirmation form of [`end_session_page`]; `request` is the original query, checked
/// again from scratch.
pub(crate) async fn end_session(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let checked = checked(&app, form.field("request")).await?;
    match form.get("decision") {
        Some("approve") => {
            let clear = browser.sign_out().await?;
            Ok(with_cookie(after_sign_out(checked), Some(clear)))
        }
        Some("deny") => Ok(see_other("/account")),
        _ => Err(PageError::invalid(
            "Bad request",
            "Choose Sign out or Stay signed in.",
        )),
    }
}

async fn checked(app: &AppState, query: &str) -> Result<EndSession, PageError> {
    match app.engine.check_end_session(&query_pairs(query)).await {
        Ok(checked) => Ok(checked),
        Err(doorward_core::Error::EndSession(reason)) => Err(PageError::invalid(
            "This sign-out link is not valid",
            reason.to_string(),
        )),
        Err(other) => Err(other.into()),
    }
}

/// Where the browser goes once signed out: the client's registered URI, or Doorward's page.
fn after_sign_out(checked: EndSession) -> Response {
    match checked.redirect {
        Some(location) => see_other(&location),
        None => page(StatusCode::OK, pages::signed_out()),
    }
}
