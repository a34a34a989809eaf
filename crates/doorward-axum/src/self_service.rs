//! The pages people use for themselves: `GET`/`POST /signup` (mounted only when
//! `[accounts] sign_up` is `invite` or `open`), `GET`/`POST /account/password` and
//! `GET`/`POST /account/delete`. The decisions are the engine's
//! (`doorward_core::self_service`); a refused form is shown again with what to fix and the
//! values typed (never a password), with 400, 429 when throttled.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use doorward_core::account_fields::AccountError;
use doorward_core::config::SignUpMode;
use doorward_core::self_service::{SelfServiceError, SignUpForm};
use doorward_core::throttle::Throttled;
use doorward_proto::Secret;
use serde::Deserialize;

use crate::extract::{session_cookie, Browser, ClientAddress, CsrfForm};
use crate::login::safe_next;
use crate::pages::{self, SignUpValues};
use crate::response::page::{
    not_found, page, see_other, to_login, too_many_attempts, too_many_failures, wait_in_words,
    with_cookie, PageError,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub(crate) struct SignUpQuery {
    invite: Option<String>,
    next: Option<String>,
}

fn min_length(app: &AppState) -> usize {
    app.engine.config().passwords.min_length
}

pub(crate) async fn sign_up_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(query): Query<SignUpQuery>,
) -> Result<Response, PageError> {
    let mode = app.engine.config().sign_up;
    if mode == SignUpMode::Off {
        return Ok(not_found().await);
    }
    let invite = mode == SignUpMode::Invite;
    let code = query.invite.as_deref().unwrap_or("");
    let mut notice = None;
    let mut email = String::new();
    if invite && !code.is_empty() {
        match app.engine.usable_invitation(code).await? {
            Some(invitation) => email = invitation.email.unwrap_or_default(),
            None => notice = Some("This invitation is unknown, used or expired."),
        }
    }
    let (token, set_cookie) = browser.csrf();
    let values = SignUpValues {
        email: &email,
        invitation: code,
        ..SignUpValues::default()
    };
    let next = safe_next(query.next.as_deref());
    let markup = pages::sign_up(&token, next, invite, &values, min_length(&app), notice);
    let status = if notice.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(with_cookie(page(status, markup), set_cookie))
}

pub(crate) async fn sign_up(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let mode = app.engine.config().sign_up;
    if mode == SignUpMode::Off {
        return Ok(not_found().await);
    }
    let next = safe_next(form.get("next"));
    let values = SignUpValues {
        username: form.field("username"),
        display_name: form.field("display_name"),
        email: form.field("email"),
        invitation: form.field("invitation"),
    };
    let again = |status: StatusCode, notice: &str| {
        let (token, set_cookie) = browser.csrf();
        let markup = pages::sign_up(
            &token,
            next,
            mode == SignUpMode::Invite,
            &values,
            min_length(&app),
            Some(notice),
        );
        with_cookie(page(status, markup), set_cookie)
    };
    if form.field("password") != form.field("password2") {
        return Ok(again(StatusCode::BAD_REQUEST, "The two passwords differ."));
    }
    let optional = |value: &str| (!value.trim().is_empty()).then(|| value.to_owned());
    let signed_up = app
        .engine
        .sign_up(
            SignUpForm {
                username: values.username.to_owned(),
                display_name: optional(values.display_name),
                email: optional(values.email),
                password: Secret::new(form.field("password")),
                invitation: optional(values.invitation),
            },
            from,
        )
        .await;
    match signed_up {
        Ok((cookie, _)) => {
            browser.end_previous_session().await?;
            Ok(with_cookie(
                see_other(next),
                Some(session_cookie(&app, &cookie)),
            ))
        }
        // The server requires a second factor: the new account sets one up first.
        Err(SelfServiceError::SecondFactor { pending }) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            Ok(with_cookie(
                see_other(&format!("/login/enrol?{query}")),
                Some(crate::extract::pending_cookie(&app, &pending)),
            ))
        }
        Err(SelfServiceError::Throttled(Throttled { retry_after })) => {
            let notice = format!(
                "Too many accounts were created from your address. Try again in {}.",
                wait_in_words(retry_after)
            );
            let (token, set_cookie) = browser.csrf();
            let markup = pages::sign_up(
                &token,
                next,
                mode == SignUpMode::Invite,
                &values,
                min_length(&app),
                Some(&notice),
            );
            Ok(with_cookie(
                too_many_attempts(markup, retry_after),
                set_cookie,
            ))
        }
        Err(e) => refused(e).map(|notice| again(StatusCode::BAD_REQUEST, &notice)),
    }
}

