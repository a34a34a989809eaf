"""OpenID Connect provider features: the real Authlib 1.9.9 Flask client, plus raw HTTP checks.

Past 700 lines, still one idea: the provider's OpenID Connect surface, seen by one relying party.

- Authlib's Flask integration registered exactly like the docs (seed 004): `server_metadata_url`
  discovery, PKCE S256, scope `openid profile email`; Authlib itself validates the ID token
  (signature from jwks_uri, iss, aud, nonce, at_hash, exp, iat). One run per signing alg.
- Discovery metadata and JWKS; RFC 9207 `iss` on every callback; prompt / max_age / login_hint /
  id_token_hint; userinfo; RFC 7662 introspection; RFC 7009 revocation; RFC 9068 JWT access
  tokens (verified with PyJWT, a second JOSE stack); RP-initiated logout (end_session).

Users: uma, victor, wendy (Flask client per alg), xavier (python_client scopes), yvonne (oidc_app
code factory, already consented), zoe (signed in, never consents), quinn (jwt_app), rupert
(end_session), steve (introspection / revocation).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt as pyjwt
import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask, request
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet, RSAKey

from helpers import (
    BASE_ONLY_CLIENT_ID,
    BASE_ONLY_REDIRECT_URI,
    CLIENT_ID,
    CLIENT_SECRET,
    JWT_CLIENT_ID,
    JWT_CLIENT_SECRET,
    JWT_REDIRECT_URI,
    KEY_ALGORITHMS,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_ED_CLIENT_ID,
    OIDC_ED_CLIENT_SECRET,
    OIDC_ED_REDIRECT_URI,
    OIDC_ES_CLIENT_ID,
    OIDC_ES_CLIENT_SECRET,
    OIDC_ES_REDIRECT_URI,
    OIDC_POST_LOGOUT_URI,
    OIDC_REDIRECT_URI,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    REDIRECT_URI,
    USER_EMAILS,
    USERS,
    UUID_RE,
    Browser,
    Form,
    assert_callback,
    assert_no_store,
    assert_oauth_error,
    assert_token_response,
    auth_self,
    authorize_as,
    authorize_url,
    b64url_half_hash,
    basic,
    describe,
    drive_to_callback,
    fetch_jwks,
    find_form,
    http_session,
    introspect,
    json_of,
    parse_forms,
    query_of,
    revoke,
    token_request,
    userinfo,
)

OIDC_BASIC = basic(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)
OTHER_BASIC = basic(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
PYTHON_BASIC = basic(CLIENT_ID, CLIENT_SECRET)
JWT_BASIC = basic(JWT_CLIENT_ID, JWT_CLIENT_SECRET)
OIDC_SCOPE = "openid profile email"

WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
ENDPOINTS = {
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "userinfo_endpoint": "/oauth/userinfo",
    "jwks_uri": "/oauth/jwks",
    "introspection_endpoint": "/oauth/introspect",
    "revocation_endpoint": "/oauth/revoke",
    "end_session_endpoint": "/oauth/end_session",
}
PRIVATE_JWK_PARAMS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
KTY_OF_ALG = {"RS256": ("RSA", None), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
ACCESS_TOKEN_LIFETIME = 7200
ID_TOKEN_LIFETIME = 3600


# --------------------------------------------------------------------------------------------
# helpers


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jws_header(token: str) -> dict:
    assert token.count(".") == 2, f"not a compact JWS: {token[:80]!r}"
    return b64url_json(token.split(".")[0])


def verify_jws(origin: str, token: str, algs: list[str]) -> tuple[dict, dict]:
    """(header, claims) after checking the signature against the server's JWKS (joserfc)."""
    keys = KeySet.import_key_set(fetch_jwks(origin))
    decoded = jose_jwt.decode(token, keys, algorithms=algs)
    return dict(decoded.header), dict(decoded.claims)


def oidc_authorize_url(origin: str, **params) -> str:
    params.setdefault("scope", OIDC_SCOPE)
    return authorize_url(origin, client_id=OIDC_CLIENT_ID, redirect_uri=OIDC_REDIRECT_URI, **params)


