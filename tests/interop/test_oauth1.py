"""doorward-client's OAuth 1.0a client (the `oauth1_signin` example) against a real OAuth 1
provider: oauthlib's RFC 5849 server endpoints (request token, authorization, access token,
protected resource) behind a small WSGI app in this module, with a validator that keeps its
tokens, verifiers and nonces in memory and checks every signature itself.

Each signature method (HMAC-SHA1, RSA-SHA1, PLAINTEXT) and each placement of the protocol
parameters (header, body, query) goes through the whole flow: temporary credentials, the user's
authorization (the test approves as the user would), token credentials, a signed GET and a
signed form POST whose body is signed too. Then the refusals: a wrong secret, a replayed nonce,
a callback carrying another authorization's token.

`bash scripts/test.sh` builds the example (DOORWARD_OAUTH1_EXAMPLE_BIN).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from helpers import free_port

HMAC_KEY, HMAC_SECRET = "printerHmacClientKey01", "kd94hf93k423kf44secret"
RSA_KEY_ID = "printerRsaClientKey001"
CALLBACK = "http://printer.example.com/ready"
RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def example_bin() -> Path:
    env = os.environ.get("DOORWARD_OAUTH1_EXAMPLE_BIN")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "target" / "debug" / "examples" / "oauth1_signin"


class Validator(RequestValidator):
    """oauthlib's validator: the provider's memory. Nonces are single-use per client and
    timestamp (RFC 5849 §3.3)."""

    enforce_ssl = False  # loopback HTTP in the test (PLAINTEXT included)

    def __init__(self) -> None:
        super().__init__()
        self.request_tokens: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.nonces: set[tuple] = set()

    dummy_client = "dummyClientKeyForTiming0"
    dummy_request_token = "dummyRequestTokenForTime"
    dummy_access_token = "dummyAccessTokenForTimes"

    @property
    def realms(self):
        return ["photos"]

    def validate_client_key(self, client_key, request):
        return client_key in (HMAC_KEY, RSA_KEY_ID)

    def get_client_secret(self, client_key, request):
        return HMAC_SECRET if client_key == HMAC_KEY else "dummySecret"

    def get_rsa_key(self, client_key, request):
        return RSA_PUBLIC_PEM

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        key = (client_key, timestamp, nonce, request_token, access_token)
        if key in self.nonces:
            return False
        self.nonces.add(key)
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return redirect_uri == CALLBACK

    def get_redirect_uri(self, token, request):
        return self.request_tokens[token]["callback"]

    def validate_requested_realms(self, client_key, realms, request):
        return set(realms) <= {"photos"}

    def get_default_realms(self, client_key, request):
        return ["photos"]

    def save_request_token(self, token, request):
        self.request_tokens[token["oauth_token"]] = {
            "secret": token["oauth_token_secret"], "client": request.client_key,
            "callback": request.redirect_uri, "realms": request.realms or ["photos"]}

    def verify_request_token(self, token, request):
        return token in self.request_tokens

    def get_realms(self, token, request):
        return self.request_tokens[token]["realms"]

    def verify_realms(self, token, realms, request):
        return set(realms) <= set(self.request_tokens[token]["realms"])

    def save_verifier(self, token, verifier, request):
        self.request_tokens[token]["verifier"] = verifier["oauth_verifier"]
        self.request_tokens[token]["user"] = verifier["user"]

    def validate_request_token(self, client_key, token, request):
        entry = self.request_tokens.get(token)
        return entry is not None and entry["client"] == client_key

    def get_request_token_secret(self, client_key, token, request):
        return self.request_tokens[token]["secret"]

    def validate_verifier(self, client_key, token, verifier, request):
        entry = self.request_tokens.get(token)
        if entry is None or not secrets.compare_digest(entry.get("verifier", ""), verifier):
            return False
        request.user = entry["user"]
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        entry = self.access_tokens.get(token) or self.request_tokens.get(token)
        return entry is not None and set(realms or []) <= set(entry["realms"])

    def invalidate_request_token(self, client_key, request_token, request):
        self.request_tokens.pop(request_token, None)

    def save_access_token(self, token, request):
        self.access_tokens[token["oauth_token"]] = {
            "secret": token["oauth_token_secret"], "client": request.client_key,
            "user": request.user, "realms": ["photos"]}

    def validate_access_token(self, client_key, token, request):
        entry = self.access_tokens.get(token)
        return entry is not None and entry["client"] == client_key

    def get_access_token_secret(self, client_key, token, request):
        return self.access_tokens[token]["secret"]


class Provider:
    """The WSGI app: oauthlib's endpoints, and one protected API answering who called."""

    def __init__(self) -> None:
        self.validator = Validator()
        self.request_token = RequestTokenEndpoint(self.validator)
        self.authorization = AuthorizationEndpoint(self.validator)
        self.access_token = AccessTokenEndpoint(self.validator)
        self.resource = ResourceEndpoint(self.validator)

    def __call__(self, environ, start_response):
        request = Request(environ)
        uri, method = request.url, request.method
        body = request.get_data(as_text=True)
        headers = dict(request.headers)
        path = request.path
        if path == "/oauth/request_token":
            h, b, s = self.request_token.create_request_token_response(uri, method, body, headers)
            response = Response(b, s, h)
        elif path == "/oauth/authorize":
            # The user approves (a real provider would show a page): the test's stand-in.
            realms, _ = self.authorization.get_realms_and_credentials(uri, method, body, headers)
            h, b, s = self.authorization.create_authorization_response(
                uri, method, body, headers, realms=realms, credentials={"user": request.args["user"]})
            response = Response(b, s, h)
        elif path == "/oauth/access_token":
            h, b, s = self.access_token.create_access_token_response(uri, method, body, headers)
            response = Response(b, s, h)
        elif path == "/api/me":
            valid, checked = self.resource.validate_protected_resource_request(
                uri, method, body, headers, realms=["photos"])
            if not valid:
                response = Response("invalid", 401)
            else:
                token = self.validator.access_tokens[checked.resource_owner_key]
                response = Response(json.dumps({
                    "user": token["user"], "client": checked.client_key, "method": method,
                    "note": dict(parse_qsl(body)).get("note")}), 200, mimetype="application/json")
        else:
            response = Response("not found", 404)
        return response(environ, start_response)


