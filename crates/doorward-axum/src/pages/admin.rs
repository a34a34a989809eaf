//! The admin console's pages (`/admin`): users, clients, signing keys, invitations, recent
//! events. Server-rendered like the others, every form with its CSRF token, every value
//! escaped; a secret (a client's, an invitation's link) is shown once, on the page that made it.

use doorward_core::audit::AuditEvent;
use doorward_core::keys::KeyStatus;
use doorward_core::model::{Client, InvitationRecord, User};
use maud::{html, Markup};

use super::layout;
use crate::paths::path;

/// What the user page knows besides the user.
pub struct UserFacts {
    /// The user's app, passkeys and unused recovery codes.
    pub second_factor: doorward_core::second_factor::SecondFactors,
    /// Failed sign-ins counted, and whether they lock the account now.
    pub failures: u32,
    pub locked: bool,
}

fn nav() -> Markup {
    html! {
        nav.admin {
            a href=(path("/admin")) { "Console" } " · "
            a href=(path("/admin/users")) { "Users" } " · "
            a href=(path("/admin/clients")) { "Clients" } " · "
            a href=(path("/admin/keys")) { "Signing keys" } " · "
            a href=(path("/admin/invitations")) { "Invitations" } " · "
            a href=(path("/admin/events")) { "Events" } " · "
            a href=(path("/account")) { "Your account" }
        }
    }
}

fn notice_of(notice: Option<&str>) -> Markup {
    html! {
        @if let Some(notice) = notice {
            p.error role="alert" { (notice) }
        }
    }
}

pub(super) fn when(t: i64) -> String {
    time_text(t.saturating_mul(1000))
}

fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn events_table(events: &[AuditEvent]) -> Markup {
    html! {
        @if events.is_empty() {
            p { "No events." }
        } @else {
            table.events {
                thead { tr { th { "When" } th { "What" } th { "Who" } th { "User" } th { "From" } th { "Details" } } }
                tbody {
                    @for e in events {
                        tr {
                            td { (time_text(e.at_ms)) }
                            td { code { (e.kind) } }
                            td { (e.actor.to_text()) }
                            td { @if let Some(u) = e.user_id { a href=(path(&format!("/admin/users/{u}"))) { (u) } } }
                            td { @if let Some(a) = e.address { (a) } }
                            td { @if !e.detail.is_empty() { code { (serde_json::Value::Object(e.detail.clone())) } } }
                        }
                    }
                }
            }
        }
    }
}

pub fn admin_home(admin: &User, events: &[AuditEvent]) -> Markup {
    layout(
        "Admin console",
        html! {
            h1 { "Admin console" }
            (nav())
            p { "Signed in as " strong { (admin.display_name) } " (" (admin.username) ")." }
            h2 { "Recent events" }
            (events_table(events))
        },
    )
}

pub fn admin_events(events: &[AuditEvent], kind: &str) -> Markup {
    layout(
        "Events",
        html! {
            h1 { "Events" }
            (nav())
            form method="get" action=(path("/admin/events")) {
                label for="kind" { "Kind, or a prefix ending with a dot (sign_in., admin.)" }
                input id="kind" name="kind" type="text" value=(kind) maxlength="100";
                button type="submit" { "Show" }
            }
            (events_table(events))
        },
    )
}

pub fn admin_users(users: &[User], search: &str, more_after: Option<&str>) -> Markup {
    layout(
        "Users",
        html! {
            h1 { "Users" }
            (nav())
            form method="get" action=(path("/admin/users")) {
                label for="search" { "Search usernames, names and e-mail addresses" }
                input id="search" name="search" type="text" value=(search) maxlength="100";
                button type="submit" { "Search" }
            }
            table.users {
                thead { tr { th { "Username" } th { "Name" } th { "State" } th { "Source" } } }
                tbody {
                    @for u in users {
                        tr {
                            td { a href=(path(&format!("/admin/users/{}", u.id))) { (u.username) } }
                            td { (u.display_name) }
                            td {
                                @if u.is_disabled() { "disabled" } @else { "active" }
                                @if u.admin { " · admin" }
                            }
                            td { (u.source.as_str()) }
                        }
                    }
                }
            }
            @if let Some(after) = more_after {
                p { a href=(path(&format!("/admin/users?{}", form_urlencoded::Serializer::new(String::new()).append_pair("search", search).append_pair("after", after).finish()))) { "More" } }
            }
        },
    )
}