def redeem(origin: str, code: str, auth: str = OIDC_BASIC, redirect_uri: str = OIDC_REDIRECT_URI) -> dict:
    """Authlib-shaped token request (form, Basic, redirect_uri); returns the 200 body."""
    r = token_request(origin, auth=auth, form={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": redirect_uri})
    assert r.status_code == 200, describe(r)
    assert_no_store(r)
    return json_of(r)


def refresh(origin: str, refresh_token: str, auth: str = OIDC_BASIC):
    return token_request(origin, auth=auth, form={"grant_type": "refresh_token", "refresh_token": refresh_token})


def me(origin: str, access_token: str) -> dict:
    r = auth_self(origin, access_token)
    assert r.status_code == 200, describe(r)
    body = json_of(r)
    assert body.get("type") == "AccessToken", describe(r)
    return body


def check_id_token_claims(origin: str, claims: dict, *, username: str, sub: str, client_id: str, scope: str,
                          alg: str, nonce: Optional[str], access_token: Optional[str]) -> None:
    """The contract's ID token claims (OIDC Core §2, §3.1.3.6, §5.4)."""
    now = time.time()
    assert claims["iss"] == origin, claims
    assert claims["sub"] == sub and re.match(UUID_RE, claims["sub"]), claims
    assert claims["aud"] in (client_id, [client_id]), claims
    for c in ("exp", "iat", "auth_time"):
        assert isinstance(claims.get(c), int) and not isinstance(claims[c], bool), (c, claims)
    assert claims["exp"] - claims["iat"] == ID_TOKEN_LIFETIME, claims
    assert abs(claims["iat"] - now) < 120, claims
    assert claims["auth_time"] <= claims["iat"], claims
    assert claims["amr"] == ["pwd"], claims
    if nonce is None:
        assert "nonce" not in claims, claims
    else:
        assert claims["nonce"] == nonce, claims
    if access_token is not None:
        assert claims["at_hash"] == b64url_half_hash(access_token, alg), claims
    scopes = scope.split()
    if "profile" in scopes:
        assert claims["name"] == USERS[username][1] and claims["preferred_username"] == username, claims
    else:
        assert "name" not in claims and "preferred_username" not in claims, claims
    if "email" in scopes:
        email, verified = USER_EMAILS[username]
        assert claims["email"] == email and claims["email_verified"] is verified, claims
    else:
        assert "email" not in claims and "email_verified" not in claims, claims


def assert_iss_after_state(location: str, origin: str) -> dict:
    """RFC 9207: `iss` (the issuer, exactly) on the callback, after `state` when there is one."""
    names = [k for k, _ in parse_qsl(urlsplit(location).query, keep_blank_values=True)]
    params = query_of(location)
    assert params.get("iss") == origin, f"iss missing or wrong in {location!r}"
    if "state" in names:
        assert names.index("iss") > names.index("state"), f"iss before state in {location!r}"
    return params


def consented_browser(origin: str, username: str) -> Browser:
    """A browser signed in as `username` who approved oidc_app for OIDC_SCOPE."""
    b = Browser(origin)
    res = authorize_as(b, oidc_authorize_url(origin, state="warmup", nonce="warmup"), username,
                       redirect_uri=OIDC_REDIRECT_URI)
    assert res.code
    return b


def oidc_tokens(origin: str, browser: Browser, **params) -> dict:
    """A fresh code for oidc_app from an already consented browser, redeemed."""
    res = assert_callback(browser.get(oidc_authorize_url(origin, **params)), OIDC_REDIRECT_URI)
    return redeem(origin, res.code)


def forge_id_token(origin: str, claims: dict) -> str:
    """Same claims and the kid of a real RS256 key, but signed with a key the server never had."""
    kid = next(k["kid"] for k in fetch_jwks(origin)["keys"] if k.get("alg") == "RS256")
    rogue = RSAKey.generate_key(2048)
    return jose_jwt.encode({"alg": "RS256", "kid": kid}, claims, rogue)


def is_login_page(resp) -> bool:
    if resp.status_code == 303:
        return urlsplit(resp.headers["Location"]).path == "/login"
    return resp.status_code == 200 and any(
        urlsplit(f.action).path == "/login" for f in parse_forms(resp.text)
    )


def confirm_button(form: Form):
    """The end_session confirm button ("named like the consent page": decision=approve)."""
    for value in ("approve", "confirm", "logout", "yes"):
        for b in form.buttons:
            if b.value == value:
                return b
    named = [b for b in form.buttons if b.name]
    return named[0] if named else None


def assert_signed_out(origin: str, browser: Browser) -> None:
    r = browser.get("/account")
    assert r.status_code == 303 and urlsplit(r.headers["Location"]).path == "/login", describe(r)


def assert_signed_in(browser: Browser) -> None:
    r = browser.get("/account")
    assert r.status_code == 200, describe(r)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def metadata(origin) -> dict:
    r = http_session().get(f"{origin}/.well-known/openid-configuration", allow_redirects=False, timeout=15)
    assert r.status_code == 200, describe(r)
    return json_of(r)


@pytest.fixture(scope="module")
def yvonne(origin) -> Browser:
    return consented_browser(origin, "yvonne")


@pytest.fixture(scope="module")
def steve(origin) -> Browser:
    return consented_browser(origin, "steve")


@pytest.fixture(scope="module")
def xavier(origin) -> Browser:
    b = Browser(origin)
    b.login("xavier")
    return b


@pytest.fixture(scope="module")
def zoe(origin) -> Browser:
    """Signed in, and never approves oidc_app (only denies it)."""
    b = Browser(origin)
    b.login("zoe")
    return b


# --------------------------------------------------------------------------------------------
# (a) Authlib's Flask client, discovery, one run per id_token signing alg


class FlaskRP:
    """A relying party written like the Authlib docs (seed 004), driven by Flask's test client.

    The Flask session (state, nonce, code_verifier) lives in the test client's cookie, so
    authorize_redirect and authorize_access_token really run in two requests of one session.
    """

    def __init__(self, origin: str, name: str, client_id: str, client_secret: str, redirect_uri: str):
        self.results: dict = {}
        app = Flask(__name__)
        app.secret_key = secrets.token_hex(32)
        app.testing = True  # exceptions (OAuthError, joserfc errors) reach the test
        oauth = OAuth(app)
        oauth.register(
            name,
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=origin + "/.well-known/openid-configuration",
            client_kwargs={"scope": OIDC_SCOPE, "code_challenge_method": "S256"},
        )
        remote = oauth.create_client(name)
        self.remote = remote

        @app.route("/login")
        def login():
            return remote.authorize_redirect(redirect_uri)

        @app.route(urlsplit(redirect_uri).path)
        def callback():
            token = remote.authorize_access_token()
            self.results["token"] = token
            self.results["userinfo"] = dict(remote.userinfo())
            return "signed in"

        @app.route("/logout")
        def logout():
            return remote.logout_redirect(
                post_logout_redirect_uri=OIDC_POST_LOGOUT_URI,
                id_token_hint=request.args["id_token_hint"],
                client_id=client_id,
            )

        @app.route(urlsplit(OIDC_POST_LOGOUT_URI).path)
        def logged_out():
            self.results["logout"] = remote.validate_logout_response()
            return "signed out"

        self.http = app.test_client()

    def get(self, url: str):
        """GET a path (or an absolute URL of the RP: only its path and query are used)."""
        parts = urlsplit(url)
        return self.http.get(parts.path, query_string=parts.query)

    def sign_in(self, origin: str, browser: Browser, username: str, redirect_uri: str) -> tuple[dict, dict]:
        """The whole login: /login -> Doorward pages -> callback. Returns (token, sent params)."""
        start = self.get("/login")
        assert start.status_code == 302, start.get_data(as_text=True)
        url = start.headers["Location"]
        assert url.startswith(f"{origin}/oauth/authorize?"), url
        sent = query_of(url)
        result = authorize_as(browser, url, username, redirect_uri=redirect_uri)
        assert "error" not in result.params, result.location
        assert_iss_after_state(result.location, origin)
        done = self.get(result.location)
        assert done.status_code == 200, done.get_data(as_text=True)
        return self.results["token"], sent


ALG_CASES = [
    ("oidc_app", OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, "RS256", "uma"),
    ("oidc_es", OIDC_ES_CLIENT_ID, OIDC_ES_CLIENT_SECRET, OIDC_ES_REDIRECT_URI, "ES256", "victor"),
    ("oidc_ed", OIDC_ED_CLIENT_ID, OIDC_ED_CLIENT_SECRET, OIDC_ED_REDIRECT_URI, "EdDSA", "wendy"),
]


@pytest.mark.parametrize(("name", "client_id", "secret", "redirect_uri", "alg", "username"), ALG_CASES,
                         ids=[c[4] for c in ALG_CASES])
def test_authlib_flask_oidc_login(origin, name, client_id, secret, redirect_uri, alg, username):
    rp = FlaskRP(origin, name, client_id, secret, redirect_uri)
    token, sent = rp.sign_in(origin, Browser(origin), username, redirect_uri)
    assert sent["scope"] == OIDC_SCOPE and sent["nonce"], sent
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"], sent

    # authorize_access_token validated the ID token (it only does so when a nonce was sent).
    assert "id_token" in token and "userinfo" in token, token
    claims = dict(token["userinfo"])
    header = jws_header(token["id_token"])
    assert header["alg"] == alg, header
    published = {k["kid"]: k for k in fetch_jwks(origin)["keys"]}
    assert header.get("kid") in published and published[header["kid"]]["alg"] == alg, (header, published)
    sub = me(origin, token["access_token"])["user"]["id"]
    check_id_token_claims(origin, claims, username=username, sub=sub, client_id=client_id, scope=OIDC_SCOPE,
                          alg=alg, nonce=sent["nonce"], access_token=token["access_token"])
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == ACCESS_TOKEN_LIFETIME, token

    info = rp.results["userinfo"]
    assert info["sub"] == claims["sub"], info
    assert {k: info.get(k) for k in ("name", "preferred_username", "email", "email_verified")} == {
        k: claims[k] for k in ("name", "preferred_username", "email", "email_verified")
    }, (info, claims)


# --------------------------------------------------------------------------------------------
# (b) discovery metadata


def test_metadata_both_urls_same_document_and_cacheable(origin):
    docs = []
    for path in WELL_KNOWN:
        r = http_session().get(origin + path, allow_redirects=False, timeout=15)
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r)
        directives = [d.strip().lower() for d in r.headers.get("Cache-Control", "").split(",")]
        assert "public" in directives, describe(r)
        assert any(re.fullmatch(r"max-age=\d+", d) for d in directives), describe(r)
        docs.append(json_of(r))
    assert docs[0] == docs[1], docs


def test_metadata_contents(origin, metadata):
    m = metadata
    assert m["issuer"] == origin, m
    for key, path in ENDPOINTS.items():
        assert m.get(key) == origin + path, (key, m.get(key))
    for key, value in m.items():
        if key.endswith("_endpoint") or key == "jwks_uri":
            assert isinstance(value, str) and value.startswith(origin + "/"), (key, value)
    assert sorted(m["id_token_signing_alg_values_supported"]) == sorted(KEY_ALGORITHMS), m
    assert m["response_types_supported"] == ["code"], m
    assert sorted(m["grant_types_supported"]) == [
        "authorization_code", "client_credentials", "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange"], m
    # RFC 9449 §5.1: DPoP, with the fully-specified Ed25519 (RFC 9864) among its algorithms.
    assert m["dpop_signing_alg_values_supported"] == [
        "ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519"], m
    assert m["device_authorization_endpoint"] == f"{m['issuer']}/oauth/device_authorization", m
    assert m["subject_types_supported"] == ["public"], m
    assert sorted(m["token_endpoint_auth_methods_supported"]) == [
        "client_secret_basic", "client_secret_jwt", "client_secret_post", "none", "private_key_jwt"], m
    assert m["code_challenge_methods_supported"] == ["S256"], m
    assert m["authorization_response_iss_parameter_supported"] is True, m
    assert {"base", "openid", "profile", "email"} <= set(m["scopes_supported"]), m
    assert {"sub", "name", "preferred_username", "email", "email_verified"} <= set(m["claims_supported"]), m
    assert sorted(m["prompt_values_supported"]) == sorted(["none", "login", "consent", "select_account"]), m
    assert m["request_parameter_supported"] is True and m["request_uri_parameter_supported"] is False, m
    assert sorted(m["request_object_signing_alg_values_supported"]) == [
        "ES256", "EdDSA", "HS256", "HS384", "HS512", "PS256", "RS256"], m
    assert m["response_modes_supported"] == ["query", "fragment", "form_post"], m
    assert m["pushed_authorization_request_endpoint"] == f"{m['issuer']}/oauth/par", m
    assert m["require_pushed_authorization_requests"] is False, m


# --------------------------------------------------------------------------------------------
# (c) JWKS


def test_jwks_public_keys_only(origin, metadata):
    r = http_session().get(metadata["jwks_uri"], allow_redirects=False, timeout=15)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r)
    jwks = json_of(r)
    keys = jwks["keys"]
    assert keys, jwks
    kids = [k.get("kid") for k in keys]
    assert all(isinstance(k, str) and k for k in kids), kids
    assert len(set(kids)) == len(kids), f"duplicate kids {kids}"
    for k in keys:
        assert not PRIVATE_JWK_PARAMS & set(k), f"private parameters published: {sorted(PRIVATE_JWK_PARAMS & set(k))}"
        assert k.get("use") == "sig", k
        assert k.get("alg") in KEY_ALGORITHMS, k
        kty, crv = KTY_OF_ALG[k["alg"]]
        assert k.get("kty") == kty, k
        if crv is not None:
            assert k.get("crv") == crv, k
        if kty == "RSA":
            n = base64.urlsafe_b64decode(k["n"] + "=" * (-len(k["n"]) % 4))
            assert len(n) * 8 >= 2048, f"RSA key of {len(n) * 8} bits"
    assert {k["alg"] for k in keys} == set(KEY_ALGORITHMS), "every configured algorithm has a published key"
    for key in KeySet.import_key_set(jwks).keys:
        assert not key.is_private, key.kid


