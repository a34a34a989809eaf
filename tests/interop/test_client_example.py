"""The doorward-client example app (crates/doorward-client/examples/eternaltwin_signin.rs) signs
users in against `doorward serve`, with the Eternaltwin preset and with the OIDC preset.

A browser (requests, cookies kept, no automatic redirects) clicks the app's sign-in button, goes
through Doorward's login and consent pages, lands on the app's callback and sees its name on the
app's home page. `bash scripts/test.sh` builds the example (DOORWARD_CLIENT_EXAMPLE_BIN).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from helpers import (
    REPO_ROOT,
    USER_EMAILS,
    USERS,
    Browser,
    DoorwardServer,
    ReadyProcess,
    describe,
    doorward_bin,
    drive_to_callback,
    find_form,
    free_port,
    query_of,
)

EXAMPLE_CLIENT_ID = "rust_example@clients"
EXAMPLE_SECRET = "rust_example_secret"


def example_bin() -> Path:
    env = os.environ.get("DOORWARD_CLIENT_EXAMPLE_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "examples" / "eternaltwin_signin"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A Doorward server of its own (SQLite) that registers the example app's callback."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/oauth/callback"
    extra = "\n".join([
        "[clients.rust_example]",
        'display_name = "Rust Example"',
        f'app_uri = "http://127.0.0.1:{port}"',
        f'callback_uri = "{callback}"',
        f'secret = "{EXAMPLE_SECRET}"',
        'scopes = ["base", "openid", "profile", "email"]',
        "",
    ])
    workdir = tmp_path_factory.mktemp("client-example")
    server = DoorwardServer(doorward_bin(), workdir, database=f"sqlite:{workdir / 'example.sqlite'}",
                            extra_config=extra)
    server.start()
    yield server, port, callback
    server.stop()


class ExampleApp(ReadyProcess):
    def __init__(self, port: int, env: dict[str, str]):
        self.origin = f"http://127.0.0.1:{port}"
        super().__init__([str(example_bin())], {**env, "LISTEN": f"127.0.0.1:{port}"},
                         "example listening on")


@pytest.fixture(params=["eternaltwin", "oidc"])
def example(request, provider):
    server, port, callback = provider
    app = ExampleApp(port, {
        "PROVIDER": request.param,
        "PROVIDER_URL": server.origin,
        "CLIENT_ID": EXAMPLE_CLIENT_ID,
        "CLIENT_SECRET": EXAMPLE_SECRET,
        "REDIRECT_URI": callback,
        "STATE_KEY": "0123456789abcdef0123456789abcdef-example",
    })
    yield request.param, server, app, callback
    app.stop()


def click_sign_in(browser: Browser, app: ExampleApp):
    """GET the home page and click the sign-in button: the app answers 302 to the provider."""
    home = browser.get(app.origin + "/")
    assert home.status_code == 200, describe(home)
    form = find_form(home, "/login")
    resp = browser.post(app.origin + "/login", data=dict(form.hidden))
    assert resp.status_code in (302, 303), describe(resp)
    return resp


def test_example_signs_a_user_in(example):
    preset, server, app, callback = example
    username = "emil" if preset == "eternaltwin" else "elena"
    browser = Browser(server.origin)
    resp = click_sign_in(browser, app)
    authorize = urlsplit(resp.headers["Location"])
    params = query_of(resp.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == server.origin and authorize.path == "/oauth/authorize"
    assert params["client_id"] == EXAMPLE_CLIENT_ID and params["code_challenge_method"] == "S256"
    if preset == "eternaltwin":
        assert params["scope"] == "base" and params["access_type"] == "offline" and "nonce" not in params
    else:
        assert params["scope"] == "openid profile email" and params["nonce"]

    result = drive_to_callback(browser, resp, username, redirect_uri=callback)
    assert result.login_shown and result.consent_shown
    back = browser.get(result.location)
    assert back.status_code == 303 and back.headers["Location"] == "/", describe(back)
    home = browser.get(app.origin + "/")
    assert home.status_code == 200, describe(home)
    display_name = USERS[username][1]
    assert "Signed in as" in home.text and display_name in home.text, home.text
    if preset == "oidc":
        assert USER_EMAILS[username][0] in home.text, home.text

    # Signing out ends the app's session.
    form = find_form(home, "/logout")
    out = browser.post(app.origin + "/logout", data=dict(form.hidden))
    assert out.status_code in (302, 303), describe(out)
    assert "Signed in as" not in browser.get(app.origin + "/").text


def test_example_refuses_a_forged_callback(example):
    preset, server, app, callback = example
    browser = Browser(server.origin)
    click_sign_in(browser, app)
    # A callback whose state the app never issued (login CSRF): refused, nothing redeemed.
    forged = browser.get(callback + "?" + urlencode({"code": "whatever", "state": "forged"}))
    assert forged.status_code == 400, describe(forged)
    assert "state" in forged.text
    # The provider's refusal comes back as a readable error.
    resp = click_sign_in(browser, app)
    state = query_of(resp.headers["Location"])["state"]
    denied = browser.get(callback + "?" + urlencode({"error": "access_denied", "error_description": "no",
                                                     "state": state, "iss": server.origin}))
    assert denied.status_code == 400, describe(denied)
    assert "access_denied" in denied.text


def test_example_sign_in_button_needs_its_csrf_token(example):
    _, server, app, _ = example
    browser = Browser(server.origin)
    browser.get(app.origin + "/")
    resp = browser.post(app.origin + "/login", data={"csrf": "not-the-token"})
    assert resp.status_code == 403, describe(resp)
