//! The pages of the second factor: the code asked after the password, the enrolment of an
//! authenticator app (its QR code drawn on the server as inline SVG: no script, no image
//! request), the recovery codes shown once, and the account's settings.

use doorward_core::model::User;
use doorward_core::passkeys::Ceremony;
use doorward_core::second_factor::Enrolment;
use maud::{html, Markup, PreEscaped};

use super::layout;
use crate::paths::path;

/// What the second-factor page offers: a code field (an app's code when there is an app, a
/// recovery code always) and a passkey's button when the user has one.
pub struct Prompt<'a> {
    pub totp: bool,
    pub passkey: Option<&'a Ceremony>,
}

/// The second factor asked after the password.
pub fn second_factor_prompt(
    csrf: &str,
    next: &str,
    notice: Option<&str>,
    prompt: &Prompt<'_>,
) -> Markup {
    layout(
        "Second factor",
        html! {
            h1 { "Confirm it is you" }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            @if let Some(ceremony) = prompt.passkey {
                (super::passkeys::passkey_box(ceremony, "/login/second-factor/passkey", csrf, &[("next", next)], "Use a passkey", super::passkeys::Use::Get))
            }
            form method="post" action=(path("/login/second-factor")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                @if prompt.totp {
                    label for="code" { "The 6-digit code of your authenticator app, or a recovery code" }
                } @else {
                    label for="code" { "Or a recovery code" }
                }
                input id="code" name="code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" required autofocus[prompt.passkey.is_none()]
                    maxlength="32";
                button type="submit" { "Continue" }
            }
            p.small { a href=(path("/login")) { "Start again" } }
        },
    )
}

/// The enrolment of an authenticator app: at `action` (the account page's, or a sign-in's
/// that requires one), with `next` when it continues a sign-in.
pub fn enrolment(
    csrf: &str,
    action: &str,
    next: Option<&str>,
    enrolment: &Enrolment,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Set up an authenticator app",
        html! {
            h1 { "Set up an authenticator app" }
            @if next.is_some() {
                p { "This account signs in with a second factor. Set one up to continue." }
            }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            @if next.is_none() {
                p.small { "Or use a passkey instead: " a href=(path("/account/passkeys")) { "Passkeys" } "." }
            }
            p { "Scan this code with an authenticator app, then type the code it shows." }
            div.qr { (PreEscaped(qr_svg(&enrolment.uri))) }
            p.small { "Or type this key into the app: " code.secret { (enrolment.secret) } }
            form method="post" action=(path(action)) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="enrolment" value=(enrolment.form_token);
                @if let Some(next) = next {
                    input type="hidden" name="next" value=(next);
                }
                label for="code" { "The 6-digit code" }
                input id="code" name="code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" required maxlength="6";
                button type="submit" { "Turn it on" }
            }
        },
    )
}

/// Recovery codes, shown once.
pub fn recovery_codes(codes: &[String], continue_to: &str) -> Markup {
    layout(
        "Recovery codes",
        html! {
            h1 { "Your recovery codes" }
            p {
                "Keep these somewhere safe. Each one signs you in once if you lose your \
                 second factor (your authenticator app, your passkeys). They are shown only now."
            }
            ul.codes {
                @for code in codes {
                    li { code { (code) } }
                }
            }
            p { a href=(path(continue_to)) { "Continue" } }
        },
    )
}

/// The account's second factor: its state and what can be done with it.
pub fn second_factor_settings(
    user: &User,
    csrf: &str,
    recovery_left: u32,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Second factor",
        html! {
            h1 { "Second factor" }
            p { "Signed in as " strong { (user.display_name) } " (" (user.username) ")." }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            p { "An authenticator app is on. Recovery codes left: " strong { (recovery_left) } "." }
            p.small { "Passkeys are on their own page: " a href=(path("/account/passkeys")) { "Passkeys" } "." }
            h2 { "New recovery codes" }
            form method="post" action=(path("/account/second-factor/recovery-codes")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="renew-password" { "Your password" }
                input id="renew-password" name="password" type="password"
                    autocomplete="current-password" required;
                button.secondary type="submit" { "Make new recovery codes (the old ones stop)" }
            }
            h2 { "Turn it off" }
            form method="post" action=(path("/account/second-factor/remove")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="password" { "Your password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                button.danger type="submit" { "Turn off the second factor" }
            }
            p { a href=(path("/account")) { "Back to your account" } }
        },
    )
}

/// The QR code of `uri` as an SVG element (its XML declaration left out, for inline use).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            match svg.find("<svg") {
                Some(start) => svg[start..].to_owned(),
                None => String::new(),
            }
        }
        // A URI too long for a QR code cannot happen (the issuer's host and a username); the
        // key is shown as text anyway.
        Err(_) => String::new(),
    }
}