# --------------------------------------------------------------------------------------------
# (d) Eternaltwin-style python_client: no id_token for base, one for openid


def _python_client_code(origin: str, browser: Browser, username: str, **params) -> str:
    resp = browser.get(authorize_url(origin, **params))
    return drive_to_callback(browser, resp, username).code


def test_python_client_scope_base_has_no_id_token(origin, xavier):
    code = _python_client_code(origin, xavier, "xavier", scope="base", state="b")
    # exactly as the eternaltwin client sends it: Basic + JSON {"grant_type", "code"}
    r = token_request(origin, auth=PYTHON_BASIC, json_body={"grant_type": "authorization_code", "code": code})
    assert_token_response(r)  # exactly access_token, token_type, expires_in, refresh_token


def test_python_client_scope_openid_gets_id_token_and_refresh_keeps_it(origin, xavier):
    code = _python_client_code(origin, xavier, "xavier", scope="openid", state="o", nonce="n-xavier-1")
    r = token_request(origin, auth=PYTHON_BASIC, json_body={"grant_type": "authorization_code", "code": code})
    assert r.status_code == 200, describe(r)
    assert_no_store(r)
    body = json_of(r)
    assert set(body) - {"scope"} == {"access_token", "token_type", "expires_in", "refresh_token", "id_token"}, body
    if "scope" in body:
        assert body["scope"].split() == ["openid"], body
    header, claims = verify_jws(origin, body["id_token"], ["RS256"])
    assert header["alg"] == "RS256", header  # OIDC Registration default
    sub = me(origin, body["access_token"])["user"]["id"]
    check_id_token_claims(origin, claims, username="xavier", sub=sub, client_id=CLIENT_ID, scope="openid",
                          alg="RS256", nonce="n-xavier-1", access_token=body["access_token"])

    # userinfo for scope openid alone: just sub
    u = userinfo(origin, body["access_token"])
    assert u.status_code == 200 and json_of(u) == {"sub": sub}, describe(u)

    # refresh: a new ID token, no nonce, the original auth_time (OIDC Core §12.2)
    r = refresh(origin, body["refresh_token"], auth=PYTHON_BASIC)
    assert r.status_code == 200, describe(r)
    new = json_of(r)
    assert "id_token" in new, new
    _, again = verify_jws(origin, new["id_token"], ["RS256"])
    check_id_token_claims(origin, again, username="xavier", sub=sub, client_id=CLIENT_ID, scope="openid",
                          alg="RS256", nonce=None, access_token=new["access_token"])
    assert again["auth_time"] == claims["auth_time"], (claims, again)