/// What a refused form says, or the error page of what no form can fix.
fn refused(error: SelfServiceError) -> Result<String, PageError> {
    match error {
        SelfServiceError::Closed => Err(PageError::invalid("Closed", "Sign-up is closed.")),
        SelfServiceError::InvitationInvalid => {
            Ok("This invitation is unknown, used or expired.".to_owned())
        }
        SelfServiceError::WrongPassword => Ok("The current password is wrong.".to_owned()),
        SelfServiceError::Account(AccountError::Busy(_)) | SelfServiceError::Busy(_) => {
            Err(PageError::Busy)
        }
        SelfServiceError::Account(AccountError::Store(e)) | SelfServiceError::Store(e) => {
            Err(PageError::internal(&e))
        }
        SelfServiceError::Account(e) => Ok(capitalized(&e.to_string())),
        SelfServiceError::Managed(by) => Ok(format!(
            "This account is managed by {by}: it cannot be deleted here."
        )),
        SelfServiceError::Throttled(t) => Ok(format!(
            "Too many failed attempts. Try again in {}.",
            wait_in_words(t.retry_after)
        )),
        other => Err(PageError::internal(&other)),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

pub(crate) async fn password_page(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let (token, set_cookie) = browser.csrf();
    let markup = pages::password_change(&user.user, &token, min_length(&app), None);
    Ok(with_cookie(page(StatusCode::OK, markup), set_cookie))
}

pub(crate) async fn change_password(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let again = |status: StatusCode, notice: &str| {
        let (token, set_cookie) = browser.csrf();
        let markup = pages::password_change(&user.user, &token, min_length(&app), Some(notice));
        with_cookie(page(status, markup), set_cookie)
    };
    if form.field("password") != form.field("password2") {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The two new passwords differ.",
        ));
    }
    let changed = app
        .engine
        .change_own_password(
            &user,
            &Secret::new(form.field("current")),
            &Secret::new(form.field("password")),
            from,
        )
        .await;
    match changed {
        Ok((cookie, _)) => Ok(with_cookie(
            see_other("/account"),
            Some(session_cookie(&app, &cookie)),
        )),
        Err(SelfServiceError::Throttled(Throttled { retry_after })) => {
            let notice = too_many_failures(retry_after);
            Ok(too_many_attempts(
                pages::password_change(
                    &user.user,
                    &browser.csrf().0,
                    min_length(&app),
                    Some(&notice),
                ),
                retry_after,
            ))
        }
        Err(e) => refused(e).map(|notice| again(StatusCode::BAD_REQUEST, &notice)),
    }
}

pub(crate) async fn delete_page(browser: Browser) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let (token, set_cookie) = browser.csrf();
    let markup = pages::delete_account(&user.user, &token, None);
    Ok(with_cookie(page(StatusCode::OK, markup), set_cookie))
}

pub(crate) async fn delete(
    State(app): State<AppState>,
    ClientAddress(from): ClientAddress,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/account", None));
    };
    let again = |status: StatusCode, notice: &str| {
        let (token, set_cookie) = browser.csrf();
        let markup = pages::delete_account(&user.user, &token, Some(notice));
        with_cookie(page(status, markup), set_cookie)
    };
    if form.get("confirm") != Some("yes") {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Tick the box to say you want to delete the account.",
        ));
    }
    let deleted = app
        .engine
        .delete_own_account(&user, &Secret::new(form.field("password")), from)
        .await;
    match deleted {
        Ok(()) => {
            let clear = browser.sign_out().await?;
            Ok(with_cookie(
                page(
                    StatusCode::OK,
                    pages::message(
                        "Account deleted",
                        "Your account was deleted, and the applications you allowed lost their access.",
                    ),
                ),
                Some(clear),
            ))
        }
        Err(SelfServiceError::Throttled(Throttled { retry_after })) => {
            let notice = too_many_failures(retry_after);
            Ok(too_many_attempts(
                pages::delete_account(&user.user, &browser.csrf().0, Some(&notice)),
                retry_after,
            ))
        }
        Err(e) => refused(e).map(|notice| again(StatusCode::BAD_REQUEST, &notice)),
    }
}
