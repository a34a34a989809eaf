//! The passkeys' pages: `POST /login/passkey` (a sign-in with a passkey alone, from the
//! sign-in page's button), `POST /login/second-factor/passkey` (a passkey as the second factor
//! of a pending sign-in), and on the account, `GET /account/passkeys`, `POST
//! /account/passkeys/new` (the password again, then the page that creates one), `POST
//! /account/passkeys` (the authenticator's answer) and `POST /account/passkeys/remove`. The
//! decisions are the engine's (`doorward_core::passkeys`); a refused answer shows its page
//! again with what went wrong, never a 5xx.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use doorward_core::model::SignedIn;
use doorward_core::passkeys::PasskeyError;
use doorward_core::second_factor::SecondFactorError;
use doorward_core::throttle::Throttled;
use doorward_proto::Secret;
use uuid::Uuid;

use crate::cookies;
use crate::extract::{session_cookie, Browser, ClientAddress, CsrfForm};
use crate::login::{safe_next, sign_in_page};
use crate::pages;
use crate::response::page::{
    page, passkey_page, see_other, to_login, too_many_attempts, too_many_failures, with_cookie,
    PageError,
};
use crate::second_factor::prompt_page;
use crate::state::AppState;

/// What a refused passkey step says, and with which status; `None`: no form's to fix.
fn refusal(error: &PasskeyError) -> Option<(StatusCode, &'static str)> {
    Some(match error {
        PasskeyError::Unavailable => (
            StatusCode::BAD_REQUEST,
            "Passkeys are not available on this server.",
        ),
        PasskeyError::Expired => (
            StatusCode::BAD_REQUEST,
            "This passkey request has expired or was used already. Try again.",
        ),
        PasskeyError::Refused => (
            StatusCode::UNAUTHORIZED,
            "The passkey was not accepted. Try again, or use another way.",
        ),
        PasskeyError::AlreadyRegistered => {
            (StatusCode::CONFLICT, "This passkey is registered already.")
        }
        PasskeyError::TooMany => (
            StatusCode::BAD_REQUEST,
            "This account has as many passkeys as it may have. Remove one first.",
        ),
        PasskeyError::BadName => (
            StatusCode::BAD_REQUEST,
            "A passkey's name is 1 to 64 characters, without control characters.",
        ),
        PasskeyError::SecondFactor(SecondFactorError::WrongPassword) => {
            (StatusCode::BAD_REQUEST, "The password is wrong.")
        }
        _ => return None,
    })
}

fn failure(error: PasskeyError) -> PageError {
    match error {
        PasskeyError::SecondFactor(SecondFactorError::Busy(_)) => PageError::Busy,
        PasskeyError::Store(e) | PasskeyError::SecondFactor(SecondFactorError::Store(e)) => {
            e.into()
        }
        other => PageError::internal(&other),
    }
}

/// `POST /login/passkey`: a sign-in with a passkey alone.
pub(crate) async fn sign_in(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let next = safe_next(form.get("next"));
    match app
        .engine
        .sign_in_with_passkey(form.field("state"), form.field("answer"), from)
        .await
    {
        Ok((cookie, _)) => {
            browser.end_previous_session().await?;
            Ok(with_cookie(
                see_other(next),
                Some(session_cookie(&app, &cookie)),
            ))
        }
        Err(e) => {
            let Some((status, notice)) = refusal(&e) else {
                return Err(failure(e));
            };
            let (token, set_cookie) = browser.csrf();
            Ok(with_cookie(
                sign_in_page(&app, status, &token, next, "", Some(notice)),
                set_cookie,
            ))
        }
    }
}

/// `POST /login/second-factor/passkey`: a passkey after the password.
pub(crate) async fn second_factor(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: HeaderMap,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let next = safe_next(form.get("next"));
    let pending_name = cookies::pending_name(app.secure_cookies);
    let Some(pending) = cookies::get(&headers, pending_name).map(str::to_owned) else {
        return Ok(to_login(next, None));
    };
    let result = app
        .engine
        .finish_sign_in_with_passkey(&pending, form.field("state"), form.field("answer"), from)
        .await;
    let clear = cookies::clear(pending_name, app.secure_cookies);
    match result {
        Ok((cookie, _)) => {
            browser.end_previous_session().await?;
            let response = with_cookie(see_other(next), Some(session_cookie(&app, &cookie)));
            Ok(with_cookie(response, Some(clear)))
        }
        Err(PasskeyError::SecondFactor(SecondFactorError::Expired)) => {
            Ok(with_cookie(to_login(next, None), Some(clear)))
        }
        Err(e) => {
            let Some((status, notice)) = refusal(&e) else {
                return Err(failure(e));
            };
            let user = match app
                .engine
                .pending_user(&pending, doorward_core::second_factor::Purpose::Code)
                .await
            {
                Ok(user) => user,
                Err(_) => return Ok(with_cookie(to_login(next, None), Some(clear))),
            };
            let (token, set_cookie) = browser.csrf();
            let response = prompt_page(&app, &user, &token, next, Some(notice), status).await?;
            Ok(with_cookie(response, set_cookie))
        }
    }
}

