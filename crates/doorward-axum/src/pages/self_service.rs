//! The pages people use for themselves: sign-up, a new password, deleting the account. Every
//! form carries a CSRF token; every value is escaped by maud; passwords are never echoed back.

use doorward_core::model::User;
use maud::{html, Markup};

use super::layout;
use crate::paths::path;

/// What the sign-up form keeps when it is shown again (never the password).
#[derive(Default)]
pub struct SignUpValues<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    /// The invitation's code (`[accounts] sign_up = "invite"`).
    pub invitation: &'a str,
}

/// The sign-up form. `invite`: an invitation is needed (its field is shown when the link
/// did not carry one).
pub fn sign_up(
    csrf: &str,
    next: &str,
    invite: bool,
    values: &SignUpValues<'_>,
    min_length: usize,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Create an account",
        html! {
            h1 { "Create an account" }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            form method="post" action=(path("/signup")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                @if invite {
                    label for="invitation" { "Invitation code" }
                    input id="invitation" name="invitation" type="text" required
                        autocomplete="off" value=(values.invitation);
                }
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username"
                    required autofocus maxlength="64" value=(values.username);
                p.small { "2 to 64 of a-z, 0-9 and . _ - @ +" }
                label for="display_name" { "Your name (optional)" }
                input id="display_name" name="display_name" type="text" autocomplete="name"
                    maxlength="100" value=(values.display_name);
                label for="email" { "E-mail address (optional)" }
                input id="email" name="email" type="email" autocomplete="email"
                    maxlength="254" value=(values.email);
                label for="password" { "Password" }
                input id="password" name="password" type="password"
                    autocomplete="new-password" required minlength=(min_length) maxlength="256";
                p.small {
                    "At least " (min_length) " characters. A few words you will remember are \
                     good; a common password, or one built on your name, is refused."
                }
                label for="password2" { "Password, again" }
                input id="password2" name="password2" type="password"
                    autocomplete="new-password" required;
                button type="submit" { "Create the account" }
            }
            p.small { "Already have one? " a href=(path("/login")) { "Sign in" } "." }
        },
    )
}

/// The form that sets a new password, the current one asked again.
pub fn password_change(user: &User, csrf: &str, min_length: usize, notice: Option<&str>) -> Markup {
    layout(
        "Change your password",
        html! {
            h1 { "Change your password" }
            p { "Signed in as " strong { (user.display_name) } " (" (user.username) ")." }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            form method="post" action=(path("/account/password")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="current" { "Current password" }
                input id="current" name="current" type="password"
                    autocomplete="current-password" required;
                label for="password" { "New password" }
                input id="password" name="password" type="password"
                    autocomplete="new-password" required minlength=(min_length) maxlength="256";
                p.small { "At least " (min_length) " characters." }
                label for="password2" { "New password, again" }
                input id="password2" name="password2" type="password"
                    autocomplete="new-password" required;
                button type="submit" { "Change the password" }
            }
            p.small {
                "Every other browser signed in to this account will be signed out."
            }
            p { a href=(path("/account")) { "Back to your account" } }
        },
    )
}

/// The form that deletes the account, the password asked again.
pub fn delete_account(user: &User, csrf: &str, notice: Option<&str>) -> Markup {
    layout(
        "Delete your account",
        html! {
            h1 { "Delete your account" }
            p {
                "This deletes " strong { (user.username) } " for good: the applications you \
                 allowed lose their access at once, and the name can be taken by someone else."
            }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            form method="post" action=(path("/account/delete")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="password" { "Your password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                label {
                    input type="checkbox" name="confirm" value="yes" required;
                    " I want to delete my account"
                }
                button.danger type="submit" { "Delete the account" }
            }
            p { a href=(path("/account")) { "Keep it, back to your account" } }
        },
    )
}