def test_python_client_id_token_aud_is_the_client_id_used_at_the_token_endpoint(origin, xavier):
    code = _python_client_code(origin, xavier, "xavier", scope="base", state="u")
    first = assert_token_response(token_request(
        origin, auth=PYTHON_BASIC, json_body={"grant_type": "authorization_code", "code": code}))
    uuid = me(origin, first["access_token"])["client"]["id"]
    assert re.match(UUID_RE, uuid), uuid

    code = _python_client_code(origin, xavier, "xavier", scope="openid", state="u2", nonce="n-uuid")
    r = token_request(origin, auth=basic(uuid, CLIENT_SECRET),
                      json_body={"grant_type": "authorization_code", "code": code})
    assert r.status_code == 200, describe(r)
    _, claims = verify_jws(origin, json_of(r)["id_token"], ["RS256"])
    assert claims["aud"] in (uuid, [uuid]), claims


# --------------------------------------------------------------------------------------------
# (e) RFC 9207: iss on every redirect to the client


@pytest.mark.parametrize("state", ["st-9207", None], ids=["with_state", "no_state"])
def test_iss_on_code_redirect(origin, yvonne, state):
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state=state, nonce="n")), OIDC_REDIRECT_URI)
    params = assert_iss_after_state(res.location, origin)
    assert params["code"], res.location
    assert set(params) == ({"code", "iss", "state"} if state else {"code", "iss"}), res.location


def test_iss_on_eternaltwin_style_redirect(origin, xavier):
    resp = xavier.get(authorize_url(origin, scope="base", state="et"))
    res = drive_to_callback(xavier, resp, "xavier")
    assert_iss_after_state(res.location, origin)


ERROR_REDIRECTS = {
    "unknown_scope": (OIDC_CLIENT_ID, OIDC_REDIRECT_URI, dict(scope="openid bogus"), "invalid_scope"),
    "response_type_token": (OIDC_CLIENT_ID, OIDC_REDIRECT_URI, dict(response_type="token"),
                            "unsupported_response_type"),
    "openid_for_base_only_client": (BASE_ONLY_CLIENT_ID, BASE_ONLY_REDIRECT_URI, dict(scope="openid"),
                                    "invalid_scope"),
    "profile_for_base_only_client": (BASE_ONLY_CLIENT_ID, BASE_ONLY_REDIRECT_URI, dict(scope="base profile"),
                                     "invalid_scope"),
}


@pytest.mark.parametrize(("client_id", "redirect_uri", "params", "error"), ERROR_REDIRECTS.values(),
                         ids=ERROR_REDIRECTS.keys())
@pytest.mark.parametrize("state", ["st-err", None], ids=["with_state", "no_state"])
def test_iss_on_error_redirect(origin, yvonne, client_id, redirect_uri, params, error, state):
    url = authorize_url(origin, client_id=client_id, redirect_uri=redirect_uri, state=state,
                        **{"scope": OIDC_SCOPE, **params})
    res = assert_callback(yvonne.get(url), redirect_uri)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") == error and "code" not in got, res.location
    assert got.get("state") == state, res.location


def test_iss_on_access_denied(origin):
    b = Browser(origin)
    b.login("zoe")
    res = drive_to_callback(b, b.get(oidc_authorize_url(origin, state="deny")), "zoe",
                            redirect_uri=OIDC_REDIRECT_URI, decision="deny")
    assert res.consent_shown, res
    got = assert_iss_after_state(res.location, origin)
    assert got["error"] == "access_denied" and got["state"] == "deny", res.location


# --------------------------------------------------------------------------------------------
# (f) prompt, max_age, id_token_hint, login_hint


