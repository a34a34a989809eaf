//! The account page (`GET /account`): the applications a user allowed, each revocable
//! (`POST /account/revoke`), and the services acting for the user through a token exchange
//! (RFC 8693), each revocable (`POST /account/delegations/revoke`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;

use crate::extract::{Browser, CsrfForm};
use crate::pages;
use crate::response::page::{page, see_other, to_login, with_cookie, PageError};
use crate::state::AppState;

pub(crate) async fn account(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let apps = app.engine.approved_clients(user.user.id).await?;
    let delegations = app.engine.delegations(user.user.id).await?;
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(
            StatusCode::OK,
            pages::account(&user.user, &apps, &delegations, &token),
        ),
        set_cookie,
    ))
}

pub(crate) async fn revoke(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    match signed_in_with_client(&browser, &form).await? {
        Ok((user, client)) => app.engine.revoke_client(user, client).await?,
        Err(to_login) => return Ok(to_login),
    }
    Ok(see_other("/account"))
}

pub(crate) async fn revoke_delegation(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    match signed_in_with_client(&browser, &form).await? {
        Ok((user, actor)) => app.engine.revoke_delegation(user, actor).await?,
        Err(to_login) => return Ok(to_login),
    }
    Ok(see_other("/account"))
}

/// The signed-in user and the form's `client_id`, or the way to the sign-in page.
async fn signed_in_with_client(
    browser: &Browser,
    form: &CsrfForm,
) -> Result<Result<(Uuid, Uuid), Response>, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(Err(to_login("/account", None)));
    };
    let client = form
        .get("client_id")
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or(PageError::BadForm)?;
    Ok(Ok((user.user.id, client)))
}
