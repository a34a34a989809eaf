"""The real `auth-code-flow` 0.2.1 client against Doorward.

0.2.1 ships a `FlowManager` dataclass (the `AbstractBaseFlowManager` of 0.1.0 is gone). It sends
the client credentials only in the body (JSON by default, form with `post_form_data=True`), plus
`redirect_uri` and `state`, and no Authorization header. Users: carol (JSON), dave (form).
"""

from __future__ import annotations

import dataclasses
import secrets

import pytest
from auth_code_flow import FlowManager
from auth_code_flow.exceptions import AuthCodeFlowError

from helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Browser,
    assert_no_store,
    assert_token_response,
    auth_self,
    authorize_as,
    describe,
    query_of,
)


@dataclasses.dataclass
class DoorwardFlowManager(FlowManager):
    base_uri: str = ""
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uri: str = REDIRECT_URI
    scope: str = "base"
    authorization_path: str = "/oauth/authorize"
    access_token_path: str = "/oauth/token"


@pytest.fixture(scope="module")
def fm(origin) -> DoorwardFlowManager:
    return DoorwardFlowManager(base_uri=origin)


def _login_and_code(fm: DoorwardFlowManager, username: str) -> tuple[str, str]:
    state = secrets.token_urlsafe(24)
    url = fm.get_authorization_endpoint(state)
    assert url.startswith(f"{fm.base_uri}/oauth/authorize?client_id="), url
    assert query_of(url)["scope"] == "base"
    result = authorize_as(Browser(fm.base_uri), url, username)
    assert result.state == state
    return result.code, state


@pytest.mark.parametrize(
    ("username", "post_form_data"),
    [("carol", False), ("dave", True)],
    ids=["json", "form"],
)
def test_fetch_access_token(fm, username, post_form_data):
    code, state = _login_and_code(fm, username)
    resp = fm.fetch_access_token(code, state, post_form_data=post_form_data)
    sent_type = resp.request.headers.get("Content-Type", "")
    assert sent_type.startswith("application/x-www-form-urlencoded" if post_form_data else "application/json")
    assert "Authorization" not in resp.request.headers
    token = assert_token_response(resp)

    me = auth_self(fm.base_uri, token["access_token"])
    assert me.status_code == 200, describe(me)
    body = me.json()
    assert body["type"] == "AccessToken"
    assert body["user"]["display_name"]["current"]["value"] == username.capitalize()
    assert body["client"]["key"] == CLIENT_ID


def test_bad_code_raises_with_oauth_error(fm):
    with pytest.raises(AuthCodeFlowError) as exc:
        fm.fetch_access_token("not-a-real-code", "some-state")
    resp = exc.value.response
    assert resp is not None, "expected an HTTP 4xx response, not a retry/connection error"
    assert resp.status_code == 400, describe(resp)
    assert resp.json()["error"] == "invalid_grant", describe(resp)
    assert_no_store(resp)


def test_wrong_secret_in_body(fm, origin):
    code, state = _login_and_code(fm, "carol")
    bad = DoorwardFlowManager(base_uri=origin, client_secret="wrong")
    with pytest.raises(AuthCodeFlowError) as exc:
        bad.fetch_access_token(code, state, post_form_data=True)
    resp = exc.value.response
    assert resp is not None and resp.status_code == 401, resp
    assert resp.json()["error"] == "invalid_client", describe(resp)
