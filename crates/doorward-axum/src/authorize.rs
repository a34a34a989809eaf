//! `GET /oauth/authorize` and the consent form's `POST /oauth/authorize` (RFC 6749 §4.1.1).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use doorward_core::authorize::{AuthorizeError, Interaction};
use doorward_core::model::SignedIn;
use doorward_core::request::AuthorizationRequest;

use crate::session::{csrf, csrf_ok, read_form, signed_in, to_login, to_login_with_hint};
use crate::{body, pages, AppState};

pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let pairs = body::query_pairs(&query);
    let request = match app.engine.check_authorization(&pairs).await {
        Ok(request) => request,
        Err(e) => return rejected(&e),
    };
    let session = match signed_in(&app, &headers).await {
        Ok(session) => session,
        Err(e) => return pages::internal(&e),
    };
    let interaction = app.engine.proceed(&request, session.as_ref()).await;
    if let Some(authenticator) = &app.authenticator {
        if let Some(answer) = crate::provider::consult(
            &app,
            authenticator.as_ref(),
            &headers,
            &request,
            &pairs,
            &query,
            session.as_ref(),
            &interaction,
        )
        .await
        {
            return answer;
        }
    }
    match interaction {
        Ok(Interaction::Redirect(location)) => found(&location),
        // Signed in already: the sign-in is asked again (prompt, max_age, id_token_hint), and the
        // request comes back marked with when; not signed in: it comes back as it was.
        Ok(Interaction::Login { hint }) if session.is_some() => {
            to_login_with_hint(&return_after_login(&app, &pairs), hint.as_deref())
        }
        Ok(Interaction::Login { hint }) => {
            to_login_with_hint(&format!("/oauth/authorize?{query}"), hint.as_deref())
        }
        Ok(Interaction::Consent) => match &session {
            Some(user) => {
                let (token, set_cookie) = csrf(&app, &headers);
                let page =
                    pages::consent(&user.user, &request.client, &request.scopes, &token, &query);
                let mut response = pages::respond(StatusCode::OK, page);
                if let Some(cookie) = set_cookie {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                response
            }
            None => to_login(&format!("/oauth/authorize?{query}")),
        },
        Err(e) => pages::internal(&e),
    }
}

/// The authorization request to come back to after signing in: the same, with a marker that
/// says when the sign-in started (see [`doorward_core::authorize::REAUTH_PARAM`]).
fn return_after_login(app: &AppState, pairs: &[(String, String)]) -> String {
    format!("/oauth/authorize?{}", app.engine.reauth_return_query(pairs))
}

/// The consent form: `request` is the original query string, checked again from scratch.
pub async fn decide(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !csrf_ok(&app, &headers, &form) {
        return pages::csrf_failed();
    }
    let query = form.get("request").map(String::as_str).unwrap_or("");
    let (request, user) = match checked(&app, &headers, query).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // The consent page was shown to a session that satisfied prompt, max_age and
    // id_token_hint; a form posted by another (older) session must satisfy them too.
    match app.engine.check_sign_in(&request, &user) {
        None => {}
        Some(Interaction::Redirect(location)) => return redirect(StatusCode::SEE_OTHER, &location),
        Some(_) => {
            let pairs = body::query_pairs(query);
            let again = return_after_login(&app, &pairs);
            // The application signs its users in: back to the request, which asks it.
            if app.authenticator.is_some() {
                return crate::session::see_other(&again);
            }
            return to_login_with_hint(&again, request.login_hint.as_deref());
        }
    }
    match form.get("decision").map(String::as_str) {
        Some("approve") => match app.engine.approve(&user, &request).await {
            Ok(location) => redirect(StatusCode::SEE_OTHER, &location),
            Err(e) => pages::internal(&e),
        },
        Some("deny") => redirect(StatusCode::SEE_OTHER, &app.engine.deny(&request)),
        _ => pages::respond(
            StatusCode::BAD_REQUEST,
            pages::message("Bad request", "Choose Allow or Deny."),
        ),
    }
}

/// Checks the request, then the session: protocol errors come first (RFC 6749 §4.1.2.1 has
/// them answered before the user is involved), then a browser that is not signed in goes to
/// the sign-in page and comes back here.
async fn checked(
    app: &AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<(AuthorizationRequest, SignedIn), Response> {
    let request = app
        .engine
        .check_authorization(&body::query_pairs(query))
        .await
        .map_err(|e| rejected(&e))?;
    match signed_in(app, headers).await {
        Ok(Some(user)) => Ok((request, user)),
        // The application signs its users in: back to the request, which asks it.
        Ok(None) if app.authenticator.is_some() => Err(crate::session::see_other(&format!(
            "/oauth/authorize?{query}"
        ))),
        Ok(None) => Err(to_login(&format!("/oauth/authorize?{query}"))),
        Err(e) => Err(pages::internal(&e)),
    }
}

pub(crate) fn rejected(error: &AuthorizeError) -> Response {
    match error {
        AuthorizeError::Show(reason) => pages::respond(
            StatusCode::BAD_REQUEST,
            pages::message("This sign-in link is not valid", &reason.to_string()),
        ),
        AuthorizeError::Redirect { location, .. } => found(location),
        AuthorizeError::Store(e) => pages::internal(e),
        _ => pages::internal(error),
    }
}

/// `302 Found` to the client's redirect URI (RFC 6749 §4.1.2).
fn found(location: &str) -> Response {
    redirect(StatusCode::FOUND, location)
}

/// A redirect to the client's redirect URI: 302 from `GET`, 303 after the consent `POST` so that
/// the browser does not re-send the form to the client (RFC 9700 §4.12).
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => pages::internal(&std::io::Error::other(
            "redirect location is not a header value",
        )),
    }
}
