//! The answers to people: HTML pages (never cached: they carry CSRF tokens and personal data),
//! the browser's redirects, and every error a person sees.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::{retry_soon, Failure};
use crate::pages;
use doorward_core::request::AuthorizationResponse;

/// A page: `markup` with `status`, `Cache-Control: no-store`.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `429 Too Many Requests` with `Retry-After: retry_after` (RFC 6585 §4): a page shown again
/// to someone who must wait before trying again (the sign-in throttle, RFC 6819 §4.4.3.6).
/// The page itself says how long, in words ([`wait_in_words`]).
pub fn too_many_attempts(markup: Markup, retry_after: u64) -> Response {
    let mut response = page(StatusCode::TOO_MANY_REQUESTS, markup);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// `seconds` as a person reads a wait: "30 seconds", "2 minutes" (rounded up).
pub fn wait_in_words(seconds: u64) -> String {
    match seconds {
        0..=1 => "1 second".to_owned(),
        2..=119 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// What a form refused by the throttle says: "Too many failed attempts. Try again in …".
pub fn too_many_failures(retry_after: u64) -> String {
    format!(
        "Too many failed attempts. Try again in {}.",
        wait_in_words(retry_after)
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

/// A redirect to the client's redirect URI: 302 from `GET`, 303 after a `POST` so that the
/// browser does not re-send the form to the client (RFC 9700 §4.12). Never stored by a cache
/// (`Cache-Control: no-store`, `Pragma: no-cache`): its location carries a code, a token or an
/// error for one request (RFC 6749 §10.5, RFC 9700 §4.2.4).
pub fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = status.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            super::no_store(&mut response);
            response
        }
        Err(_) => PageError::internal(&std::io::Error::other(
            "redirect location is not a header value",
        ))
        .into_response(),
    }
}

/// The authorization response (RFC 6749 §4.1.2) as the browser takes it to the client: a
/// [`redirect`] with `status` for the `query` and `fragment` modes, or, for `form_post` (OAuth
/// 2.0 Form Post Response Mode §2), a page whose form posts the answer to the redirect URI. The
/// page submits itself with a script that its Content-Security-Policy names by hash (no other
/// script may run); without script, its button does the same.
pub fn to_client(answer: &AuthorizationResponse, status: StatusCode) -> Response {
    let Some(location) = answer.location() else {
        let mut response = page(StatusCode::OK, pages::form_post(answer));
        super::no_store(&mut response);
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(&FORM_POST_CSP),
        );
        return response;
    };
    redirect(status, &location)
}

/// The policy of the `form_post` page: the site's (`lib.rs`), plus its one script by hash.
static FORM_POST_CSP: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| policy_allowing(pages::FORM_POST_SCRIPT));

/// The policy of a page with a passkey's button: the site's, plus [`pages::PASSKEY_SCRIPT`]
/// by hash.
static PASSKEY_CSP: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| policy_allowing(pages::PASSKEY_SCRIPT));

/// The site's policy (`lib.rs`) and `script` by its hash: no other script may run.
fn policy_allowing(script: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(script.as_bytes());
    format!(
        "{}; script-src 'sha256-{}'",
        crate::CSP,
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// A [`page`] that may hold a passkey's button: its policy allows the passkey script.
pub fn passkey_page(status: StatusCode, markup: Markup) -> Response {
    let mut response = page(status, markup);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(&PASSKEY_CSP),
    );
    response
}

/// Sends the browser to the sign-in page, to come back to `next` afterwards, the username
/// prefilled with `hint` (OIDC `login_hint`).
pub fn to_login(next: &str, hint: Option<&str>) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if let Some(hint) = hint {
        query.append_pair("login_hint", hint);
    }
    see_other(&format!("/login?{}", query.finish()))
}

/// `response` with a `Set-Cookie`, when there is one.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// What went wrong, as a person sees it.
#[derive(Debug)]
pub enum PageError {
    /// 400 with a title and an explanation.
    Invalid { title: &'static str, text: String },
    /// 400: the form could not be read.
    BadForm,
    /// 403: the form's CSRF token is missing or wrong.
    CsrfFailed,
    /// 503: too many password checks are queued.
    Busy,
    /// 500, or 503 when the store is unreachable.
    Failure(Failure),
}

impl PageError {
    pub fn invalid(title: &'static str, text: impl Into<String>) -> Self {
        Self::Invalid {
            title,
            text: text.into(),
        }
    }

    /// Logs `error` in full; the person sees an opaque page.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Failure(Failure::of(error))
    }
}

impl From<doorward_core::ports::StoreError> for PageError {
    fn from(error: doorward_core::ports::StoreError) -> Self {
        Self::internal(&error)
    }
}

impl From<doorward_core::Error> for PageError {
    fn from(error: doorward_core::Error) -> Self {
        Self::internal(&error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid { title, text } => {
                page(StatusCode::BAD_REQUEST, pages::message(title, &text))
            }
            Self::BadForm => page(
                StatusCode::BAD_REQUEST,
                pages::message("Bad request", "The form could not be read."),
            ),
            Self::CsrfFailed => page(
                StatusCode::FORBIDDEN,
                pages::message(
                    "Form expired",
                    "This form was not sent from this site, or it has expired. Go back, reload the page and try again.",
                ),
            ),
            Self::Busy => {
                let mut response = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::message("Busy", "The server is busy. Try again in a moment."),
                );
                retry_soon(&mut response);
                response
            }
            Self::Failure(Failure::Unavailable) => {
                let mut response = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    pages::message(
                        "Temporarily unavailable",
                        "The server cannot reach its database right now. Try again in a moment.",
                    ),
                );
                retry_soon(&mut response);
                response
            }
            Self::Failure(Failure::Internal) => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message(
                    "Something went wrong",
                    "The server met an unexpected error. Try again later.",
                ),
            ),
        }
    }
}

/// The "not found" page of every path the provider does not serve.
pub async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message("Not found", "There is nothing at this address."),
    )
}
