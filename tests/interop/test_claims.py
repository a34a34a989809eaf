"""Added claims at `doorward serve`: a client's `claims` and a user's (`[seed.user.NAME]
claims`) reach the ID token Authlib's OIDC client validates, UserInfo, the RFC 9068 access
token PyJWT verifies against the published keys, and introspection; Doorward's own claims
(`sub`, `iss`, `name`, `scope`) are never replaced, and a configuration that names a reserved
claim does not start."""
from __future__ import annotations

import subprocess

import jwt
import pytest

import helpers
from helpers import Browser, DoorwardServer, basic, doorward_bin, started
from test_oidc import FlaskRP

NAME = "claims_app"
CLIENT_ID = f"{NAME}@clients"
SECRET = "claims-app-secret-1"
CALLBACK = "http://localhost:8041/oauth/callback"
EXTRA = f"""
[clients.{NAME}]
display_name = "Claims App"
app_uri = "http://localhost:8041"
callback_uri = "{CALLBACK}"
secret = "{SECRET}"
scopes = ["base", "openid", "profile", "email"]
access_token_format = "jwt"
resource_server = true
claims = {{ tenant = "acme", guild = "the client's, the user's wins" }}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("claims"), extra_config=EXTRA))
    yield srv
    srv.stop()


def test_authlib_and_pyjwt_see_the_added_claims(server):
    origin = server.origin
    rp = FlaskRP(origin, NAME, CLIENT_ID, SECRET, CALLBACK)
    token, _ = rp.sign_in(origin, Browser(origin), "ulla", CALLBACK)
    userinfo = rp.results["userinfo"]
    id_claims = token["userinfo"]  # what Authlib validated in the ID token
    for claims in (id_claims, userinfo):
        assert claims["roles"] == ["player", "moderator"], claims
        assert claims["guild"] == "owls", claims
        assert claims["tenant"] == "acme", claims
        assert claims["preferred_username"] == "ulla" and claims["name"] == "Ulla", claims

    keys = jwt.PyJWKClient(f"{origin}/oauth/jwks")
    access = token["access_token"]
    signing_key = keys.get_signing_key_from_jwt(access)
    claims = jwt.decode(access, signing_key.key, algorithms=["ES256", "RS256", "EdDSA"],
                        audience=server.external_uri, issuer=server.external_uri)
    assert claims["roles"] == ["player", "moderator"] and claims["tenant"] == "acme", claims
    assert claims["sub"] == id_claims["sub"] and claims["client_id"] == CLIENT_ID, claims

    resp = helpers.introspect(origin, access, basic(CLIENT_ID, SECRET))
    seen = resp.json()
    assert seen["active"] is True and seen["guild"] == "owls" and seen["tenant"] == "acme", seen
    assert seen["sub"] == id_claims["sub"] and seen["username"] == "ulla", seen


def test_a_reserved_claim_in_the_configuration_stops_the_start(tmp_path):
    config = tmp_path / "doorward.toml"
    config.write_text(EXTRA.replace('tenant = "acme"', 'sub = "forged"'))
    run = subprocess.run([str(doorward_bin()), "serve", "--config", str(config), "--listen", "127.0.0.1:0",
                          "--database", f"sqlite:{tmp_path / 'db.sqlite'}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "claims.sub" in run.stderr and "reserved" in run.stderr, run.stderr
