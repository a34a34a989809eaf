"""Resource indicators (RFC 8707) and the Protected Resource Metadata of Doorward's own API
(RFC 9728) against `doorward serve`: Authlib's code flow with `resource` at the authorization
and token endpoints, the JWT access token's `aud` checked by PyJWT against the JWKS,
introspection's `aud`, a refresh narrowing the grant's resources, `client_credentials` with
`resource`, and `invalid_target` (RFC 8707 §2) for an unknown resource, a fragment, a
relative URI and a resource the client may not have. Every request goes through a session
that fails on any 5xx.

The module runs a server of its own, with its clients and user added to the shared config.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

import helpers
from helpers import (
    HTTP_TIMEOUT_S,
    Browser,
    DoorwardServer,
    assert_oauth_error,
    auth_self,
    authorize_as,
    basic,
    describe,
    doorward_bin,
    fetch_jwks,
    http_session,
    introspect,
    json_of,
    query_of,
    started,
)

API = "https://api.example/v1"
MCP = "https://mcp.example/mcp"
# Known to the server, allowed to no client of this module.
ADMIN = "https://admin.example/"

APP_ID = "res_app@clients"
APP_SECRET = "res-app-secret-1"
APP_REDIRECT = "http://localhost:8020/cb"
MACHINE_ID = "res_machine@clients"
MACHINE_SECRET = "res-machine-secret-1"

USER = "rindi"
helpers.USERS.setdefault(USER, (f"{USER}-password-1", USER.capitalize()))

EXTRA = f"""
[oauth]
resources = ["{API}", "{MCP}", "{ADMIN}"]

[clients.res_app]
display_name = "Resource App"
app_uri = "http://localhost:8020"
callback_uri = "{APP_REDIRECT}"
secret = "{APP_SECRET}"
access_token_format = "jwt"
resources = ["{API}", "{MCP}"]

[clients.res_machine]
display_name = "Resource Machine"
app_uri = "https://machine.example"
redirect_uris = ["https://machine.example/unused"]
secret = "{MACHINE_SECRET}"
grant_types = ["client_credentials"]
resources = ["{MCP}"]
"""


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("resources"), extra_config=EXTRA))
    yield srv.origin
    srv.stop()


@pytest.fixture(scope="module")
def browser(origin):
    b = Browser(origin)
    b.login(USER)
    return b


def _session() -> OAuth2Session:
    session = OAuth2Session(
        APP_ID, APP_SECRET, redirect_uri=APP_REDIRECT, scope="base", code_challenge_method="S256"
    )
    session.hooks["response"].append(helpers._no_5xx)
    return session


def _authorize(origin: str, browser: Browser, session: OAuth2Session, resources: list[str]) -> tuple[str, str]:
    """Authlib's authorization URL plus one `resource` per entry (RFC 8707 §2 repeats it);
    returns the code and the PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    url, _state = session.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    url += "".join("&" + urlencode({"resource": r}) for r in resources)
    result = authorize_as(browser, url, USER, redirect_uri=APP_REDIRECT)
    return result.code, verifier


def _verified_claims(origin: str, token: str, audience: str) -> dict:
    """PyJWT verifies the signature with the JWKS, `iss`, and that `aud` names `audience`."""
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWKSet.from_dict(fetch_jwks(origin))[header["kid"]]
    return pyjwt.decode(token, key=key.key, algorithms=[header["alg"]], issuer=origin, audience=audience)


def _token(origin: str, auth: str, form: list[tuple[str, str]]) -> requests.Response:
    return http_session().post(
        f"{origin}/oauth/token", data=form, headers={"Authorization": auth}, timeout=HTTP_TIMEOUT_S
    )


def test_authlib_code_flow_with_resources_narrows_the_jwt_audience(origin, browser):
    session = _session()
    code, verifier = _authorize(origin, browser, session, [API, MCP])
    token = session.fetch_token(
        f"{origin}/oauth/token", code=code, code_verifier=verifier, resource=MCP
    )
    claims = _verified_claims(origin, token["access_token"], MCP)
    assert claims["aud"] == MCP, claims
    with pytest.raises(pyjwt.InvalidAudienceError):
        _verified_claims(origin, token["access_token"], API)
    # Meant for the MCP server: Doorward's own API refuses it.
    resp = auth_self(origin, token["access_token"])
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"], describe(resp)

    # A refresh asks for the other resource of the grant ...
    api = session.refresh_token(f"{origin}/oauth/token", refresh_token=token["refresh_token"], resource=API)
    assert _verified_claims(origin, api["access_token"], API)["aud"] == API
    # ... or for all of them: `aud` is then an array.
    both = session.refresh_token(f"{origin}/oauth/token", refresh_token=api["refresh_token"])
    assert sorted(_verified_claims(origin, both["access_token"], MCP)["aud"]) == sorted([API, MCP])
    # Introspection names the same audience.
    answer = json_of(introspect(origin, both["access_token"], basic(APP_ID, APP_SECRET)))
    assert answer["active"] is True and sorted(answer["aud"]) == sorted([API, MCP]), answer


