"""The admin console `/admin` of a running `doorward serve` (SQLite and PostgreSQL): only admin
users get in; disabling a user from the console stops its live token at once; the console's
user actions, clients (added, a new secret, removed), signing keys (rotated), invitations and
events work and are audited with the admin as actor; an action that changes access needs a
recent sign-in; forms without their CSRF token, markup and bad values are refused with a clear
page, never a 5xx; the console is never framed.
"""

from __future__ import annotations

import json
import re
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

ROOT_PASSWORD = "root console passphrase"


def make(request, tmp_path, extra: str = "") -> DoorwardServer:
    database = database_for(request, tmp_path, "admin")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database, extra_config=extra)
    server.start()
    request.addfinalizer(server.stop)
    added = doorward(server, "users", "add", "root", "--admin", "--password-stdin",
                     stdin=ROOT_PASSWORD)
    assert added.returncode == 0, added.stderr
    return server


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    return make(request, tmp_path)


def doorward(server, *args: str, stdin: str = ""):
    return doorward_cli(server, *args, stdin=stdin)


def user_id(server, name: str) -> str:
    return json.loads(doorward(server, "users", "show", name, "--json").stdout)["id"]


def act(browser, page, action: str, **fields):
    form = next(f for f in __import__("helpers").parse_forms(page.text)
                if ("action", action) in f.hidden)
    return browser.submit(page, form, fields)


def test_only_admins_get_in_and_a_disabled_user_loses_its_token(server):
    anonymous = Browser(server.origin)
    resp = anonymous.get("/admin")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?next=%2Fadmin")
    bob = Browser(server.origin)
    bob.login("bob")
    assert bob.get("/admin").status_code == 403
    result = authorize_as(bob, authorize_url(server.origin), "bob")
    token = assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))
    assert auth_self(server.origin, token["access_token"]).status_code == 200

    root = Browser(server.origin)
    root.login("root", ROOT_PASSWORD, next_url="/admin")
    home = root.get("/admin")
    assert home.status_code == 200 and "Recent events" in home.text
    assert home.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    listing = root.get("/admin/users?search=bo")
    assert "bob" in listing.text and "alice" not in listing.text
    page = root.get(f"/admin/users/{user_id(server, 'bob')}")
    assert page.status_code == 200
    resp = act(root, page, "disable")
    assert resp.status_code == 200 and "Disabled" in resp.text
    assert auth_self(server.origin, token["access_token"]).status_code == 401, "its live token stops"
    assert bob.get("/account").status_code == 303, "its session ends"
    resp = act(root, resp, "enable")
    assert resp.status_code == 200 and "Enabled" in resp.text

    events = root.get("/admin/events?kind=admin.")
    root_id = user_id(server, "root")
    assert "admin.user.disabled" in events.text and f"admin:{root_id}" in events.text


