//! The second factor's pages: `GET`/`POST /login/second-factor` (the code after the password),
//! `GET`/`POST /login/enrol` (setting up an app when a sign-in requires one), and on the
//! account, `GET /account/second-factor`, `POST /account/second-factor/enrol`,
//! `/recovery-codes` and `/remove`. The pending sign-in travels in its own cookie
//! (`cookies::pending_name`, five minutes); the decisions are the engine's
//! (`doorward_core::second_factor`).

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use doorward_core::audit::Actor;
use doorward_core::second_factor::{Purpose, SecondFactorError};
use doorward_core::throttle::Throttled;
use doorward_proto::Secret;
use serde::Deserialize;

use crate::cookies;
use crate::extract::{session_cookie, Browser, ClientAddress, CsrfForm};
use crate::login::safe_next;
use crate::pages;
use crate::response::page::{
    page, passkey_page, see_other, to_login, too_many_attempts, too_many_failures, wait_in_words,
    with_cookie, PageError,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

fn clear_pending(app: &AppState) -> HeaderValue {
    cookies::clear(
        cookies::pending_name(app.secure_cookies),
        app.secure_cookies,
    )
}

fn pending_of(app: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    cookies::get(headers, cookies::pending_name(app.secure_cookies)).map(str::to_owned)
}

/// Back to the sign-in page, the pending sign-in forgotten.
fn start_again(app: &AppState, next: &str) -> Response {
    let mut response = to_login(next, None);
    response
        .headers_mut()
        .append(axum::http::header::SET_COOKIE, clear_pending(app));
    response
}

pub(crate) async fn prompt(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    browser: Browser,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    let Some(pending) = pending_of(&app, &headers) else {
        return Ok(start_again(&app, next));
    };
    let Ok(user) = app.engine.pending_user(&pending, Purpose::Code).await else {
        return Ok(start_again(&app, next));
    };
    let (token, set_cookie) = browser.csrf();
    let response = prompt_page(&app, &user, &token, next, None, StatusCode::OK).await?;
    Ok(with_cookie(response, set_cookie))
}

/// The second-factor page of a pending sign-in's `user`: the code field, and a passkey's
/// button when it has passkeys (its ceremony made for this page).
pub(crate) async fn prompt_page(
    app: &AppState,
    user: &doorward_core::model::User,
    csrf: &str,
    next: &str,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let factors = app.engine.second_factors(user.id).await?;
    let passkey = app.engine.passkey_second_factor(user, &factors.passkeys);
    let prompt = pages::Prompt {
        totp: factors.totp,
        passkey: passkey.as_ref(),
    };
    Ok(passkey_page(
        status,
        pages::second_factor_prompt(csrf, next, notice, &prompt),
    ))
}

pub(crate) async fn finish(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: axum::http::HeaderMap,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let next = safe_next(form.get("next"));
    let Some(pending) = pending_of(&app, &headers) else {
        return Ok(start_again(&app, next));
    };
    match app
        .engine
        .finish_sign_in(&pending, form.field("code"), from)
        .await
    {
        Ok((cookie, _)) => {
            browser.end_previous_session().await?;
            let response = with_cookie(see_other(next), Some(session_cookie(&app, &cookie)));
            Ok(with_cookie(response, Some(clear_pending(&app))))
        }
        Err(SecondFactorError::Expired) => Ok(start_again(&app, next)),
        Err(SecondFactorError::WrongCode) => {
            let Ok(user) = app.engine.pending_user(&pending, Purpose::Code).await else {
                return Ok(start_again(&app, next));
            };
            let (token, set_cookie) = browser.csrf();
            let notice = Some("This code is wrong, or was used already.");
            let response =
                prompt_page(&app, &user, &token, next, notice, StatusCode::UNAUTHORIZED).await?;
            Ok(with_cookie(response, set_cookie))
        }
        Err(SecondFactorError::Throttled(Throttled { retry_after })) => {
            let notice = format!(
                "Too many wrong codes. Try again in {}.",
                wait_in_words(retry_after)
            );
            let (token, _) = browser.csrf();
            let prompt = pages::Prompt {
                totp: true,
                passkey: None,
            };
            let markup = pages::second_factor_prompt(&token, next, Some(&notice), &prompt);
            Ok(too_many_attempts(markup, retry_after))
        }
        Err(e) => Err(failure(e)),
    }
}

/// `GET /login/enrol`: a sign-in that requires a second factor, none set up yet.
pub(crate) async fn enrol_page(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    browser: Browser,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    let Some(pending) = pending_of(&app, &headers) else {
        return Ok(start_again(&app, next));
    };
    let Ok(user) = app.engine.pending_user(&pending, Purpose::Enrol).await else {
        return Ok(start_again(&app, next));
    };
    let enrolment = app.engine.totp_enrolment(&user);
    let (token, set_cookie) = browser.csrf();
    let markup = pages::enrolment(&token, "/login/enrol", Some(next), &enrolment, None);
    Ok(with_cookie(page(StatusCode::OK, markup), set_cookie))
}

pub(crate) async fn enrol_and_sign_in(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    headers: axum::http::HeaderMap,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let next = safe_next(form.get("next"));
    let Some(pending) = pending_of(&app, &headers) else {
        return Ok(start_again(&app, next));
    };
    match app
        .engine
        .enrol_and_sign_in(&pending, form.field("enrolment"), form.field("code"), from)
        .await
    {
        Ok((cookie, _, codes)) => {
            browser.end_previous_session().await?;
            let response = with_cookie(
                page(StatusCode::OK, pages::recovery_codes(&codes, next)),
                Some(session_cookie(&app, &cookie)),
            );
            Ok(with_cookie(response, Some(clear_pending(&app))))
        }
        Err(SecondFactorError::Expired) => Ok(start_again(&app, next)),
        Err(e) => {
            // The same secret again: the app already holds it.
            let Ok(user) = app.engine.pending_user(&pending, Purpose::Enrol).await else {
                return Ok(start_again(&app, next));
            };
            refused_enrolment(&app, &browser, &user, "/login/enrol", Some(next), e).await
        }
    }
}

pub(crate) async fn settings(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let (token, set_cookie) = browser.csrf();
    let factors = app.engine.second_factors(user.user.id).await?;
    let markup = match factors.totp {
        true => pages::second_factor_settings(&user.user, &token, factors.recovery_left, None),
        false => {
            let enrolment = app.engine.totp_enrolment(&user.user);
            pages::enrolment(
                &token,
                "/account/second-factor/enrol",
                None,
                &enrolment,
                None,
            )
        }
    };
    Ok(with_cookie(page(StatusCode::OK, markup), set_cookie))
}

pub(crate) async fn enrol(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let by = Actor::User(user.user.id);
    match app
        .engine
        .confirm_totp(&user.user, form.field("enrolment"), form.field("code"), &by)
        .await
    {
        Ok(codes) => Ok(page(
            StatusCode::OK,
            pages::recovery_codes(&codes, "/account"),
        )),
        Err(e) => {
            refused_enrolment(
                &app,
                &browser,
                &user.user,
                "/account/second-factor/enrol",
                None,
                e,
            )
            .await
        }
    }
}

/// A refused enrolment: the same page with a fresh secret and what went wrong.
async fn refused_enrolment(
    app: &AppState,
    browser: &Browser,
    user: &doorward_core::model::User,
    action: &str,
    next: Option<&str>,
    error: SecondFactorError,
) -> Result<Response, PageError> {
    let (notice, status) = match error {
        // An app is on already (another tab turned it on): its settings say so.
        SecondFactorError::AlreadyEnrolled => return Ok(see_other("/account/second-factor")),
        SecondFactorError::WrongCode => (
            "That code did not match: scan the new code below and try again.".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        SecondFactorError::Expired => (
            "This form has expired: scan the new code below.".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        SecondFactorError::Throttled(t) => (
            format!(
                "Too many wrong codes. Try again in {}.",
                wait_in_words(t.retry_after)
            ),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        other => return Err(failure(other)),
    };
    let enrolment = app.engine.totp_enrolment(user);
    let (token, set_cookie) = browser.csrf();
    let markup = pages::enrolment(&token, action, next, &enrolment, Some(&notice));
    Ok(with_cookie(page(status, markup), set_cookie))
}

pub(crate) async fn renew_codes(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let factors = app.engine.second_factors(user.user.id).await?;
    if !factors.any() {
        return Ok(see_other("/account/second-factor"));
    }
    let left = factors.recovery_left;
    let password = Secret::new(form.field("password"));
    match app
        .engine
        .renew_recovery_codes(&user, &password, from)
        .await
    {
        Ok(codes) => Ok(page(
            StatusCode::OK,
            pages::recovery_codes(&codes, "/account/second-factor"),
        )),
        Err(e) => settings_refused(&browser, &user, left, e),
    }
}

pub(crate) async fn remove(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let password = Secret::new(form.field("password"));
    match app
        .engine
        .remove_own_second_factor(&user, &password, from)
        .await
    {
        Ok(_) => Ok(see_other("/account")),
        Err(e) => {
            let left = app.engine.second_factors(user.user.id).await?.recovery_left;
            settings_refused(&browser, &user, left, e)
        }
    }
}

/// The settings page again after a refused password (400) or throttle (429); anything else
/// is no form's to fix.
fn settings_refused(
    browser: &Browser,
    user: &doorward_core::model::SignedIn,
    left: u32,
    error: SecondFactorError,
) -> Result<Response, PageError> {
    let (token, set_cookie) = browser.csrf();
    let settings =
        |notice: &str| pages::second_factor_settings(&user.user, &token, left, Some(notice));
    match error {
        SecondFactorError::WrongPassword => Ok(with_cookie(
            page(StatusCode::BAD_REQUEST, settings("The password is wrong.")),
            set_cookie,
        )),
        SecondFactorError::Throttled(Throttled { retry_after }) => Ok(with_cookie(
            too_many_attempts(settings(&too_many_failures(retry_after)), retry_after),
            set_cookie,
        )),
        other => Err(failure(other)),
    }
}

fn failure(error: SecondFactorError) -> PageError {
    match error {
        SecondFactorError::Busy(_) => PageError::Busy,
        other => PageError::internal(&other),
    }
}
