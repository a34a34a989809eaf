"""Outbound fetches against `doorward serve`, with a document server of this module's own on
loopback (so the servers here turn on `[fetch] insecure_allow_private_addresses` and
`insecure_allow_http`, and one of them leaves the first off to show the SSRF policy):

- Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): Authlib's
  `OAuth2Session` with `client_id` = the document's URL, a public client with PKCE S256,
  signs a user in through the real pages and redeems and refreshes the code; the document is
  fetched once (cached); the consent page says "unverified" and names the redirect host;
- refused documents (a client_id mismatch, a secret, hostile redirect URIs, 70 KB, a redirect,
  a slow server, a 404, not JSON) and a loopback document without the switch: a 400 page at
  the authorization endpoint, never a redirect, and `invalid_client` at the token endpoint;
- `private_key_jwt` with a `jwks_uri` (a configured client and a document client), with
  Authlib's `PrivateKeyJWT`; the client rotates its key at the URI and the next assertion,
  with an unknown `kid`, makes one refetch.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey

from helpers import (
    Browser,
    DoorwardServer,
    assert_callback,
    describe,
    doorward_bin,
    find_form,
    http_session,
    query_of,
    started,
)

REDIRECT = "http://127.0.0.1/cb"  # registered without a port (RFC 8252 §7.3)
SENT_REDIRECT = "http://127.0.0.1:8031/cb"
CONF_REDIRECT = "http://localhost:8032/cb"
SLOW_SECONDS = 7  # past the fetcher's 5 s deadline
REFETCH_COOLDOWN_S = 10  # doorward_core::client_keys::REFETCH_COOLDOWN


class DocServer:
    """Serves documents from a dict of path -> handler, counting the requests per path."""

    def __init__(self):
        self.routes: dict[str, Callable[[], tuple[int, dict, bytes]]] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                route = outer.routes.get(self.path)
                status, headers, body = route() if route else (404, {}, b"not found")
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.origin + path

    def json(self, path: str, document: dict, headers: Optional[dict] = None) -> str:
        body = json.dumps(document).encode()
        self.routes[path] = lambda: (200, {"Content-Type": "application/json", **(headers or {})}, body)
        return self.url(path)

    def stop(self):
        self.httpd.shutdown()


def _jwks(key, kid: str) -> dict:
    public = key.as_dict(private=False)
    public["kid"] = kid
    return {"keys": [public]}


KEY_1 = ECKey.generate_key("P-256")
KEY_2 = ECKey.generate_key("P-256")
KEY_3 = ECKey.generate_key("P-256")


@pytest.fixture(scope="module")
def docs():
    server = DocServer()
    yield server
    server.stop()


def _config(docs: DocServer, *, private: bool) -> str:
    return "\n".join([
        "[client_metadata_documents]",
        "enabled = true",
        "[fetch]",
        f"insecure_allow_private_addresses = {'true' if private else 'false'}",
        "insecure_allow_http = true",
        "[clients.pk_uri]",
        'display_name = "pk_uri"',
        'app_uri = "http://localhost:8032"',
        f'callback_uri = "{CONF_REDIRECT}"',
        'secret = "unused_secret_1"',
        'token_endpoint_auth_method = "private_key_jwt"',
        f'jwks_uri = "{docs.url("/pk/jwks.json")}"',
        "",
    ])


@pytest.fixture(scope="module")
def origin(docs, tmp_path_factory) -> str:
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("cimd"), extra_config=_config(docs, private=True)))
    yield srv.origin
    srv.stop()


@pytest.fixture(scope="module")
def strict_origin(docs, tmp_path_factory) -> str:
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("cimd-strict"), extra_config=_config(docs, private=False)))
    yield srv.origin
    srv.stop()


def _no_5xx(session: requests.Session) -> requests.Session:
    def hook(resp, *args, **kwargs):
        assert resp.status_code < 500, describe(resp)
        return resp

    session.hooks["response"].append(hook)
    return session


def _document(client_id: str, **fields) -> dict:
    doc = {
        "client_id": client_id,
        "client_name": "Docs <script>alert(1)</script> App",
        "client_uri": client_id.rsplit("/", 1)[0] + "/home",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def _public_session(client_id: str) -> OAuth2Session:
    return _no_5xx(OAuth2Session(
        client_id=client_id,
        token_endpoint_auth_method="none",
        scope="base",
        redirect_uri=SENT_REDIRECT,
        code_challenge_method="S256",
    ))


def _consent_page(browser: Browser, url: str, username: str) -> requests.Response:
    browser.login(username)
    page = browser.get(url)
    assert page.status_code == 200, describe(page)
    find_form(page, "/oauth/authorize")
    return page


def _approve(browser: Browser, page: requests.Response, redirect: str = SENT_REDIRECT) -> str:
    form = find_form(page, "/oauth/authorize")
    resp = browser.submit(page, form, button=form.button(value="approve"))
    return assert_callback(resp, redirect).location


def test_metadata_says_documents_are_supported(origin):
    metadata = http_session().get(f"{origin}/.well-known/oauth-authorization-server", timeout=15).json()
    assert metadata["client_id_metadata_document_supported"] is True, metadata


def test_a_public_client_signs_in_with_its_metadata_document(origin, docs):
    client_id = docs.json("/app/client.json", _document(docs.url("/app/client.json")))
    s = _public_session(client_id)
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    browser = Browser(origin)
    page = _consent_page(browser, url, "cimd_ann")
    text = page.text
    assert "Unverified application" in text, text
    assert "127.0.0.1:8031" in text, "the consent page names the host the browser goes to"
    assert client_id in text, "the page names the client_id URL"
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text, text

    location = _approve(browser, page)
    token = s.fetch_token(f"{origin}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)
    assert token["access_token"] and token["refresh_token"], token
    refreshed = s.refresh_token(f"{origin}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"], refreshed
    # Authorize, consent and two token requests: one fetch, the rest from the cache.
    assert docs.hits["/app/client.json"] == 1, docs.hits

    # The account page lists it, marked unverified, and revoking it works as for any client.
    account = browser.get("/account")
    assert "unverified" in account.text and client_id in account.text, describe(account)


def test_a_public_document_client_needs_pkce(origin, docs):
    client_id = docs.json("/nopkce/client.json", _document(docs.url("/nopkce/client.json")))
    url = f"{origin}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": SENT_REDIRECT, "scope": "base",
    })
    browser = Browser(origin)
    browser.login("cimd_ben")
    resp = browser.get(url)
    # An unverified client's errors are shown, never redirected to the URI its document chose
    # (RFC 9700 §4.11.2: else the server is an open redirector for anyone with a web server).
    assert resp.status_code == 400 and "Location" not in resp.headers, describe(resp)
    assert "unverified application" in resp.text and "invalid_request" in resp.text, resp.text


def test_an_unverified_client_gets_no_redirect_for_errors_or_prompt_none(origin, docs):
    """The open-redirect attempt: a document whose redirect URI is a phishing page, then a
    request crafted to fail (or to answer `login_required` with prompt=none) for a victim."""
    client_id = docs.json("/phish/client.json", _document(
        docs.url("/phish/client.json"), redirect_uris=["https://phish.example/landing"]))
    base = {"response_type": "code", "client_id": client_id, "redirect_uri": "https://phish.example/landing",
            "scope": "base", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256"}
    for extra in [{"scope": "admin"}, {"response_type": "token"}, {"prompt": "none"},
                  {"code_challenge_method": "plain"}]:
        resp = Browser(origin).get(f"{origin}/oauth/authorize?" + urlencode({**base, **extra}))
        assert resp.status_code == 400 and "Location" not in resp.headers, (extra, describe(resp))
        assert "phish.example/landing?" not in resp.text, extra


def _big(docs: DocServer, path: str) -> str:
    doc = _document(docs.url(path), client_name="big", padding="x" * 70_000)
    body = json.dumps(doc).encode()
    docs.routes[path] = lambda: (200, {"Content-Type": "application/json"}, body)
    return docs.url(path)


def _redirecting(docs: DocServer, path: str) -> str:
    target = docs.json("/good/target.json", _document(docs.url("/good/target.json")))
    docs.routes[path] = lambda: (302, {"Location": target}, b"")
    return docs.url(path)


def _slow(docs: DocServer, path: str) -> str:
    body = json.dumps(_document(docs.url(path))).encode()

    def route():
        time.sleep(SLOW_SECONDS)
        return 200, {"Content-Type": "application/json"}, body

    docs.routes[path] = route
    return docs.url(path)


def _raw(docs: DocServer, path: str, status: int, body: bytes) -> str:
    docs.routes[path] = lambda: (status, {"Content-Type": "application/json"}, body)
    return docs.url(path)


REFUSED = {
    "client_id mismatch": lambda d, p: d.json(p, _document(d.url("/someone/else.json"))),
    "client_secret": lambda d, p: d.json(p, _document(d.url(p), client_secret="s3cret-s3cret")),
    "client_secret_basic": lambda d, p: d.json(p, _document(d.url(p), token_endpoint_auth_method="client_secret_basic")),
    "javascript redirect": lambda d, p: d.json(p, _document(d.url(p), redirect_uris=["javascript:alert(1)"])),
    "fragment redirect": lambda d, p: d.json(p, _document(d.url(p), redirect_uris=["https://app.example/cb#x"])),
    "no redirect_uris": lambda d, p: d.json(p, _document(d.url(p), redirect_uris=None)),
    "javascript client_uri": lambda d, p: d.json(p, _document(d.url(p), client_uri="javascript:alert(1)")),
    "client_credentials": lambda d, p: d.json(p, _document(d.url(p), grant_types=["client_credentials"])),
    "oversized": _big,
    "redirect": _redirecting,
    "slow": _slow,
    "404": lambda d, p: _raw(d, p, 404, b"{}"),
    "not JSON": lambda d, p: _raw(d, p, 200, b"<html>hello</html>"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_document_is_a_page_at_authorize_and_invalid_client_at_token(origin, docs, case):
    path = "/refused/" + re.sub(r"\W+", "-", case) + ".json"
    client_id = REFUSED[case](docs, path)
    url = f"{origin}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": SENT_REDIRECT,
        "scope": "base", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    })
    resp = http_session().get(url, allow_redirects=False, timeout=30)
    assert resp.status_code == 400, describe(resp)
    assert "Location" not in resp.headers, describe(resp)
    assert "metadata document" in resp.text, describe(resp)

    token = http_session().post(f"{origin}/oauth/token", data={
        "grant_type": "authorization_code", "code": "dwc_x", "client_id": client_id,
        "redirect_uri": SENT_REDIRECT, "code_verifier": "x" * 43,
    }, timeout=30)
    assert token.status_code == 401 and token.json()["error"] == "invalid_client", describe(token)
    # RFC 6749 §5.2: the description is printable ASCII without '"' or '\\', whatever the
    # document said.
    description = token.json().get("error_description", "")
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description), description
    if case == "redirect":
        assert docs.hits.get("/good/target.json", 0) == 0, "the redirect was not followed"


def test_loopback_documents_are_refused_without_the_switch(strict_origin, docs):
    client_id = docs.json("/strict/client.json", _document(docs.url("/strict/client.json")))
    url = f"{strict_origin}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": SENT_REDIRECT, "scope": "base",
    })
    resp = http_session().get(url, allow_redirects=False, timeout=30)
    assert resp.status_code == 400 and "Location" not in resp.headers, describe(resp)
    assert "not a public address" in resp.text, describe(resp)
    assert docs.hits.get("/strict/client.json", 0) == 0, "nothing reached the loopback server"


def _jwt_session(client_id: str, key, kid: str, redirect: str) -> OAuth2Session:
    auth = PrivateKeyJWT(alg="ES256", headers={"kid": kid})
    s = OAuth2Session(
        client_id=client_id,
        client_secret=key,
        token_endpoint_auth_method=auth.name,
        scope="base",
        redirect_uri=redirect,
        code_challenge_method="S256",
    )
    s.register_client_auth_method(auth)
    return _no_5xx(s)


def _sign_in_with_jwt(origin: str, s: OAuth2Session, username: str, redirect: str) -> dict:
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{origin}/oauth/authorize", code_verifier=verifier)
    browser = Browser(origin)
    page = _consent_page(browser, url, username)
    location = _approve(browser, page, redirect)
    return s.fetch_token(f"{origin}/oauth/token", authorization_response=location, state=state, code_verifier=verifier)


def test_private_key_jwt_with_a_jwks_uri_and_a_key_rotation(origin, docs):
    docs.json("/pk/jwks.json", _jwks(KEY_1, "k1"), {"Cache-Control": "max-age=3600"})
    token = _sign_in_with_jwt(origin, _jwt_session("pk_uri@clients", KEY_1, "k1", CONF_REDIRECT), "cimd_cat", CONF_REDIRECT)
    assert token["access_token"] and token["refresh_token"], token
    assert docs.hits["/pk/jwks.json"] == 1, docs.hits

    # The client rotates: the set at the URI now holds only KEY_2; the cached set (an hour's
    # max-age) does not. An unknown kid refetches at most once per 10 s cooldown, counted from
    # the last fetch, so the test waits the cooldown out (the server's clock is the system's).
    docs.json("/pk/jwks.json", _jwks(KEY_2, "k2"), {"Cache-Control": "max-age=3600"})
    time.sleep(REFETCH_COOLDOWN_S + 1)
    rotated = _jwt_session("pk_uri@clients", KEY_2, "k2", CONF_REDIRECT)
    refreshed = rotated.refresh_token(f"{origin}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["access_token"], refreshed
    assert docs.hits["/pk/jwks.json"] == 2, "an unknown kid makes one refetch"

    # The withdrawn key no longer verifies.
    old = _jwt_session("pk_uri@clients", KEY_1, "k1", CONF_REDIRECT)
    with pytest.raises(Exception) as refused:
        old.refresh_token(f"{origin}/oauth/token", refresh_token=refreshed["refresh_token"])
    assert "invalid_client" in str(refused.value), refused.value


def test_private_key_jwt_client_from_a_document_with_a_jwks_uri(origin, docs):
    jwks_uri = docs.json("/doc-pk/jwks.json", _jwks(KEY_3, "k3"))
    client_id = docs.json("/doc-pk/client.json", _document(
        docs.url("/doc-pk/client.json"),
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri=jwks_uri,
    ))
    token = _sign_in_with_jwt(origin, _jwt_session(client_id, KEY_3, "k3", SENT_REDIRECT), "cimd_ben", SENT_REDIRECT)
    assert token["access_token"], token
    # Another key than the published one is refused.
    wrong = _jwt_session(client_id, KEY_1, "k3", SENT_REDIRECT)
    with pytest.raises(Exception) as refused:
        wrong.refresh_token(f"{origin}/oauth/token", refresh_token=token["refresh_token"])
    assert "invalid_client" in str(refused.value), refused.value


def test_an_unreachable_jwks_uri_is_invalid_client(origin, docs):
    docs.routes.pop("/gone/jwks.json", None)
    client_id = docs.json("/gone/client.json", _document(
        docs.url("/gone/client.json"),
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri=docs.url("/gone/jwks.json"),
    ))
    token_url = f"{origin}/oauth/token"
    assertion = private_key_jwt_sign(KEY_1, client_id, token_url, alg="ES256", header={"kid": "k1"})
    resp = http_session().post(token_url, data={
        "grant_type": "refresh_token", "refresh_token": "dwrt_x", "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }, timeout=30)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client", describe(resp)
    assert docs.hits.get("/gone/jwks.json", 0) == 1, docs.hits


def test_a_registered_client_with_a_jwks_uri(docs, tmp_path):
    """Dynamic registration (RFC 7591) of a `private_key_jwt` client whose keys live at a
    `jwks_uri`: the server fetches them through the same policed fetcher, and the client
    authenticates with Authlib's PrivateKeyJWT for a `client_credentials` token."""
    import subprocess

    srv = started(DoorwardServer(doorward_bin(), tmp_path, database=f"sqlite:{tmp_path / 'r.sqlite'}",
                                 extra_config=_config(docs, private=True) + '\n[registration]\nmode = "token"\n'))
    try:
        database = srv.command[srv.command.index("--database") + 1]
        made = subprocess.run(
            [str(doorward_bin()), "clients", "registration-token", "--config", str(srv.config_path),
             "--database", database, "--json"],
            capture_output=True, text=True, timeout=120, env=srv.child_env(), cwd=srv.workdir,
            stdin=subprocess.DEVNULL)
        assert made.returncode == 0, made.stderr
        initial = json.loads(made.stdout)["initial_access_token"]
        jwks_uri = docs.json("/registered/jwks.json", _jwks(KEY_3, "r3"))
        register = lambda metadata: requests.post(  # noqa: E731
            f"{srv.origin}/oauth/register", json=metadata, timeout=10,
            headers={"Authorization": f"Bearer {initial}"})
        for refused in [
            {"jwks_uri": "javascript:alert(1)"},
            {"jwks_uri": "https://app.example/jwks#frag"},
            {"jwks_uri": jwks_uri, "jwks": _jwks(KEY_3, "r3")},
            {"jwks_uri": jwks_uri, "token_endpoint_auth_method": "client_secret_basic"},
        ]:
            metadata = {"token_endpoint_auth_method": "private_key_jwt",
                        "grant_types": ["client_credentials"], **refused}
            r = register(metadata)
            assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", (refused, r.text)
        r = register({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri,
                      "grant_types": ["client_credentials"], "scope": "base", "client_name": "Keys elsewhere"})
        assert r.status_code == 201, r.text
        answer = r.json()
        assert answer["jwks_uri"] == jwks_uri and "client_secret" not in answer, answer
        client_id = answer["client_id"]

        def service_token(key, kid):
            s = OAuth2Session(client_id=client_id, client_secret=key, scope="base",
                              token_endpoint_auth_method=PrivateKeyJWT(alg="ES256", headers={"kid": kid}))
            return s.fetch_token(f"{srv.origin}/oauth/token", grant_type="client_credentials")

        assert service_token(KEY_3, "r3")["access_token"]
        assert docs.hits["/registered/jwks.json"] == 1
        with pytest.raises(Exception) as refused:
            service_token(KEY_1, "r3")
        assert "invalid_client" in str(refused.value), refused.value
    finally:
        srv.stop()
