//! `GET /oauth/authorize` and the consent form's `POST /oauth/authorize` (RFC 6749 §4.1.1).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use doorward_core::embedding::{AppAnswer, AppOutcome, Consultation};
use doorward_core::model::SignedIn;
use doorward_core::request::{query_pairs, AuthorizationRequest, AuthorizeError, Interaction};

use crate::authenticator::{Authentication, Authenticator, LoginRequest};
use crate::extract::{session_cookie, Browser, CsrfForm};
use crate::pages;
use crate::response::page::{page, see_other, to_client, to_login, with_cookie, PageError};
use crate::state::AppState;

pub(crate) async fn show(
    State(app): State<AppState>,
    browser: Browser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let pairs = query_pairs(&query);
    let request = match app.engine.check_authorization(&pairs).await {
        Ok(request) => request,
        Err(e) => return rejected(e),
    };
    // A request object, verified: on with it as a pushed request (RFC 9101, RFC 9126).
    if let Some(carry) = &request.carry {
        return Ok(see_other(&format!("/oauth/authorize?{carry}")));
    }
    let session = browser.signed_in().await?;
    let interaction = app.engine.proceed(&request, session.as_ref()).await;
    if let Some(authenticator) = &app.authenticator {
        let consultation = app
            .engine
            .consultation(&pairs, &query, session.as_ref(), &interaction);
        if let Some(consultation) = consultation {
            let asked = ask(
                &app,
                authenticator.as_ref(),
                &browser,
                &headers,
                &request,
                session.as_ref(),
                &consultation,
            );
            if let Some(answer) = asked.await? {
                return Ok(answer);
            }
        }
    }
    Ok(match interaction? {
        Interaction::Redirect(answer) => to_client(&answer, StatusCode::FOUND),
        // Signed in already: the sign-in is asked again (prompt, max_age, id_token_hint), and the
        // request comes back marked with when; not signed in: it comes back as it was.
        Interaction::Login { hint } if session.is_some() => {
            to_login(&return_after_login(&app, &pairs), hint.as_deref())
        }
        Interaction::Login { hint } => {
            to_login(&format!("/oauth/authorize?{query}"), hint.as_deref())
        }
        // A stronger sign-in is asked for: the second factor, then back to the request.
        Interaction::StepUp { pending } => {
            let next = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &format!("/oauth/authorize?{query}"))
                .finish();
            with_cookie(
                see_other(&format!("/login/second-factor?{next}")),
                Some(crate::extract::pending_cookie(&app, &pending)),
            )
        }
        Interaction::Consent => match &session {
            Some(user) => {
                let (token, set_cookie) = browser.csrf();
                let markup = pages::consent(&user.user, &request, &token, &query);
                with_cookie(page(StatusCode::OK, markup), set_cookie)
            }
            None => to_login(&format!("/oauth/authorize?{query}"), None),
        },
    })
}

/// The authorization request to come back to after signing in: the same, with a marker that
/// says when the sign-in started (see [`doorward_core::authorize::REAUTH_PARAM`]).
fn return_after_login(app: &AppState, pairs: &[(String, String)]) -> String {
    format!("/oauth/authorize?{}", app.engine.reauth_return_query(pairs))
}

/// The consent form: `request` is the original query string, checked again from scratch.
pub(crate) async fn decide(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let query = form.field("request");
    let (request, user) = match checked(&app, &browser, query).await? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    // The consent page was shown to a session that satisfied prompt, max_age and
    // id_token_hint; a form posted by another (older) session must satisfy them too.
    match app.engine.check_sign_in(&request, &user) {
        None => {}
        Some(Interaction::Redirect(answer)) => {
            return Ok(to_client(&answer, StatusCode::SEE_OTHER))
        }
        Some(_) => {
            let again = return_after_login(&app, &query_pairs(query));
            // The application signs its users in: back to the request, which asks it.
            if app.authenticator.is_some() {
                return Ok(see_other(&again));
            }
            return Ok(to_login(&again, request.login_hint.as_deref()));
        }
    }
    match form.get("decision") {
        Some("approve") => {
            let answer = app.engine.approve(&user, &request).await?;
            Ok(to_client(&answer, StatusCode::SEE_OTHER))
        }
        Some("deny") => Ok(to_client(&app.engine.deny(&request), StatusCode::SEE_OTHER)),
        _ => Err(PageError::invalid("Bad request", "Choose Allow or Deny.")),
    }
}

/// Checks the request, then the session: protocol errors come first (RFC 6749 §4.1.2.1 has
/// them answered before the user is involved), then a browser that is not signed in goes to
/// the sign-in page (or back to the request, which asks the application) and comes back here.
async fn checked(
    app: &AppState,
    browser: &Browser,
    query: &str,
) -> Result<Result<(AuthorizationRequest, SignedIn), Response>, PageError> {
    let request = match app.engine.check_authorization(&query_pairs(query)).await {
        Ok(request) => request,
        Err(e) => return rejected(e).map(Err),
    };
    let again = format!("/oauth/authorize?{query}");
    Ok(match browser.signed_in().await? {
        Some(user) => Ok((request, user)),
        None if app.authenticator.is_some() => Err(see_other(&again)),
        None => Err(to_login(&again, None)),
    })
}

/// A request that cannot go on: shown when the client or its redirect URI is wrong, sent back
/// to the client otherwise.
pub(crate) fn rejected(error: AuthorizeError) -> Result<Response, PageError> {
    match error {
        AuthorizeError::Show(reason) => Err(PageError::invalid(
            "This sign-in link is not valid",
            reason.to_string(),
        )),
        AuthorizeError::Redirect { response, .. } => Ok(to_client(&response, StatusCode::FOUND)),
        AuthorizeError::Store(e) => Err(e.into()),
        other => Err(PageError::internal(&other)),
    }
}

/// Asks the application who the user is, for the authorization endpoint; `None`: go on with
/// the provider's session as it is.
async fn ask(
    app: &AppState,
    authenticator: &dyn Authenticator,
    browser: &Browser,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    session: Option<&SignedIn>,
    consultation: &Consultation,
) -> Result<Option<Response>, PageError> {
    let answer = authenticator
        .authenticate(LoginRequest {
            grant_id: &consultation.grant_id,
            headers,
            client_id: &request.client.key,
            client_name: &request.client.display_name,
            scopes: request
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            login_hint: request.login_hint.as_deref(),
            reauthenticate: consultation.reauthenticate,
        })
        .await;
    let (answer, shown) = match answer {
        Authentication::User(user) => (AppAnswer::User(user), None),
        Authentication::Redirect(location) => (
            AppAnswer::Interact,
            Some(crate::response::page::redirect(
                StatusCode::SEE_OTHER,
                &location,
            )),
        ),
        Authentication::Page(page) => (AppAnswer::Interact, Some(page)),
        Authentication::Deny => (AppAnswer::Deny, None),
    };
    Ok(
        match app
            .engine
            .settle(request, consultation, session, answer)
            .await?
        {
            AppOutcome::Continue => None,
            AppOutcome::SignedIn { cookie, location } => {
                browser.end_previous_session().await?;
                Some(with_cookie(
                    see_other(&location),
                    Some(session_cookie(app, &cookie)),
                ))
            }
            AppOutcome::Interact => shown,
            AppOutcome::Redirect(answer) => Some(to_client(&answer, StatusCode::FOUND)),
        },
    )
}
