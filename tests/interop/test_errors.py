"""Bad-input matrix over real HTTP (requests): exact statuses and RFC 6749 error codes.

Past 700 lines, still one idea: one table per endpoint of what a client can get wrong.

Every request here goes through helpers.http_session / Browser, whose response hook fails the
test on any 5xx. Users: grace (code factory, already consented), heidi (deny), ivan (login),
judy (other_app), mallory (refresh family), peggy (consent CSRF).
"""

from __future__ import annotations

import json
import re
import subprocess
from urllib.parse import urlencode, urlsplit

import pytest

from helpers import (
    CLIENT_DISPLAY_NAME,
    CLIENT_ID,
    CLIENT_SECRET,
    COLON_CLIENT_ID,
    COLON_CLIENT_SECRET,
    COLON_REDIRECT_URI,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    OTHER_REDIRECT_URI,
    REDIRECT_URI,
    USERS,
    UUID_RE,
    Browser,
    DoorwardServer,
    assert_callback,
    assert_no_store,
    assert_oauth_error,
    assert_token_response,
    auth_self,
    config_toml,
    authorize_as,
    authorize_url,
    basic,
    describe,
    doorward_bin,
    find_form,
    http_session,
    pkce_pair,
    query_of,
    token_request,
)

BASIC = basic(CLIENT_ID, CLIENT_SECRET)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def grace(origin) -> Browser:
    """A browser signed in as grace who has already approved python_client."""
    b = Browser(origin)
    authorize_as(b, authorize_url(origin, state="warmup"), "grace")
    return b


@pytest.fixture
def new_code(origin, grace):
    def make(**params) -> str:
        resp = grace.get(authorize_url(origin, **params))
        return assert_callback(resp).code

    return make


def redeem(origin: str, code: str, **extra) -> "requests.Response":  # noqa: F821
    return token_request(origin, auth=BASIC, json_body={"grant_type": "authorization_code", "code": code, **extra})


# --------------------------------------------------------------------------------------------
# GET /oauth/authorize: errors that must never redirect


BAD_CLIENT_OR_REDIRECT = {
    "unknown_client": dict(client_id="nope@clients"),
    "missing_client_id": dict(client_id=None),
    "bare_client_name": dict(client_id="python_client"),
    "empty_client_id": dict(client_id=""),
    "foreign_redirect_uri": dict(redirect_uri="http://evil.example/cb"),
    "redirect_uri_trailing_slash": dict(redirect_uri=REDIRECT_URI + "/"),
    "redirect_uri_extra_query": dict(redirect_uri=REDIRECT_URI + "?x=1"),
    "redirect_uri_of_other_client": dict(redirect_uri=OTHER_REDIRECT_URI),
    "redirect_uri_case": dict(redirect_uri=REDIRECT_URI.replace("localhost", "LOCALHOST")),
}


@pytest.mark.parametrize("params", BAD_CLIENT_OR_REDIRECT.values(), ids=BAD_CLIENT_OR_REDIRECT.keys())
def test_authorize_bad_client_or_redirect_is_400_page(origin, grace, params):
    resp = grace.get(authorize_url(origin, state="s1", **params))
    assert resp.status_code == 400, describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    assert resp.headers.get("Content-Type", "").startswith("text/html"), describe(resp)


def test_authorize_unknown_client_guest_never_reaches_client(origin):
    """Not signed in: either the 400 page or the login redirect, never the unregistered URI."""
    resp = Browser(origin).get(authorize_url(origin, redirect_uri="http://evil.example/cb", client_id="nope@clients"))
    assert resp.status_code in (400, 303), describe(resp)
    if resp.status_code == 303:
        assert urlsplit(resp.headers["Location"]).path == "/login", describe(resp)


# --------------------------------------------------------------------------------------------
# GET /oauth/authorize: errors redirected to the client