def test_user_actions_clients_keys_and_invitations(server):
    root = Browser(server.origin)
    root.login("root", ROOT_PASSWORD, next_url="/admin")
    carol = user_id(server, "carol")
    page = root.get(f"/admin/users/{carol}")
    # The admin cannot lock itself out.
    mine = root.get(f"/admin/users/{user_id(server, 'root')}")
    resp = act(root, mine, "disable")
    assert resp.status_code == 400 and "cannot disable" in resp.text
    # A weak password is refused, a good one set (carol is signed out).
    resp = act(root, page, "set-password", password="short")
    assert resp.status_code == 400 and "at least 15 characters" in resp.text
    resp = act(root, page, "set-password", password="carol new long passphrase")
    assert resp.status_code == 200 and "Password set" in resp.text
    signed = Browser(server.origin)
    assert signed.login("carol", "carol new long passphrase").status_code == 303
    resp = act(root, resp, "require-second-factor")
    assert "now required" in resp.text
    assert json.loads(doorward(server, "users", "show", "carol", "--json").stdout)["second_factor_required"]
    resp = act(root, resp, "second-factor-optional")
    resp = act(root, resp, "make-admin")
    assert json.loads(doorward(server, "users", "show", "carol", "--json").stdout)["admin"] is True
    resp = act(root, resp, "remove-admin")
    # Removal needs the box ticked.
    resp = act(root, resp, "remove")
    assert resp.status_code == 400 and "Tick the box" in resp.text
    resp = act(root, resp, "remove", confirm="yes")
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/users"
    assert doorward(server, "users", "show", "carol").returncode != 0
    # Without the CSRF token: refused.
    assert root.post(f"/admin/users/{user_id(server, 'dave')}", data={"action": "disable"}).status_code == 403

    # Clients: bad input is shown back, a client is added with its secret once, rotated, removed.
    clients = root.get("/admin/clients")
    form = find_form(clients, "/admin/clients")
    for fields, words in [
        ({"name": "<b>x</b>", "app_uri": "https://a.example", "redirect_uri": "https://a.example/cb"}, "Name:"),
        ({"name": "shop", "app_uri": "javascript:alert(1)", "redirect_uri": "https://a.example/cb"}, "Home page"),
        ({"name": "shop", "app_uri": "https://a.example", "redirect_uri": "javascript:alert(1)"}, "Redirect URI"),
        ({"name": "python_client", "app_uri": "https://a.example", "redirect_uri": "https://a.example/cb"}, "is taken"),
    ]:
        resp = root.submit(clients, form, fields)
        assert resp.status_code == 400 and words in resp.text, (fields, resp.text[:1500])
        assert "<b>x</b>" not in resp.text
    made = root.submit(clients, form, {"name": "shop", "display_name": "Shop", "app_uri": "https://shop.example",
                                       "redirect_uri": "https://shop.example/cb"})
    assert made.status_code == 200
    secret = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)
    shown = json.loads(doorward(server, "clients", "show", "shop@clients", "--json").stdout)
    assert shown["source"] == "cli" and secret not in json.dumps(shown)
    refused = token_request(server.origin, auth=basic("shop@clients", secret + "x"), form={
        "grant_type": "authorization_code", "code": "dwc_none", "redirect_uri": "https://shop.example/cb"})
    assert refused.status_code == 401
    works = token_request(server.origin, auth=basic("shop@clients", secret), form={
        "grant_type": "authorization_code", "code": "dwc_none", "redirect_uri": "https://shop.example/cb"})
    assert works.status_code == 400 and works.json()["error"] == "invalid_grant", "the secret is right"
    clients = root.get("/admin/clients")
    rotate = next(f for f in __import__("helpers").parse_forms(clients.text)
                  if f.action.endswith(f"/admin/clients/{shown['client_id']}/rotate"))
    rotated = root.submit(clients, rotate)
    assert rotated.status_code == 200 and secret not in rotated.text
    remove = next(f for f in __import__("helpers").parse_forms(clients.text)
                  if f.action.endswith(f"/admin/clients/{shown['client_id']}/remove"))
    assert root.submit(clients, remove).status_code == 200
    assert doorward(server, "clients", "show", "shop@clients").returncode != 0

    # Keys: rotated now.
    keys = root.get("/admin/keys")
    assert "active" in keys.text
    rotate = next(f for f in __import__("helpers").parse_forms(keys.text) if ("alg", "ES256") in f.hidden)
    resp = root.submit(keys, rotate)
    assert resp.status_code == 200 and "New ES256 key" in resp.text and "next" in resp.text

    # Invitations: made (the link shown once) and withdrawn.
    page = root.get("/admin/invitations")
    resp = root.submit(page, find_form(page, "/admin/invitations"), {"email": "new@example.com", "days": "3"})
    assert resp.status_code == 200 and "/signup?invite=dwi_" in resp.text
    resp = root.submit(page, find_form(page, "/admin/invitations"), {"days": "99"})
    assert resp.status_code == 400 and "1 to 30 days" in resp.text
    listed = json.loads(doorward(server, "users", "invitations", "--json").stdout)
    assert [i["email"] for i in listed] == ["new@example.com"]
    page = root.get("/admin/invitations")
    withdraw = next(f for f in __import__("helpers").parse_forms(page.text) if "/withdraw" in f.action)
    assert root.submit(page, withdraw).status_code == 200
    assert json.loads(doorward(server, "users", "invitations", "--json").stdout) == []


def test_an_old_sign_in_must_sign_in_again(request, tmp_path):
    # Whole seconds: a sign-in is fresh for 4 to 5 s, long enough for the second sign-in's
    # requests on a busy machine.
    server = make(request, tmp_path, "[accounts]\nadmin_fresh_sign_in = 4\n")
    root = Browser(server.origin)
    root.login("root", ROOT_PASSWORD, next_url="/admin")
    page = root.get(f"/admin/users/{user_id(server, 'erin')}")
    time.sleep(5.5)
    resp = act(root, page, "disable")
    assert resp.status_code == 403 and "Confirm it is you" in resp.text
    assert json.loads(doorward(server, "users", "show", "erin", "--json").stdout)["disabled"] is False
    again = re.search(r'href="(/login\?next=[^"]+)"', resp.text).group(1).replace("&amp;", "&")
    login = root.get(again)
    resp = root.submit(login, find_form(login, "/login"), {"username": "root", "password": ROOT_PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/users/")
    page = root.get(resp.headers["Location"])
    resp = act(root, page, "disable")
    assert resp.status_code == 200 and "Disabled" in resp.text
