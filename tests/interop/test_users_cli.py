"""`doorward users …` against a running `doorward serve`, on SQLite and on PostgreSQL
(`DOORWARD_TEST_POSTGRES_URL`, a schema of its own): an account made by the command line signs
in at once; disabling it ends its browser session and its live tokens (bearer call,
introspection, refresh) and refuses its sign-in; enabling gives back the sign-in only; a new
password signs it out and replaces the old; unlocking lifts the lock of failed sign-ins at once;
removal ends everything. Users of the configuration file need `--force` for what the next start
would undo. Bad input (markup, odd unicode, huge values, weak passwords) gets a non-zero exit,
one line on stderr, and nothing stored.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from helpers import (
    database_for,
    Browser,
    DoorwardServer,
    assert_token_response,
    auth_self,
    authorize_as,
    authorize_url,
    basic,
    doorward_bin,
    find_form,
    introspect,
    token_request,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
)

RS_KEY, RS_SECRET = "rs_app@clients", "rs_app_secret_1"
RS_CONFIG = f"""
[clients.rs_app]
display_name = "Resource server"
app_uri = "http://localhost:8101"
callback_uri = "http://localhost:8101/cb"
secret = "{RS_SECRET}"
resource_server = true
"""
PASSWORD = "ünïcödé pässwörd wïth spaces"
NEW_PASSWORD = "a second passphrase, longer"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    database = database_for(request, tmp_path, "users_cli")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database, extra_config=RS_CONFIG)
    server.start()
    yield server
    server.stop()


def users(server: DoorwardServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    database = server.command[server.command.index("--database") + 1]
    return subprocess.run(
        [str(doorward_bin()), "users", args[0], "--config", str(server.config_path),
         "--database", database, *args[1:]],
        capture_output=True, text=True, timeout=120, env=server.child_env(), cwd=server.workdir,
        input=stdin if stdin is not None else "",
    )


def ok_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    assert words in errors[0], errors[0]


def sign_in(server, username: str, password: str):
    """POST /login from a fresh browser; returns (browser, response) without following."""
    browser = Browser(server.origin)
    page = browser.get("/login?next=/account")
    assert page.status_code == 200
    resp = browser.submit(page, find_form(page, "/login"), {"username": username, "password": password})
    return browser, resp


def tokens_for(server, browser) -> dict:
    result = authorize_as(browser, authorize_url(server.origin), "alice")
    return assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))


def active(server, token: str) -> bool:
    return introspect(server.origin, token, basic(RS_KEY, RS_SECRET)).json()["active"]


def refresh(server, refresh_token: str):
    return token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "refresh_token", "refresh_token": refresh_token})


def test_a_cli_account_signs_in_is_disabled_enabled_reset_unlocked_and_removed(server):
    added = ok_json(users(server, "add", "Grace.H", "--display-name", "Grace <i>Hopper</i>",
                          "--email", "grace@example.com", "--password-stdin", "--json",
                          stdin=PASSWORD + "\n"))
    assert added["username"] == "grace.h" and added["source"] == "cli"
    assert added["admin"] is False and added["disabled"] is False
    assert added["email"] == "grace@example.com" and added["email_verified"] is False
    assert uuid.UUID(added["id"]).version == 4
    listing = users(server, "list", "--json")
    assert "argon2" not in listing.stdout and PASSWORD not in listing.stdout
    assert "grace.h" in {u["username"] for u in ok_json(listing)}
    assert [u["username"] for u in ok_json(users(server, "list", "--search", "HOPPER", "--json"))] == ["grace.h"]

    # Signs in at once on the running server; its name is shown as text, never as markup.
    browser, resp = sign_in(server, "grace.h", PASSWORD)
    assert resp.status_code == 303, resp.text
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Grace &lt;i&gt;Hopper&lt;/i&gt;" in account.text and "<i>Hopper" not in account.text
    tokens = tokens_for(server, browser)
    assert auth_self(server.origin, tokens["access_token"]).status_code == 200
    assert introspect(server.origin, tokens["access_token"], basic(RS_KEY, RS_SECRET)).json()["username"] == "grace.h"

    # Disabled: the session, the access token and the refresh token end at once.
    disabled = ok_json(users(server, "disable", "grace.h", "--json"))
    assert disabled["disabled"] is True and disabled["disabled_at"] is not None
    assert auth_self(server.origin, tokens["access_token"]).status_code == 401
    assert not active(server, tokens["access_token"])
    r = refresh(server, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    gone = browser.get("/account")
    assert gone.status_code == 303 and gone.headers["Location"].startswith("/login")
    _, resp = sign_in(server, "grace.h", PASSWORD)
    assert resp.status_code == 403 and "This account is disabled" in resp.text
    # A wrong password says nothing of the account's state.
    _, resp = sign_in(server, "grace.h", "not the password at all")
    assert resp.status_code == 401 and "disabled" not in resp.text

    # Enabled: the sign-in comes back, the tokens do not.
    assert ok_json(users(server, "enable", "grace.h", "--json"))["disabled"] is False
    browser, resp = sign_in(server, "grace.h", PASSWORD)
    assert resp.status_code == 303
    assert auth_self(server.origin, tokens["access_token"]).status_code == 401
    tokens = tokens_for(server, browser)

    # A new password: the old one stops, the browser is signed out, the tokens stay.
    ok_json(users(server, "set-password", "grace.h", "--password-stdin", "--json",
                  stdin=NEW_PASSWORD + "\r\n"))
    assert browser.get("/account").status_code == 303
    assert sign_in(server, "grace.h", PASSWORD)[1].status_code == 401
    assert sign_in(server, "grace.h", NEW_PASSWORD)[1].status_code == 303
    assert auth_self(server.origin, tokens["access_token"]).status_code == 200

    # Failed sign-ins lock the username; unlock lifts the lock at once.
    statuses = [sign_in(server, "grace.h", f"wrong guess number {n}")[1].status_code for n in range(7)]
    assert statuses[-1] == 429, statuses
    shown = ok_json(users(server, "show", "grace.h", "--json"))
    assert shown["failed_sign_ins"] >= 5 and shown["locked_until"] is not None, shown
    assert sign_in(server, "grace.h", NEW_PASSWORD)[1].status_code == 429
    assert ok_json(users(server, "unlock", "grace.h", "--json"))["was_locked"] is True
    assert ok_json(users(server, "show", added["id"], "--json"))["locked_until"] is None
    browser, resp = sign_in(server, "grace.h", NEW_PASSWORD)
    assert resp.status_code == 303

    # sign-out ends the browser sessions only.
    ended = ok_json(users(server, "sign-out", "grace.h", "--json"))
    assert ended["sessions_ended"] >= 1
    assert browser.get("/account").status_code == 303
    assert auth_self(server.origin, tokens["access_token"]).status_code == 200

    # Removal: everything ends, and the name is free again as a new account.
    removed = ok_json(users(server, "remove", "grace.h", "--json"))
    assert removed["removed"] == added["id"]
    assert auth_self(server.origin, tokens["access_token"]).status_code == 401
    assert not active(server, tokens["access_token"])
    assert refresh(server, tokens["refresh_token"]).status_code == 400
    assert sign_in(server, "grace.h", NEW_PASSWORD)[1].status_code == 401
    refused(users(server, "show", "grace.h"), "no user")
    again = ok_json(users(server, "add", "grace.h", "--password-stdin", "--json", stdin=PASSWORD))
    assert again["id"] != added["id"]


def test_users_of_the_configuration_need_force_and_the_admin_role_is_given(server):
    alice = ok_json(users(server, "show", "alice", "--json"))
    assert alice["source"] == "config" and alice["admin"] is False
    refused(users(server, "set-password", "alice", "--password-stdin", stdin=NEW_PASSWORD), "--force")
    refused(users(server, "remove", "alice"), "--force")
    refused(users(server, "update", "alice", "--display-name", "Al"), "--force")
    assert ok_json(users(server, "update", "alice", "--admin", "--json"))["admin"] is True
    assert ok_json(users(server, "update", "alice", "--no-admin", "--json"))["admin"] is False
    updated = ok_json(users(server, "update", "alice", "--display-name", "Alice L.", "--email", "",
                            "--force", "--json"))
    assert updated["display_name"] == "Alice L." and updated["email"] is None
    ok_json(users(server, "set-password", "alice", "--password-stdin", "--force", "--json",
                  stdin=NEW_PASSWORD))
    assert sign_in(server, "alice", NEW_PASSWORD)[1].status_code == 303
    # Disabling a configured user sticks: no --force needed.
    assert ok_json(users(server, "disable", "alice", "--json"))["disabled"] is True
    assert sign_in(server, "alice", NEW_PASSWORD)[1].status_code == 403


BAD_INPUT = [
    (["ok.name"], "short pass", "at least 15 characters"),
    (["ok.name"], "1qaz2wsx3edc4rfv", "most common"),
    (["ok.name"], "ok.name ok.name ok.name", "username"),
    (["ok.name", "--display-name", "Averylongname"], "averylongname 12", "username"),
    (["ok.name"], "doorward doorward doorward", "service"),
    (["ok.name"], "abcabcabcabcabcabc", "repetition"),
    (["ok.name"], "12345678901234567890", "repetition"),
    (["ok.name"], "tab\there and more text", "control characters"),
    (["ok.name"], "x" * 300, "at most 256"),
    (["ok.name"], "", "no password"),
    (["<script>alert(1)</script>"], PASSWORD, "username"),
    (["élodie"], PASSWORD, "username"),
    (["a"], PASSWORD, "username"),
    (["x" * 65], PASSWORD, "username"),
    (["_underscore"], PASSWORD, "username"),
    (["ok.name", "--display-name", "Ada\u202eecalevol"], PASSWORD, "display name"),
    (["ok.name", "--display-name", "Ada\u200b"], PASSWORD, "display name"),
    (["ok.name", "--display-name", "   "], PASSWORD, "display name"),
    (["ok.name", "--display-name", "D" * 100_000], PASSWORD, "display name"),
    (["ok.name", "--email", "ada@localhost"], PASSWORD, "e-mail"),
    (["ok.name", "--email", "<a>@example.com"], PASSWORD, "e-mail"),
    (["ok.name", "--email", "a" * 300 + "@example.com"], PASSWORD, "e-mail"),
    (["ALICE"], PASSWORD, "taken"),
]


def test_bad_input_exits_non_zero_with_one_line_and_stores_nothing(server):
    before = ok_json(users(server, "list", "--json"))
    for args, stdin, words in BAD_INPUT:
        refused(users(server, "add", *args, "--password-stdin", stdin=stdin + "\n" if stdin else ""), words)
    assert ok_json(users(server, "list", "--json")) == before


def test_unknown_users_and_bad_options_are_refused(server):
    for command in (["show"], ["disable"], ["enable"], ["remove"], ["unlock"], ["sign-out"],
                    ["update", "--admin"]):
        refused(users(server, command[0], "nobody", *command[1:]), "no user `nobody`")
    refused(users(server, "set-password", "nobody", "--password-stdin", stdin=PASSWORD), "no user")
    refused(users(server, "list", "--limit", "0"), "--limit")
    # No terminal and no --password-stdin: said, not hung.
    refused(users(server, "add", "someone", stdin=PASSWORD), "--password-stdin")
