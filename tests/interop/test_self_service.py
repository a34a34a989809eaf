"""What people do for themselves on a running `doorward serve` (SQLite and PostgreSQL): sign up
openly or with an invitation from `doorward users invite`, then use the account at once with a
real client; change the password (the current one asked, other browsers signed out); delete the
account (its tokens die with it). Bad input — markup, odd unicode, huge values, a missing or
wrong CSRF token, weak passwords, a taken name, a used or withdrawn invitation — gets a clear
answer, stores nothing, and never a 5xx (the helpers' session fails on any 5xx).
"""

from __future__ import annotations

import json
import time

import pytest

from helpers import (
    Browser,
    database_for,
    doorward_cli,
    DoorwardServer,
    assert_token_response,
    auth_self,
    authorize_as,
    authorize_url,
    basic,
    doorward_bin,
    find_form,
    token_request,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    USERS,
)

GOOD = "a long enough passphrase here"
NEW = "another long passphrase, new"


def make_server(request, tmp_path, mode: str) -> DoorwardServer:
    database = database_for(request, tmp_path, "self_service")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database,
                            extra_config=f'[accounts]\nsign_up = "{mode}"\n')
    server.start()
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(params=["sqlite", "postgres"])
def open_server(request, tmp_path):
    return make_server(request, tmp_path, "open")


@pytest.fixture(params=["sqlite", "postgres"])
def invite_server(request, tmp_path):
    return make_server(request, tmp_path, "invite")


def doorward(server, *args: str):
    return doorward_cli(server, *args)


def usernames(server) -> list[str]:
    result = doorward(server, "users", "list", "--json")
    assert result.returncode == 0, result.stderr
    return sorted(u["username"] for u in json.loads(result.stdout))


def sign_up(server, fields: dict, url: str = "/signup", browser: Browser | None = None):
    browser = browser or Browser(server.origin)
    page = browser.get(url)
    assert page.status_code in (200, 400), page.text
    values = {"password": GOOD, "password2": GOOD, **fields}
    return browser, browser.submit(page, find_form(page, "/signup"), values)


def code_flow_tokens(server, browser) -> dict:
    result = authorize_as(browser, authorize_url(server.origin), "alice")
    return assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))


