"""The embedding example (examples/embedded): an axum "shop" that mounts Doorward's provider at
/auth, signs users in with its own login page, keeps Doorward's data in its own store and
protects its API with two scopes.

The real Authlib 1.9.9 `OAuth2Session` (PKCE S256, client_secret_basic) signs in through the
shop's login page and Doorward's consent page, then calls the API: the granted scope passes,
the other is 403 insufficient_scope, an expired token is 401 invalid_token, and a refresh gives
a working token again. `bash scripts/test.sh` builds the example (DOORWARD_EMBEDDED_EXAMPLE_BIN).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from helpers import REPO_ROOT, Browser, ReadyProcess, describe, find_form, free_port, query_of

CLIENT_ID = "shop-companion"
CLIENT_SECRET = "shop-companion-secret"
REDIRECT = "http://localhost:8009/oauth/callback"
LIFETIME = 10  # seconds (whole: 9 to 10 s of life); the API's answer to an expired token is tested


def example_bin() -> Path:
    env = os.environ.get("DOORWARD_EMBEDDED_EXAMPLE_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "doorward-example-embedded"


@pytest.fixture(scope="module")
def shop():
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    app = ReadyProcess([str(example_bin())], {
        "LISTEN": f"127.0.0.1:{port}",
        "EXTERNAL_URL": origin,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URI": REDIRECT,
        "ACCESS_TOKEN_LIFETIME": str(LIFETIME),
    }, "shop listening on")
    yield origin
    app.stop()


def session(scope: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_basic",
        scope=scope,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )


def sign_in(shop: str, oauth: OAuth2Session, username: str, password: str, decision: str = "sign-in"):
    """Authlib's authorization URL, the shop's login page, Doorward's consent page: the
    callback URL (not followed: nothing listens there)."""
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(f"{shop}/auth/oauth/authorize", code_verifier=verifier)
    browser = Browser(shop)
    resp = browser.get(url)
    assert resp.status_code == 303, describe(resp)
    login = resp.headers["Location"]
    assert urlsplit(login).path == "/login" and "grant" in query_of(login), login
    page = browser.get(login)
    assert page.status_code == 200, describe(page)
    form = find_form(page, "/login")
    resp = browser.submit(page, form, {"username": username, "password": password},
                          button=form.button(value=decision))
    if decision == "cancel":
        return resp, state, verifier
    assert resp.status_code == 303, describe(resp)
    assert urlsplit(resp.headers["Location"]).path == "/auth/oauth/authorize", describe(resp)
    consent = browser.get(resp.headers["Location"])
    assert consent.status_code == 200, describe(consent)
    assert "Shop companion app" in consent.text
    form = find_form(consent, "/auth/oauth/authorize")
    resp = browser.submit(consent, form, button=form.button(value="approve"))
    assert resp.status_code == 303, describe(resp)
    return resp, state, verifier


def api(shop: str, method: str, token: dict):
    """A call with the token (Authlib's own session would refuse a token this short-lived: it
    counts a minute of leeway)."""
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    browser = Browser(shop)
    return browser.get("/api/items", headers=headers) if method == "GET" else browser.post("/api/items", headers=headers)


def test_authlib_signs_in_through_the_shops_login_page_and_calls_the_api(shop):
    oauth = session("openid items:read")
    resp, state, verifier = sign_in(shop, oauth, "ada", "lovelace")
    callback = resp.headers["Location"]
    assert callback.startswith(REDIRECT) and query_of(callback)["state"] == state, callback
    token = oauth.fetch_token(f"{shop}/auth/oauth/token", authorization_response=callback,
                              code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["id_token"]

    items = api(shop, "GET", token)
    assert items.status_code == 200, describe(items)
    assert items.json()["items"] == ["apple", "pear"]

    # The other scope: 403 insufficient_scope naming it (RFC 6750 §3.1).
    add = api(shop, "POST", token)
    assert add.status_code == 403, describe(add)
    challenge = add.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="items:write"' in challenge, challenge

    # No token: 401 with a bare challenge; a bad one: invalid_token.
    bare = Browser(shop).get("/api/items")
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == 'Bearer realm="doorward"', describe(bare)
    bad = Browser(shop).get("/api/items", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"], describe(bad)

    # Expired (the shop's access tokens live LIFETIME seconds): 401 invalid_token.
    time.sleep(LIFETIME + 1.5)
    expired = Browser(shop).get("/api/items", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert expired.status_code == 401, describe(expired)
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"], describe(expired)

    # Authlib refreshes; the new token works.
    fresh = oauth.refresh_token(f"{shop}/auth/oauth/token", refresh_token=token["refresh_token"])
    again = Browser(shop).get("/api/items", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert again.status_code == 200, describe(again)


def test_both_scopes_and_discovery_under_the_mount_path(shop):
    meta = Browser(shop).get("/auth/.well-known/openid-configuration")
    assert meta.status_code == 200, describe(meta)
    doc = meta.json()
    assert doc["issuer"] == f"{shop}/auth"
    assert doc["token_endpoint"] == f"{shop}/auth/oauth/token"
    oauth = session("items:read items:write")
    resp, _, verifier = sign_in(shop, oauth, "alan", "turing")
    token = oauth.fetch_token(f"{shop}/auth/oauth/token", authorization_response=resp.headers["Location"],
                              code_verifier=verifier)
    add = api(shop, "POST", token)
    assert add.status_code == 200 and add.json()["added"] is True, describe(add)


def test_wrong_password_and_cancel(shop):
    oauth = session("items:read")
    verifier = generate_token(48)
    url, _ = oauth.create_authorization_url(f"{shop}/auth/oauth/authorize", code_verifier=verifier)
    browser = Browser(shop)
    login = browser.get(url).headers["Location"]
    page = browser.get(login)
    form = find_form(page, "/login")
    wrong = browser.submit(page, form, {"username": "ada", "password": "nope"}, button=form.button(value="sign-in"))
    assert wrong.status_code == 401, describe(wrong)
    # Cancel on the shop's page: the client gets access_denied with its state.
    resp, state, _ = sign_in(shop, session("items:read"), "ada", "", decision="cancel")
    assert resp.status_code == 303, describe(resp)
    params = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT) and params["error"] == "access_denied", describe(resp)
    assert params["state"] == state


def test_an_extension_grant_of_the_shop_trades_a_loyalty_card_for_a_read_token(shop):
    """The shop's own grant type (RFC 6749 §4.5), through Authlib's `fetch_token` with a custom
    `grant_type`: a good card gets its holder a token that reads and cannot write; a bad card is
    `invalid_grant`."""
    grant = "https://shop.example/grants/loyalty-card"
    oauth = session("items:read items:write")
    token = oauth.fetch_token(f"{shop}/auth/oauth/token", grant_type=grant, card="1815-ADA")
    assert token["scope"] == "items:read" and "refresh_token" not in token, token
    # Plain requests: the shop's tokens live 3 s, less than Authlib's leeway.
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    items = requests.get(f"{shop}/api/items", headers=bearer, timeout=10)
    assert items.status_code == 200 and items.json()["user"] != "", describe(items)
    assert requests.post(f"{shop}/api/items", headers=bearer, timeout=10).status_code == 403
    with pytest.raises(Exception) as refused:
        session("items:read").fetch_token(f"{shop}/auth/oauth/token", grant_type=grant, card="0000")
    assert "invalid_grant" in str(refused.value)
