//! The server's HTML pages, as markup (the answer around them is `response::page`).
//! They work without JavaScript; every form carries a CSRF token. maud escapes every
//! interpolated value.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use doorward_core::account::Delegation;
use doorward_core::model::{Client, ConsentRecord, User};
use doorward_core::request::{AuthorizationRequest, AuthorizationResponse};
use doorward_proto::RedirectUri;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::paths::path;

mod admin;
mod passkeys;
mod second_factor;
mod self_service;
pub use admin::{
    admin_client_secret, admin_clients, admin_events, admin_forbidden, admin_home,
    admin_invitations, admin_keys, admin_reauth, admin_user, admin_users, UserFacts,
};
pub use passkeys::{passkey_creation, passkeys, PASSKEY_SCRIPT};
pub use second_factor::{
    enrolment, recovery_codes, second_factor_prompt, second_factor_settings, Prompt,
};
pub use self_service::{delete_account, password_change, sign_up, SignUpValues};

fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Doorward" }
                link rel="stylesheet" href=(path("/assets/doorward.css"));
            }
            body {
                main {
                    p.brand { "Doorward" }
                    (content)
                }
            }
        }
    }
}

/// The sign-in form; `notice` says why the last attempt failed; `sign_up` links to the
/// sign-up page.
pub fn login(
    csrf: &str,
    next: &str,
    username: &str,
    notice: Option<&str>,
    sign_up: bool,
    passkey: Option<&doorward_core::passkeys::Ceremony>,
) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            form method="post" action=(path("/login")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username"
                    required autofocus value=(username);
                label for="password" { "Password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            @if let Some(ceremony) = passkey {
                (passkeys::passkey_box(ceremony, "/login/passkey", csrf, &[("next", next)], "Sign in with a passkey", passkeys::Use::Get))
            }
            @if sign_up {
                p.small {
                    "No account yet? "
                    a href=(format!("{}?{}", path("/signup"), form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish())) { "Create one" }
                    "."
                }
            }
        },
    )
}

fn describe_scope(scope: &str) -> &str {
    match scope {
        "base" => "Know who you are: your user id and display name.",
        "openid" => "Sign you in with your account.",
        "profile" => "See your username and display name.",
        "email" => "See your e-mail address.",
        other => other,
    }
}

/// The consent page. A client no operator registered ([`Client::is_verified`]: a metadata
/// document, a dynamic registration) is marked unverified, with the `client_id` it is known
/// by: its name and home page are its own claims (RFC 7591 §5,
/// draft-ietf-oauth-client-id-metadata-document-02 §8). Every page names the host the
/// browser goes to next, which the client cannot disguise.
pub fn consent(user: &User, request: &AuthorizationRequest, csrf: &str, query: &str) -> Markup {
    let client = &request.client;
    layout(
        "Allow access",
        html! {
            h1 { "Allow " (client.display_name) "?" }
            (unverified_warning(client))
            p {
                strong { (client.display_name) }
                // A link only to a web page: an embedding application's client may carry any
                // string (`doorward serve` checks the configuration), a metadata document none.
                @if web_url(&client.app_uri) {
                    " (" a href=(client.app_uri) rel="noopener noreferrer" { (client.app_uri) } ")"
                } @else if !client.app_uri.is_empty() {
                    " (" (client.app_uri) ")"
                }
                " wants to access your account "
                strong { (user.display_name) } "."
            }
            ul.scopes {
                @for scope in request.scopes.iter() {
                    li { (describe_scope(scope.as_str())) }
                }
            }
            p.destination {
                "Whatever you answer, you will be sent to "
                strong { (destination(&request.redirect_uri)) } "."
            }
            (decision_form("/oauth/authorize", csrf, query, ("Allow", "Deny")))
            p.small { "You can withdraw this at any time from " a href=(path("/account")) { "your account" } "." }
        },
    )
}

/// The mark of a client no operator registered (self-registered, metadata document), on every
/// page that asks about it.
fn unverified_warning(client: &Client) -> Markup {
    html! {
        @if !client.is_verified() {
            div.warning role="alert" {
                p {
                    strong { "Unverified application." }
                    " This server's operators did not register it: its name and home page \
                     are what it says of itself. It is identified by "
                    code { (client.key) } "."
                }
            }
        }
    }
}

/// Where a redirect URI sends the browser, as a person reads it: its host (and port), or the
/// app that claimed a private-use scheme (RFC 8252 §7.1).
fn destination(uri: &RedirectUri) -> String {
    match url::Url::parse(uri.as_str()) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => format!("the app {}", url.scheme()),
        },
        Err(_) => uri.as_str().to_owned(),
    }
}