fn action_form(csrf: &str, user: &User, action: &str, label: &str, danger: bool) -> Markup {
    html! {
        form.inline method="post" action=(path(&format!("/admin/users/{}", user.id))) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            @if danger {
                button.danger type="submit" { (label) }
            } @else {
                button.secondary type="submit" { (label) }
            }
        }
    }
}

pub fn admin_user(
    csrf: &str,
    user: &User,
    facts: &UserFacts,
    events: &[AuditEvent],
    notice: Option<&str>,
) -> Markup {
    layout(
        "User",
        html! {
            h1 { (user.display_name) }
            (nav())
            (notice_of(notice))
            dl {
                dt { "Username" } dd { (user.username) }
                dt { "Id" } dd { code { (user.id) } }
                dt { "E-mail" } dd { (user.email.as_deref().unwrap_or("none")) }
                dt { "State" } dd {
                    @match user.disabled_at {
                        Some(at) => { "disabled since " (when(at)) }
                        None => { "active" }
                    }
                }
                dt { "Role" } dd { @if user.admin { "admin" } @else { "user" } }
                dt { "Second factor" } dd {
                    @let factors = &facts.second_factor;
                    @if factors.totp { "authenticator app" }
                    @if factors.totp && !factors.passkeys.is_empty() { ", " }
                    @if !factors.passkeys.is_empty() {
                        (factors.passkeys.len()) " passkey(s)"
                    }
                    @if factors.any() {
                        ", " (factors.recovery_left) " recovery codes left"
                    } @else { "none" }
                    @if user.second_factor_required { " (required)" }
                }
                dt { "Failed sign-ins" } dd {
                    (facts.failures) @if facts.locked { " — locked" }
                }
                dt { "Source" } dd { (user.source.as_str()) }
                dt { "Created" } dd { (when(user.created_at)) }
            }
            h2 { "Actions" }
            p.small { "Actions that change access ask for a sign-in of the last ten minutes." }
            div.actions {
                @if user.is_disabled() {
                    (action_form(csrf, user, "enable", "Enable", false))
                } @else {
                    (action_form(csrf, user, "disable", "Disable (ends its sessions and tokens)", true))
                }
                (action_form(csrf, user, "sign-out", "End its sessions", false))
                @if facts.failures > 0 {
                    (action_form(csrf, user, "unlock", "Unlock sign-ins", false))
                }
                @if facts.second_factor.any() {
                    (action_form(csrf, user, "reset-second-factor", "Remove the second factor", true))
                }
                @if user.second_factor_required {
                    (action_form(csrf, user, "second-factor-optional", "Make the second factor optional", false))
                } @else {
                    (action_form(csrf, user, "require-second-factor", "Require a second factor", false))
                }
                @if user.admin {
                    (action_form(csrf, user, "remove-admin", "Take the admin role", true))
                } @else {
                    (action_form(csrf, user, "make-admin", "Give the admin role", true))
                }
            }
            h2 { "Set a new password" }
            form method="post" action=(path(&format!("/admin/users/{}", user.id))) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="set-password";
                label for="password" { "New password (the user is signed out everywhere)" }
                input id="password" name="password" type="password" autocomplete="new-password"
                    required maxlength="256";
                button.danger type="submit" { "Set the password" }
            }
            h2 { "Remove" }
            form method="post" action=(path(&format!("/admin/users/{}", user.id))) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="remove";
                label {
                    input type="checkbox" name="confirm" value="yes" required;
                    " Remove " (user.username) " with its sessions, consents, grants and tokens"
                }
                button.danger type="submit" { "Remove the user" }
            }
            h2 { "Recent events" }
            (events_table(events))
        },
    )
}