REDIRECTED_ERRORS = {
    "response_type_token": (dict(response_type="token"), "unsupported_response_type"),
    "response_type_id_token": (dict(response_type="id_token"), "unsupported_response_type"),
    "response_type_missing": (dict(response_type=None), "invalid_request"),
    # python_client (Eternaltwin form, no `scopes`) may ask for every offered scope, openid included;
    # a client restricted to `base` is checked in test_oidc.py (base_only).
    "scope_unknown": (dict(scope="admin"), "invalid_scope"),
    "scope_openid_and_unknown": (dict(scope="openid admin"), "invalid_scope"),
    "scope_base_and_more": (dict(scope="base admin"), "invalid_scope"),
    "pkce_plain": (dict(code_challenge="a" * 43, code_challenge_method="plain"), "invalid_request"),
    "pkce_unknown_method": (dict(code_challenge="a" * 43, code_challenge_method="S512"), "invalid_request"),
    "pkce_short_challenge": (dict(code_challenge="abc", code_challenge_method="S256"), "invalid_request"),
    "pkce_bad_chars": (dict(code_challenge="!" * 43, code_challenge_method="S256"), "invalid_request"),
    "pkce_method_without_challenge": (dict(code_challenge_method="S256"), "invalid_request"),
    # A response_mode the server does not speak is refused, in the query (the code's default
    # mode), never answered with a code where the client does not look (OAuth 2.0 Multiple
    # Response Types §2.1; JARM's modes are not implemented).
    "response_mode_jarm": (dict(response_mode="query.jwt"), "invalid_request"),
    "response_mode_form_post_jarm": (dict(response_mode="form_post.jwt"), "invalid_request"),
    "response_mode_unknown": (dict(response_mode="web_message"), "invalid_request"),
    # An unsigned request object proves nothing (RFC 9101 §10.2); request objects by reference
    # are not fetched (OIDC Core §6, §3.1.2.6).
    "request_object": (dict(request="eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."), "invalid_request_object"),
    "request_uri": (dict(request_uri="https://client.example/req.jwt"), "request_uri_not_supported"),
}


@pytest.mark.parametrize(("params", "error"), REDIRECTED_ERRORS.values(), ids=REDIRECTED_ERRORS.keys())
@pytest.mark.parametrize("state", ["st-123", None], ids=["with_state", "no_state"])
def test_authorize_errors_redirect_to_client(origin, grace, params, error, state):
    resp = grace.get(authorize_url(origin, state=state, **params))
    assert resp.status_code == 302, describe(resp)
    assert resp.headers.get("Cache-Control") == "no-store", describe(resp)
    res = assert_callback(resp)
    assert res.params.get("error") == error, describe(resp)
    assert res.params.get("error_description"), describe(resp)
    assert "code" not in res.params, describe(resp)
    if state is None:
        assert "state" not in res.params, describe(resp)
    else:
        assert res.params.get("state") == state, describe(resp)


def test_authorize_repeated_parameter(origin, grace):
    url = authorize_url(origin, state="rep") + "&" + urlencode({"response_type": "code"})
    resp = grace.get(url)
    assert resp.status_code == 302, describe(resp)
    res = assert_callback(resp)
    assert res.params.get("error") == "invalid_request", describe(resp)
    assert res.params.get("state") == "rep", describe(resp)


@pytest.mark.parametrize("scope", ["base", "", None], ids=["base", "empty", "absent"])
def test_authorize_accepted_scopes(origin, grace, scope):
    resp = grace.get(authorize_url(origin, scope=scope, state="ok"))
    assert resp.status_code == 302, describe(resp)
    res = assert_callback(resp)
    assert res.code and res.params.get("state") == "ok" and "error" not in res.params
    assert_token_response(redeem(origin, res.code))


@pytest.mark.parametrize(
    "state",
    ["a b&c=d/é", "x+y%20z", "=?#&", "ünïcødé-☃", "eyJhbGciOiJIUzI1NiJ9.e30.sig"],
    ids=["space_amp", "plus_percent", "reserved", "unicode", "jwt_like"],
)
def test_authorize_state_round_trip(origin, grace, state):
    resp = grace.get(authorize_url(origin, state=state))
    res = assert_callback(resp)
    assert res.params.get("state") == state, describe(resp)


