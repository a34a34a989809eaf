//! The device authorization grant (RFC 8628): `POST /oauth/device_authorization` for the
//! device (§3.1), and the pages where its user enters the user code and answers (§3.3):
//! `GET /device` (the code, prefilled from `verification_uri_complete`), `POST /device` (the
//! code, then Allow or Deny). Every page needs a signed-in user and carries a CSRF token.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use doorward_core::device::{DeviceGrant, DeviceLookup};
use doorward_core::throttle::Throttled;
use serde::Deserialize;

use crate::extract::{Browser, ClientAddress, ClientRequest, CsrfForm};
use crate::pages;
use crate::response::page::{
    page, to_login, too_many_attempts, wait_in_words, with_cookie, PageError,
};
use crate::response::token::{NoStore, TokenError};
use crate::state::AppState;

/// RFC 8628 §3.1-3.2: `200` with the device code, the user code and where to enter it.
pub(crate) async fn authorize_device(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> Result<NoStore<Json<DeviceGrant>>, TokenError> {
    Ok(NoStore(Json(
        app.engine.device_authorization(&request).await?,
    )))
}

#[derive(Deserialize)]
pub(crate) struct Prefill {
    user_code: Option<String>,
}

/// The user-code form, for a signed-in user.
pub(crate) async fn show(
    State(_app): State<AppState>,
    browser: Browser,
    Query(prefill): Query<Prefill>,
) -> Result<Response, PageError> {
    let typed = prefill.user_code.unwrap_or_default();
    // A user code is 9 characters; anything longer is not one, and not echoed.
    let typed = if typed.len() > 32 {
        String::new()
    } else {
        typed
    };
    if browser.signed_in().await?.is_none() {
        let mut next = form_urlencoded::Serializer::new(String::new());
        if !typed.is_empty() {
            next.append_pair("user_code", &typed);
        }
        let query = next.finish();
        let next = if query.is_empty() {
            "/device".to_owned()
        } else {
            format!("/device?{query}")
        };
        return Ok(to_login(&next, None));
    }
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(StatusCode::OK, pages::device_code(&token, &typed, None)),
        set_cookie,
    ))
}

/// The code typed: the question (Allow or Deny) for a pending one; the answer given with
/// `decision`.
pub(crate) async fn answer(
    State(app): State<AppState>,
    browser: Browser,
    ClientAddress(from): ClientAddress,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let Some(user) = browser.signed_in().await? else {
        return Ok(to_login("/device", None));
    };
    let typed = form.field("user_code");
    if typed.len() > 32 {
        return Err(PageError::BadForm);
    }
    let (token, set_cookie) = browser.csrf();
    let shown = |markup| with_cookie(page(StatusCode::OK, markup), set_cookie.clone());
    match form.get("decision") {
        None => {}
        Some(decision @ ("approve" | "deny")) => {
            let approve = decision == "approve";
            let settled = match app.engine.settle_device(&user, typed, approve, from).await {
                Ok(settled) => settled,
                Err(doorward_core::Error::Throttled(Throttled { retry_after })) => {
                    return Ok(throttled(&token, typed, retry_after, set_cookie))
                }
                Err(e) => return Err(e.into()),
            };
            return Ok(shown(if !settled {
                pages::device_code(&token, "", Some(GONE))
            } else if approve {
                pages::message(
                    "Device connected",
                    "You may return to your device: it is signed in.",
                )
            } else {
                pages::message("Request denied", "The device was not given access.")
            }));
        }
        Some(_) => return Err(PageError::BadForm),
    }
    match app.engine.find_device(typed, &user, from).await {
        Ok(DeviceLookup::Pending { device, client }) => Ok(shown(pages::device_consent(
            &user.user, &client, &device, &token,
        ))),
        Ok(DeviceLookup::Unknown) => Ok(shown(pages::device_code(&token, typed, Some(GONE)))),
        Err(doorward_core::Error::Throttled(Throttled { retry_after })) => {
            Ok(throttled(&token, typed, retry_after, set_cookie))
        }
        Err(e) => Err(e.into()),
    }
}

/// `429`: too many codes that were not waiting, from this user or this address.
fn throttled(
    token: &str,
    typed: &str,
    retry_after: u64,
    set_cookie: Option<axum::http::HeaderValue>,
) -> Response {
    let notice = format!(
        "Too many codes that are not waiting were entered. Try again in {}.",
        wait_in_words(retry_after)
    );
    with_cookie(
        too_many_attempts(pages::device_code(token, typed, Some(&notice)), retry_after),
        set_cookie,
    )
}

/// What the page says of a code that is not waiting for an answer.
const GONE: &str = "This code is not valid: check it on your device. Codes expire after a few \
                    minutes, and each can be used once.";