def test_a_refresh_cannot_reach_beyond_the_grants_resources(origin, browser):
    session = _session()
    code, verifier = _authorize(origin, browser, session, [API])
    token = session.fetch_token(f"{origin}/oauth/token", code=code, code_verifier=verifier)
    assert _verified_claims(origin, token["access_token"], API)["aud"] == API
    # MCP is allowed to the client, but not in this grant (RFC 8707 §2.2).
    resp = _token(
        origin,
        basic(APP_ID, APP_SECRET),
        [("grant_type", "refresh_token"), ("refresh_token", token["refresh_token"]), ("resource", MCP)],
    )
    assert_oauth_error(resp, 400, "invalid_target")
    # The refused request spent nothing: the refresh token still works.
    again = session.refresh_token(f"{origin}/oauth/token", refresh_token=token["refresh_token"], resource=API)
    assert _verified_claims(origin, again["access_token"], API)["aud"] == API


def test_a_code_without_resources_keeps_the_default_audience(origin, browser):
    session = _session()
    code, verifier = _authorize(origin, browser, session, [])
    token = session.fetch_token(f"{origin}/oauth/token", code=code, code_verifier=verifier)
    claims = _verified_claims(origin, token["access_token"], origin)
    assert claims["aud"] == origin, claims
    assert auth_self(origin, token["access_token"]).status_code == 200
    answer = json_of(introspect(origin, token["access_token"], basic(APP_ID, APP_SECRET)))
    assert answer["aud"] == origin, answer


def test_client_credentials_with_resources_and_introspection(origin):
    session = OAuth2Session(MACHINE_ID, MACHINE_SECRET)
    session.hooks["response"].append(helpers._no_5xx)
    token = session.fetch_token(f"{origin}/oauth/token", grant_type="client_credentials", resource=MCP)
    answer = json_of(introspect(origin, token["access_token"], basic(MACHINE_ID, MACHINE_SECRET)))
    assert answer["active"] is True and answer["aud"] == MCP, answer
    assert answer["sub"] == MACHINE_ID, answer
    # The issuer's own API is a resource every client may name.
    own = session.fetch_token(f"{origin}/oauth/token", grant_type="client_credentials", resource=origin)
    answer = json_of(introspect(origin, own["access_token"], basic(MACHINE_ID, MACHINE_SECRET)))
    assert answer["aud"] == origin, answer
    # API is known to the server, but not allowed to this client.
    with pytest.raises(OAuthError) as refused:
        session.fetch_token(f"{origin}/oauth/token", grant_type="client_credentials", resource=API)
    assert refused.value.error == "invalid_target"


@pytest.mark.parametrize(
    "resource",
    ["https://unknown.example/", f"{MCP}#fragment", "/mcp", "mcp.example/mcp", ADMIN],
    ids=["unknown", "fragment", "relative", "no-scheme", "not-allowed"],
)
def test_invalid_target_at_the_token_endpoint(origin, resource):
    resp = _token(
        origin,
        basic(MACHINE_ID, MACHINE_SECRET),
        [("grant_type", "client_credentials"), ("resource", MCP), ("resource", resource)],
    )
    assert_oauth_error(resp, 400, "invalid_target")


@pytest.mark.parametrize(
    "resource",
    ["https://unknown.example/", f"{API}#fragment", "/v1", ADMIN],
    ids=["unknown", "fragment", "relative", "not-allowed"],
)
def test_invalid_target_is_redirected_from_the_authorization_endpoint(origin, browser, resource):
    url = helpers.authorize_url(origin, client_id=APP_ID, redirect_uri=APP_REDIRECT, state="s1")
    url += "&" + urlencode([("resource", API), ("resource", resource)])
    resp = browser.get(url)
    assert resp.status_code in (302, 303), describe(resp)
    location = resp.headers["Location"]
    assert location.startswith(APP_REDIRECT + "?"), location
    params = query_of(location)
    assert params["error"] == "invalid_target" and params["state"] == "s1", params
    assert params["iss"] == origin, params


def test_a_code_is_redeemed_only_for_resources_of_its_grant(origin, browser):
    session = _session()
    code, verifier = _authorize(origin, browser, session, [MCP])
    form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", APP_REDIRECT),
        ("code_verifier", verifier),
    ]
    resp = _token(origin, basic(APP_ID, APP_SECRET), form + [("resource", API)])
    assert_oauth_error(resp, 400, "invalid_target")
    # The code is left for the corrected request.
    resp = _token(origin, basic(APP_ID, APP_SECRET), form + [("resource", MCP)])
    assert resp.status_code == 200, describe(resp)
    assert _verified_claims(origin, json_of(resp)["access_token"], MCP)["aud"] == MCP


def test_the_own_api_publishes_protected_resource_metadata(origin):
    resp = http_session().get(f"{origin}/.well-known/oauth-protected-resource", timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 200, describe(resp)
    document = json_of(resp)
    assert document["resource"] == origin and document["authorization_servers"] == [origin], document
    assert document["bearer_methods_supported"] == ["header"], document
    # RFC 8414 has no member for resources: the server's metadata invents none.
    meta = json_of(http_session().get(f"{origin}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT_S))
    assert not any("resource" in name for name in meta), sorted(meta)