def test_prompt_none_without_session_is_login_required(origin):
    resp = Browser(origin).get(oidc_authorize_url(origin, state="pn", nonce="n", prompt="none"))
    res = assert_callback(resp, OIDC_REDIRECT_URI)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") == "login_required" and got.get("state") == "pn", res.location


def test_prompt_none_signed_in_without_consent_is_consent_required(origin, zoe):
    res = assert_callback(zoe.get(oidc_authorize_url(origin, state="pc", prompt="none")), OIDC_REDIRECT_URI)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") == "consent_required" and got.get("state") == "pc", res.location


def test_prompt_none_signed_in_and_consented_gives_a_code(origin, yvonne):
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="ok", nonce="n", prompt="none")),
                          OIDC_REDIRECT_URI)
    assert res.code and res.state == "ok", res.location


@pytest.mark.parametrize("prompt", ["bogus", "none login", "none consent", "login none"])
def test_prompt_invalid_is_invalid_request(origin, yvonne, prompt):
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="pi", prompt=prompt)), OIDC_REDIRECT_URI)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") == "invalid_request" and got.get("state") == "pi", res.location


@pytest.mark.parametrize("max_age", ["abc", "-1", "1.5", "1e3"])
def test_max_age_invalid_is_invalid_request(origin, yvonne, max_age):
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="ma", max_age=max_age)), OIDC_REDIRECT_URI)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") == "invalid_request" and got.get("state") == "ma", res.location


@pytest.mark.parametrize("params", [dict(max_age="0"), dict(prompt="login")], ids=["max_age_0", "prompt_login"])
def test_reauthentication_shows_login_page(origin, params):
    b = consented_browser(origin, "yvonne")
    before = int(time.time())
    resp = b.get(oidc_authorize_url(origin, state="re", nonce="n-re", **params))
    assert is_login_page(resp), f"expected the login page\n{describe(resp)}"
    res = drive_to_callback(b, resp, "yvonne", redirect_uri=OIDC_REDIRECT_URI)
    assert res.login_shown and not res.consent_shown, res
    body = redeem(origin, res.code)
    _, claims = verify_jws(origin, body["id_token"], KEY_ALGORITHMS)
    assert claims["auth_time"] >= before, claims


def test_max_age_large_keeps_the_session(origin, yvonne):
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="big", nonce="n", max_age="3600")),
                          OIDC_REDIRECT_URI)
    body = redeem(origin, res.code)
    _, claims = verify_jws(origin, body["id_token"], KEY_ALGORITHMS)
    assert isinstance(claims["auth_time"], int), claims  # REQUIRED when max_age was sent


def test_prompt_consent_shows_consent_again(origin, yvonne):
    resp = yvonne.get(oidc_authorize_url(origin, state="pcs", prompt="consent"))
    assert resp.status_code == 200, describe(resp)
    res = drive_to_callback(yvonne, resp, "yvonne", redirect_uri=OIDC_REDIRECT_URI)
    assert res.consent_shown and res.code, res


def test_id_token_hint_of_the_signed_in_user_with_prompt_none(origin, yvonne):
    hint = oidc_tokens(origin, yvonne, state="h0", nonce="n")["id_token"]
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="h1", prompt="none", id_token_hint=hint)),
                          OIDC_REDIRECT_URI)
    assert res.code and res.state == "h1", res.location


@pytest.mark.parametrize("kind", ["forged_signature", "not_a_jwt"])
@pytest.mark.parametrize("prompt", [None, "none"], ids=["no_prompt", "prompt_none"])
def test_forged_id_token_hint_is_an_error(origin, yvonne, kind, prompt):
    if kind == "forged_signature":
        real = oidc_tokens(origin, yvonne, state="f0", nonce="n")["id_token"]
        hint = forge_id_token(origin, b64url_json(real.split(".")[1]))
    else:
        hint = "not-a-jwt"
    resp = yvonne.get(oidc_authorize_url(origin, state="fh", id_token_hint=hint, prompt=prompt))
    res = assert_callback(resp, OIDC_REDIRECT_URI)
    got = assert_iss_after_state(res.location, origin)
    assert got.get("error") in ("invalid_request", "login_required") and "code" not in got, res.location


