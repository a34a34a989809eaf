"""Passkeys on a running `doorward serve` (SQLite and PostgreSQL), answered by a software
authenticator (`soft_authenticator.py`, python-fido2's structures, P-256 keys): a passkey is
added from the account page with the password again (and brings recovery codes as the first
second factor), signs in alone (no username) and as the second factor after a password, and
Authlib's OIDC client reads `amr`/`acr` after each. Replayed, stale, forged and bent answers
(another origin, no user verification, a broken signature, an unknown key, garbage) get a
clear page, nothing stored, never a 5xx. The issuer is `http://localhost:PORT`: WebAuthn needs
a domain.
"""

from __future__ import annotations

import base64
import html
import json
import re

import pytest

from helpers import (
    Browser,
    database_for,
    doorward_bin,
    doorward_cli,
    DoorwardServer,
    find_form,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_REDIRECT_URI,
)
from soft_authenticator import b64url, SoftAuthenticator
from test_oidc import FlaskRP

PASSWORD = "nell keeps a long passphrase"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    database = database_for(request, tmp_path, "passkeys")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database)
    server.external_uri = f"http://localhost:{server.port}"
    server.start()
    request.addfinalizer(server.stop)
    return server


def add_user(server, name: str) -> None:
    result = doorward_cli(server, "users", "add", name, "--password-stdin", stdin=PASSWORD)
    assert result.returncode == 0, result.stderr


def shown(server, name: str) -> dict:
    return json.loads(doorward_cli(server, "users", "show", name, "--json").stdout)


def signed_in(server, name: str) -> Browser:
    browser = Browser(server.external_uri)
    page = browser.get("/login")
    resp = browser.submit(page, find_form(page, "/login"), {"username": name, "password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text
    return browser


def options_of(page) -> dict:
    found = re.search(r'data-options="([^"]*)"', page.text)
    assert found, f"no passkey ceremony on {page.url}"
    return json.loads(html.unescape(found.group(1)))


def start_adding(browser, name: str = "Laptop", password: str = PASSWORD):
    page = browser.get("/account/passkeys")
    assert page.status_code == 200, page.text
    return browser.submit(page, find_form(page, "/account/passkeys/new"),
                          {"name": name, "password": password})


def add_passkey(server, browser, authenticator: SoftAuthenticator, name: str = "Laptop"):
    creation = start_adding(browser, name)
    assert creation.status_code == 200, creation.text
    answer = authenticator.create(options_of(creation))
    form = find_form(creation, "/account/passkeys")
    return creation, form, browser.submit(creation, form, {"answer": answer})


def passkey_sign_in(server, authenticator: SoftAuthenticator, next_url: str = "/account", **bend):
    browser = Browser(server.external_uri)
    page = browser.get(f"/login?next={next_url}")
    answer = authenticator.get(options_of(page), **bend)
    form = find_form(page, "/login/passkey")
    return browser, browser.submit(page, form, {"answer": answer})


def oidc_claims(server, browser) -> dict:
    rp = FlaskRP(server.external_uri, "oidc_app", OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI)
    token, _ = rp.sign_in(server.external_uri, browser, "-", OIDC_REDIRECT_URI)
    return dict(token["userinfo"])


def test_a_passkey_is_added_then_signs_in_alone(server):
    add_user(server, "nell")
    browser = signed_in(server, "nell")
    assert "No passkey yet." in browser.get("/account/passkeys").text

    # Refused before any ceremony: a wrong password, a bad name.
    for name, password, why in [
        ("Laptop", "not the password at all", "The password is wrong."),
        ("", PASSWORD, "1 to 64 characters"),
        ("x" * 65, PASSWORD, "1 to 64 characters"),
        ("tab\there", PASSWORD, "1 to 64 characters"),
    ]:
        refused = start_adding(browser, name, password)
        assert refused.status_code == 400 and why in refused.text, (name, refused.status_code)

    authenticator = SoftAuthenticator(server.external_uri)
    creation, form, done = add_passkey(server, browser, authenticator, "<b>Nell’s</b> laptop")
    assert "script-src 'sha256-" in creation.headers["Content-Security-Policy"]
    options = options_of(creation)["publicKey"]
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z2-7-]{14})</code></li>", done.text)
    assert len(codes) == 10, "the first second factor brings recovery codes"
    # The same answer again: its ceremony is spent.
    again = browser.submit(creation, form, {"answer": authenticator.create(options_of(creation))})
    assert again.status_code == 400 and "used already" in again.text
    user = shown(server, "nell")
    assert user["second_factor"] == "passkey" and user["recovery_codes_left"] == 10
    assert [p["name"] for p in user["passkeys"]] == ["<b>Nell’s</b> laptop"]
    listed = browser.get("/account/passkeys").text
    assert "&lt;b&gt;Nell’s&lt;/b&gt; laptop" in listed and "<b>Nell" not in listed

    # A passkey alone signs in, to where the request was going.
    other, resp = passkey_sign_in(server, authenticator)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text
    assert "(nell)" in other.get("/account").text
    claims = oidc_claims(server, other)
    assert claims["amr"] == ["hwk", "mfa"] and claims["acr"] == "urn:doorward:acr:mfa", claims
    assert shown(server, "nell")["passkeys"][0]["last_used_at"] is not None

    # A passkey a platform synchronises says so.
    synced = SoftAuthenticator(server.external_uri, backup_eligible=True)
    assert add_passkey(server, browser, synced, "Phone")[2].status_code == 303
    other, resp = passkey_sign_in(server, synced)
    assert resp.status_code == 303
    assert oidc_claims(server, other)["amr"] == ["swk", "mfa"]

    events = doorward_cli(server, "events", "--json", "--user", "nell").stdout
    kinds = [json.loads(line)["kind"] for line in events.splitlines()]
    assert "account.second_factor_enrolled" in kinds and "sign_in.second_factor" in kinds