def test_authorize_without_state_omits_it(origin, grace):
    res = assert_callback(grace.get(authorize_url(origin, state=None)))
    assert set(res.params) == {"code", "iss"}, res.location  # iss: RFC 9207


def test_authorize_access_type_offline_is_accepted(origin, grace):
    res = assert_callback(grace.get(authorize_url(origin, state="o", access_type="offline")))
    assert res.code


def test_authorize_guest_redirects_to_login(origin):
    url = authorize_url(origin, state="g")
    resp = Browser(origin).get(url)
    assert resp.status_code == 303, describe(resp)
    loc = resp.headers["Location"]
    assert loc.startswith("/login?"), describe(resp)
    nxt = query_of(loc)["next"]
    assert nxt.startswith("/oauth/authorize?"), nxt


# --------------------------------------------------------------------------------------------
# consent


def test_consent_deny(origin):
    res = authorize_as(Browser(origin), authorize_url(origin, state="deny-me"), "heidi", decision="deny",
                       expect_consent=True)
    assert res.params.get("error") == "access_denied", res.location
    assert res.params.get("state") == "deny-me", res.location
    assert "code" not in res.params


def test_consent_post_without_csrf_is_rejected(origin):
    b = Browser(origin)
    b.login("peggy")
    page = b.get(authorize_url(origin, state="c"))
    assert page.status_code == 200, describe(page)
    form = find_form(page, "/oauth/authorize")
    data = [(k, v) for k, v in form.hidden if k != "csrf"] + [("decision", "approve")]
    resp = b.post("/oauth/authorize", data=data)
    assert resp.status_code in (400, 403), describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    data = [(k, ("x" + v if k == "csrf" else v)) for k, v in form.hidden] + [("decision", "approve")]
    resp = b.post("/oauth/authorize", data=data)
    assert resp.status_code in (400, 403), describe(resp)
    assert "Location" not in resp.headers, describe(resp)


# --------------------------------------------------------------------------------------------
# login


def _login_page(b: Browser):
    page = b.get("/login?" + urlencode({"next": "/account"}))
    assert page.status_code == 200, describe(page)
    return page, find_form(page, "/login")


def test_login_page_sets_csrf_cookie(origin):
    b = Browser(origin)
    page, form = _login_page(b)
    assert "dw_csrf" in b.http.cookies, describe(page)
    assert {"username", "password", "csrf", "next"} <= form.input_names(), form
    assert any(b.text == "Sign in" for b in form.buttons) or "Sign in" in page.text, form.buttons


def test_login_success_cookie_flags(origin):
    b = Browser(origin)
    page, form = _login_page(b)
    resp = b.submit(page, form, {"username": "ivan", "password": USERS["ivan"][0]})
    assert resp.status_code == 303, describe(resp)
    assert resp.headers["Location"] == "/account" or resp.headers["Location"].endswith(f"{urlsplit(origin).netloc}/account")
    cookies = [c for c in resp.raw.headers.getlist("Set-Cookie") if c.startswith("dw_session=")]
    assert len(cookies) == 1, describe(resp)
    attrs = [a.strip().lower() for a in cookies[0].split(";")[1:]]
    assert "httponly" in attrs, cookies
    assert "samesite=lax" in attrs, cookies


@pytest.mark.parametrize(
    ("username", "password"),
    [("ivan", "wrong-password"), ("nobody", "whatever-password"), ("ivan", ""), ("IVAN", USERS["ivan"][0])],
    ids=["wrong_password", "unknown_user", "empty_password", "username_case"],
)
def test_login_wrong_credentials(origin, username, password):
    b = Browser(origin)
    page, form = _login_page(b)
    resp = b.submit(page, form, {"username": username, "password": password})
    if username == "IVAN" and resp.status_code == 303:
        pytest.skip("usernames are case-insensitive on this server")
    assert resp.status_code == 401, describe(resp)
    assert "Invalid username or password" in resp.text, describe(resp)
    assert "dw_session" not in b.http.cookies


