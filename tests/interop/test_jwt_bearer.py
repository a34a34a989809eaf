"""The JWT bearer grant (RFC 7523 §2.1) at `doorward serve`, driven by Authlib's
`AssertionSession` (Authlib signs, not Doorward) and by assertions made with Authlib's
`JWTBearerGrant.sign`:

- a service signs with its own key, with no other client authentication (§3.1): a token for
  itself, with `sub` or without (Google's form); or, trusted with users, for a user, whose
  UserInfo then answers;
- a portal trades an identity provider's assertion for a user's token, and must authenticate
  besides;
- replayed, expired, wrongly addressed, wrongly signed and untrusted assertions are
  `invalid_grant`; a missing client authentication `invalid_client`.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from authlib.integrations.requests_client import AssertionSession
from authlib.oauth2.rfc7523 import JWTBearerGrant
from joserfc.jwk import ECKey, RSAKey

import helpers
from helpers import DoorwardServer, assert_oauth_error, basic, doorward_bin, started

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SERVICE = "jb_service@clients"
PORTAL = "jb_portal@clients"
PORTAL_SECRET = "jb-portal-secret-1"
IDP = "https://idp.jb.example"
USER = "ursula"

SERVICE_KEY = RSAKey.generate_key(2048, parameters={"kid": "service-1"})
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})


def public_set(key) -> str:
    return json.dumps({"keys": [key.as_dict(private=False)]})


EXTRA = f"""
[clients.jb_service]
display_name = "JWT bearer service"
app_uri = "https://service.example"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{public_set(SERVICE_KEY)}'
grant_types = ["{GRANT}"]
assertion_issuers = [{{ issuer = "{SERVICE}", users = true }}]
scopes = ["base", "openid", "profile"]

[clients.jb_portal]
display_name = "JWT bearer portal"
app_uri = "https://portal.example"
secret = "{PORTAL_SECRET}"
grant_types = ["{GRANT}"]
assertion_issuers = [{{ issuer = "{IDP}", jwks = '{public_set(IDP_KEY)}', users = true }}]
scopes = ["base", "openid", "profile"]
resource_server = true
"""


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("jwt_bearer"), extra_config=EXTRA))
    yield srv.origin
    srv.stop()


def token_url(origin: str) -> str:
    return f"{origin}/oauth/token"


def introspected(origin: str, token: str) -> dict:
    resp = helpers.introspect(origin, token, basic(PORTAL, PORTAL_SECRET))
    assert resp.status_code == 200, helpers.describe(resp)
    return resp.json()


def assertion(origin: str, *, key=IDP_KEY, iss: str = IDP, sub: str | None = USER,
              aud: str | None = None, **claims) -> str:
    alg = "RS256" if isinstance(key, RSAKey) else "ES256"
    signed = JWTBearerGrant.sign(key, issuer=iss, audience=aud or token_url(origin), subject=sub,
                                 claims=claims or None, alg=alg)
    return signed.decode() if isinstance(signed, bytes) else signed


def post(origin: str, assertion_value: str, *, auth: str | None = None, scope: str = "base"):
    headers = {"Authorization": auth} if auth else {}
    return requests.post(token_url(origin), data={"grant_type": GRANT, "assertion": assertion_value,
                                                  "scope": scope},
                         headers=headers, timeout=helpers.HTTP_TIMEOUT_S)


def test_metadata_lists_the_grant(origin):
    meta = requests.get(f"{origin}/.well-known/openid-configuration", timeout=helpers.HTTP_TIMEOUT_S).json()
    assert GRANT in meta["grant_types_supported"]


@pytest.mark.parametrize("subject", [SERVICE, None], ids=["with-sub", "google-form"])
def test_assertion_session_gets_a_token_for_the_service_itself(origin, subject):
    session = AssertionSession(token_url(origin), issuer=SERVICE, subject=subject, scope="base",
                               key=SERVICE_KEY, alg="RS256")
    token = session.refresh_token()
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token, token
    info = introspected(origin, token["access_token"])
    assert info["active"] is True and info["sub"] == SERVICE and info["scope"] == "base", info


def test_assertion_session_speaks_for_a_user_and_userinfo_answers(origin):
    session = AssertionSession(token_url(origin), issuer=SERVICE, subject=USER, scope="openid profile",
                               key=SERVICE_KEY, alg="RS256")
    resp = session.get(f"{origin}/oauth/userinfo", timeout=helpers.HTTP_TIMEOUT_S)
    assert resp.status_code == 200, helpers.describe(resp)
    assert resp.json()["preferred_username"] == USER
    assert "id_token" not in session.token, "nobody signed in: no ID token"


def test_a_trusted_issuers_assertion_needs_the_portal_to_authenticate(origin):
    auth = basic(PORTAL, PORTAL_SECRET)
    resp = post(origin, assertion(origin), auth=auth, scope="openid profile")
    assert resp.status_code == 200, helpers.describe(resp)
    helpers.assert_no_store(resp)
    user = requests.get(f"{origin}/oauth/userinfo", timeout=helpers.HTTP_TIMEOUT_S,
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"})
    assert user.json()["preferred_username"] == USER, helpers.describe(user)
    # The same issuer's assertion alone: nothing says which client sends it.
    assert_oauth_error(post(origin, assertion(origin)), 401, "invalid_client")


def test_bad_assertions_are_invalid_grant_and_issue_nothing(origin):
    auth = basic(PORTAL, PORTAL_SECRET)
    once = assertion(origin)
    assert post(origin, once, auth=auth).status_code == 200
    now = int(time.time())
    for why, value in [
        ("replayed", once),
        ("another key", assertion(origin, key=OTHER_KEY)),
        ("an untrusted issuer", assertion(origin, iss="https://other.example")),
        ("another audience", assertion(origin, aud="https://elsewhere.example/token")),
        ("expired", JWTBearerGrant.sign(IDP_KEY, issuer=IDP, audience=token_url(origin), subject=USER,
                                        issued_at=now - 7200, expires_at=now - 3600, alg="ES256")),
        ("no such user", assertion(origin, sub="nobody-here")),
        ("not a JWT", "not.a.jwt"),
    ]:
        value = value.decode() if isinstance(value, bytes) else value
        body = assert_oauth_error(post(origin, value, auth=auth), 400, "invalid_grant")
        assert "access_token" not in body, why
    # Another client's own assertion, presented by the portal.
    stolen = assertion(origin, key=SERVICE_KEY, iss=SERVICE, sub=SERVICE)
    assert_oauth_error(post(origin, stolen, auth=auth), 400, "invalid_grant")
    # The assertion parameter missing.
    resp = requests.post(token_url(origin), data={"grant_type": GRANT}, headers={"Authorization": auth},
                         timeout=helpers.HTTP_TIMEOUT_S)
    assert_oauth_error(resp, 400, "invalid_request")
