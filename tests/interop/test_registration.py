"""Dynamic client registration (RFC 7591) and its management API (RFC 7592) against `doorward
serve`, on SQLite and on PostgreSQL (`DOORWARD_TEST_POSTGRES_URL`, a schema of its own; every
server here has a database of its own, so nothing reaches the other tests).

- token mode: an initial access token from `doorward clients registration-token --json`; a
  registered confidential client signs a user in through the real pages and Authlib redeems the
  code; a registered public client does the same with PKCE and no secret; RFC 7592 read, update
  and delete (a deleted client's token stops at `/api/v1/auth/self` and at introspection); the
  token's uses and expiry;
- hostile registrations: RFC 7591 errors, never a 5xx, nothing stored (`doorward clients list`);
- open mode: public clients only, the redirect policy, the per-address rate (429, Retry-After)
  and the cap (403 access_denied).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter

from helpers import (
    psql,
    Browser,
    DoorwardServer,
    HTTP_TIMEOUT_S,
    assert_no_store,
    auth_self,
    authorize_as,
    basic,
    describe,
    doorward_bin,
    introspect,
    started,
)

PG_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL")
RUN = uuid.uuid4().hex[:8]
WEB_REDIRECT = "http://localhost:8210/cb"
NATIVE_REDIRECT = "http://127.0.0.1/cb"  # RFC 8252 §7.3: any port at authorization
# A resource server of the configuration file, to introspect registered clients' tokens.
RS_KEY, RS_SECRET = "rs_app@clients", "rs_app_secret_1"
RS_CONFIG = f"""
[clients.rs_app]
display_name = "Resource server"
app_uri = "http://localhost:8101"
callback_uri = "http://localhost:8101/cb"
secret = "{RS_SECRET}"
resource_server = true
"""


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    database = f"sqlite:{tmp_path / 'registration.sqlite'}"
    schema = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("skipped: DOORWARD_TEST_POSTGRES_URL is not set")
        schema = f"registration_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE SCHEMA {schema}")
        database = f"{PG_URL}?options=-csearch_path%3D{schema}"
    srv = started(DoorwardServer(doorward_bin(), tmp_path, database=database,
                                 extra_config=RS_CONFIG + '\n[registration]\nmode = "token"\n'))
    yield srv
    srv.stop()
    if schema:
        psql(f"DROP SCHEMA {schema} CASCADE")


OPEN_CONFIG = """
[registration]
mode = "open"
allowed_redirect_schemes = ["http", "com.example.app"]
allowed_redirect_hosts = ["127.0.0.1"]
max_clients = 4
per_address_per_hour = 2
"""


@pytest.fixture
def open_server(tmp_path):
    srv = started(DoorwardServer(doorward_bin(), tmp_path,
                                 database=f"sqlite:{tmp_path / 'open.sqlite'}",
                                 extra_config=OPEN_CONFIG))
    yield srv
    srv.stop()


def cli(server: DoorwardServer, *args: str) -> subprocess.CompletedProcess:
    database = server.command[server.command.index("--database") + 1]
    return subprocess.run(
        [str(doorward_bin()), "clients", args[0], "--config", str(server.config_path),
         "--database", database, *args[1:]],
        capture_output=True, text=True, timeout=120, env=server.child_env(), cwd=server.workdir,
        stdin=subprocess.DEVNULL,
    )


def ok_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def initial_token(server: DoorwardServer, *args: str) -> dict:
    return ok_json(cli(server, "registration-token", "--json", *args))


def registered_keys(server: DoorwardServer) -> set[str]:
    return {c["key"] for c in ok_json(cli(server, "list", "--json")) if c["source"] == "registered"}


def no_5xx(resp: requests.Response, *args, **kwargs):
    assert resp.status_code < 500, describe(resp)


def session(source: str | None = None) -> requests.Session:
    s = requests.Session()
    s.hooks["response"].append(no_5xx)
    if source:
        s.mount("http://", _BoundAdapter(source))
    return s


class _BoundAdapter(HTTPAdapter):
    """Connections from one loopback source address (Linux accepts any 127.x.y.z)."""

    def __init__(self, source: str):
        self._source = source
        super().__init__(pool_connections=1, pool_maxsize=4)

    def init_poolmanager(self, connections, maxsize, block=False, **kw):
        kw["source_address"] = (self._source, 0)
        super().init_poolmanager(connections, maxsize, block=block, **kw)


def register(origin: str, metadata, token: str | None = None, *, source: str | None = None,
             data: bytes | None = None, headers: dict | None = None) -> requests.Response:
    h = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    body = data if data is not None else json.dumps(metadata).encode()
    return session(source).post(f"{origin}/oauth/register", data=body, headers=h,
                                allow_redirects=False, timeout=HTTP_TIMEOUT_S)


def manage(method: str, uri: str, token: str | None, metadata=None) -> requests.Response:
    h = {"Authorization": f"Bearer {token}"} if token is not None else {}
    kw = {"json": metadata} if metadata is not None else {}
    return session().request(method, uri, headers=h, allow_redirects=False,
                             timeout=HTTP_TIMEOUT_S, **kw)


def assert_error(resp: requests.Response, status: int, error: str) -> dict:
    assert resp.status_code == status, describe(resp)
    body = resp.json()
    assert body["error"] == error, describe(resp)
    assert_no_store(resp)
    return body


def assert_invalid_token(resp: requests.Response) -> None:
    assert_error(resp, 401, "invalid_token")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer "), describe(resp)


def created(resp: requests.Response) -> dict:
    assert resp.status_code == 201, describe(resp)
    assert_no_store(resp)
    return resp.json()


def sign_in_with_authlib(origin: str, reg: dict, redirect: str, username: str,
                         method: str) -> dict:
    """The code flow through the real pages; Authlib's OAuth2Session redeems the code."""
    s = OAuth2Session(client_id=reg["client_id"], client_secret=reg.get("client_secret"),
                      token_endpoint_auth_method=method, scope="base", redirect_uri=redirect,
                      code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    result = authorize_as(Browser(origin), url, username, redirect_uri=redirect,
                          expect_consent=True)
    assert result.state == state
    return s.fetch_token(f"{origin}/oauth/token", authorization_response=result.location,
                         state=state, code_verifier=verifier)


def test_token_mode_registers_clients_that_sign_users_in_and_manage_themselves(server):
    origin = server.origin
    metadata = requests.get(f"{origin}/.well-known/oauth-authorization-server",
                            timeout=HTTP_TIMEOUT_S).json()
    assert metadata["registration_endpoint"] == f"{origin}/oauth/register"

    web = {"redirect_uris": [WEB_REDIRECT], "client_name": f"Web {RUN}",
           "client_uri": "https://web.example", "grant_types": ["authorization_code", "refresh_token"],
           "scope": "base openid", "contacts": ["ops@web.example"], "software_id": "web-app",
           "x-unknown": {"ignored": True}}
    assert_invalid_token(register(origin, web))
    assert_invalid_token(register(origin, web, "dwia_not_a_token"))
    assert registered_keys(server) == set()

    token = initial_token(server, "--uses", "3", "--expires-in", "1h")
    assert token["uses"] == 3 and token["expires_at"] > time.time() + 3500
    assert token["initial_access_token"] not in cli(server, "list", "--json").stdout

    # A confidential client: RFC 7591 §3.2.1, then a sign-in and Authlib at the token endpoint.
    reg = created(register(origin, web, token["initial_access_token"]))
    assert reg["token_endpoint_auth_method"] == "client_secret_basic"
    assert reg["client_secret_expires_at"] == 0 and len(reg["client_secret"]) >= 43
    assert reg["client_id_issued_at"] <= time.time() + 5
    assert reg["registration_client_uri"] == f"{origin}/oauth/register/{reg['client_id']}"
    assert reg["redirect_uris"] == [WEB_REDIRECT] and reg["client_name"] == f"Web {RUN}"
    assert reg["response_types"] == ["code"] and "x-unknown" not in reg
    listed = {c["key"]: c for c in ok_json(cli(server, "list", "--json"))}
    assert listed[reg["client_id"]]["source"] == "registered"
    assert listed[reg["client_id"]]["display_name"] == f"Web {RUN}"
    assert reg["client_secret"] not in json.dumps(listed)
    tokens = sign_in_with_authlib(origin, reg, WEB_REDIRECT, "alice", "client_secret_basic")
    assert tokens["refresh_token"] and auth_self(origin, tokens["access_token"]).status_code == 200

    # A public (native) client: no secret, PKCE, a loopback redirect on any port.
    native = created(register(origin, {"redirect_uris": [NATIVE_REDIRECT],
                                       "token_endpoint_auth_method": "none",
                                       "client_name": "Native"}, token["initial_access_token"]))
    assert "client_secret" not in native
    native_tokens = sign_in_with_authlib(origin, native, "http://127.0.0.1:51234/cb", "bob", "none")
    assert auth_self(origin, native_tokens["access_token"]).status_code == 200

    # RFC 7592 §2.1: a read gives a new registration access token; the old one stops.
    uri, access = reg["registration_client_uri"], reg["registration_access_token"]
    assert_invalid_token(manage("GET", uri, None))
    assert_invalid_token(manage("GET", uri, native["registration_access_token"]))
    assert_invalid_token(manage("GET", uri, token["initial_access_token"]))
    # Another client's URI with a valid token: the same answer as an unknown client's.
    assert_invalid_token(manage("GET", native["registration_client_uri"], access))
    assert_invalid_token(manage("GET", f"{origin}/oauth/register/nobody", access))
    read = manage("GET", uri, access)
    assert read.status_code == 200, describe(read)
    assert_no_store(read)
    read = read.json()
    assert read["client_id"] == reg["client_id"] and read["client_name"] == f"Web {RUN}"
    assert read["contacts"] == ["ops@web.example"] and "client_secret" not in read
    assert_invalid_token(manage("GET", uri, access))
    access = read["registration_access_token"]

    # RFC 7592 §2.2: the whole metadata replaced; client_id required, the secret checked.
    update = {**web, "client_name": "Renamed", "redirect_uris": [WEB_REDIRECT, "https://web.example/cb"]}
    assert_error(manage("PUT", uri, access, update), 400, "invalid_client_metadata")
    update["client_id"] = reg["client_id"]
    assert_error(manage("PUT", uri, access, {**update, "client_secret": "not-the-secret-000"}),
                 400, "invalid_client_metadata")
    assert_error(manage("PUT", uri, access, {**update, "token_endpoint_auth_method": "none"}),
                 400, "invalid_client_metadata")
    assert_error(manage("PUT", uri, access, {**update, "redirect_uris": ["javascript:alert(1)"]}),
                 400, "invalid_redirect_uri")
    updated = manage("PUT", uri, access, {**update, "client_secret": reg["client_secret"]})
    assert updated.status_code == 200, describe(updated)
    updated = updated.json()
    assert updated["client_name"] == "Renamed" and len(updated["redirect_uris"]) == 2
    assert "contacts" in updated and "x-unknown" not in updated
    shown = ok_json(cli(server, "show", reg["client_id"], "--json"))
    assert shown["display_name"] == "Renamed"
    access = updated["registration_access_token"]
    # The secret is unchanged: the client still authenticates.
    r = introspect(origin, tokens["access_token"], basic(reg["client_id"], reg["client_secret"]))
    assert r.status_code == 200 and r.json()["active"] is True, describe(r)

    # RFC 7592 §2.3: delete; its tokens stop at once, and so does the registration token.
    gone = manage("DELETE", uri, access)
    assert gone.status_code == 204, describe(gone)
    assert auth_self(origin, tokens["access_token"]).status_code == 401
    r = introspect(origin, tokens["access_token"], basic(RS_KEY, RS_SECRET))
    assert r.json() == {"active": False}, describe(r)
    assert_invalid_token(manage("GET", uri, access))
    assert_invalid_token(manage("DELETE", uri, access))
    assert reg["client_id"] not in registered_keys(server)
    assert native["client_id"] in registered_keys(server)
    # Clients of the configuration file are never managed here.
    assert_invalid_token(manage("GET", f"{origin}/oauth/register/python_client@clients", access))

    # The third and last use, then the token is spent.
    created(register(origin, {"redirect_uris": [WEB_REDIRECT]}, token["initial_access_token"]))
    assert_invalid_token(register(origin, web, token["initial_access_token"]))


def test_an_initial_token_expires(server):
    token = initial_token(server, "--expires-in", "1s", "--uses", "5")
    # Wait for the instant the token expires (the server's clock is the system's).
    while time.time() < token["expires_at"] + 1:
        time.sleep(0.2)
    assert_invalid_token(register(server.origin, {"redirect_uris": [WEB_REDIRECT]},
                                  token["initial_access_token"]))
    assert registered_keys(server) == set()


PRIVATE_JWKS = {"keys": [{
    "kty": "EC", "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}]}

BASE = {"redirect_uris": [WEB_REDIRECT], "client_name": "Fine"}
HOSTILE = [
    ("javascript uri", {**BASE, "redirect_uris": ["javascript:alert(document.cookie)"]}, "invalid_redirect_uri"),
    ("data uri", {**BASE, "redirect_uris": ["data:text/html,<script>alert(1)</script>"]}, "invalid_redirect_uri"),
    ("script in uri", {**BASE, "redirect_uris": ["https://app.example/cb?<script>alert(1)</script>"]}, "invalid_redirect_uri"),
    ("quote in uri", {**BASE, "redirect_uris": ['https://app.example/cb"onload="x']}, "invalid_redirect_uri"),
    ("fragment", {**BASE, "redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
    ("vbscript", {**BASE, "redirect_uris": ["vbscript:msgbox(1)"]}, "invalid_redirect_uri"),
    ("no redirect uri", {"client_name": "x"}, "invalid_redirect_uri"),
    ("redirect_uris a string", {**BASE, "redirect_uris": WEB_REDIRECT}, "invalid_redirect_uri"),
    ("bidi override name", {**BASE, "client_name": "Bank\u202egnp.exe"}, "invalid_client_metadata"),
    ("nul in name", {**BASE, "client_name": "Ba\u0000nk"}, "invalid_client_metadata"),
    ("isolate in name", {**BASE, "client_name": "\u2066Bank\u2069"}, "invalid_client_metadata"),
    ("zero width in name", {**BASE, "client_name": "Pay\u200bPal"}, "invalid_client_metadata"),
    ("newline in name", {**BASE, "client_name": "Bank\nApproved by Doorward"}, "invalid_client_metadata"),
    ("long name", {**BASE, "client_name": "A" * 10_000}, "invalid_client_metadata"),
    ("javascript client_uri", {**BASE, "client_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
    ("http logo_uri", {**BASE, "logo_uri": "http://evil.example/logo.png"}, "invalid_client_metadata"),
    ("name a number", {**BASE, "client_name": 42}, "invalid_client_metadata"),
    ("grant_types a string", {**BASE, "grant_types": "authorization_code"}, "invalid_client_metadata"),
    ("scope a list", {**BASE, "scope": ["base"]}, "invalid_client_metadata"),
    ("contacts an object", {**BASE, "contacts": {"a": "b"}}, "invalid_client_metadata"),
    ("unknown auth method", {**BASE, "token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"),
    ("auth method a number", {**BASE, "token_endpoint_auth_method": 1}, "invalid_client_metadata"),
    ("password grant", {**BASE, "grant_types": ["password"]}, "invalid_client_metadata"),
    ("implicit response", {**BASE, "response_types": ["token"]}, "invalid_client_metadata"),
    ("unknown scope", {**BASE, "scope": "base admin"}, "invalid_client_metadata"),
    ("jwks with a private key", {**BASE, "token_endpoint_auth_method": "private_key_jwt", "jwks": PRIVATE_JWKS}, "invalid_client_metadata"),
    ("jwks_uri for a secret method", {**BASE, "jwks_uri": "https://app.example/jwks"}, "invalid_client_metadata"),
    ("javascript jwks_uri", {**BASE, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
    ("http jwks_uri", {**BASE, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://app.example/jwks"}, "invalid_client_metadata"),
    ("public client_credentials", {**BASE, "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
]


def test_hostile_registrations_get_rfc_7591_errors_and_store_nothing(server):
    origin = server.origin
    token = initial_token(server, "--uses", "1")["initial_access_token"]
    for name, metadata, error in HOSTILE:
        body = assert_error(register(origin, metadata, token), 400, error)
        assert isinstance(body.get("error_description"), str), name
    for name, data in [("not json", b"{not json"), ("an array", b"[]"), ("a string", b'"x"'),
                       ("truncated", b'{"redirect_uris": ['), ("invalid utf-8", b'{"client_name": "\xff"}')]:
        assert_error(register(origin, None, token, data=data), 400, "invalid_client_metadata")
    r = register(origin, None, token, data=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_request")
    # A 1 MB body: 413 once 64 KiB are read.
    big = json.dumps({**BASE, "client_name": "x", "pad": "p" * (1024 * 1024)}).encode()
    assert_error(register(origin, None, token, data=big), 413, "invalid_request")
    assert registered_keys(server) == set()
    # Refusals spent nothing: the token's one use is still there.
    created(register(origin, BASE, token))
    assert_invalid_token(register(origin, BASE, token))


def test_open_mode_registers_public_clients_only_under_its_policy(open_server):
    origin = open_server.origin
    a, b, c = (f"127.{int(RUN[:2], 16)}.{int(RUN[2:4], 16)}.{n}" for n in (2, 3, 4))
    metadata = requests.get(f"{origin}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT_S).json()
    assert metadata["registration_endpoint"] == f"{origin}/oauth/register"

    public = {"redirect_uris": [NATIVE_REDIRECT], "client_name": "Agent"}
    reg = created(register(origin, public, source=a))
    assert reg["token_endpoint_auth_method"] == "none" and "client_secret" not in reg
    # Confidential clients need an initial access token.
    for method in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
        assert_error(register(origin, {**public, "token_endpoint_auth_method": method}, source=b),
                     400, "invalid_client_metadata")
    # The redirect policy: http on 127.0.0.1, or the one private-use scheme.
    for uri in ("https://127.0.0.1/cb", "http://evil.example/cb", "http://[::1]/cb",
                "org.evil.app:/cb", "http://localhost/cb"):
        assert_error(register(origin, {"redirect_uris": [uri]}, source=b), 400, "invalid_redirect_uri")
    for name, metadata, error in HOSTILE[:6]:
        assert_error(register(origin, {**metadata, "token_endpoint_auth_method": "none"}, source=b),
                     400, error)
    # Where sign-out sends browsers is bound by the same policy.
    assert_error(register(origin, {**public, "post_logout_redirect_uris": ["http://evil.example/bye"]},
                          source=b), 400, "invalid_client_metadata")

    # The rate: two per address per hour (refusals above did not count).
    created(register(origin, {"redirect_uris": ["com.example.app:/cb"]}, source=a))
    limited = register(origin, public, source=a)
    assert_error(limited, 429, "slow_down")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600, describe(limited)
    # The cap: four registered clients at most, whatever the address.
    created(register(origin, public, source=b))
    created(register(origin, public, source=b))
    assert_error(register(origin, public, source=c), 403, "access_denied")
    assert len(registered_keys(open_server)) == 4

    # The registered public client signs a user in with PKCE.
    tokens = sign_in_with_authlib(origin, reg, "http://127.0.0.1:40123/cb", "carol", "none")
    assert auth_self(origin, tokens["access_token"]).status_code == 200


def test_an_unverified_clients_sign_out_uri_is_not_followed_without_a_session(server):
    """RP-initiated logout without a session goes straight to the client's URI for a client an
    operator registered; for a self-registered one that is an open redirect (RFC 9700
    §4.11.2): Doorward's signed-out page instead."""
    token = initial_token(server)["initial_access_token"]
    reg = created(register(server.origin, {**BASE, "post_logout_redirect_uris": ["https://evil.example/bye"]},
                           token))
    r = session().get(f"{server.origin}/oauth/end_session", params={
        "client_id": reg["client_id"], "post_logout_redirect_uri": "https://evil.example/bye"},
        allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200 and "Location" not in r.headers, describe(r)
