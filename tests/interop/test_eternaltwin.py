"""The real `eternaltwin` 1.0.0 client (sync + asyncio) against Doorward.

Users: alice (sync flow only), bob (the other tests). The client sends Basic + JSON `{"grant_type","code"}` with no
redirect_uri, parses the token with `Token(**json)` (no extra keys allowed) and reads
`/api/v1/auth/self` -> user.id / user.display_name.current.value.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time

import pytest
from eternaltwin.connections import async_connections, configure, connections
from eternaltwin.exceptions import RequestError
from eternaltwin.keys import HS256Key
from eternaltwin.users import User

from helpers import (
    CLIENT_DISPLAY_NAME,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    UUID_RE,
    Browser,
    auth_self,
    authorize_as,
    describe,
    http_session,
    query_of,
)


@pytest.fixture(scope="module")
def et(origin):
    """Configure the global eternaltwin connections (sync and async) for this server."""
    base = {
        "url": origin,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
        "state_key": HS256Key("doorward-interop-state-key-0123456789abcdef"),
    }
    configure(default=base, wrong_secret={**base, "client_secret": "not-the-secret"})
    yield origin
    connections.configure()
    async_connections.configure()


def _check_user_json(origin: str, user: User, display_name: str) -> None:
    """Cross-check the client's User against the server's own JSON."""
    me = auth_self(origin, user.token.access_token)
    assert me.status_code == 200, describe(me)
    body = me.json()
    assert body["type"] == "AccessToken", body
    assert body["scope"] == "Default", body
    assert body["user"]["id"] == user.identifier, body
    assert body["user"]["type"] == "User", body
    assert body["user"]["display_name"] == {"current": {"value": display_name}}, body
    assert body["client"]["key"] == CLIENT_ID, body
    assert body["client"]["display_name"] == CLIENT_DISPLAY_NAME, body
    assert body["client"]["type"] == "OauthClient", body
    assert re.match(UUID_RE, body["client"]["id"]), body

    r = http_session().get(f"{origin}/api/v1/users/{user.identifier}", allow_redirects=False, timeout=15)
    assert r.status_code == 200, describe(r)
    u = r.json()
    assert u["id"] == user.identifier and u["type"] == "User", u
    assert u["display_name"]["current"]["value"] == display_name, u


def test_sync_authorization_code_flow(et):
    state, url = User.start_authorization()
    assert url.startswith(f"{et}/oauth/authorize?"), url
    sent = query_of(url)
    assert sent["client_id"] == CLIENT_ID and sent["scope"] == "base" and sent["access_type"] == "offline"

    result = authorize_as(Browser(et), url, "alice", expect_consent=True)
    assert result.login_shown
    assert result.state == state, "state must come back byte-for-byte"

    user = User.from_authorization_code(result.code, result.state, state)
    assert user.is_authenticated
    assert user.username == "Alice"
    assert re.match(UUID_RE, user.identifier), user.identifier
    token = user.token
    assert token.token_type == "Bearer"
    assert isinstance(token.refresh_token, str) and token.refresh_token
    # expires_in = 7200, minus the client's 60 s leeway
    assert abs(token.expiration - (int(time.time()) + 7200 - 60)) < 120, token
    _check_user_json(et, user, "Alice")

    # The same token again, through the client's own from_token.
    again = User.from_token(user.token)
    assert again == user and again.username == "Alice"

    # User.get(id): GET /api/v1/users/{id} without a token.
    fetched = User.get(user.identifier)
    assert fetched.identifier == user.identifier
    assert fetched.username == "Alice"
    assert isinstance(fetched.created_at, datetime.datetime), fetched
    assert fetched.deleted_at is None, fetched
    assert fetched.is_administrator is False, fetched


def test_async_authorization_code_flow(et):
    state, url = User.start_authorization()
    result = authorize_as(Browser(et), url, "bob")
    assert result.state == state

    async def run():
        user = await User.afrom_authorization_code(result.code, result.state, state)
        fetched = await User.aget(user.identifier)
        return user, fetched

    user, fetched = asyncio.run(run())
    assert user.is_authenticated and user.username == "Bob"
    assert fetched.identifier == user.identifier and fetched.username == "Bob"
    _check_user_json(et, user, "Bob")


def test_code_replay_is_rejected_and_revokes(et):
    """Second redemption of a code -> RequestError 400; the first token then stops working."""
    state, url = User.start_authorization()
    result = authorize_as(Browser(et), url, "bob")
    user = User.from_authorization_code(result.code, result.state, state)
    assert auth_self(et, user.token.access_token).status_code == 200

    with pytest.raises(RequestError) as exc:
        User.from_authorization_code(result.code, result.state, state)
    assert exc.value.response.status_code == 400, str(exc.value)
    assert b"invalid_grant" in exc.value.response.content, str(exc.value)

    r = auth_self(et, user.token.access_token)
    assert r.status_code == 401, describe(r)


def test_wrong_client_secret(et):
    state, url = User.start_authorization(using="wrong_secret")
    result = authorize_as(Browser(et), url, "bob")
    with pytest.raises(RequestError) as exc:
        User.from_authorization_code(result.code, result.state, state, using="wrong_secret")
    assert exc.value.response.status_code == 401, str(exc.value)
    assert b"invalid_client" in exc.value.response.content, str(exc.value)
