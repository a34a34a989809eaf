//! The admin console, `/admin`, for signed-in users with the admin role (`doorward users add
//! --admin`, `update --admin`, or a seed's `admin = true`): users (search, disable, enable,
//! end sessions, unlock, remove the second factor, require one, the admin role, a new
//! password, removal), clients (list, add, a new secret, removal: the operations of
//! `doorward clients`), signing keys (stages, rotate now), invitations, recent events.
//!
//! Every form carries its CSRF token (`CsrfForm`); pages are never framed (every answer's
//! `X-Frame-Options: DENY` and `frame-ancestors 'none'`). An action that changes access asks
//! for a sign-in of the last ten minutes (`[accounts] admin_fresh_sign_in`): an older session
//! is sent to sign in again. Each change is an audit event with the admin as its actor. An admin cannot
//! disable, remove or demote themselves (the console would lock out its last admin).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use doorward_core::audit::{Actor, EventFilter};
use doorward_core::clients::NewClient;
use doorward_core::jose::SigningAlg;
use doorward_core::model::{AuthMethod, ClientPolicy, SignedIn, User, UserFilter};
use doorward_proto::{RedirectUri, Secret};
use serde::Deserialize;
use uuid::Uuid;

use crate::extract::{Browser, CsrfForm};
use crate::pages::{self, UserFacts};
use crate::response::page::{page, see_other, to_login, with_cookie, PageError};
use crate::state::AppState;

/// Users per page.
const PAGE: u32 = 50;

/// The signed-in admin, or the answer instead (the sign-in page; 403 for a non-admin).
async fn admin_of(browser: &Browser, here: &str) -> Result<Result<SignedIn, Response>, PageError> {
    match browser.signed_in().await? {
        None => Ok(Err(to_login(here, None))),
        Some(user) if !user.user.admin => {
            Ok(Err(page(StatusCode::FORBIDDEN, pages::admin_forbidden())))
        }
        Some(user) => Ok(Ok(user)),
    }
}

/// `Some(answer)` when the admin's sign-in is too old for an action that changes access.
fn stale(app: &AppState, admin: &SignedIn, back_to: &str) -> Option<Response> {
    let now = app.engine.now();
    (now - admin.session.created_at > app.engine.config().admin_fresh_sign_in)
        .then(|| page(StatusCode::FORBIDDEN, pages::admin_reauth(back_to)))
}

macro_rules! admin_or_return {
    ($browser:expr, $here:expr) => {
        match admin_of(&$browser, $here).await? {
            Ok(admin) => admin,
            Err(answer) => return Ok(answer),
        }
    };
}

pub(crate) async fn home(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin");
    let events = app
        .engine
        .events(&EventFilter {
            limit: 20,
            ..EventFilter::default()
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        pages::admin_home(&admin.user, &events),
    ))
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    kind: Option<String>,
}

pub(crate) async fn events(
    State(app): State<AppState>,
    browser: Browser,
    Query(query): Query<EventsQuery>,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, "/admin/events");
    let kind = query
        .kind
        .filter(|k| !k.trim().is_empty())
        .map(|k| k.chars().take(100).collect::<String>());
    let events = app
        .engine
        .events(&EventFilter {
            kind: kind.clone(),
            limit: 100,
            ..EventFilter::default()
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        pages::admin_events(&events, kind.as_deref().unwrap_or("")),
    ))
}

#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    search: Option<String>,
    after: Option<String>,
}

pub(crate) async fn users(
    State(app): State<AppState>,
    browser: Browser,
    Query(query): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, "/admin/users");
    let search: String = query.search.unwrap_or_default().chars().take(100).collect();
    let users = app
        .engine
        .list_accounts(&UserFilter {
            search: (!search.trim().is_empty()).then(|| search.trim().to_owned()),
            after: query.after.map(|a| a.chars().take(64).collect()),
            limit: PAGE,
        })
        .await?;
    let more = (users.len() == PAGE as usize)
        .then(|| users.last().map(|u| u.username.clone()))
        .flatten();
    Ok(page(
        StatusCode::OK,
        pages::admin_users(&users, &search, more.as_deref()),
    ))
}

async fn user_by_id(app: &AppState, id: &str) -> Result<Option<User>, PageError> {
    match Uuid::parse_str(id) {
        Ok(id) => Ok(app.engine.store().find_user(id).await?),
        Err(_) => Ok(None),
    }
}