/// Whether `uri` is an absolute http or https URL, safe as a link's target.
fn web_url(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !uri.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

pub fn account(
    user: &User,
    apps: &[(ConsentRecord, Client)],
    delegations: &[Delegation],
    csrf: &str,
) -> Markup {
    layout(
        "Your account",
        html! {
            h1 { "Your account" }
            p { "Signed in as " strong { (user.display_name) } " (" (user.username) ")." }
            p.small { "User id: " code { (user.id) } }
            h2 { "Applications you allowed" }
            @if apps.is_empty() {
                p { "None yet." }
            } @else {
                ul.apps {
                    @for (consent, client) in apps {
                        li {
                            strong { (client.display_name) }
                            @if !client.is_verified() {
                                " (unverified: " code { (client.key) } ")"
                            }
                            " — " (consent.scopes.to_string())
                            form method="post" action=(path("/account/revoke")) {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="client_id" value=(client.id);
                                button.secondary type="submit" { "Revoke" }
                            }
                        }
                    }
                }
            }
            @if !delegations.is_empty() {
                h2 { "Services acting for you" }
                p.small {
                    "An application you allowed passed your access on to these services \
                     (token exchange), narrowed to what is shown."
                }
                ul.apps {
                    @for delegation in delegations {
                        li {
                            strong { (delegation.actor.display_name) }
                            @if !delegation.actor.is_verified() {
                                " (unverified: " code { (delegation.actor.key) } ")"
                            }
                            @if !delegation.through.is_empty() {
                                " through " (delegation.through.join(", "))
                            }
                            " — " (delegation.scopes.to_string())
                            form method="post" action=(path("/account/delegations/revoke")) {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="client_id" value=(delegation.actor.id);
                                button.secondary type="submit" { "Revoke" }
                            }
                        }
                    }
                }
            }
            h2 { "Security" }
            ul.apps {
                li { a href=(path("/account/second-factor")) { "Second factor (authenticator app)" } }
                li { a href=(path("/account/passkeys")) { "Passkeys" } }
                li { a href=(path("/account/password")) { "Change your password" } }
                li { a href=(path("/account/delete")) { "Delete your account" } }
            }
            p { a href=(path("/logout")) { "Sign out" } }
        },
    )
}

pub fn logout(user: &User, csrf: &str) -> Markup {
    layout(
        "Sign out",
        html! {
            h1 { "Sign out" }
            p { "You are signed in as " strong { (user.display_name) } "." }
            form method="post" action=(path("/logout")) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        },
    )
}

/// The confirmation of RP-initiated logout; `request` is the logout request's query.
pub fn end_session(user: &User, client: Option<&str>, csrf: &str, request: &str) -> Markup {
    layout(
        "Sign out",
        html! {
            h1 { "Sign out?" }
            p {
                @if let Some(client) = client {
                    strong { (client) } " asks to sign you out. "
                }
                "You are signed in as " strong { (user.display_name) } "."
            }
            (decision_form("/oauth/end_session", csrf, request, ("Sign out", "Stay signed in")))
        },
    )
}

/// A form that answers `request` (the original query, checked again when posted) with
/// `decision=approve` or `decision=deny`, under the browser's CSRF token.
fn decision_form(action: &str, csrf: &str, request: &str, (yes, no): (&str, &str)) -> Markup {
    html! {
        form method="post" action=(path(action)) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="request" value=(request);
            div.actions {
                button type="submit" name="decision" value="approve" { (yes) }
                button.secondary type="submit" name="decision" value="deny" { (no) }
            }
        }
    }
}

/// The device user-code form (RFC 8628 §3.3); `notice` says why the last code was refused.
pub fn device_code(csrf: &str, typed: &str, notice: Option<&str>) -> Markup {
    layout(
        "Connect a device",
        html! {
            h1 { "Connect a device" }
            @if let Some(notice) = notice {
                p.notice role="alert" { (notice) }
            }
            p { "Enter the code your device shows." }
            form method="post" action=(path("/device")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="user_code" { "Code" }
                input #user_code type="text" name="user_code" value=(typed) required
                    autocomplete="one-time-code" autocapitalize="characters" spellcheck="false"
                    maxlength="32" placeholder="XXXX-XXXX";
                div.actions { button type="submit" { "Continue" } }
            }
        },
    )
}

/// The question for a pending device authorization: the application, what it asks for, Allow
/// or Deny (the user code travels in the form).
pub fn device_consent(
    user: &User,
    client: &Client,
    device: &doorward_core::model::DeviceAuthorization,
    csrf: &str,
) -> Markup {
    let shown = doorward_core::device::shown_user_code(&device.user_code);
    layout(
        "Allow the device",
        html! {
            h1 { "Allow " (client.display_name) " on your device?" }
            (unverified_warning(client))
            p {
                "The device showing the code " strong { (shown) } " asks to access your account "
                strong { (user.display_name) } ". Allow it only if you started this on a device \
                 of yours."
            }
            ul.scopes {
                @for scope in device.scopes.iter() {
                    li { (describe_scope(scope.as_str())) }
                }
            }
            form method="post" action=(path("/device")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="user_code" value=(device.user_code);
                div.actions {
                    button type="submit" name="decision" value="approve" { "Allow" }
                    button.secondary type="submit" name="decision" value="deny" { "Deny" }
                }
            }
            p.small { "You can withdraw this at any time from " a href=(path("/account")) { "your account" } "." }
        },
    )
}

/// The script of the `form_post` page, allowed by its hash (`response::page::to_client`).
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The `form_post` answer (OAuth 2.0 Form Post Response Mode §2): a form of hidden fields
/// that posts the authorization response to the client's redirect URI, sent at once by a
/// script, or by its button where no script runs.
pub fn form_post(answer: &AuthorizationResponse) -> Markup {
    layout(
        "Returning to the application",
        html! {
            h1 { "Returning to the application" }
            form method="post" action=(answer.redirect_uri.as_str()) {
                @for (name, value) in &answer.params {
                    input type="hidden" name=(name) value=(value);
                }
                p { "If nothing happens, continue to " (destination(&answer.redirect_uri)) "." }
                div.actions {
                    button type="submit" { "Continue" }
                }
            }
            script { (PreEscaped(FORM_POST_SCRIPT)) }
        },
    )
}

pub fn signed_out() -> Markup {
    message("Signed out", "You are signed out.")
}

pub fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p { (text) }
        },
    )
}

pub async fn stylesheet() -> Response {
    let mut response = include_str!("doorward.css").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
