"""Every kind of client against `doorward serve` (issue 14): Authlib's `client_credentials`
(RFC 6749 §4.4) and its introspection, a client without the grant refused, a public client
doing code + PKCE S256 with no secret (Authlib, token_endpoint_auth_method='none'), and a
native-style client whose loopback redirect URI is registered without a port and used on a
random one (RFC 8252 §7.3), with plain requests.

The module runs a server of its own, with its clients and users added to the shared config.
"""

from __future__ import annotations

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

import helpers
from helpers import (
    started,
    CLIENT_ID,
    CLIENT_SECRET,
    HTTP_TIMEOUT_S,
    Browser,
    DoorwardServer,
    assert_oauth_error,
    auth_self,
    authorize_as,
    basic,
    doorward_bin,
    free_port,
    introspect,
    json_of,
    pkce_pair,
    query_of,
    userinfo,
)

MACHINE_ID = "machine@clients"
MACHINE_SECRET = "machine-secret-123"
SPA_ID = "spa@clients"
SPA_REDIRECT = "http://127.0.0.1:8010/cb"
NATIVE_ID = "native@clients"
NATIVE_REGISTERED = "http://127.0.0.1/callback"

# This module's users, seeded by `helpers.config_toml` once they are in `helpers.USERS`.
USERS = ["h1pub", "h1native"]
for _name in USERS:
    helpers.USERS.setdefault(_name, (f"{_name}-password-1", _name.capitalize()))

EXTRA = f"""
[clients.machine]
display_name = "Machine"
app_uri = "https://machine.example"
redirect_uris = ["https://machine.example/unused"]
secret = "{MACHINE_SECRET}"
grant_types = ["client_credentials"]
scopes = ["base", "profile"]

[clients.spa]
display_name = "Single-page app"
app_uri = "http://127.0.0.1:8010"
redirect_uris = ["{SPA_REDIRECT}", "https://spa.example/cb"]
token_endpoint_auth_method = "none"

[clients.native]
display_name = "Native app"
app_uri = "https://native.example"
redirect_uris = ["{NATIVE_REGISTERED}", "com.example.native:/cb"]
token_endpoint_auth_method = "none"
"""


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("clients"), extra_config=EXTRA))
    yield srv.origin
    srv.stop()


def test_metadata_names_the_grant_and_the_public_method(origin):
    meta = requests.get(f"{origin}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT_S).json()
    assert "client_credentials" in meta["grant_types_supported"], meta
    assert "none" in meta["token_endpoint_auth_methods_supported"], meta


def test_authlib_client_credentials_and_introspection(origin):
    session = OAuth2Session(MACHINE_ID, MACHINE_SECRET, scope="profile")
    token = session.fetch_token(f"{origin}/oauth/token", grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer" and token["access_token"], token
    assert "refresh_token" not in token and "id_token" not in token, token
    answer = json_of(introspect(origin, token["access_token"], basic(MACHINE_ID, MACHINE_SECRET)))
    assert answer["active"] is True, answer
    assert answer["sub"] == MACHINE_ID and answer["client_id"] == MACHINE_ID, answer
    assert answer["scope"] == "profile" and "username" not in answer, answer
    # A resource about a user refuses a token without one: 403 insufficient_scope.
    for resp in (auth_self(origin, token["access_token"]), userinfo(origin, token["access_token"])):
        assert resp.status_code == 403, resp.text
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"], resp.headers
    # openid cannot be granted without a user.
    with pytest.raises(OAuthError) as refused:
        OAuth2Session(MACHINE_ID, MACHINE_SECRET, scope="openid").fetch_token(
            f"{origin}/oauth/token", grant_type="client_credentials"
        )
    assert refused.value.error == "invalid_scope"


def test_client_credentials_refused_to_a_client_without_the_grant(origin):
    with pytest.raises(OAuthError) as refused:
        OAuth2Session(CLIENT_ID, CLIENT_SECRET).fetch_token(
            f"{origin}/oauth/token", grant_type="client_credentials"
        )
    assert refused.value.error == "unauthorized_client"
    # A public client never gets it either.
    resp = requests.post(
        f"{origin}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": SPA_ID},
        timeout=HTTP_TIMEOUT_S,
    )
    assert_oauth_error(resp, 400, "unauthorized_client")


def test_authlib_public_client_code_pkce_without_secret(origin):
    session = OAuth2Session(
        client_id=SPA_ID,
        token_endpoint_auth_method="none",
        scope="base",
        redirect_uri=SPA_REDIRECT,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, state = session.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    result = authorize_as(Browser(origin), url, "h1pub", redirect_uri=SPA_REDIRECT)
    assert result.state == state
    token = session.fetch_token(
        f"{origin}/oauth/token", authorization_response=result.location, code_verifier=verifier
    )
    assert auth_self(origin, token["access_token"]).status_code == 200
    # Refresh rotates, with the client_id alone.
    old = token["refresh_token"]
    refreshed = session.refresh_token(f"{origin}/oauth/token", refresh_token=old)
    assert refreshed["refresh_token"] != old
    # Without PKCE, a public client's request is refused at the authorization endpoint.
    no_pkce = OAuth2Session(client_id=SPA_ID, scope="base", redirect_uri=SPA_REDIRECT)
    bare_url, _ = no_pkce.create_authorization_url(f"{origin}/oauth/authorize")
    browser = Browser(origin)
    browser.login("h1pub", next_url="/account")
    resp = browser.get(bare_url)
    assert resp.status_code in (302, 303), resp.text
    assert query_of(resp.headers["Location"])["error"] == "invalid_request", resp.headers


def test_native_client_loopback_redirect_on_a_random_port(origin):
    port = free_port()
    used = f"http://127.0.0.1:{port}/callback"
    verifier, challenge = pkce_pair()
    url = helpers.authorize_url(
        origin,
        client_id=NATIVE_ID,
        redirect_uri=used,
        code_challenge=challenge,
        code_challenge_method="S256",
        state="native-state",
    )
    result = authorize_as(Browser(origin), url, "h1native", redirect_uri=used)
    form = {
        "grant_type": "authorization_code",
        "client_id": NATIVE_ID,
        "code": result.code,
        "redirect_uri": used,
        "code_verifier": verifier,
    }
    resp = requests.post(f"{origin}/oauth/token", data=form, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 200, resp.text
    assert auth_self(origin, resp.json()["access_token"]).status_code == 200
    # Another path on the loopback address, or localhost, is not registered: shown, not
    # redirected.
    for other in (f"http://127.0.0.1:{port}/other", f"http://localhost:{port}/callback"):
        bad = helpers.authorize_url(
            origin, client_id=NATIVE_ID, redirect_uri=other,
            code_challenge=challenge, code_challenge_method="S256",
        )
        resp = requests.get(bad, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 400, (other, resp.status_code)
