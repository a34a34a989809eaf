"""The second factor on a running `doorward serve` (SQLite and PostgreSQL), with codes from
pyotp: an authenticator app is enrolled from the account page (its QR code drawn inline, its key
as text), the next sign-in asks for a code after the password, a code works once, a recovery
code works once, wrong codes are throttled, and Authlib's OIDC client reads `amr` and `acr` in
the ID token after each kind of sign-in. A server or a user that requires a second factor makes
the sign-in set one up first. A stale or forged enrolment form and a forged pending sign-in get
a clear page, never a 5xx.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pyotp
import pytest

from helpers import (
    Browser,
    database_for,
    doorward_cli,
    DoorwardServer,
    doorward_bin,
    find_form,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_REDIRECT_URI,
    USERS,
)
from test_oidc import FlaskRP

PASSWORD = "tess long passphrase one"


def make(request, tmp_path, extra: str = "") -> DoorwardServer:
    database = database_for(request, tmp_path, "second_factor")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database, extra_config=extra)
    server.start()
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    return make(request, tmp_path)


def doorward(server, *args: str, stdin: str = ""):
    return doorward_cli(server, *args, stdin=stdin)


def add_user(server, name: str) -> None:
    result = doorward(server, "users", "add", name, "--password-stdin", stdin=PASSWORD)
    assert result.returncode == 0, result.stderr


def password_step(server, username: str, password: str, next_url: str = "/account"):
    browser = Browser(server.origin)
    page = browser.get(f"/login?next={next_url}")
    resp = browser.submit(page, find_form(page, "/login"), {"username": username, "password": password})
    return browser, resp


def enrol_from_page(browser, page, action: str, at: float | None = None, extra: dict | None = None):
    """Reads the key on the enrolment page and answers with its code (at `at`)."""
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    assert "<svg" in page.text and "otpauth" not in page.text.split("<svg")[0][-200:], \
        "the QR code is inline SVG"
    totp = pyotp.TOTP(secret)
    code = totp.at(at if at is not None else time.time())
    form = find_form(page, action)
    return secret, browser.submit(page, form, {"code": code, **(extra or {})})


def codes_on(page) -> list[str]:
    return re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>", page.text)


def second_step(browser, resp, code: str):
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/second-factor?"), resp.text
    prompt = browser.get(resp.headers["Location"])
    assert prompt.status_code == 200, prompt.text
    return browser.submit(prompt, find_form(prompt, "/login/second-factor"), {"code": code})


def oidc_claims(server, browser, username: str) -> dict:
    rp = FlaskRP(server.origin, "oidc_app", OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI)
    token, _ = rp.sign_in(server.origin, browser, username, OIDC_REDIRECT_URI)
    return dict(token["userinfo"])  # the ID token Authlib validated


def test_an_app_is_enrolled_and_asked_for_after_the_password(server):
    add_user(server, "tess")
    browser, resp = password_step(server, "tess", PASSWORD)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    claims = oidc_claims(server, browser, "tess")
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:doorward:acr:pwd", claims

    page = browser.get("/account/second-factor")
    assert page.status_code == 200
    # A wrong code: refused, and a new key is shown.
    _, refused = enrol_from_page(browser, page, "/account/second-factor/enrol",
                                 extra={"code": "000000"})
    assert refused.status_code == 400 and "did not match" in refused.text
    # A forged enrolment form: refused as expired.
    form = find_form(refused, "/account/second-factor/enrol")
    forged = browser.post("/account/second-factor/enrol", data={
        **dict(form.hidden), "enrolment": "AAAA.1.BBBB", "code": "123456"})
    assert forged.status_code == 400 and "expired" in forged.text
    secret, done = enrol_from_page(browser, refused, "/account/second-factor/enrol")
    assert done.status_code == 200, done.text
    recovery = codes_on(done)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    shown = json.loads(doorward(server, "users", "show", "tess", "--json").stdout)
    assert shown["second_factor"] == "totp" and shown["recovery_codes_left"] == 10
    totp = pyotp.TOTP(secret)

    # The next sign-in asks for a code; the enrolment's code (its step) is spent already.
    browser, resp = password_step(server, "tess", PASSWORD)
    assert resp.headers["Location"].startswith("/login/second-factor?")
    assert "dw_session" not in resp.headers.get("Set-Cookie", ""), "no session before the code"
    used = second_step(browser, resp, totp.at(time.time()))
    if used.status_code == 303:  # the step moved on since the enrolment: fine, but try a replay
        replay_browser, resp = password_step(server, "tess", PASSWORD)
        assert second_step(replay_browser, resp, totp.at(time.time())).status_code == 401, \
            "a code works once"
        browser = browser
    else:
        assert used.status_code == 401 and "used already" in used.text
        resp = browser.submit(used, find_form(used, "/login/second-factor"),
                              {"code": totp.at(time.time() + 30)})
        assert resp.status_code == 303, resp.text
        used = resp
    assert used.headers["Location"] == "/account"
    assert browser.get("/account").status_code == 200
    claims = oidc_claims(server, browser, "tess")
    assert claims["amr"] == ["pwd", "otp", "mfa"], claims
    assert claims["acr"] == "urn:doorward:acr:mfa", claims

    # A recovery code works once.
    other, resp = password_step(server, "tess", PASSWORD)
    assert second_step(other, resp, recovery[0].upper()).status_code == 303
    again, resp = password_step(server, "tess", PASSWORD)
    assert second_step(again, resp, recovery[0]).status_code == 401
    shown = json.loads(doorward(server, "users", "show", "tess", "--json").stdout)
    assert shown["recovery_codes_left"] == 9

    # Wrong codes are throttled.
    guesser, resp = password_step(server, "tess", PASSWORD)
    prompt = browser_prompt = guesser.get(resp.headers["Location"])
    statuses = []
    for n in range(7):
        answer = guesser.submit(browser_prompt, find_form(browser_prompt, "/login/second-factor"),
                                {"code": f"{n:06d}"})
        statuses.append(answer.status_code)
    assert statuses[-1] == 429 and 401 in statuses, statuses
    assert int(answer.headers["Retry-After"]) >= 1
    del prompt

    # A forged pending sign-in goes back to the sign-in page.
    forger = Browser(server.origin)
    forger.http.cookies.set("dw_pending", f"{uuid.uuid4()}.{int(time.time())}.AAAA")
    back = forger.get("/login/second-factor?next=/account")
    assert back.status_code == 303 and back.headers["Location"].startswith("/login")

    # Turned off: a wrong password keeps it, the right one removes it.
    settings = browser.get("/account/second-factor")
    form = find_form(settings, "/account/second-factor/remove")
    assert browser.submit(settings, form, {"password": "not the password"}).status_code == 400
    assert browser.submit(settings, form, {"password": PASSWORD}).status_code == 303
    _, resp = password_step(server, "tess", PASSWORD)
    assert resp.headers["Location"] == "/account", "the password alone again"

    events = doorward(server, "events", "--json", "--user", "tess", "--limit", "200").stdout
    kinds = {json.loads(line)["kind"] for line in events.splitlines()}
    assert {"account.second_factor_enrolled", "sign_in.second_factor",
            "account.second_factor_removed"} <= kinds, kinds


def test_a_required_second_factor_is_set_up_at_sign_in(request, tmp_path):
    server = make(request, tmp_path, '[accounts]\nsecond_factor = "required"\n')
    browser, resp = password_step(server, "alice", USERS["alice"][0])
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/enrol?")
    page = browser.get(resp.headers["Location"])
    assert page.status_code == 200 and "Set one up to continue" in page.text
    assert browser.get("/account").status_code == 303, "not signed in before the enrolment"
    _, done = enrol_from_page(browser, page, "/login/enrol")
    assert done.status_code == 200 and len(codes_on(done)) == 10
    assert 'href="/account"' in done.text
    assert browser.get("/account").status_code == 200


def test_one_user_can_be_required_and_reset_by_the_operator(request, tmp_path):
    server = make(request, tmp_path)
    updated = doorward(server, "users", "update", "bob", "--second-factor", "required", "--json")
    assert updated.returncode == 0 and json.loads(updated.stdout)["second_factor_required"] is True
    browser, resp = password_step(server, "bob", USERS["bob"][0])
    assert resp.headers["Location"].startswith("/login/enrol?")
    page = browser.get(resp.headers["Location"])
    _, done = enrol_from_page(browser, page, "/login/enrol")
    assert done.status_code == 200
    reset = doorward(server, "users", "reset-second-factor", "bob", "--json")
    assert reset.returncode == 0 and json.loads(reset.stdout)["had_one"] is True
    # Still required: the next sign-in sets one up again.
    _, resp = password_step(server, "bob", USERS["bob"][0])
    assert resp.headers["Location"].startswith("/login/enrol?")
    doorward(server, "users", "update", "bob", "--second-factor", "optional")
    _, resp = password_step(server, "bob", USERS["bob"][0])
    assert resp.headers["Location"] == "/account"


def test_acr_values_ask_a_password_session_for_its_second_factor(server):
    import base64
    from helpers import authorize_url, basic, query_of, token_request

    add_user(server, "sue")
    browser, resp = password_step(server, "sue", PASSWORD)
    assert resp.status_code == 303
    page = browser.get("/account/second-factor")
    secret, done = enrol_from_page(browser, page, "/account/second-factor/enrol")
    assert done.status_code == 200
    # The session was opened with the password alone: a request for two factors steps up.
    url = authorize_url(server.origin, client_id=OIDC_CLIENT_ID, redirect_uri=OIDC_REDIRECT_URI,
                        scope="openid", state="s1", nonce="n1",
                        acr_values="urn:doorward:acr:mfa")
    resp = browser.get(url)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/second-factor?"), resp.text
    prompt = browser.get(resp.headers["Location"])
    resp = browser.submit(prompt, find_form(prompt, "/login/second-factor"),
                          {"code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/oauth/authorize?"), resp.text
    resp = browser.get(resp.headers["Location"])
    if resp.status_code == 200:
        form = find_form(resp, "/oauth/authorize")
        resp = browser.submit(resp, form, button=form.button(value="approve"))
    code = query_of(resp.headers["Location"])["code"]
    answer = token_request(
        server.origin, auth=basic(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET),
        form={"grant_type": "authorization_code", "code": code, "redirect_uri": OIDC_REDIRECT_URI})
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["acr"] == "urn:doorward:acr:mfa" and claims["amr"] == ["pwd", "otp", "mfa"], claims
    # Asked of a user without a second factor: the request goes on, and acr says what was done.
    other, _ = password_step(server, "alice", USERS["alice"][0])
    resp = other.get(url.replace("s1", "s2"))
    assert resp.status_code in (200, 302), resp.text


def test_a_password_alone_never_replaces_an_app(server):
    add_user(server, "una")
    browser, _ = password_step(server, "una", PASSWORD)
    first = browser.get("/account/second-factor")
    second = browser.get("/account/second-factor")
    secret, done = enrol_from_page(browser, second, "/account/second-factor/enrol")
    assert done.status_code == 200
    # An enrolment form opened before, answered after: refused, the app stays.
    _, late = enrol_from_page(browser, first, "/account/second-factor/enrol")
    assert late.status_code == 303 and late.headers["Location"] == "/account/second-factor"
    # A thief with the password: the pending sign-in is for a code, never for an enrolment.
    thief, resp = password_step(server, "una", PASSWORD)
    assert resp.headers["Location"].startswith("/login/second-factor?")
    enrol = thief.get("/login/enrol?next=/account")
    assert enrol.status_code == 303 and enrol.headers["Location"].startswith("/login"), enrol.text
    form = find_form(first, "/account/second-factor/enrol")
    forged = thief.post("/login/enrol", data={**dict(form.hidden), "code": "123456", "next": "/account"})
    assert forged.status_code in (303, 403), forged.text
    assert thief.get("/account").status_code == 303, "no session for the thief"
    # New recovery codes need the password too.
    settings = browser.get("/account/second-factor")
    form = find_form(settings, "/account/second-factor/recovery-codes")
    assert browser.submit(settings, form, {"password": "not the password"}).status_code == 400
    renewed = browser.submit(settings, form, {"password": PASSWORD})
    assert renewed.status_code == 200 and len(codes_on(renewed)) == 10
    del secret


def test_a_sign_up_on_a_server_that_requires_a_second_factor_sets_one_up(request, tmp_path):
    server = make(request, tmp_path, '[accounts]\nsecond_factor = "required"\nsign_up = "open"\n')
    browser = Browser(server.origin)
    page = browser.get("/signup")
    resp = browser.submit(page, find_form(page, "/signup"),
                          {"username": "vic", "password": PASSWORD, "password2": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/enrol?"), resp.text
    assert browser.get("/account").status_code == 303, "no session before the second factor"
    enrol = browser.get(resp.headers["Location"])
    _, done = enrol_from_page(browser, enrol, "/login/enrol")
    assert done.status_code == 200 and len(codes_on(done)) == 10
    assert browser.get("/account").status_code == 200