def unsigned_jws(header: dict, claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize("header", [{"alg": "RS256", "kid": "no-such-key"}, {"alg": "RS256"}],
                         ids=["unknown_kid", "no_kid"])
def test_id_token_hint_without_a_known_key_naming_another_user_gets_no_code(origin, yvonne, steve, header):
    """A hint no key of the server verifies still may not name someone else (OIDC Core §3.1.2.2)."""
    steve_sub = me(origin, oidc_tokens(origin, steve, state="s0")["access_token"])["user"]["id"]
    yvonne_sub = me(origin, oidc_tokens(origin, yvonne, state="y0")["access_token"])["user"]["id"]
    now = int(time.time())
    claims = dict(iss=origin, aud=OIDC_CLIENT_ID, iat=now, exp=now + 600)
    forged = unsigned_jws({**header, "typ": "JWT"}, {**claims, "sub": steve_sub})
    resp = yvonne.get(oidc_authorize_url(origin, state="uk", prompt="none", id_token_hint=forged))
    got = assert_iss_after_state(assert_callback(resp, OIDC_REDIRECT_URI).location, origin)
    assert got.get("error") == "login_required" and "code" not in got, resp.headers["Location"]
    # Without prompt=none: the sign-in page, not a code.
    resp = yvonne.get(oidc_authorize_url(origin, state="uk2", id_token_hint=forged))
    assert is_login_page(resp), describe(resp)
    # Naming the signed-in user (say, an ID token of a key rotated out since): as if no hint.
    own = unsigned_jws({**header, "typ": "JWT"}, {**claims, "sub": yvonne_sub})
    res = assert_callback(yvonne.get(oidc_authorize_url(origin, state="uk3", prompt="none", id_token_hint=own)),
                          OIDC_REDIRECT_URI)
    assert res.code, res.location


def test_refresh_narrowed_to_openid_has_no_profile_claims(origin, yvonne):
    tokens = oidc_tokens(origin, yvonne, state="nr", nonce="n")
    _, full = verify_jws(origin, tokens["id_token"], KEY_ALGORITHMS)
    assert full["preferred_username"] == "yvonne", full
    r = token_request(origin, auth=OIDC_BASIC, form={"grant_type": "refresh_token",
                                                      "refresh_token": tokens["refresh_token"], "scope": "openid"})
    assert r.status_code == 200, describe(r)
    body = json_of(r)
    _, claims = verify_jws(origin, body["id_token"], KEY_ALGORITHMS)
    assert claims["sub"] == full["sub"], claims
    for name in ("name", "preferred_username", "email", "email_verified"):
        assert name not in claims, claims


def test_login_hint_prefills_username(origin):
    b = Browser(origin)
    resp = b.get(oidc_authorize_url(origin, state="lh", login_hint="zoe"))
    for _ in range(3):  # the authorize 303 to /login (maybe via one more hop)
        if resp.status_code != 303:
            break
        resp = b.get(resp.headers["Location"])
    assert resp.status_code == 200, describe(resp)
    form = find_form(resp, "/login")
    username = next(i for i in form.inputs if i.get("name") == "username")
    assert username.get("value") == "zoe", form.inputs


# --------------------------------------------------------------------------------------------
# (g) RFC 7662 introspection


@pytest.mark.parametrize("auth", [None, basic(OIDC_CLIENT_ID, "wrong-secret"), basic("nope@clients", "x")],
                         ids=["none", "wrong_secret", "unknown_client"])
def test_introspect_requires_client_auth(origin, steve, auth):
    at = oidc_tokens(origin, steve, state="i", nonce="n")["access_token"]
    assert_oauth_error(introspect(origin, at, auth), 401, "invalid_client")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_introspect_active_access_token(origin, steve, method):
    t = oidc_tokens(origin, steve, state="i", nonce="n")
    who = me(origin, t["access_token"])
    if method == "client_secret_basic":
        r = introspect(origin, t["access_token"], OIDC_BASIC)
    else:
        r = introspect(origin, t["access_token"], None, client_id=OIDC_CLIENT_ID, client_secret=OIDC_CLIENT_SECRET)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r)
    body = json_of(r)
    assert body["active"] is True, body
    assert set(body["scope"].split()) == set(OIDC_SCOPE.split()), body
    assert body["client_id"] in (OIDC_CLIENT_ID, who["client"]["id"]), body
    assert body["sub"] == who["user"]["id"], body
    assert body["iss"] == origin, body
    assert body["token_type"] == "Bearer", body
    assert isinstance(body["exp"], int) and isinstance(body["iat"], int), body
    assert body["exp"] - body["iat"] == ACCESS_TOKEN_LIFETIME and body["exp"] > time.time(), body


def test_introspect_access_token_with_wrong_hint_is_still_found(origin, steve):
    at = oidc_tokens(origin, steve, state="i", nonce="n")["access_token"]
    body = json_of(introspect(origin, at, OIDC_BASIC, token_type_hint="refresh_token"))
    assert body["active"] is True and body["token_type"] == "Bearer", body


@pytest.mark.parametrize("hint", [None, "refresh_token"])
def test_introspect_refresh_token(origin, steve, hint):
    t = oidc_tokens(origin, steve, state="i", nonce="n")
    who = me(origin, t["access_token"])
    extra = {"token_type_hint": hint} if hint else {}
    r = introspect(origin, t["refresh_token"], OIDC_BASIC, **extra)
    assert r.status_code == 200, describe(r)
    body = json_of(r)
    assert body["active"] is True and body["token_type"] == "refresh_token", body
    assert body["sub"] == who["user"]["id"] and body["iss"] == origin, body
    assert body["client_id"] in (OIDC_CLIENT_ID, who["client"]["id"]), body
    assert set(body["scope"].split()) == set(OIDC_SCOPE.split()), body


@pytest.mark.parametrize("token", ["garbage", "00000000-0000-0000-0000-000000000000", "a" * 300,
                                   "eyJhbGciOiJub25lIn0.e30."],
                         ids=["garbage", "uuid", "long", "jwt_alg_none"])
def test_introspect_unknown_is_exactly_inactive(origin, token):
    r = introspect(origin, token, OIDC_BASIC)
    assert r.status_code == 200, describe(r)
    assert json_of(r) == {"active": False}, describe(r)


# --------------------------------------------------------------------------------------------
# (h) RFC 7009 revocation


def test_revoke_access_token(origin, steve):
    t = oidc_tokens(origin, steve, state="r", nonce="n")
    assert auth_self(origin, t["access_token"]).status_code == 200
    r = revoke(origin, t["access_token"], OIDC_BASIC, token_type_hint="access_token")
    assert r.status_code == 200, describe(r)
    assert json_of(introspect(origin, t["access_token"], OIDC_BASIC)) == {"active": False}
    dead = auth_self(origin, t["access_token"])
    assert dead.status_code == 401, describe(dead)
    assert userinfo(origin, t["access_token"]).status_code == 401


def test_revoke_refresh_token_revokes_the_family(origin, steve):
    t = oidc_tokens(origin, steve, state="r", nonce="n")
    r = revoke(origin, t["refresh_token"], OIDC_BASIC, token_type_hint="refresh_token")
    assert r.status_code == 200, describe(r)
    assert_oauth_error(refresh(origin, t["refresh_token"]), 400, "invalid_grant")
    dead = auth_self(origin, t["access_token"])
    assert dead.status_code == 401, describe(dead)
    assert json_of(introspect(origin, t["refresh_token"], OIDC_BASIC)) == {"active": False}
    assert json_of(introspect(origin, t["access_token"], OIDC_BASIC)) == {"active": False}


def test_revoke_refresh_token_without_hint(origin, steve):
    t = oidc_tokens(origin, steve, state="r", nonce="n")
    assert revoke(origin, t["refresh_token"], None, client_id=OIDC_CLIENT_ID,
                  client_secret=OIDC_CLIENT_SECRET).status_code == 200  # client_secret_post
    assert_oauth_error(refresh(origin, t["refresh_token"]), 400, "invalid_grant")