@pytest.fixture(scope="module")
def provider():
    port = free_port()
    app = Provider()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.origin = f"http://127.0.0.1:{port}"
    yield app
    server.shutdown()


def run_example(provider, tmp_path, *, method: str, placement: str, user: str,
                tamper=None) -> list[dict]:
    env = {
        **os.environ,
        "OAUTH1_REQUEST_TOKEN_URL": f"{provider.origin}/oauth/request_token",
        "OAUTH1_AUTHORIZE_URL": f"{provider.origin}/oauth/authorize",
        "OAUTH1_ACCESS_TOKEN_URL": f"{provider.origin}/oauth/access_token",
        "OAUTH1_API_URL": f"{provider.origin}/api/me?lang=fr",
        "OAUTH1_CALLBACK": CALLBACK,
        "OAUTH1_METHOD": method,
        "OAUTH1_PLACEMENT": placement,
        "OAUTH1_REALM": "photos",
    }
    if method == "RSA-SHA1":
        key = tmp_path / "client.pem"
        key.write_bytes(RSA_PRIVATE.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        env.update(OAUTH1_CONSUMER_KEY=RSA_KEY_ID, OAUTH1_RSA_KEY=str(key))
    else:
        env.update(OAUTH1_CONSUMER_KEY=HMAC_KEY, OAUTH1_CONSUMER_SECRET=HMAC_SECRET)
    binary = example_bin()
    assert binary.is_file(), f"{binary} is missing: bash scripts/test.sh builds it"
    proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first, proc.stderr.read()
        authorize = json.loads(first)["authorize"]
        # The user at the provider: approves, and is sent back to the callback.
        r = requests.get(f"{authorize}&{urlencode({'user': user})}", allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        callback = r.headers["Location"]
        assert callback.startswith(CALLBACK + "?"), callback
        if tamper:
            callback = tamper(callback)
        out, err = proc.communicate(callback + "\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [{"authorize": authorize}, *lines, {"exit": proc.returncode, "stderr": err}]


@pytest.mark.parametrize("method,placement", [
    ("HMAC-SHA1", "header"), ("HMAC-SHA1", "body"), ("HMAC-SHA1", "query"),
    ("RSA-SHA1", "header"), ("PLAINTEXT", "header"),
])
def test_the_whole_flow_with_each_method_and_placement(provider, tmp_path, method, placement):
    steps = run_example(provider, tmp_path, method=method, placement=placement, user="jane")
    end = steps[-1]
    assert end["exit"] == 0, end["stderr"]
    _, token, got, posted, _ = steps
    assert token["token"] in provider.validator.access_tokens
    if placement == "body":
        assert got["get"] is None  # a GET has no body to carry the parameters (§3.5.2)
    else:
        assert got["get"] == 200, got
        assert json.loads(got["body"]) == {"user": "jane", "client": token_client(method),
                                           "method": "GET", "note": None}
    assert posted["post"] == 200, posted
    body = json.loads(posted["body"])
    assert body["method"] == "POST" and body["note"] == "Dogs, Cats & Mice ☃", body
    assert body["user"] == "jane" and body["client"] == token_client(method), body


def token_client(method: str) -> str:
    return RSA_KEY_ID if method == "RSA-SHA1" else HMAC_KEY


def test_a_callback_for_another_authorization_is_refused(provider, tmp_path):
    def other_token(callback: str) -> str:
        query = dict(parse_qsl(urlsplit(callback).query))
        query["oauth_token"] = "someOtherRequestToken01"
        return f"{CALLBACK}?{urlencode(query)}"

    steps = run_example(provider, tmp_path, method="HMAC-SHA1", placement="header", user="jane",
                        tamper=other_token)
    end = steps[-1]
    assert end["exit"] != 0 and "not the one of this authorization" in end["stderr"], end


def test_the_provider_refuses_a_wrong_secret_and_a_replayed_nonce(provider):
    """The provider's own checks on requests this client signed: a wrong client secret is a
    bad signature, and a well-signed request sent again (same nonce and timestamp) is a replay
    (RFC 5849 §3.3)."""
    captured: list = []

    def tap(environ, start_response):
        request = Request(environ)
        if request.path == "/oauth/request_token":
            captured.append((request.url, dict(request.headers), request.get_data(as_text=True)))
        return provider(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, tap, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{port}"
    env = {**os.environ,
           "OAUTH1_REQUEST_TOKEN_URL": f"{origin}/oauth/request_token",
           "OAUTH1_AUTHORIZE_URL": f"{origin}/oauth/authorize",
           "OAUTH1_ACCESS_TOKEN_URL": f"{origin}/oauth/access_token",
           "OAUTH1_API_URL": f"{origin}/api/me", "OAUTH1_CALLBACK": CALLBACK,
           "OAUTH1_CONSUMER_KEY": HMAC_KEY}
    try:
        # Well signed: temporary credentials granted (then no callback comes: it stops).
        good = subprocess.run([str(example_bin())], env={**env, "OAUTH1_CONSUMER_SECRET": HMAC_SECRET},
                              input="", capture_output=True, text=True, timeout=60)
        assert '"authorize"' in good.stdout, good.stderr
        url, headers, body = captured[-1]
        assert headers["Authorization"].startswith("OAuth ") and "oauth_nonce=" in headers["Authorization"]
        replay = requests.post(url, data=body, headers=headers, timeout=10)
        assert replay.status_code == 401, replay.text
        # A wrong secret: the signature does not verify.
        bad = subprocess.run([str(example_bin())], env={**env, "OAUTH1_CONSUMER_SECRET": "not-the-secret"},
                             input="", capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "HTTP 401" in bad.stderr, bad.stderr
    finally:
        server.shutdown()
