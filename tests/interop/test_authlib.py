"""The real Authlib 1.9.9 `OAuth2Session` (requests) against Doorward.

Both client authentication methods, PKCE S256 with an explicit code_verifier, the token used on
/api/v1/auth/self, refresh-token rotation and reuse detection. Users: erin (basic), frank (post).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Browser,
    auth_self,
    authorize_as,
    describe,
    query_of,
)

CASES = [("client_secret_basic", "erin"), ("client_secret_post", "frank")]


def _session(method: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method=method,
        scope="base",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )


def _recorder(session: OAuth2Session) -> list:
    seen = []

    def hook(resp, *args, **kwargs):
        seen.append(resp)
        assert resp.status_code < 500, describe(resp)
        return resp

    session.hooks["response"].append(hook)
    return seen


@pytest.mark.parametrize(("method", "username"), CASES, ids=[m for m, _ in CASES])
def test_pkce_code_flow_and_refresh(origin, method, username):
    token_url = f"{origin}/oauth/token"
    s = _session(method)
    seen = _recorder(s)
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    q = query_of(url)
    assert q["code_challenge_method"] == "S256" and q["code_challenge"], url

    result = authorize_as(Browser(origin), url, username, expect_consent=True)
    assert result.state == state

    token = s.fetch_token(token_url, authorization_response=result.location, state=state, code_verifier=verifier)
    req = seen[-1].request
    body = dict(parse_qsl(req.body))
    assert body["grant_type"] == "authorization_code" and body["code_verifier"] == verifier, body
    if method == "client_secret_basic":
        assert req.headers["Authorization"].startswith("Basic "), req.headers
        assert "client_secret" not in body
    else:
        assert "Authorization" not in req.headers
        assert body["client_secret"] == CLIENT_SECRET
    assert seen[-1].status_code == 200, describe(seen[-1])
    assert seen[-1].headers.get("Cache-Control", "").lower().find("no-store") >= 0, describe(seen[-1])
    assert token["token_type"] == "Bearer" and token["expires_in"] == 7200, token
    assert "scope" not in token, token
    first_access, first_refresh = token["access_token"], token["refresh_token"]

    me = s.get(f"{origin}/api/v1/auth/self")
    assert me.status_code == 200, describe(me)
    assert me.json()["user"]["display_name"]["current"]["value"] == username.capitalize()

    # Refresh (Authlib sends grant_type=refresh_token&refresh_token=..&scope=base).
    new = s.refresh_token(token_url)
    req = seen[-1].request
    assert dict(parse_qsl(req.body))["grant_type"] == "refresh_token"
    assert new["access_token"] != first_access
    assert new["refresh_token"] and new["refresh_token"] != first_refresh, "refresh tokens must rotate"
    me = s.get(f"{origin}/api/v1/auth/self")
    assert me.status_code == 200, describe(me)
    assert me.json()["user"]["display_name"]["current"]["value"] == username.capitalize()

    # Reusing the spent refresh token is rejected ...
    other = _session(method)
    with pytest.raises(OAuthError) as exc:
        other.refresh_token(token_url, refresh_token=first_refresh)
    assert exc.value.error == "invalid_grant", exc.value

    # ... and revokes the whole family: the new access and refresh tokens are dead too.
    r = auth_self(origin, new["access_token"])
    assert r.status_code == 401, describe(r)
    with pytest.raises(OAuthError) as exc:
        _session(method).refresh_token(token_url, refresh_token=new["refresh_token"])
    assert exc.value.error == "invalid_grant", exc.value


@pytest.mark.parametrize(
    ("method", "username"),
    [("client_secret_basic", "sybil"), ("client_secret_post", "trent")],
    ids=["client_secret_basic", "client_secret_post"],
)
def test_wrong_code_verifier(origin, method, username):
    s = _session(method)
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    result = authorize_as(Browser(origin), url, username)
    with pytest.raises(OAuthError) as exc:
        s.fetch_token(
            f"{origin}/oauth/token",
            authorization_response=result.location,
            state=state,
            code_verifier=generate_token(48),
        )
    assert exc.value.error == "invalid_grant", exc.value