def test_revoke_another_clients_token_is_ignored(origin, steve):
    t = oidc_tokens(origin, steve, state="r", nonce="n")
    for token in (t["access_token"], t["refresh_token"]):
        r = revoke(origin, token, OTHER_BASIC)
        assert r.status_code == 200, describe(r)
    assert auth_self(origin, t["access_token"]).status_code == 200
    assert json_of(introspect(origin, t["access_token"], OIDC_BASIC))["active"] is True
    assert refresh(origin, t["refresh_token"]).status_code == 200


def test_revoke_unknown_token_is_200(origin):
    r = revoke(origin, "never-issued", OIDC_BASIC)
    assert r.status_code == 200, describe(r)


def test_revoke_missing_token_is_invalid_request(origin):
    assert_oauth_error(revoke(origin, None, OIDC_BASIC), 400, "invalid_request")


@pytest.mark.parametrize("auth", [None, basic(OIDC_CLIENT_ID, "wrong-secret")], ids=["none", "wrong_secret"])
def test_revoke_requires_client_auth(origin, steve, auth):
    t = oidc_tokens(origin, steve, state="r", nonce="n")
    assert_oauth_error(revoke(origin, t["access_token"], auth), 401, "invalid_client")
    assert auth_self(origin, t["access_token"]).status_code == 200


# --------------------------------------------------------------------------------------------
# (i) userinfo


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo(origin, yvonne, method):
    t = oidc_tokens(origin, yvonne, state="ui", nonce="n")
    r = userinfo(origin, t["access_token"], method)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r)
    sub = me(origin, t["access_token"])["user"]["id"]
    assert json_of(r) == {
        "sub": sub,
        "name": "Yvonne",
        "preferred_username": "yvonne",
        "email": USER_EMAILS["yvonne"][0],
        "email_verified": True,
    }, describe(r)


def test_userinfo_without_openid_scope_is_insufficient_scope(origin, xavier):
    code = _python_client_code(origin, xavier, "xavier", scope="base", state="ui")
    t = assert_token_response(token_request(origin, auth=PYTHON_BASIC,
                                            json_body={"grant_type": "authorization_code", "code": code}))
    for method in ("GET", "POST"):
        r = userinfo(origin, t["access_token"], method)
        assert r.status_code == 403, describe(r)
        www = r.headers.get("WWW-Authenticate", "")
        assert www.startswith("Bearer") and 'error="insufficient_scope"' in www, describe(r)


@pytest.mark.parametrize("token", ["not-a-token", "00000000-0000-0000-0000-000000000000"])
def test_userinfo_bad_token(origin, token):
    r = userinfo(origin, token)
    assert r.status_code == 401, describe(r)
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith("Bearer") and 'error="invalid_token"' in www, describe(r)


def test_userinfo_refresh_token_is_not_an_access_token(origin, yvonne):
    t = oidc_tokens(origin, yvonne, state="ui", nonce="n")
    r = userinfo(origin, t["refresh_token"])
    assert r.status_code == 401, describe(r)


def test_userinfo_without_token(origin):
    r = userinfo(origin, None)
    assert r.status_code == 401, describe(r)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), describe(r)


# --------------------------------------------------------------------------------------------
# (j) RFC 9068 JWT access tokens (jwt_app), verified with PyJWT


@pytest.fixture(scope="module")
def quinn(origin) -> Browser:
    b = Browser(origin)
    b.login("quinn")
    return b


def _jwt_app_tokens(origin: str, quinn: Browser, scope: str, **params) -> dict:
    url = authorize_url(origin, client_id=JWT_CLIENT_ID, redirect_uri=JWT_REDIRECT_URI, scope=scope, **params)
    res = drive_to_callback(quinn, quinn.get(url), "quinn", redirect_uri=JWT_REDIRECT_URI)
    r = token_request(origin, auth=JWT_BASIC, json_body={"grant_type": "authorization_code", "code": res.code})
    assert r.status_code == 200, describe(r)
    return json_of(r)


def _pyjwt_verify(origin: str, token: str) -> tuple[dict, dict]:
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(fetch_jwks(origin))[header["kid"]]
    claims = pyjwt.decode(
        token,
        key=key.key,
        algorithms=[header["alg"]],
        issuer=origin,
        options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
    )
    return header, claims


def test_jwt_access_token(origin, quinn):
    t = _jwt_app_tokens(origin, quinn, "base", state="j")
    # scope base: still exactly the Eternaltwin shape
    assert set(t) == {"access_token", "token_type", "expires_in", "refresh_token"}, t
    at = t["access_token"]
    header, claims = _pyjwt_verify(origin, at)
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt"), header
    assert header["alg"] == KEY_ALGORITHMS[0], header  # the first configured algorithm

    who = me(origin, at)  # still a bearer token for Doorward's own API
    assert who["client"]["key"] == JWT_CLIENT_ID and who["user"]["display_name"]["current"]["value"] == "Quinn", who
    assert claims["sub"] == who["user"]["id"], claims
    assert claims["client_id"] in (JWT_CLIENT_ID, who["client"]["id"]), claims
    assert isinstance(claims["aud"], (str, list)) and claims["aud"], claims
    assert claims["scope"] == "base", claims
    assert claims["exp"] - claims["iat"] == ACCESS_TOKEN_LIFETIME, claims
    assert isinstance(claims["jti"], str) and claims["jti"], claims

    other = _jwt_app_tokens(origin, quinn, "base", state="j2")
    assert _pyjwt_verify(origin, other["access_token"])[1]["jti"] != claims["jti"]

    body = json_of(introspect(origin, at, JWT_BASIC))
    assert body["active"] is True and body["sub"] == claims["sub"], body

    # A JWT with a broken signature is not a bearer token.
    head, payload, sig = at.split(".")
    flipped = ("B" if sig[0] != "B" else "C") + sig[1:]
    r = auth_self(origin, f"{head}.{payload}.{flipped}")
    assert r.status_code == 401, describe(r)

    # Revoking the refresh token kills the family, the JWT access token included.
    assert revoke(origin, t["refresh_token"], JWT_BASIC).status_code == 200
    r = auth_self(origin, at)
    assert r.status_code == 401, describe(r)