async fn user_page(
    app: &AppState,
    browser: &Browser,
    user: &User,
    status: StatusCode,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let failures = app.engine.account_failures(&user.username).await?;
    let facts = UserFacts {
        second_factor: app.engine.second_factors(user.id).await?,
        failures: failures.as_ref().map_or(0, |(f, _)| f.count),
        locked: failures.as_ref().is_some_and(|(_, until)| until.is_some()),
    };
    let events = app
        .engine
        .events(&EventFilter {
            user_id: Some(user.id),
            limit: 20,
            ..EventFilter::default()
        })
        .await?;
    let (token, set_cookie) = browser.csrf();
    let markup = pages::admin_user(&token, user, &facts, &events, notice);
    Ok(with_cookie(page(status, markup), set_cookie))
}

pub(crate) async fn user(
    State(app): State<AppState>,
    browser: Browser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, &format!("/admin/users/{id}"));
    match user_by_id(&app, &id).await? {
        Some(user) => user_page(&app, &browser, &user, StatusCode::OK, None).await,
        None => Err(PageError::invalid(
            "No such user",
            "There is no user with this id.",
        )),
    }
}

/// `POST /admin/users/{id}`: the form's `action`.
pub(crate) async fn user_action(
    State(app): State<AppState>,
    browser: Browser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let here = format!("/admin/users/{id}");
    let admin = admin_or_return!(browser, &here);
    let Some(user) = user_by_id(&app, &id).await? else {
        return Err(PageError::invalid(
            "No such user",
            "There is no user with this id.",
        ));
    };
    let action = form.field("action");
    // Everything but forgetting failed sign-ins changes someone's access (enabling gives it
    // back).
    let changes_access = action != "unlock";
    if changes_access {
        if let Some(answer) = stale(&app, &admin, &here) {
            return Ok(answer);
        }
    }
    let yourself = user.id == admin.user.id;
    if yourself && matches!(action, "disable" | "remove" | "remove-admin") {
        return user_page(
            &app,
            &browser,
            &user,
            StatusCode::BAD_REQUEST,
            Some("An admin cannot disable, remove or demote themselves here."),
        )
        .await;
    }
    let by = Actor::Admin(admin.user.id);
    let engine = &app.engine;
    let notice = match action {
        "disable" => {
            engine.disable_account(&user, &by).await?;
            "Disabled: its sessions, grants and tokens ended."
        }
        "enable" => {
            engine.enable_account(&user, &by).await?;
            "Enabled."
        }
        "sign-out" => {
            engine.end_account_sessions(&user, &by).await?;
            "Its sessions ended."
        }
        "unlock" => {
            engine.unlock_account(&user, &by).await?;
            "Failed sign-ins forgotten."
        }
        "reset-second-factor" => {
            engine.reset_second_factor(&user, &by).await?;
            "Second factor removed."
        }
        "require-second-factor" | "second-factor-optional" => {
            let required = action == "require-second-factor";
            engine
                .set_second_factor_required(&user, required, &by)
                .await?;
            if required {
                "A second factor is now required."
            } else {
                "The second factor is now optional."
            }
        }
        "make-admin" | "remove-admin" => {
            engine
                .set_account_admin(&user, action == "make-admin", &by)
                .await
                .map_err(|e| PageError::internal(&e))?;
            "Role changed."
        }
        "set-password" => {
            let password = Secret::new(form.field("password"));
            match engine.set_account_password(&user, &password, &by).await {
                Ok(_) => "Password set; the user was signed out everywhere.",
                Err(doorward_core::account_fields::AccountError::Password(problem)) => {
                    let notice = format!("Password: {problem}.");
                    return user_page(
                        &app,
                        &browser,
                        &user,
                        StatusCode::BAD_REQUEST,
                        Some(&notice),
                    )
                    .await;
                }
                Err(doorward_core::account_fields::AccountError::Busy(_)) => {
                    return Err(PageError::Busy)
                }
                Err(e) => return Err(PageError::internal(&e)),
            }
        }
        "remove" => {
            if form.get("confirm") != Some("yes") {
                return user_page(
                    &app,
                    &browser,
                    &user,
                    StatusCode::BAD_REQUEST,
                    Some("Tick the box to confirm the removal."),
                )
                .await;
            }
            engine.remove_account(&user, &by).await?;
            return Ok(see_other("/admin/users"));
        }
        _ => return Err(PageError::BadForm),
    };
    let user = user_by_id(&app, &id).await?.unwrap_or(user);
    user_page(&app, &browser, &user, StatusCode::OK, Some(notice)).await
}

