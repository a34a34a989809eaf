"""`doorward clients …` against a running `doorward serve`, on SQLite and on PostgreSQL
(`DOORWARD_TEST_POSTGRES_URL`, a schema of its own): a client added by the command line works at
the token endpoint without a restart, a rotation with an overlap keeps both secrets, one without
cuts the old at once, and removal stops the client's live tokens at the bearer endpoint, at
introspection and at refresh. `--json` is parsed; bad input gets a non-zero exit and one line on
stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from urllib.parse import urlencode

import pytest
from authlib.common.security import generate_token
from authlib.common.errors import AuthlibBaseError as OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

from helpers import (
    psql,
    free_port,
    Browser,
    DoorwardServer,
    assert_token_response,
    auth_self,
    authorize_as,
    authorize_url,
    basic,
    doorward_bin,
    http_session,
    introspect,
    pkce_pair,
    token_request,
)

PG_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL")
REDIRECT = "http://localhost:8100/cb"
# A resource server of the configuration file: introspects other clients' access tokens.
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
    # SQLite explicitly: in the suite's PostgreSQL pass, DOORWARD_INTEROP_DATABASE would
    # otherwise give this server the shared database, and its changes would reach the others.
    database = f"sqlite:{tmp_path / 'clients-cli.sqlite'}"
    schema = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("skipped: DOORWARD_TEST_POSTGRES_URL is not set")
        schema = f"clients_cli_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE SCHEMA {schema}")
        database = f"{PG_URL}?options=-csearch_path%3D{schema}"
    server = DoorwardServer(doorward_bin(), tmp_path, database=database, extra_config=RS_CONFIG)
    server.start()
    yield server
    server.stop()
    if schema:
        psql(f"DROP SCHEMA {schema} CASCADE")


def clients(server: DoorwardServer, *args: str) -> subprocess.CompletedProcess:
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


def refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode != 0, result.stdout
    # Log lines may come before; the error is one line, the last.
    errors = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    assert words in errors[0], errors[0]


def introspection_by(server, token: str, key: str, secret: str):
    return introspect(server.origin, token, basic(key, secret))


def test_a_cli_client_lives_rotates_and_dies_while_the_server_runs(server):
    added = ok_json(clients(server, "add", "--name", "cli_app", "--display-name", "CLI App",
                            "--app-uri", "http://localhost:8100", "--redirect-uri", REDIRECT,
                            "--scope", "base", "--scope", "openid", "--json"))
    key, first = added["key"], added["client_secret"]
    assert key == "cli_app@clients" and added["source"] == "cli"
    assert uuid.UUID(added["client_id"]).version == 4
    assert len(first) >= 43

    listing = clients(server, "list", "--json")
    assert first not in listing.stdout and "argon2" not in listing.stdout
    listed = {c["key"]: c for c in ok_json(listing)}
    assert listed[key]["redirect_uris"] == [REDIRECT]
    assert listed["python_client@clients"]["source"] == "config"
    shown = ok_json(clients(server, "show", key, "--json"))
    assert shown["client_id"] == added["client_id"] and "client_secret" not in shown
    assert shown["scopes"] == "base openid" and shown["previous_secret_expires_at"] is None

    # Used at once by the running server: no restart.
    result = authorize_as(Browser(server.origin),
                          authorize_url(server.origin, client_id=key, redirect_uri=REDIRECT),
                          "alice", redirect_uri=REDIRECT)
    tokens = assert_token_response(token_request(server.origin, auth=basic(key, first), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT}))
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert auth_self(server.origin, access).status_code == 200

    # Rotation with an overlap: both secrets work.
    second = ok_json(clients(server, "rotate-secret", key, "--overlap", "3600", "--json"))
    assert second["previous_secret_expires_at"] is not None
    second = second["client_secret"]
    for secret in (first, second):
        r = introspection_by(server, access, key, secret)
        assert r.status_code == 200 and r.json()["active"] is True, (secret, r.text)
    # Without: the one before stops at once, the newest works.
    third = ok_json(clients(server, "rotate-secret", key, "--json"))["client_secret"]
    for secret in (first, second):
        assert introspection_by(server, access, key, secret).status_code == 401
    assert introspection_by(server, access, key, third).json()["active"] is True
    refreshed = assert_token_response(token_request(server.origin, auth=basic(key, third), form={
        "grant_type": "refresh_token", "refresh_token": refresh}))
    access, refresh = refreshed["access_token"], refreshed["refresh_token"]

    updated = ok_json(clients(server, "update", key, "--display-name", "Renamed", "--json"))
    assert updated["display_name"] == "Renamed" and updated["redirect_uris"] == [REDIRECT]

    # Removal: the live tokens stop at once.
    assert introspection_by(server, access, RS_KEY, RS_SECRET).json()["active"] is True
    removed = ok_json(clients(server, "remove", key, "--json"))
    assert removed["removed"] == key
    assert auth_self(server.origin, access).status_code == 401
    assert introspection_by(server, access, RS_KEY, RS_SECRET).json() == {"active": False}
    assert introspection_by(server, access, key, third).status_code == 401
    r = token_request(server.origin, auth=basic(key, third), form={
        "grant_type": "refresh_token", "refresh_token": refresh})
    assert r.status_code in (400, 401) and "access_token" not in r.text, r.text
    refused(clients(server, "show", key), "no client")

    # The same name again is a new client (a new Id): the old tokens stay dead.
    again = ok_json(clients(server, "add", "--name", "cli_app", "--app-uri", "http://localhost:8100",
                            "--redirect-uri", REDIRECT, "--json"))
    assert again["client_id"] != added["client_id"]
    assert auth_self(server.origin, access).status_code == 401


def test_a_client_that_must_push_its_requests(server):
    """RFC 9126 §5-6: a client added with --require-pushed-authorization-requests gets nothing
    from a plain authorization request; its pushed request serves one authorization (spent in
    the store every instance shares: SQLite and PostgreSQL)."""
    added = ok_json(clients(server, "add", "--name", "par_app", "--app-uri", "http://localhost:8100",
                            "--redirect-uri", REDIRECT, "--require-pushed-authorization-requests", "--json"))
    key, secret = added["key"], added["client_secret"]
    assert added["require_pushed_authorization_requests"] is True
    plain = http_session().get(authorize_url(server.origin, client_id=key, redirect_uri=REDIRECT, state="p"),
                               allow_redirects=False)
    assert plain.status_code == 302, plain.text
    assert "error=invalid_request" in plain.headers["location"] and "state=p" in plain.headers["location"]

    verifier, challenge = pkce_pair()
    pushed = http_session().post(f"{server.origin}/oauth/par", auth=(key, secret), data={
        "response_type": "code", "redirect_uri": REDIRECT, "scope": "base", "state": "pushed",
        "code_challenge": challenge, "code_challenge_method": "S256"}, allow_redirects=False)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    request_uri = pushed.json()["request_uri"]
    front = f"{server.origin}/oauth/authorize?" + urlencode({"client_id": key, "request_uri": request_uri})
    browser = Browser(server.origin)
    result = authorize_as(browser, front, "alice", redirect_uri=REDIRECT)
    assert result.params["state"] == "pushed"
    tokens = assert_token_response(token_request(server.origin, auth=basic(key, secret), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT,
        "code_verifier": verifier}))
    assert auth_self(server.origin, tokens["access_token"]).status_code == 200
    # Spent: the same request_uri again (consent remembered, so straight back) gets no code.
    again = browser.get(front)
    assert again.status_code == 302, again.text
    assert "error=invalid_request_uri" in again.headers["location"] and "code=" not in again.headers["location"]


def test_bad_input_exits_non_zero_with_one_line(server):
    common = ["--app-uri", "http://localhost:8100", "--redirect-uri", REDIRECT]
    assert clients(server, "add", "--name", "taken", *common).returncode == 0
    refused(clients(server, "add", "--name", "taken", *common), "taken")
    refused(clients(server, "add", "--name", "python_client", *common), "taken")
    refused(clients(server, "add", "--name", "x", "--app-uri", "http://localhost:8100",
                    "--redirect-uri", "javascript:alert(1)"), "--redirect-uri")
    refused(clients(server, "add", "--name", "x", "--app-uri", "ftp://x",
                    "--redirect-uri", REDIRECT), "--app-uri")
    refused(clients(server, "add", "--name", "x", *common, "--scope", "admin"), "--scope")
    refused(clients(server, "add", "--name", "x", *common, "--auth-method", "magic"), "--auth-method")
    # A public client: no client_credentials, no http://localhost redirect (RFC 8252 §8.3).
    refused(clients(server, "add", "--name", "x", *common, "--auth-method", "none",
                    "--grant-type", "client_credentials"), "client_credentials")
    refused(clients(server, "add", "--name", "x", "--app-uri", "http://localhost:8100",
                    "--redirect-uri", "http://localhost:8100/cb", "--auth-method", "none"),
            "--redirect-uri")
    # private_key_jwt: keys required, public ones only.
    refused(clients(server, "add", "--name", "x", *common, "--auth-method", "private_key_jwt"),
            "--jwks")
    private = json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]})
    refused(clients(server, "add", "--name", "x", *common, "--auth-method", "private_key_jwt",
                    "--jwks", private), "--jwks")
    refused(clients(server, "add", "--name", "x", *common, "--jwks", "{}"), "--jwks")
    refused(clients(server, "add", "--name", "x", "--app-uri", "http://localhost:8100"),
            "--redirect-uri")
    refused(clients(server, "add", "--name", "x", *common, "--grant-type", "implicit"),
            "--grant-type")
    assert clients(server, "list", "--json").stdout.count('"key":"x@clients"') == 0
    refused(clients(server, "rotate-secret", "nobody@clients"), "no client")
    refused(clients(server, "remove", str(uuid.uuid4())), "no client")
    # A client of the configuration file: refused without --force.
    refused(clients(server, "update", "python_client@clients", "--display-name", "X"), "--force")
    refused(clients(server, "remove", "python_client@clients"), "--force")
    forced = clients(server, "update", "python_client@clients", "--display-name", "X", "--force")
    assert forced.returncode == 0 and "warning" in forced.stderr, forced.stderr


def test_public_jwt_and_service_clients_from_the_command_line(server):
    """`doorward clients add` registers every kind of client: a public one (PKCE, no secret),
    a `private_key_jwt` one (Authlib's PrivateKeyJWT, keys rotated with `update --jwks`) and a
    `client_credentials` service without redirect URIs."""
    loopback = "http://127.0.0.1/cb"
    app = ["--app-uri", "http://localhost:8100"]
    public = ok_json(clients(server, "add", "--name", "cli_spa", *app, "--redirect-uri", loopback,
                             "--auth-method", "none", "--json"))
    assert "client_secret" not in public and public["token_endpoint_auth_method"] == "none"
    refused(clients(server, "rotate-secret", "cli_spa@clients"), "without a secret")
    redirect = f"http://127.0.0.1:{free_port()}/cb"  # any port: RFC 8252 §7.3
    session = OAuth2Session(client_id="cli_spa@clients", token_endpoint_auth_method="none",
                            scope="base", redirect_uri=redirect, code_challenge_method="S256")
    verifier = generate_token(48)
    url, _ = session.create_authorization_url(f"{server.origin}/oauth/authorize",
                                              code_verifier=verifier)
    result = authorize_as(Browser(server.origin), url, "alice", redirect_uri=redirect)
    token = session.fetch_token(f"{server.origin}/oauth/token",
                                authorization_response=result.location, code_verifier=verifier)
    assert auth_self(server.origin, token["access_token"]).status_code == 200

    keys = {"k1": ECKey.generate_key("P-256"), "k2": ECKey.generate_key("P-256")}

    def jwks(*kids: str) -> str:
        return json.dumps({"keys": [{**keys[k].as_dict(private=False), "kid": k} for k in kids]})

    pk = ok_json(clients(server, "add", "--name", "cli_pk", *app, "--redirect-uri", REDIRECT,
                         "--auth-method", "private_key_jwt", "--jwks", jwks("k1"),
                         "--grant-type", "authorization_code", "--grant-type", "client_credentials",
                         "--json"))
    assert "client_secret" not in pk and pk["jwks_keys"] == 1

    def service_token(kid: str) -> bool:
        session = OAuth2Session(client_id="cli_pk@clients", client_secret=keys[kid], scope="base",
                                token_endpoint_auth_method=PrivateKeyJWT(alg="ES256",
                                                                         headers={"kid": kid}))
        try:
            session.fetch_token(f"{server.origin}/oauth/token", grant_type="client_credentials")
            return True
        except OAuthError as e:
            assert e.error == "invalid_client", e
            return False

    assert service_token("k1") and not service_token("k2")
    # Key rotation by the client: both keys published, then the new one alone.
    ok_json(clients(server, "update", "cli_pk@clients", "--jwks", jwks("k1", "k2"), "--json"))
    assert service_token("k2")
    ok_json(clients(server, "update", "cli_pk@clients", "--jwks", jwks("k2"), "--json"))
    assert not service_token("k1") and service_token("k2")

    # A service: client_credentials alone, no redirect URI; it gets no refresh token.
    service = ok_json(clients(server, "add", "--name", "cli_svc", *app,
                              "--grant-type", "client_credentials", "--json"))
    assert service["redirect_uris"] == [] and service["grant_types"] == ["client_credentials"]
    r = token_request(server.origin, auth=basic("cli_svc@clients", service["client_secret"]),
                      form={"grant_type": "client_credentials", "scope": "base"})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"access_token", "token_type", "expires_in"}, r.text
    r = token_request(server.origin, auth=basic("cli_svc@clients", service["client_secret"]),
                      form={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
