//! Sign-in, sign-out and account pages, and the helpers every page handler shares.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use doorward_core::model::SignedIn;
use doorward_core::session::SignInError;
use doorward_proto::Secret;
use serde::Deserialize;
use uuid::Uuid;

use crate::{body, cookies, pages, AppState};

/// The signed-in user of the request's session cookie.
pub async fn signed_in(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, doorward_core::ports::StoreError> {
    match session_cookie(app, headers) {
        Some(cookie) => app.engine.session(cookie).await,
        None => Ok(None),
    }
}

pub fn session_cookie<'a>(app: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    cookies::get(headers, cookies::session_name(app.secure_cookies))
}

/// The CSRF token for this browser's forms (bound to its session cookie, if any), and the
/// `Set-Cookie` to send when the browser had no CSRF cookie yet.
pub fn csrf(app: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let session = session_cookie(app, headers);
    let name = cookies::csrf_name(app.secure_cookies);
    match cookies::get(headers, name) {
        Some(cookie) => (app.engine.csrf_token(cookie, session), None),
        None => {
            let cookie = app.engine.new_csrf_cookie();
            let set = cookies::set(name, &cookie, 365 * 24 * 3600, app.secure_cookies);
            (app.engine.csrf_token(&cookie, session), Some(set))
        }
    }
}

/// Whether the form's `csrf` field goes with the browser's CSRF and session cookies.
pub fn csrf_ok(app: &AppState, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    app.engine.verify_csrf(
        cookies::get(headers, cookies::csrf_name(app.secure_cookies)),
        session_cookie(app, headers),
        form.get("csrf").map(String::as_str),
    )
}

/// The answer to a sign-in refused because too many password checks are queued.
fn busy() -> Response {
    let mut response = pages::respond(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message("Busy", "The server is busy. Try again in a moment."),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Reads a page's form body; a bad body is answered with a 400 page.
pub async fn read_form(
    headers: &HeaderMap,
    body: Body,
) -> Result<HashMap<String, String>, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(bad_form());
    }
    let bytes = body::read(body).await.map_err(|_| bad_form())?;
    body::form_parameters(&bytes).map_err(|_| bad_form())
}

fn bad_form() -> Response {
    pages::respond(
        StatusCode::BAD_REQUEST,
        pages::message("Bad request", "The form could not be read."),
    )
}

/// A `303 See Other` to a path of the provider (mount path added) or to an absolute URL.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&crate::paths::location(location)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Sends the browser to the sign-in page, to come back to `next` afterwards.
pub fn to_login(next: &str) -> Response {
    to_login_with_hint(next, None)
}

/// [`to_login`] with the username field prefilled (OIDC `login_hint`).
pub fn to_login_with_hint(next: &str, hint: Option<&str>) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if let Some(hint) = hint {
        query.append_pair("login_hint", hint);
    }
    see_other(&format!("/login?{}", query.finish()))
}

/// `next` if it is one of the two places sign-in returns to (an authorization request or the
/// account page), else the account page. Nothing else passes, so no `next` can send the browser
/// off the site (RFC 9700 §4.11): not `//host`, `/\host`, nor `/<TAB>/host`, which browsers
/// read as another origin once they strip the tab.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/account" || n.starts_with("/oauth/authorize?"))
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/account",
    }
}

pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn home() -> Response {
    see_other("/account")
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    login_hint: Option<String>,
}

pub async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (token, set_cookie) = csrf(&app, &headers);
    let next = safe_next(query.next.as_deref());
    let hint = query.login_hint.as_deref().unwrap_or("");
    let page = pages::login(&token, next, hint, false);
    with_cookie(pages::respond(StatusCode::OK, page), set_cookie)
}

pub async fn login(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !csrf_ok(&app, &headers, &form) {
        return pages::csrf_failed();
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let next = safe_next(form.get("next").map(String::as_str));
    let password = Secret::new(field("password"));
    match app.engine.sign_in(field("username"), &password).await {
        Ok((cookie, _)) => {
            let max_age = app.engine.config().lifetimes.session;
            let name = cookies::session_name(app.secure_cookies);
            let set = cookies::set(name, &cookie, max_age, app.secure_cookies);
            with_cookie(see_other(next), Some(set))
        }
        Err(SignInError::InvalidCredentials) => {
            let (token, set_cookie) = csrf(&app, &headers);
            let page = pages::login(&token, next, field("username"), true);
            with_cookie(pages::respond(StatusCode::UNAUTHORIZED, page), set_cookie)
        }
        Err(SignInError::Busy(_)) => busy(),
        Err(e) => pages::internal(&e),
    }
}

pub async fn logout_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let user = match signed_in(&app, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return see_other("/login"),
        Err(e) => return pages::internal(&e),
    };
    let (token, set_cookie) = csrf(&app, &headers);
    with_cookie(
        pages::respond(StatusCode::OK, pages::logout(&user.user, &token)),
        set_cookie,
    )
}

pub async fn logout(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !csrf_ok(&app, &headers, &form) {
        return pages::csrf_failed();
    }
    signed_out(&app, &headers, see_other("/login")).await
}

/// Ends the browser's session (in the store and its cookie), then answers `then`.
pub async fn signed_out(app: &AppState, headers: &HeaderMap, then: Response) -> Response {
    if let Some(cookie) = session_cookie(app, headers) {
        if let Err(e) = app.engine.sign_out(cookie).await {
            return pages::internal(&e);
        }
    }
    let clear = cookies::clear(
        cookies::session_name(app.secure_cookies),
        app.secure_cookies,
    );
    with_cookie(then, Some(clear))
}

pub async fn account(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let user = match signed_in(&app, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return to_login("/account"),
        Err(e) => return pages::internal(&e),
    };
    let apps = match app.engine.approved_clients(user.user.id).await {
        Ok(apps) => apps,
        Err(e) => return pages::internal(&e),
    };
    let (token, set_cookie) = csrf(&app, &headers);
    with_cookie(
        pages::respond(StatusCode::OK, pages::account(&user.user, &apps, &token)),
        set_cookie,
    )
}

pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !csrf_ok(&app, &headers, &form) {
        return pages::csrf_failed();
    }
    let user = match signed_in(&app, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return to_login("/account"),
        Err(e) => return pages::internal(&e),
    };
    let Some(client) = form
        .get("client_id")
        .and_then(|id| Uuid::try_parse(id).ok())
    else {
        return bad_form();
    };
    match app.engine.revoke_client(user.user.id, client).await {
        Ok(()) => see_other("/account"),
        Err(e) => pages::internal(&e),
    }
}