async fn clients_page(
    app: &AppState,
    browser: &Browser,
    status: StatusCode,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let clients = app.engine.list_clients().await?;
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(status, pages::admin_clients(&token, &clients, notice)),
        set_cookie,
    ))
}

pub(crate) async fn clients(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, "/admin/clients");
    clients_page(&app, &browser, StatusCode::OK, None).await
}

pub(crate) async fn add_client(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/clients");
    if let Some(answer) = stale(&app, &admin, "/admin/clients") {
        return Ok(answer);
    }
    let name = form.field("name").trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
    {
        return clients_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some("Name: 1 to 64 of a-z, 0-9, _ and -."),
        )
        .await;
    }
    let app_uri = form.field("app_uri").trim();
    let web = url::Url::parse(app_uri)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !web {
        return clients_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some("Home page: an absolute http or https URL."),
        )
        .await;
    }
    let public = form.get("public") == Some("yes");
    let redirect = match RedirectUri::parse(form.field("redirect_uri").trim()) {
        Ok(uri) => uri,
        Err(e) => {
            return clients_page(
                &app,
                &browser,
                StatusCode::BAD_REQUEST,
                Some(&format!("Redirect URI: {e}.")),
            )
            .await
        }
    };
    if let Err(e) = doorward_core::redirect::check_registration(&redirect, public) {
        return clients_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some(&format!("Redirect URI: {e}.")),
        )
        .await;
    }
    let display_name = match form.field("display_name").trim() {
        "" => name.to_owned(),
        shown if shown.chars().count() <= 100 && !shown.chars().any(char::is_control) => {
            shown.to_owned()
        }
        _ => {
            return clients_page(
                &app,
                &browser,
                StatusCode::BAD_REQUEST,
                Some("Shown name: 1 to 100 characters, no control characters."),
            )
            .await
        }
    };
    let new = NewClient {
        key: format!("{name}@clients"),
        display_name,
        app_uri: app_uri.to_owned(),
        redirect_uris: vec![redirect],
        policy: ClientPolicy {
            auth_method: public.then_some(AuthMethod::None),
            ..ClientPolicy::default()
        },
    };
    match app
        .engine
        .add_client(new, &Actor::Admin(admin.user.id))
        .await
    {
        Ok((client, Some(secret))) => Ok(page(
            StatusCode::OK,
            pages::admin_client_secret(&client, secret.secret()),
        )),
        Ok((_, None)) => Ok(see_other("/admin/clients")),
        Err(doorward_core::clients::ClientAdminError::KeyTaken(key)) => {
            clients_page(
                &app,
                &browser,
                StatusCode::BAD_REQUEST,
                Some(&format!("The Key {key} is taken.")),
            )
            .await
        }
        Err(e) => Err(PageError::internal(&e)),
    }
}

pub(crate) async fn rotate_client(
    State(app): State<AppState>,
    browser: Browser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/clients");
    if let Some(answer) = stale(&app, &admin, "/admin/clients") {
        return Ok(answer);
    }
    let Some(client) = configured_or_unknown(&app, &browser, &id).await? else {
        return clients_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some("No such client, or one of the configuration file (change it there)."),
        )
        .await;
    };
    match app
        .engine
        .rotate_client_secret(&client.key, 0, &Actor::Admin(admin.user.id))
        .await
    {
        Ok((client, secret)) => Ok(page(
            StatusCode::OK,
            pages::admin_client_secret(&client, secret.secret()),
        )),
        Err(e) => {
            let notice = e.to_string();
            clients_page(&app, &browser, StatusCode::BAD_REQUEST, Some(&notice)).await
        }
    }
}

pub(crate) async fn remove_client(
    State(app): State<AppState>,
    browser: Browser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/clients");
    if let Some(answer) = stale(&app, &admin, "/admin/clients") {
        return Ok(answer);
    }
    let Some(client) = configured_or_unknown(&app, &browser, &id).await? else {
        return clients_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some("No such client, or one of the configuration file (change it there)."),
        )
        .await;
    };
    app.engine
        .remove_client(&client.key, &Actor::Admin(admin.user.id))
        .await
        .map_err(|e| PageError::internal(&e))?;
    clients_page(
        &app,
        &browser,
        StatusCode::OK,
        Some("Client removed, its tokens revoked."),
    )
    .await
}