pub fn admin_clients(csrf: &str, clients: &[Client], notice: Option<&str>) -> Markup {
    layout(
        "Clients",
        html! {
            h1 { "Clients" }
            (nav())
            (notice_of(notice))
            table.clients {
                thead { tr { th { "Key" } th { "Name" } th { "Source" } th { "Redirect URIs" } th { "" } } }
                tbody {
                    @for c in clients {
                        tr {
                            td { code { (c.key) } }
                            td { (c.display_name) }
                            td { (c.source.as_str()) }
                            td { @for uri in &c.redirect_uris { (uri.as_str()) br; } }
                            td {
                                @if c.source.as_str() != "config" {
                                    @if c.secret_hash.is_some() {
                                        form.inline method="post" action=(path(&format!("/admin/clients/{}/rotate", c.id))) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.secondary type="submit" { "New secret" }
                                        }
                                    }
                                    form.inline method="post" action=(path(&format!("/admin/clients/{}/remove", c.id))) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" { "Remove" }
                                    }
                                } @else {
                                    "in the configuration file"
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add a client" }
            form method="post" action=(path("/admin/clients")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { "Name (its Key is NAME@clients): a-z, 0-9, _ and -" }
                input id="name" name="name" type="text" required maxlength="64";
                label for="display_name" { "Shown name" }
                input id="display_name" name="display_name" type="text" maxlength="100";
                label for="app_uri" { "Home page (http or https)" }
                input id="app_uri" name="app_uri" type="url" required maxlength="2000";
                label for="redirect_uri" { "Redirect URI (compared exactly)" }
                input id="redirect_uri" name="redirect_uri" type="text" required maxlength="2000";
                label {
                    input type="checkbox" name="public" value="yes";
                    " A public client (a browser or native app: no secret, PKCE required)"
                }
                button type="submit" { "Add the client" }
            }
        },
    )
}

/// A client's new secret, shown once.
pub fn admin_client_secret(client: &Client, secret: &str) -> Markup {
    layout(
        "Client secret",
        html! {
            h1 { "The secret of " (client.display_name) }
            (nav())
            dl {
                dt { "client_id" } dd { code { (client.key) } }
                dt { "client_secret" } dd { code.secret { (secret) } }
            }
            p.small { "Shown once: the server keeps only its Argon2id hash." }
            p { a href=(path("/admin/clients")) { "Back to the clients" } }
        },
    )
}

pub fn admin_keys(csrf: &str, keys: &[KeyStatus], algs: &[&str], notice: Option<&str>) -> Markup {
    layout(
        "Signing keys",
        html! {
            h1 { "Signing keys" }
            (nav())
            (notice_of(notice))
            table.keys {
                thead { tr { th { "kid" } th { "Algorithm" } th { "Stage" } th { "Signs from" } th { "Removed at" } } }
                tbody {
                    @for k in keys {
                        tr {
                            td { code { (k.kid) } }
                            td { (k.alg.as_str()) }
                            td { (k.stage.as_str()) }
                            td { (when(k.activate_at)) }
                            td { @if let Some(at) = k.remove_at { (when(at)) } }
                        }
                    }
                }
            }
            h2 { "Rotate now" }
            p.small { "A new key is published at once and signs after the publish delay." }
            @for alg in algs {
                form.inline method="post" action=(path("/admin/keys/rotate")) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="alg" value=(alg);
                    button.secondary type="submit" { "Rotate " (alg) }
                }
            }
        },
    )
}

pub fn admin_invitations(
    csrf: &str,
    open: &[InvitationRecord],
    made: Option<&str>,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Invitations",
        html! {
            h1 { "Invitations" }
            (nav())
            (notice_of(notice))
            @if let Some(link) = made {
                p { "The invitation's link, shown once: " code.secret { (link) } }
            }
            table.invitations {
                thead { tr { th { "Id" } th { "E-mail" } th { "Expires" } th { "By" } th { "" } } }
                tbody {
                    @for i in open {
                        tr {
                            td { code { (i.id) } }
                            td { (i.email.as_deref().unwrap_or("")) }
                            td { (when(i.expires_at)) }
                            td { (i.created_by) }
                            td {
                                form.inline method="post" action=(path(&format!("/admin/invitations/{}/withdraw", i.id))) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.secondary type="submit" { "Withdraw" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Invite someone" }
            form method="post" action=(path("/admin/invitations")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "E-mail address (optional)" }
                input id="email" name="email" type="email" maxlength="254";
                label for="days" { "Valid for (days, 1 to 30)" }
                input id="days" name="days" type="number" min="1" max="30" value="7";
                button type="submit" { "Make the invitation" }
            }
        },
    )
}

/// A destructive action asked of a sign-in older than ten minutes.
pub fn admin_reauth(next: &str) -> Markup {
    layout(
        "Confirm it is you",
        html! {
            h1 { "Confirm it is you" }
            p {
                "This action changes someone's access: it needs a sign-in of the last ten \
                 minutes. Sign in again, then repeat it."
            }
            p { a href=(format!("{}?{}", path("/login"), form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish())) { "Sign in again" } }
        },
    )
}

/// The console for a signed-in user without the admin role.
pub fn admin_forbidden() -> Markup {
    layout(
        "Not allowed",
        html! {
            h1 { "Not allowed" }
            p { "The admin console is for admin users." }
            p { a href=(path("/account")) { "Your account" } }
        },
    )
}