/// The account's passkeys page with `status` and `notice`.
pub(crate) async fn list_page(
    app: &AppState,
    browser: &Browser,
    user: &SignedIn,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (markup, set_cookie) = list_markup(app, browser, user, notice).await?;
    Ok(with_cookie(page(status, markup), set_cookie))
}

/// The passkeys page's markup, and the CSRF cookie it may set.
async fn list_markup(
    app: &AppState,
    browser: &Browser,
    user: &SignedIn,
    notice: Option<&str>,
) -> Result<(maud::Markup, Option<axum::http::HeaderValue>), PageError> {
    let list = app.engine.passkeys_of(user.user.id).await?;
    let (token, set_cookie) = browser.csrf();
    let available = app.engine.passkeys_available();
    let markup = pages::passkeys(&user.user, &token, &list, available, notice);
    Ok((markup, set_cookie))
}

/// `GET /account/passkeys`.
pub(crate) async fn list(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    list_page(&app, &browser, &user, None, StatusCode::OK).await
}

/// The passkeys page after a refused step: what went wrong, or the throttle's wait.
async fn refused(
    app: &AppState,
    browser: &Browser,
    user: &SignedIn,
    error: PasskeyError,
) -> Result<Response, PageError> {
    if let PasskeyError::SecondFactor(SecondFactorError::Throttled(Throttled { retry_after })) =
        error
    {
        let notice = too_many_failures(retry_after);
        let (markup, set_cookie) = list_markup(app, browser, user, Some(&notice)).await?;
        return Ok(with_cookie(
            too_many_attempts(markup, retry_after),
            set_cookie,
        ));
    }
    match refusal(&error) {
        Some((status, notice)) => list_page(app, browser, user, Some(notice), status).await,
        None => Err(failure(error)),
    }
}

/// `POST /account/passkeys/new`: the password again, then the page that creates the passkey.
pub(crate) async fn start(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let name = form.field("name").trim();
    let password = Secret::new(form.field("password"));
    match app
        .engine
        .passkey_registration(&user, name, &password, from)
        .await
    {
        Ok(ceremony) => {
            let (token, set_cookie) = browser.csrf();
            Ok(with_cookie(
                passkey_page(
                    StatusCode::OK,
                    pages::passkey_creation(&token, name, &ceremony),
                ),
                set_cookie,
            ))
        }
        Err(e) => refused(&app, &browser, &user, e).await,
    }
}

/// `POST /account/passkeys`: the authenticator's new passkey; the recovery codes when it is
/// the account's first second factor.
pub(crate) async fn register(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    match app
        .engine
        .register_passkey(
            &user,
            form.field("state"),
            form.field("answer"),
            form.field("name"),
            from,
        )
        .await
    {
        Ok(codes) if codes.is_empty() => Ok(see_other("/account/passkeys")),
        Ok(codes) => Ok(page(
            StatusCode::OK,
            pages::recovery_codes(&codes, "/account/passkeys"),
        )),
        Err(e) => refused(&app, &browser, &user, e).await,
    }
}

/// `POST /account/passkeys/remove`: one passkey, the password again.
pub(crate) async fn remove(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let Ok(id) = Uuid::parse_str(form.field("id")) else {
        let notice = Some("There is no such passkey.");
        return list_page(&app, &browser, &user, notice, StatusCode::BAD_REQUEST).await;
    };
    let password = Secret::new(form.field("password"));
    match app
        .engine
        .remove_own_passkey(&user, id, &password, from)
        .await
    {
        Ok(true) => Ok(see_other("/account/passkeys")),
        Ok(false) => {
            let notice = Some("There is no such passkey.");
            list_page(&app, &browser, &user, notice, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refused(&app, &browser, &user, e).await,
    }
}