/// The client of this Id unless it is unknown or the configuration file's (which the next
/// start would put back).
async fn configured_or_unknown(
    app: &AppState,
    _browser: &Browser,
    id: &str,
) -> Result<Option<doorward_core::model::Client>, PageError> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    Ok(app
        .engine
        .find_client(&id.to_string())
        .await?
        .filter(|c| c.source != doorward_core::model::ClientSource::Config)
        .map(std::sync::Arc::unwrap_or_clone))
}

async fn keys_page(
    app: &AppState,
    browser: &Browser,
    status: StatusCode,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let keys = app.engine.key_status();
    let algs: Vec<&str> = app
        .engine
        .signing_algs()
        .into_iter()
        .map(SigningAlg::as_str)
        .collect();
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(status, pages::admin_keys(&token, &keys, &algs, notice)),
        set_cookie,
    ))
}

pub(crate) async fn keys(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, "/admin/keys");
    keys_page(&app, &browser, StatusCode::OK, None).await
}

pub(crate) async fn rotate_key(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/keys");
    if let Some(answer) = stale(&app, &admin, "/admin/keys") {
        return Ok(answer);
    }
    let Some(alg) =
        SigningAlg::parse(form.field("alg")).filter(|alg| app.engine.signing_algs().contains(alg))
    else {
        return keys_page(
            &app,
            &browser,
            StatusCode::BAD_REQUEST,
            Some("Unknown algorithm."),
        )
        .await;
    };
    let key = app
        .engine
        .rotate_key(alg, &Actor::Admin(admin.user.id))
        .await?;
    let notice = format!(
        "New {} key {} published; it signs from its activation.",
        alg.as_str(),
        key.kid
    );
    keys_page(&app, &browser, StatusCode::OK, Some(&notice)).await
}

async fn invitations_page(
    app: &AppState,
    browser: &Browser,
    status: StatusCode,
    made: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let open = app.engine.open_invitations().await?;
    let (token, set_cookie) = browser.csrf();
    Ok(with_cookie(
        page(
            status,
            pages::admin_invitations(&token, &open, made, notice),
        ),
        set_cookie,
    ))
}

pub(crate) async fn invitations(
    State(app): State<AppState>,
    browser: Browser,
) -> Result<Response, PageError> {
    let _admin = admin_or_return!(browser, "/admin/invitations");
    invitations_page(&app, &browser, StatusCode::OK, None, None).await
}

pub(crate) async fn invite(
    State(app): State<AppState>,
    browser: Browser,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/invitations");
    if let Some(answer) = stale(&app, &admin, "/admin/invitations") {
        return Ok(answer);
    }
    let days = match form.field("days").trim().parse::<i64>() {
        Ok(days) if (1..=30).contains(&days) => days,
        _ => {
            return invitations_page(
                &app,
                &browser,
                StatusCode::BAD_REQUEST,
                None,
                Some("Valid for: 1 to 30 days."),
            )
            .await
        }
    };
    let email = form.get("email").filter(|e| !e.trim().is_empty());
    match app
        .engine
        .create_invitation(email, days * 24 * 3600, &Actor::Admin(admin.user.id))
        .await
    {
        Ok((code, _)) => {
            let link = format!(
                "{}/signup?invite={}",
                app.engine.config().issuer,
                code.secret()
            );
            invitations_page(&app, &browser, StatusCode::OK, Some(&link), None).await
        }
        Err(doorward_core::account_fields::AccountError::Store(e)) => Err(e.into()),
        Err(e) => {
            let notice = format!("{}.", e);
            invitations_page(&app, &browser, StatusCode::BAD_REQUEST, None, Some(&notice)).await
        }
    }
}

pub(crate) async fn withdraw(
    State(app): State<AppState>,
    browser: Browser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Result<Response, PageError> {
    let admin = admin_or_return!(browser, "/admin/invitations");
    if let Some(answer) = stale(&app, &admin, "/admin/invitations") {
        return Ok(answer);
    }
    let done = match Uuid::parse_str(&id) {
        Ok(id) => {
            app.engine
                .withdraw_invitation(id, &Actor::Admin(admin.user.id))
                .await?
        }
        Err(_) => false,
    };
    let notice = if done {
        "Withdrawn."
    } else {
        "No unused invitation with this id."
    };
    let status = if done {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    invitations_page(&app, &browser, status, None, Some(notice)).await
}