def test_bad_passkey_answers_are_refused(server):
    add_user(server, "nell")
    browser = signed_in(server, "nell")
    authenticator = SoftAuthenticator(server.external_uri)
    assert add_passkey(server, browser, authenticator)[2].status_code == 200
    def attempt(page_authenticator, **bend):
        _, resp = passkey_sign_in(server, page_authenticator, **bend)
        return resp

    # Bent answers: refused (401) with the sign-in page again, nothing signed in.
    for why, resp in [
        ("another origin", attempt(authenticator, origin="http://evil.example")),
        ("no user verification", attempt(authenticator, user_verified=False)),
        ("a broken signature", attempt(authenticator, break_signature=True)),
        # A signature counter that goes back (a cloned key): once one sign-in stored a count.
        ("a counter gone back", attempt(authenticator) and attempt(authenticator, counter=1)),
    ]:
        assert resp.status_code == 401, (why, resp.status_code)
        assert "The passkey was not accepted" in resp.text, why
        assert "dw_session" not in resp.headers.get("Set-Cookie", ""), why

    # A key this server never registered, under the user's handle.
    stranger = SoftAuthenticator(server.external_uri)
    stranger.create({"publicKey": {
        "rp": {"id": "localhost"}, "challenge": "AAAA",
        "user": {"id": b64url(authenticator.credentials[0].user_handle)}}})
    assert attempt(stranger).status_code == 401

    page_browser = Browser(server.external_uri)
    # Garbage and huge answers, a forged state, none: each on a fresh page.
    for answer, bend_state, status in [
        (lambda o: "not json", None, 401),
        (lambda o: '{"a": "' + "x" * 20000 + '"}', None, 401),
        (authenticator.get, lambda s: s[:-4] + "AAAA", 400),
        (authenticator.get, lambda s: "", 400),
    ]:
        page = page_browser.get("/login")
        fields = dict(find_form(page, "/login/passkey").hidden)
        if bend_state:
            fields["state"] = bend_state(fields["state"])
        resp = page_browser.post("/login/passkey", data={**fields, "answer": answer(options_of(page))})
        assert resp.status_code == status, (fields["state"][-6:], resp.status_code)
    page = page_browser.get("/login")
    fields = dict(find_form(page, "/login/passkey").hidden)
    no_csrf = page_browser.post("/login/passkey", data={"state": fields["state"], "answer": "{}"})
    assert no_csrf.status_code == 403

    # A stale ceremony: answered once (refused), never again, even with a good answer.
    page = page_browser.get("/login")
    form = find_form(page, "/login/passkey")
    bad = page_browser.submit(page, form, {"answer": authenticator.get(options_of(page), user_verified=False)})
    assert bad.status_code == 401
    good = page_browser.submit(page, form, {"answer": authenticator.get(options_of(page))})
    assert good.status_code == 400 and "used already" in good.text
    # A registration's ceremony does not sign in.
    creation = start_adding(browser, "Second")
    good_answer = authenticator.get(options_of(page_browser.get("/login")))
    registration_state = dict(find_form(creation, "/account/passkeys").hidden)["state"]
    crossed = page_browser.post("/login/passkey", data={
        **fields, "state": registration_state, "answer": good_answer})
    assert crossed.status_code == 400

    # A disabled user's passkey signs nothing in.
    assert doorward_cli(server, "users", "disable", "nell").returncode == 0
    assert attempt(authenticator).status_code == 401
    assert doorward_cli(server, "users", "enable", "nell").returncode == 0
    _, ok = passkey_sign_in(server, authenticator)
    assert ok.status_code == 303
    assert len(shown(server, "nell")["passkeys"]) == 1, "nothing was stored by the refused answers"