@pytest.mark.parametrize("mode", ["missing", "wrong", "no_cookie"])
def test_login_csrf(origin, mode):
    b = Browser(origin)
    page, form = _login_page(b)
    fields = [(k, v) for k, v in form.hidden if k != "csrf"]
    if mode == "wrong":
        fields.append(("csrf", "forged-" + dict(form.hidden)["csrf"]))
    elif mode == "no_cookie":
        fields.append(("csrf", dict(form.hidden)["csrf"]))
        b.http.cookies.clear()
    fields += [("username", "ivan"), ("password", USERS["ivan"][0])]
    resp = b.post("/login", data=fields)
    assert resp.status_code == 403, describe(resp)
    assert resp.headers.get("Content-Type", "").startswith("text/html"), describe(resp)
    assert "dw_session" not in b.http.cookies


@pytest.mark.parametrize("nxt", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_next_is_not_an_open_redirect(origin, nxt):
    b = Browser(origin)
    page = b.get("/login?" + urlencode({"next": nxt}))
    assert page.status_code in (200, 400), describe(page)
    if page.status_code == 400:
        return
    resp = b.submit(page, find_form(page, "/login"), {"username": "ivan", "password": USERS["ivan"][0]})
    assert resp.status_code == 303, describe(resp)
    loc = resp.headers["Location"]
    target = urlsplit(loc)
    assert not target.netloc or target.netloc == urlsplit(origin).netloc, f"open redirect to {loc!r}"
    assert not loc.startswith("//") and "\\" not in loc, f"open redirect to {loc!r}"


# --------------------------------------------------------------------------------------------
# POST /oauth/token: accepted variants


def test_token_success_shape(origin, new_code):
    resp = redeem(origin, new_code(state="t"))
    body = assert_token_response(resp)
    me = auth_self(origin, body["access_token"])
    assert me.status_code == 200, describe(me)
    j = me.json()
    assert j["type"] == "AccessToken" and j["scope"] == "Default", j
    assert j["client"] == {
        "type": "OauthClient",
        "id": j["client"]["id"],
        "key": CLIENT_ID,
        "display_name": CLIENT_DISPLAY_NAME,
    }, j
    assert re.match(UUID_RE, j["client"]["id"]), j
    assert j["user"]["type"] == "User" and re.match(UUID_RE, j["user"]["id"]), j
    assert j["user"]["display_name"] == {"current": {"value": "Grace"}}, j


def test_token_basic_form_encoded_credentials(origin, new_code):
    """RFC 6749 §2.3.1: id and secret form-urlencoded before Basic encoding."""
    auth = basic("python_client%40clients", CLIENT_SECRET)
    assert_token_response(token_request(origin, auth=auth, form={"grant_type": "authorization_code", "code": new_code()}))


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_token_body_credentials(origin, new_code, encoding):
    body = {"grant_type": "authorization_code", "code": new_code(), "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    kw = {"json_body": body} if encoding == "json" else {"form": body}
    assert_token_response(token_request(origin, **kw))


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/x-www-form-urlencoded;charset=UTF-8"],
    ids=["json_charset", "form_charset"],
)
def test_token_content_type_with_charset(origin, new_code, content_type):
    body = {"grant_type": "authorization_code", "code": new_code()}
    data = json.dumps(body).encode() if "json" in content_type else urlencode(body).encode()
    assert_token_response(token_request(origin, auth=BASIC, data=data, headers={"Content-Type": content_type}))


def test_token_redirect_uri_matching_is_accepted(origin, new_code):
    assert_token_response(redeem(origin, new_code(), redirect_uri=REDIRECT_URI))


# --------------------------------------------------------------------------------------------
# POST /oauth/token: errors


def test_token_missing_grant_type(origin, new_code):
    r = token_request(origin, auth=BASIC, json_body={"code": new_code()})
    assert_oauth_error(r, 400, "invalid_request")
    assert_no_store(r)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"grant_type": "authorization_code", "code": ', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"grant_type=authorization_code&code=x", "text/plain"),
        (b"grant_type=authorization_code&code=x", None),
    ],
    ids=["malformed_json", "json_array", "json_string", "text_plain", "no_content_type"],
)
def test_token_bad_body(origin, data, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = token_request(origin, auth=BASIC, data=data, headers=headers)
    if content_type is None:
        assert "Content-Type" not in r.request.headers
    assert_oauth_error(r, 400, "invalid_request")
    assert_no_store(r)


@pytest.mark.parametrize(
    "field",
    [{"code": 123}, {"code": True}, {"code": None}, {"code": ["x"]}, {"grant_type": 5},
     {"grant_type": ["authorization_code"]}, {"redirect_uri": {"a": 1}}],
    ids=["code_int", "code_bool", "code_null", "code_list", "grant_type_int", "grant_type_list", "redirect_uri_object"],
)
def test_token_non_string_json_field(origin, new_code, field):
    body = {"grant_type": "authorization_code", "code": new_code(), **field}
    r = token_request(origin, auth=BASIC, json_body=body)
    assert_oauth_error(r, 400, "invalid_request")
    assert_no_store(r)


def test_token_repeated_form_parameter(origin, new_code):
    data = urlencode([("grant_type", "authorization_code"), ("code", new_code()), ("code", "again")]).encode()
    r = token_request(origin, auth=BASIC, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_oauth_error(r, 400, "invalid_request")
    assert_no_store(r)


def test_token_basic_and_body_credentials(origin, new_code):
    body = {"grant_type": "authorization_code", "code": new_code(), "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    r = token_request(origin, auth=BASIC, form=body)
    assert_oauth_error(r, 400, "invalid_request")
    assert_no_store(r)


@pytest.mark.parametrize(
    ("auth", "body_creds"),
    [
        (basic(CLIENT_ID, "wrong-secret"), {}),
        (basic("nope@clients", "dev_secret"), {}),
        (None, {}),
        (None, {"client_id": CLIENT_ID, "client_secret": "wrong-secret"}),
        (None, {"client_id": "nope@clients", "client_secret": "x"}),
        (None, {"client_id": CLIENT_ID}),
        (basic(CLIENT_ID, ""), {}),
    ],
    ids=["basic_wrong_secret", "basic_unknown_client", "no_credentials", "body_wrong_secret",
         "body_unknown_client", "body_id_without_secret", "basic_empty_secret"],
)
def test_token_invalid_client(origin, new_code, auth, body_creds):
    body = {"grant_type": "authorization_code", "code": new_code(), **body_creds}
    r = token_request(origin, auth=auth, form=body)
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), describe(r)
    assert_no_store(r)


@pytest.mark.parametrize("auth", ["Basic !!!not-base64!!!", "Basic " + "bm9jb2xvbg==", "Bearer abc"],
                         ids=["not_base64", "no_colon", "bearer_scheme"])
def test_token_malformed_authorization_header(origin, new_code, auth):
    r = token_request(origin, auth=auth, form={"grant_type": "authorization_code", "code": new_code()})
    assert r.status_code in (400, 401), describe(r)
    assert r.json()["error"] in ("invalid_request", "invalid_client"), describe(r)
    assert_no_store(r)


def test_token_unknown_code(origin):
    r = redeem(origin, "this-code-was-never-issued")
    assert_oauth_error(r, 400, "invalid_grant")
    assert_no_store(r)


def test_token_code_replay_revokes_first_token(origin, new_code):
    code = new_code()
    first = assert_token_response(redeem(origin, code))
    assert auth_self(origin, first["access_token"]).status_code == 200
    r = redeem(origin, code)
    assert_oauth_error(r, 400, "invalid_grant")
    assert_no_store(r)
    me = auth_self(origin, first["access_token"])
    assert me.status_code == 401, describe(me)
    # the refresh token of that first redemption is dead too
    r = token_request(origin, auth=BASIC, form={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")


def test_token_redirect_uri_mismatch(origin, new_code):
    r = redeem(origin, new_code(), redirect_uri="http://localhost:8000/other")
    assert_oauth_error(r, 400, "invalid_grant")
    assert_no_store(r)


def test_token_failed_attempts_do_not_leak_across_codes(origin, new_code):
    """A mismatching redirect_uri burns (or not) only that code; a fresh code still works."""
    redeem(origin, new_code(), redirect_uri="http://localhost:8000/other")
    assert_token_response(redeem(origin, new_code()))


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x:unknown"])
def test_token_unsupported_grant_type(origin, grant_type):
    r = token_request(origin, auth=BASIC, form={"grant_type": grant_type, "username": "grace", "password": "x"})
    assert_oauth_error(r, 400, "unsupported_grant_type")
    assert_no_store(r)


def test_token_client_credentials_needs_the_clients_grant_types(origin):
    # The server answers client_credentials (`[oauth] client_credentials`, on by default), but
    # an Eternaltwin-form client has authorization_code and refresh_token only (RFC 6749 §5.2).
    r = token_request(origin, auth=BASIC, form={"grant_type": "client_credentials"})
    assert_oauth_error(r, 400, "unauthorized_client")
    assert_no_store(r)


def test_token_pkce(origin, new_code):
    verifier, challenge = pkce_pair()
    pk = dict(code_challenge=challenge, code_challenge_method="S256")
    assert_oauth_error(redeem(origin, new_code(**pk)), 400, "invalid_grant")  # verifier missing
    wrong, _ = pkce_pair()
    assert_oauth_error(redeem(origin, new_code(**pk), code_verifier=wrong), 400, "invalid_grant")
    assert_token_response(redeem(origin, new_code(**pk), code_verifier=verifier))


def test_token_pkce_wrong_verifier_burns_nothing_else(origin, new_code):
    """A failed verifier on one code does not affect another PKCE code."""
    verifier, challenge = pkce_pair()
    pk = dict(code_challenge=challenge, code_challenge_method="S256")
    good = new_code(**pk)
    redeem(origin, new_code(**pk), code_verifier="x" * 43)
    assert_token_response(redeem(origin, good, code_verifier=verifier))


def test_token_body_too_large(origin):
    big = {"grant_type": "authorization_code", "code": "x", "pad": "p" * (70 * 1024)}
    r = token_request(origin, auth=BASIC, form=big)
    assert r.status_code == 413, describe(r)
    assert r.json().get("error") == "invalid_request", describe(r)
    assert_no_store(r)


def test_token_get_is_405(origin):
    r = http_session().get(f"{origin}/oauth/token", allow_redirects=False, timeout=15)
    assert r.status_code == 405, describe(r)


# --------------------------------------------------------------------------------------------
# other_app: codes are bound to their client


@pytest.fixture(scope="module")
def judy(origin) -> Browser:
    b = Browser(origin)
    b.login("judy")
    return b


def _other_app_code(origin: str, judy: Browser) -> str:
    url = authorize_url(origin, client_id=OTHER_CLIENT_ID, redirect_uri=OTHER_REDIRECT_URI, state="o")
    res = authorize_as(judy, url, "judy", redirect_uri=OTHER_REDIRECT_URI)
    return res.code


def test_other_app_flow_works(origin, judy):
    code = _other_app_code(origin, judy)
    body = assert_token_response(token_request(
        origin, auth=basic(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        json_body={"grant_type": "authorization_code", "code": code}))
    me = auth_self(origin, body["access_token"])
    assert me.status_code == 200, describe(me)
    assert me.json()["client"]["key"] == OTHER_CLIENT_ID, me.json()


def test_code_of_another_client(origin, judy, new_code):
    # other_app's code redeemed by python_client
    r = redeem(origin, _other_app_code(origin, judy))
    assert_oauth_error(r, 400, "invalid_grant")
    # python_client's code redeemed by other_app
    r = token_request(origin, auth=basic(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
                      json_body={"grant_type": "authorization_code", "code": new_code()})
    assert_oauth_error(r, 400, "invalid_grant")


@pytest.mark.parametrize(
    "auth",
    [basic(COLON_CLIENT_ID, COLON_CLIENT_SECRET), basic("colon_app%40clients", "dev%3Asec+ret")],
    ids=["raw", "form_encoded"],
)
def test_basic_secret_with_colon(origin, judy, auth):
    """Basic is split at the first ':' (eternaltwin and Authlib send id:secret unencoded)."""
    url = authorize_url(origin, client_id=COLON_CLIENT_ID, redirect_uri=COLON_REDIRECT_URI, state="c")
    code = authorize_as(judy, url, "judy", redirect_uri=COLON_REDIRECT_URI).code
    body = assert_token_response(token_request(origin, auth=auth, json_body={"grant_type": "authorization_code",
                                                                              "code": code}))
    assert auth_self(origin, body["access_token"]).json()["client"]["key"] == COLON_CLIENT_ID


# --------------------------------------------------------------------------------------------
# refresh tokens (raw)


def test_refresh_rotation_and_family_revocation(origin):
    b = Browser(origin)
    res = authorize_as(b, authorize_url(origin, state="m"), "mallory")
    t0 = assert_token_response(redeem(origin, res.code))

    def refresh(rt, **kw):
        return token_request(origin, auth=BASIC, form={"grant_type": "refresh_token", "refresh_token": rt, **kw})

    t1 = assert_token_response(refresh(t0["refresh_token"]))
    assert t1["refresh_token"] != t0["refresh_token"] and t1["access_token"] != t0["access_token"]
    t2 = assert_token_response(refresh(t1["refresh_token"], scope="base"))
    assert auth_self(origin, t2["access_token"]).status_code == 200

    r = refresh(t1["refresh_token"])  # replay of a spent token
    assert_oauth_error(r, 400, "invalid_grant")
    assert_no_store(r)
    me = auth_self(origin, t2["access_token"])
    assert me.status_code == 401, describe(me)
    assert_oauth_error(refresh(t2["refresh_token"]), 400, "invalid_grant")


def test_refresh_errors(origin, new_code):
    t = assert_token_response(redeem(origin, new_code()))
    r = token_request(origin, auth=BASIC, form={"grant_type": "refresh_token"})
    assert_oauth_error(r, 400, "invalid_request")
    r = token_request(origin, auth=BASIC, form={"grant_type": "refresh_token", "refresh_token": "never-issued"})
    assert_oauth_error(r, 400, "invalid_grant")
    r = token_request(origin, auth=basic(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
                      form={"grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")
    r = token_request(origin, auth=BASIC, form={"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                                                  "scope": "openid"})
    assert r.status_code == 400 and r.json()["error"] in ("invalid_scope", "invalid_grant"), describe(r)


# --------------------------------------------------------------------------------------------
# API


def test_self_guest(origin):
    r = auth_self(origin, None)
    assert r.status_code == 200, describe(r)
    assert r.json() == {"type": "Guest", "scope": "Default"}, describe(r)


@pytest.mark.parametrize("token", ["not-a-token", "a" * 300, "00000000-0000-0000-0000-000000000000"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_self_bad_token(origin, scheme, token):
    r = http_session().get(f"{origin}/api/v1/auth/self", headers={"Authorization": f"{scheme} {token}"},
                           allow_redirects=False, timeout=15)
    assert r.status_code == 401, describe(r)
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith("Bearer") and 'error="invalid_token"' in www, describe(r)


def test_self_empty_bearer_is_malformed(origin):
    """RFC 6750 §3.1: a malformed Authorization header is 400 invalid_request."""
    for value in ("Bearer ", "Bearer", "bearer   ", "Bearer a b", "Bearer tok\u00e9n".encode()):
        r = http_session().get(f"{origin}/api/v1/auth/self", headers={"Authorization": value},
                               allow_redirects=False, timeout=15)
        assert r.status_code == 400, (value, describe(r))
        www = r.headers.get("WWW-Authenticate", "")
        assert www.startswith("Bearer ") and 'error="invalid_request"' in www, (value, describe(r))
        assert r.json()["error"] == "invalid_request", (value, describe(r))


@pytest.mark.parametrize("value", ["Basic YTpi", "Bearerx abc", "Token abc"])
def test_self_other_scheme_is_no_bearer_credentials(origin, value):
    """RFC 6750 §3.1: a request without Bearer credentials gets a bare challenge, no error code."""
    r = http_session().get(f"{origin}/api/v1/auth/self", headers={"Authorization": value},
                           allow_redirects=False, timeout=15)
    assert r.status_code == 401, (value, describe(r))
    assert r.headers.get("WWW-Authenticate") == 'Bearer realm="doorward"', (value, describe(r))


def test_self_refresh_token_is_not_an_access_token(origin, new_code):
    t = assert_token_response(redeem(origin, new_code()))
    r = auth_self(origin, t["refresh_token"])
    assert r.status_code == 401, describe(r)


def test_users_get(origin, new_code):
    t = assert_token_response(redeem(origin, new_code()))
    uid = auth_self(origin, t["access_token"]).json()["user"]["id"]
    r = http_session().get(f"{origin}/api/v1/users/{uid}", allow_redirects=False, timeout=15)
    assert r.status_code == 200, describe(r)
    u = r.json()
    assert u["type"] == "User" and u["id"] == uid, u
    assert u["display_name"] == {"current": {"value": "Grace"}}, u
    assert isinstance(u["created_at"], str) and "T" in u["created_at"], u
    assert u["deleted_at"] is None and u["is_administrator"] is False, u


@pytest.mark.parametrize("uid", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "alice"])
def test_users_unknown(origin, uid):
    r = http_session().get(f"{origin}/api/v1/users/{uid}", allow_redirects=False, timeout=15)
    if re.match(UUID_RE, uid):
        assert r.status_code == 404, describe(r)
    else:
        assert r.status_code in (400, 404), describe(r)


# --------------------------------------------------------------------------------------------
# Answers no cache may keep; a sign-in ends the browser's previous session


def test_code_redirect_is_no_store(origin, grace):
    resp = grace.get(authorize_url(origin, state="ns"))
    assert assert_callback(resp).code
    assert resp.headers.get("Cache-Control") == "no-store", describe(resp)


def test_identity_answers_are_no_store(origin, grace):
    me = grace.get("/api/v1/auth/self")
    assert me.status_code == 200 and me.json()["type"] == "User", describe(me)
    assert me.headers.get("Cache-Control") == "no-store", describe(me)
    user = grace.get(f"/api/v1/users/{me.json()['user']['id']}")
    assert user.status_code == 200, describe(user)
    assert user.headers.get("Cache-Control") == "no-store", describe(user)


def test_a_sign_in_ends_the_previous_session(origin):
    b = Browser(origin)
    b.login("ivan")
    old = b.http.cookies.get("dw_session")
    assert old
    b.login("ivan")
    new = b.http.cookies.get("dw_session")
    assert new and new != old
    assert b.get("/api/v1/auth/self").json()["type"] == "User"
    replay = http_session().get(f"{origin}/api/v1/auth/self", cookies={"dw_session": old}, timeout=15)
    assert replay.status_code == 200 and replay.json()["type"] == "Guest", describe(replay)


@pytest.mark.parametrize("uri", ["javascript:alert(document.domain)", "data:text/html,x", "relative/path"])
def test_config_refuses_an_app_uri_that_is_not_a_web_page(tmp_path, uri):
    """app_uri is linked from the consent page: only http(s) URLs are accepted at start."""
    extra = "\n".join([
        "[clients.evil]",
        'display_name = "Evil"',
        f'app_uri = "{uri}"',
        'callback_uri = "http://localhost:8999/cb"',
        'secret = "a-long-enough-client-secret-0123456789"',
    ])
    srv = DoorwardServer(doorward_bin(), tmp_path, extra_config=extra)
    srv.config_path.write_text(config_toml(srv.refresh_grace) + "\n" + extra)
    run = subprocess.run(srv.command, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert run.returncode != 0, run.stdout
    assert "clients.evil.app_uri" in run.stderr, run.stderr