def test_an_open_sign_up_gives_a_working_account(open_server):
    server = open_server
    login = Browser(server.origin).get("/login?next=/account")
    assert "/signup?next=%2Faccount" in login.text, "the sign-in page offers sign-up"
    browser, resp = sign_up(server, {"username": "Zoe.Q", "display_name": "Zoë <Q>",
                                     "email": "zoe@example.com"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text
    account = browser.get("/account")
    assert "Zoë &lt;Q&gt;" in account.text and "(zoe.q)" in account.text
    tokens = code_flow_tokens(server, browser)
    assert auth_self(server.origin, tokens["access_token"]).json()["user"]["display_name"]["current"]["value"] == "Zoë <Q>"
    shown = json.loads(doorward(server, "users", "show", "zoe.q", "--json").stdout)
    assert shown["source"] == "sign_up" and shown["email"] == "zoe@example.com"
    assert shown["email_verified"] is False
    events = doorward(server, "events", "--json", "--kind", "account.")
    assert "account.signed_up" in events.stdout


BAD_SIGN_UPS = [
    ({"username": "<script>alert(1)</script>"}, "Username: use only letters"),
    ({"username": "élodie"}, "Username: use only letters"),
    ({"username": "x"}, "Username: use 2 to 64 characters"),
    ({"username": "u" * 65}, "Username: use 2 to 64 characters"),
    ({"username": "bidi", "display_name": "Ada\u202eecalevol"}, "Display name: control and invisible"),
    ({"username": "zw", "display_name": "A\u200bB"}, "Display name: control and invisible"),
    ({"username": "long", "display_name": "D" * 1000}, "Display name: use 1 to 100 characters"),
    ({"username": "mail", "email": "<b>@x.example"}, "E-mail address: write it as"),
    ({"username": "weak", "password": "short", "password2": "short"}, "at least 15 characters"),
    ({"username": "common", "password": "1qaz2wsx3edc4rfv", "password2": "1qaz2wsx3edc4rfv"}, "most common"),
    ({"username": "mine", "password": "mine mine mine mine", "password2": "mine mine mine mine"}, "built on your username"),
    ({"username": "twice", "password2": "something else entirely"}, "The two passwords differ."),
    ({"username": "alice"}, "The username `alice` is taken."),
]


def test_bad_sign_ups_say_what_to_fix_and_store_nothing(open_server):
    server = open_server
    before = usernames(server)
    for fields, words in BAD_SIGN_UPS:
        _, resp = sign_up(server, fields)
        assert resp.status_code == 400, (fields, resp.status_code)
        assert words in resp.text.replace("&#x27;", "'"), (fields, words, resp.text[:2000])
        assert "<script>alert" not in resp.text, "markup comes back escaped"
        assert GOOD not in resp.text, "a password is never echoed"
    # A body past 64 KiB, a missing and a wrong CSRF token.
    browser = Browser(server.origin)
    page = browser.get("/signup")
    form = find_form(page, "/signup")
    huge = browser.submit(page, form, {"username": "huge", "display_name": "D" * 70_000,
                                       "password": GOOD, "password2": GOOD})
    assert huge.status_code == 400 and "could not be read" in huge.text
    no_csrf = browser.post("/signup", data={"username": "nocsrf", "password": GOOD, "password2": GOOD})
    assert no_csrf.status_code == 403
    wrong = browser.post("/signup", data={"csrf": "forged", "username": "wrongcsrf",
                                          "password": GOOD, "password2": GOOD})
    assert wrong.status_code == 403
    assert usernames(server) == before


def test_sign_ups_from_one_address_are_throttled(open_server):
    server = open_server
    statuses = [sign_up(server, {"username": f"burst{n}"})[1].status_code for n in range(7)]
    assert statuses[:5] == [303] * 5 and statuses[5] == 429, statuses
    _, resp = sign_up(server, {"username": "burst9"})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "burst9" not in usernames(server)


def test_invitations_are_needed_used_once_and_withdrawn(invite_server):
    server = invite_server
    _, resp = sign_up(server, {"username": "nocode"})
    assert resp.status_code == 400 and "unknown, used or expired" in resp.text
    made = json.loads(doorward(server, "users", "invite", "--email", "ivy@example.com", "--json").stdout)
    link = made["link"]
    assert link.startswith(server.origin + "/signup?invite=dwi_")
    path = link[len(server.origin):]
    page = Browser(server.origin).get(path)
    assert page.status_code == 200 and 'value="ivy@example.com"' in page.text
    listed = json.loads(doorward(server, "users", "invitations", "--json").stdout)
    assert [i["id"] for i in listed] == [made["id"]] and made["code"] not in json.dumps(listed)
    browser, resp = sign_up(server, {"username": "ivy", "invitation": made["code"]}, url=path)
    assert resp.status_code == 303
    assert browser.get("/account").status_code == 200
    # Used: the link is refused, for another name too.
    assert Browser(server.origin).get(path).status_code == 400
    _, resp = sign_up(server, {"username": "ivo", "invitation": made["code"]})
    assert resp.status_code == 400 and "unknown, used or expired" in resp.text
    assert json.loads(doorward(server, "users", "invitations", "--json").stdout) == []
    # A taken name leaves the invitation usable.
    second = json.loads(doorward(server, "users", "invite", "--json").stdout)
    _, resp = sign_up(server, {"username": "alice", "invitation": second["code"]})
    assert resp.status_code == 400 and "taken" in resp.text
    withdrawn = doorward(server, "users", "uninvite", second["id"], "--json")
    assert withdrawn.returncode == 0, withdrawn.stderr
    _, resp = sign_up(server, {"username": "ivo", "invitation": second["code"]})
    assert resp.status_code == 400
    assert doorward(server, "users", "uninvite", second["id"]).returncode != 0
    # Expired.
    short = json.loads(doorward(server, "users", "invite", "--expires-in", "1", "--json").stdout)
    time.sleep(2.1)
    _, resp = sign_up(server, {"username": "late", "invitation": short["code"]})
    assert resp.status_code == 400
    assert "ivo" not in usernames(server) and "late" not in usernames(server)


def test_sign_up_is_off_by_default(tmp_path):
    server = DoorwardServer(doorward_bin(), tmp_path, database=f"sqlite:{tmp_path / 'off.sqlite'}")
    server.start()
    try:
        browser = Browser(server.origin)
        assert browser.get("/signup").status_code == 404
        assert "/signup" not in browser.get("/login").text
    finally:
        server.stop()


def test_a_password_change_and_a_deletion(open_server):
    server = open_server
    browser, resp = sign_up(server, {"username": "pat"})
    assert resp.status_code == 303
    other = Browser(server.origin)
    assert other.login("pat", GOOD).status_code == 303
    tokens = code_flow_tokens(server, browser)

    page = browser.get("/account/password")
    form = find_form(page, "/account/password")
    for fields, words in [
        ({"current": "not it at all, no", "password": NEW, "password2": NEW}, "The current password is wrong."),
        ({"current": GOOD, "password": NEW, "password2": NEW + "x"}, "The two new passwords differ."),
        ({"current": GOOD, "password": "pat pat pat pat pat", "password2": "pat pat pat pat pat"}, "built on your username"),
    ]:
        resp = browser.submit(page, form, fields)
        assert resp.status_code == 400 and words in resp.text.replace("&#x27;", "'"), (fields, resp.text[:1500])
    resp = browser.submit(page, form, {"current": GOOD, "password": NEW, "password2": NEW})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert browser.get("/account").status_code == 200, "this browser stays signed in"
    assert other.get("/account").status_code == 303, "the other browser is signed out"
    assert Browser(server.origin).post("/login").status_code in (400, 403)
    relog = Browser(server.origin)
    page = relog.get("/login")
    assert relog.submit(page, find_form(page, "/login"), {"username": "pat", "password": GOOD}).status_code == 401
    assert auth_self(server.origin, tokens["access_token"]).status_code == 200, "tokens stay"

    page = browser.get("/account/delete")
    form = find_form(page, "/account/delete")
    resp = browser.submit(page, form, {"password": NEW})
    assert resp.status_code == 400 and "Tick the box" in resp.text
    resp = browser.submit(page, form, {"password": GOOD, "confirm": "yes"})
    assert resp.status_code == 400 and "The current password is wrong." in resp.text
    resp = browser.submit(page, form, {"password": NEW, "confirm": "yes"})
    assert resp.status_code == 200 and "Account deleted" in resp.text
    assert auth_self(server.origin, tokens["access_token"]).status_code == 401
    assert "pat" not in usernames(server)
    assert browser.get("/account").status_code == 303

    # An account of the configuration file is not the person's to delete.
    alice = Browser(server.origin)
    alice.login("alice", USERS["alice"][0])
    page = alice.get("/account/delete")
    resp = alice.submit(page, find_form(page, "/account/delete"),
                        {"password": USERS["alice"][0], "confirm": "yes"})
    assert resp.status_code == 400 and "managed by the server" in resp.text.replace("&#x27;", "'")
    assert "alice" in usernames(server)