def test_a_passkey_is_the_second_factor_after_the_password(server):
    add_user(server, "nell")
    browser = signed_in(server, "nell")
    authenticator = SoftAuthenticator(server.external_uri)
    _, _, done = add_passkey(server, browser, authenticator)
    codes = re.findall(r"<li><code>([a-z2-7-]{14})</code></li>", done.text)

    # The password now asks for the passkey (or a recovery code).
    fresh = Browser(server.external_uri)
    page = fresh.get("/login")
    resp = fresh.submit(page, find_form(page, "/login"), {"username": "nell", "password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/second-factor?")
    prompt = fresh.get(resp.headers["Location"])
    assert prompt.status_code == 200 and "Or a recovery code" in prompt.text
    allowed = [c["id"] for c in options_of(prompt)["publicKey"]["allowCredentials"]]
    assert len(allowed) == 1
    # Another user's pending sign-in does not take this answer: a bent one is refused first.
    refused = fresh.submit(prompt, find_form(prompt, "/login/second-factor/passkey"),
                           {"answer": authenticator.get(options_of(prompt), break_signature=True)})
    assert refused.status_code == 401 and "not accepted" in refused.text
    done = fresh.submit(refused, find_form(refused, "/login/second-factor/passkey"),
                        {"answer": authenticator.get(options_of(refused))})
    assert done.status_code == 303 and done.headers["Location"] == "/account", done.text
    claims = oidc_claims(server, fresh)
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "urn:doorward:acr:mfa"

    # A recovery code still works once.
    third = Browser(server.external_uri)
    page = third.get("/login")
    resp = third.submit(page, find_form(page, "/login"), {"username": "nell", "password": PASSWORD})
    prompt = third.get(resp.headers["Location"])
    used = third.submit(prompt, find_form(prompt, "/login/second-factor"), {"code": codes[0]})
    assert used.status_code == 303 and used.headers["Location"] == "/account"

    # Removed (the password again): the password alone signs in; the codes went with it.
    page = browser.get("/account/passkeys")
    form = find_form(page, "/account/passkeys/remove")
    wrong = browser.submit(page, form, {"password": "wrong password again"})
    assert wrong.status_code == 400 and "The password is wrong." in wrong.text
    gone = browser.submit(page, form, {"password": PASSWORD})
    assert gone.status_code == 303
    user = shown(server, "nell")
    assert user["passkeys"] == [] and user["second_factor"] is None
    assert user["recovery_codes_left"] is None
    signed_in(server, "nell")
    # The removed passkey signs nothing in.
    assert passkey_sign_in(server, authenticator)[1].status_code == 401


def test_the_admin_reset_removes_passkeys(server):
    add_user(server, "nell")
    browser = signed_in(server, "nell")
    authenticator = SoftAuthenticator(server.external_uri)
    add_passkey(server, browser, authenticator)
    assert doorward_cli(server, "users", "reset-second-factor", "nell").returncode == 0
    assert shown(server, "nell")["passkeys"] == []
    signed_in(server, "nell")


def test_acr_values_step_a_password_session_up_with_a_passkey(server):
    from helpers import authorize_url, basic, query_of, token_request

    add_user(server, "sue")
    browser = signed_in(server, "sue")  # the password alone: amr ["pwd"]
    authenticator = SoftAuthenticator(server.external_uri)
    assert add_passkey(server, browser, authenticator)[2].status_code == 200
    url = authorize_url(server.external_uri, client_id=OIDC_CLIENT_ID,
                        redirect_uri=OIDC_REDIRECT_URI, scope="openid", state="s1", nonce="n1",
                        acr_values="urn:doorward:acr:mfa")
    resp = browser.get(url)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/second-factor?")
    prompt = browser.get(resp.headers["Location"])
    resp = browser.submit(prompt, find_form(prompt, "/login/second-factor/passkey"),
                          {"answer": authenticator.get(options_of(prompt))})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/oauth/authorize?")
    resp = browser.get(resp.headers["Location"])
    if resp.status_code == 200:
        form = find_form(resp, "/oauth/authorize")
        resp = browser.submit(resp, form, button=form.button(value="approve"))
    code = query_of(resp.headers["Location"])["code"]
    answer = token_request(
        server.external_uri, auth=basic(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET),
        form={"grant_type": "authorization_code", "code": code, "redirect_uri": OIDC_REDIRECT_URI})
    assert answer.status_code == 200, answer.text
    payload = answer.json()["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["acr"] == "urn:doorward:acr:mfa" and claims["amr"] == ["pwd", "hwk", "mfa"], claims
