//! Doorward's own sign-in and sign-out pages: `GET`/`POST /login`, `GET`/`POST /logout`, and
//! `/`, which leads to the account page.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use doorward_core::session::SignInError;
use doorward_core::throttle::Throttled;
use doorward_proto::Secret;
use serde::Deserialize;

use crate::extract::{session_cookie, Browser, ClientAddress, CsrfForm};
use crate::pages;
use crate::response::page::{
    page, passkey_page, see_other, too_many_attempts, wait_in_words, with_cookie, PageError,
};
use crate::state::AppState;

/// Whether the sign-in page links to the sign-up page (`[accounts] sign_up` is not off).
pub(crate) fn sign_up_offered(app: &AppState) -> bool {
    app.engine.config().sign_up != doorward_core::config::SignUpMode::Off
}

pub(crate) async fn home() -> Response {
    see_other("/account")
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    login_hint: Option<String>,
}

pub(crate) async fn login_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (token, set_cookie) = browser.csrf();
    let next = safe_next(query.next.as_deref());
    let hint = query.login_hint.as_deref().unwrap_or("");
    with_cookie(
        sign_in_page(&app, StatusCode::OK, &token, next, hint, None),
        set_cookie,
    )
}

/// The sign-in page with `status`, and a passkey's button where the server offers passkeys
/// (its ceremony is made for this page: [`doorward_core::passkeys`]).
pub(crate) fn sign_in_page(
    app: &AppState,
    status: StatusCode,
    csrf: &str,
    next: &str,
    username: &str,
    notice: Option<&str>,
) -> Response {
    let passkey = app.engine.passkey_sign_in();
    let markup = pages::login(
        csrf,
        next,
        username,
        notice,
        sign_up_offered(app),
        passkey.as_ref(),
    );
    passkey_page(status, markup)
}

/// `POST /login`. A wrong password shows the form again with 401; too many of them (per
/// username or per address, [`doorward_core::throttle`]) with 429, `Retry-After` and the wait
/// in words, whatever the password was.
pub(crate) async fn login(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let next = safe_next(form.get("next"));
    let password = Secret::new(form.field("password"));
    let username = form.field("username");
    match app.engine.sign_in(username, &password, from).await {
        Ok((cookie, _)) => {
            browser.end_previous_session().await?;
            Ok(with_cookie(
                see_other(next),
                Some(session_cookie(&app, &cookie)),
            ))
        }
        Err(SignInError::InvalidCredentials) => {
            let (token, set_cookie) = browser.csrf();
            let notice = Some("Invalid username or password.");
            Ok(with_cookie(
                sign_in_page(
                    &app,
                    StatusCode::UNAUTHORIZED,
                    &token,
                    next,
                    username,
                    notice,
                ),
                set_cookie,
            ))
        }
        Err(SignInError::Disabled) => {
            let (token, set_cookie) = browser.csrf();
            let notice = Some("This account is disabled. Ask the administrator of this site.");
            Ok(with_cookie(
                sign_in_page(&app, StatusCode::FORBIDDEN, &token, next, username, notice),
                set_cookie,
            ))
        }
        Err(SignInError::Throttled(Throttled { retry_after })) => {
            let (token, set_cookie) = browser.csrf();
            let notice = format!(
                "Too many failed sign-ins. Try again in {}.",
                wait_in_words(retry_after)
            );
            let markup = pages::login(
                &token,
                next,
                username,
                Some(&notice),
                sign_up_offered(&app),
                None,
            );
            Ok(with_cookie(
                too_many_attempts(markup, retry_after),
                set_cookie,
            ))
        }
        Err(SignInError::SecondFactor { pending, enrol }) => {
            let step = if enrol {
                "/login/enrol"
            } else {
                "/login/second-factor"
            };
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            Ok(with_cookie(
                see_other(&format!("{step}?{query}")),
                Some(crate::extract::pending_cookie(&app, &pending)),
            ))
        }
        Err(SignInError::Busy(_)) => Err(PageError::Busy),
        Err(e) => Err(PageError::internal(&e)),
    }
}

pub(crate) async fn logout_page(browser: Browser) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(see_other("/login"));
    };
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(StatusCode::OK, pages::logout(&user.user, &token)),
        set_cookie,
    ))
}

pub(crate) async fn logout(browser: Browser, _form: CsrfForm) -> Result<Response, PageError> {
    let clear = browser.sign_out().await?;
    Ok(with_cookie(see_other("/login"), Some(clear)))
}

/// `next` if it is one of the places sign-in returns to (an authorization request, the device
/// page with its code, the admin console, or the account page), else the account page. Nothing else passes, so no `next` can send the browser
/// off the site (RFC 9700 §4.11): not `//host`, `/\host`, nor `/<TAB>/host`, which browsers
/// read as another origin once they strip the tab.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/account"
                || n.starts_with("/oauth/authorize?")
                || n == "/device"
                || n.starts_with("/device?")
                || n == "/admin"
                || (n.starts_with("/admin/") && !n.starts_with("/admin//")))
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/account",
    }
}