def test_jwt_access_token_with_openid(origin, quinn):
    t = _jwt_app_tokens(origin, quinn, "openid email", state="jo", nonce="n-jwt")
    at = t["access_token"]
    _, claims = _pyjwt_verify(origin, at)
    assert set(claims["scope"].split()) == {"openid", "email"}, claims
    header, id_claims = verify_jws(origin, t["id_token"], KEY_ALGORITHMS)
    check_id_token_claims(origin, id_claims, username="quinn", sub=claims["sub"], client_id=JWT_CLIENT_ID,
                          scope="openid email", alg=header["alg"], nonce="n-jwt", access_token=at)
    u = userinfo(origin, at)
    assert u.status_code == 200, describe(u)
    assert json_of(u) == {"sub": claims["sub"], "email": USER_EMAILS["quinn"][0], "email_verified": True}, describe(u)


# --------------------------------------------------------------------------------------------
# (k) RP-initiated logout (end_session)


def _end_session_page(browser: Browser, url: str):
    page = browser.get(url)
    assert page.status_code == 200, describe(page)
    assert page.headers.get("Content-Type", "").startswith("text/html"), describe(page)
    form = find_form(page, "/oauth/end_session")
    assert "csrf" in dict(form.hidden), form
    return page, form


def test_end_session_with_authlib_logout_redirect(origin):
    browser = Browser(origin)
    rp = FlaskRP(origin, "oidc_app", OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI)
    token, _ = rp.sign_in(origin, browser, "rupert", OIDC_REDIRECT_URI)
    assert_signed_in(browser)

    start = rp.get("/logout?" + urlencode({"id_token_hint": token["id_token"]}))
    assert start.status_code == 302, start.get_data(as_text=True)
    url = start.headers["Location"]
    assert url.startswith(f"{origin}/oauth/end_session?"), url
    sent = query_of(url)
    assert sent["post_logout_redirect_uri"] == OIDC_POST_LOGOUT_URI and sent["state"], sent

    page, form = _end_session_page(browser, url)
    resp = browser.submit(page, form, button=confirm_button(form))
    assert resp.status_code == 303, describe(resp)
    loc = resp.headers["Location"]
    assert loc.split("?", 1)[0] == OIDC_POST_LOGOUT_URI, describe(resp)
    assert query_of(loc).get("state") == sent["state"], describe(resp)
    back = rp.get(loc)  # Authlib's validate_logout_response checks the state
    assert back.status_code == 200 and rp.results["logout"]["post_logout_redirect_uri"] == OIDC_POST_LOGOUT_URI

    assert_signed_out(origin, browser)
    res = assert_callback(browser.get(oidc_authorize_url(origin, state="after", prompt="none")), OIDC_REDIRECT_URI)
    assert res.params.get("error") == "login_required", res.location


def test_end_session_without_redirect_shows_signed_out_page(origin):
    b = Browser(origin)
    b.login("rupert")
    page, form = _end_session_page(b, "/oauth/end_session")
    resp = b.submit(page, form, button=confirm_button(form))
    if resp.status_code == 303:
        loc = resp.headers["Location"]
        assert not urlsplit(loc).netloc or urlsplit(loc).netloc == urlsplit(origin).netloc, describe(resp)
        resp = b.get(loc)
    assert resp.status_code == 200, describe(resp)
    assert_signed_out(origin, b)


@pytest.mark.parametrize(
    "params",
    [
        dict(client_id=OIDC_CLIENT_ID, post_logout_redirect_uri="http://evil.example/logged-out", state="s"),
        dict(client_id=OIDC_CLIENT_ID, post_logout_redirect_uri=OIDC_POST_LOGOUT_URI + "/", state="s"),
        dict(client_id=OIDC_CLIENT_ID, post_logout_redirect_uri=OIDC_POST_LOGOUT_URI + "?x=1", state="s"),
        dict(client_id=CLIENT_ID, post_logout_redirect_uri=OIDC_POST_LOGOUT_URI, state="s"),
        dict(client_id=CLIENT_ID, post_logout_redirect_uri=REDIRECT_URI, state="s"),
    ],
    ids=["foreign", "trailing_slash", "extra_query", "other_clients_uri", "callback_is_not_logout_uri"],
)
def test_end_session_unregistered_redirect_is_400(origin, params):
    b = Browser(origin)
    b.login("rupert")
    resp = b.get("/oauth/end_session?" + urlencode(params))
    assert resp.status_code == 400, describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    assert resp.headers.get("Content-Type", "").startswith("text/html"), describe(resp)
    assert_signed_in(b)


def test_end_session_forged_id_token_hint_is_400(origin):
    b = consented_browser(origin, "rupert")
    real = oidc_tokens(origin, b, state="fe", nonce="n")["id_token"]
    forged = forge_id_token(origin, b64url_json(real.split(".")[1]))
    params = dict(id_token_hint=forged, post_logout_redirect_uri=OIDC_POST_LOGOUT_URI, state="s")
    resp = b.get("/oauth/end_session?" + urlencode(params))
    assert resp.status_code == 400, describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    assert_signed_in(b)


def test_end_session_deny_keeps_the_session(origin):
    b = Browser(origin)
    b.login("rupert")
    params = dict(client_id=OIDC_CLIENT_ID, post_logout_redirect_uri=OIDC_POST_LOGOUT_URI, state="s")
    page, form = _end_session_page(b, "/oauth/end_session?" + urlencode(params))
    resp = b.submit(page, form, button=form.button(value="deny"))
    assert resp.status_code in (200, 303), describe(resp)
    if resp.status_code == 303:
        loc = resp.headers["Location"]
        assert not urlsplit(loc).netloc or urlsplit(loc).netloc == urlsplit(origin).netloc, describe(resp)
    assert_signed_in(b)


def test_end_session_post_without_csrf_keeps_the_session(origin):
    b = Browser(origin)
    b.login("rupert")
    page, form = _end_session_page(b, "/oauth/end_session")
    button = confirm_button(form)
    data = [(k, v) for k, v in form.hidden if k != "csrf"]
    if button is not None and button.name:
        data.append((button.name, button.value))
    resp = b.post("/oauth/end_session", data=data)
    assert resp.status_code in (400, 403), describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    assert_signed_in(b)
