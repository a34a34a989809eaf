//! The pages of passkeys: the button that signs in with one (on the sign-in page and the
//! second-factor page), the account's list of passkeys, and the page that creates one.
//!
//! WebAuthn needs a script: [`PASSKEY_SCRIPT`], the only one of these pages, is allowed by its
//! hash (`response::page::page_with_script`). It reads the ceremony's options from the box's
//! `data-options` attribute (JSON, escaped like any attribute), asks the authenticator, puts
//! its answer (`PublicKeyCredential.toJSON()`) in the form and submits it: the answer goes back
//! as an ordinary form post with its CSRF token. Without a script, or in a browser without
//! WebAuthn, the button stays hidden and the page says why.

use doorward_core::model::{PasskeyRecord, User};
use doorward_core::passkeys::{Ceremony, MAX_NAME};
use maud::{html, Markup, PreEscaped};

use super::layout;
use crate::paths::path;

/// The one script of the passkey pages.
pub const PASSKEY_SCRIPT: &str = r#"(function () {
  var box = document.getElementById("passkey");
  if (!box) { return; }
  var button = box.querySelector("button");
  var form = box.querySelector("form");
  var error = box.querySelector(".passkey-error");
  var show = function (text) { error.textContent = text; error.hidden = false; };
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    show("This browser cannot use passkeys.");
    return;
  }
  button.hidden = false;
  box.querySelector(".passkey-noscript").hidden = true;
  button.addEventListener("click", function () {
    error.hidden = true;
    var options = JSON.parse(box.getAttribute("data-options")).publicKey;
    var asked = box.getAttribute("data-ceremony") === "create"
      ? navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
      : navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    asked.then(function (credential) {
      form.elements.answer.value = JSON.stringify(credential.toJSON());
      form.submit();
    }, function (e) {
      show("The passkey was not used (" + e.name + "). You can try again.");
    });
  });
})();"#;

/// Whether a ceremony creates a passkey or uses one.
#[derive(Clone, Copy)]
pub enum Use {
    Create,
    Get,
}

/// The box of a passkey ceremony: its button, and the form that takes the answer to `action`
/// with `fields` beside it.
pub fn passkey_box(
    ceremony: &Ceremony,
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    kind: Use,
) -> Markup {
    let kind = match kind {
        Use::Create => "create",
        Use::Get => "get",
    };
    html! {
        div #passkey data-ceremony=(kind) data-options=(ceremony.options) {
            form method="post" action=(path(action)) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="state" value=(ceremony.state);
                input type="hidden" name="answer" value="";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button.secondary type="button" hidden { (label) }
            }
            p.small.passkey-noscript { "Passkeys need JavaScript in this page." }
            p.error.passkey-error role="alert" hidden {}
        }
        script { (PreEscaped(PASSKEY_SCRIPT)) }
    }
}

/// The account's passkeys, and the form that adds one where the server offers passkeys
/// (`available`).
pub fn passkeys(
    user: &User,
    csrf: &str,
    list: &[PasskeyRecord],
    available: bool,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Passkeys",
        html! {
            h1 { "Passkeys" }
            p { "Signed in as " strong { (user.display_name) } " (" (user.username) ")." }
            @if let Some(notice) = notice {
                p.error role="alert" { (notice) }
            }
            p {
                "A passkey signs you in with your device's screen lock or a security key, \
                 without your password, and stands as your second factor after it."
            }
            @if list.is_empty() {
                p { "No passkey yet." }
            } @else {
                ul.apps {
                    @for passkey in list {
                        li {
                            strong { (passkey.name) }
                            " — added " (super::admin::when(passkey.created_at))
                            @match passkey.last_used_at {
                                Some(at) => { ", last used " (super::admin::when(at)) }
                                None => { ", never used" }
                            }
                            form method="post" action=(path("/account/passkeys/remove")) {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="id" value=(passkey.id);
                                label for=(format!("remove-{}", passkey.id)) { "Your password" }
                                input id=(format!("remove-{}", passkey.id)) name="password"
                                    type="password" autocomplete="current-password" required;
                                button.danger type="submit" { "Remove " (passkey.name) }
                            }
                        }
                    }
                }
            }
            @if !available {
                p.small {
                    "Passkeys cannot be added here: this server's address is not a domain name \
                     (browsers offer passkeys on https:// sites and on localhost only)."
                }
            } @else {
            h2 { "Add a passkey" }
            form method="post" action=(path("/account/passkeys/new")) {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { "A name for it" }
                input id="name" name="name" type="text" required maxlength=(MAX_NAME)
                    placeholder="Laptop";
                label for="password" { "Your password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                button type="submit" { "Continue" }
            }
            }
            p { a href=(path("/account")) { "Back to your account" } }
        },
    )
}

/// The page that asks the authenticator to create the passkey `name`.
pub fn passkey_creation(csrf: &str, name: &str, ceremony: &Ceremony) -> Markup {
    layout(
        "Add a passkey",
        html! {
            h1 { "Add a passkey" }
            p { "Press the button, then follow your browser: it asks your device or security key to make the passkey " strong { (name) } "." }
            (passkey_box(ceremony, "/account/passkeys", csrf, &[("name", name)], "Create the passkey", Use::Create))
            p.small { a href=(path("/account/passkeys")) { "Cancel" } }
        },
    )
}
