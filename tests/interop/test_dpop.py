"""DPoP (RFC 9449) at `doorward serve`'s token endpoint and its own API over HTTP, with proofs
made by joserfc (not Doorward's code): a good proof binds the token (`token_type: DPoP`,
introspection's `cnf.jkt`); forged, replayed, wrong-`htu`, wrong-`htm`, future-dated and
too-old proofs get `400 invalid_dpop_proof` and no token; with nonces required, a proof
without one gets `use_dpop_nonce` and the nonce in `DPoP-Nonce`. A bound token is refused as a
bearer token and accepted with its proof at `/api/v1/auth/self`."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import pytest
import requests
from joserfc import jws
from joserfc.jwk import ECKey

import helpers
from helpers import DoorwardServer, assert_oauth_error, basic, doorward_bin, started

MACHINE = "dpop_machine@clients"
SECRET = "dpop-machine-secret-1"
EXTRA = f"""
[clients.dpop_machine]
display_name = "DPoP machine"
app_uri = "https://machine.example"
redirect_uris = ["https://machine.example/unused"]
secret = "{SECRET}"
grant_types = ["client_credentials"]
scopes = ["base"]
resource_server = true
"""


def dpop_server(tmp_path_factory, name: str, require_nonce: bool = False) -> DoorwardServer:
    """Its own server on the suite's database (SQLite or PostgreSQL), DPoP nonces as asked."""
    extra = EXTRA + ("\n[oauth]\ndpop_require_nonce = true\n" if require_nonce else "")
    return started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp(name), extra_config=extra))


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    srv = dpop_server(tmp_path_factory, "dpop")
    yield srv.origin
    srv.stop()


@pytest.fixture(scope="module")
def nonce_origin(tmp_path_factory):
    srv = dpop_server(tmp_path_factory, "dpop_nonce", require_nonce=True)
    yield srv.origin
    srv.stop()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof(key: ECKey, htm: str, htu: str, *, iat: int | None = None, ath: str | None = None,
          nonce: str | None = None, header_key: ECKey | None = None, jti: str | None = None) -> str:
    claims = {"jti": jti or str(uuid.uuid4()), "htm": htm, "htu": htu,
              "iat": int(time.time()) if iat is None else iat}
    if ath:
        claims["ath"] = ath
    if nonce:
        claims["nonce"] = nonce
    public = (header_key or key).as_dict(private=False)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


def token_request(origin: str, dpop: str | None) -> requests.Response:
    headers = {"Authorization": basic(MACHINE, SECRET)}
    if dpop is not None:
        headers["DPoP"] = dpop
    return requests.post(f"{origin}/oauth/token", data={"grant_type": "client_credentials"},
                         headers=headers, timeout=helpers.HTTP_TIMEOUT_S)


def test_a_proof_binds_the_token_and_the_token_needs_it(origin):
    key = ECKey.generate_key("P-256")
    answer = token_request(origin, proof(key, "POST", f"{origin}/oauth/token"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "DPoP", body
    assert answer.headers.get("Cache-Control") == "no-store"
    token = body["access_token"]
    seen = requests.post(f"{origin}/oauth/introspect", data={"token": token},
                         headers={"Authorization": basic(MACHINE, SECRET)}, timeout=10).json()
    assert seen["token_type"] == "DPoP" and seen["cnf"]["jkt"] == key.thumbprint(), seen
    # As a bearer token: refused.
    as_bearer = requests.get(f"{origin}/api/v1/auth/self", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert as_bearer.status_code == 401 and "invalid_token" in as_bearer.headers["WWW-Authenticate"]
    # With the DPoP scheme and a proof carrying the token's hash: the API answers (a
    # client_credentials token speaks for no user: 403 insufficient_scope, not 401).
    ath = b64(hashlib.sha256(token.encode()).digest())
    url = f"{origin}/api/v1/auth/self"
    good = requests.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof(key, "GET", url, ath=ath)},
                        timeout=10)
    assert good.status_code == 403, good.text
    # Without the proof: 401 with a DPoP challenge.
    bare = requests.get(url, headers={"Authorization": f"DPoP {token}"}, timeout=10)
    assert bare.status_code == 401, bare.text
    challenge = bare.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge and "algs=" in challenge


def test_bad_proofs_get_invalid_dpop_proof_and_no_token(origin):
    key = ECKey.generate_key("P-256")
    other = ECKey.generate_key("P-256")
    url = f"{origin}/oauth/token"
    replayed = proof(key, "POST", url)
    assert token_request(origin, replayed).status_code == 200
    cases = {
        "replayed": replayed,
        "forged (signed by another key than its jwk)": proof(other, "POST", url, header_key=key),
        "wrong htu": proof(key, "POST", f"{origin}/oauth/introspect"),
        "wrong host": proof(key, "POST", "https://evil.example/oauth/token"),
        "wrong htm": proof(key, "GET", url),
        "future-dated": proof(key, "POST", url, iat=int(time.time()) + 600),
        "too old": proof(key, "POST", url, iat=int(time.time()) - 3600),
        "not a JWS": "not-a-proof",
    }
    for why, dpop in cases.items():
        resp = token_request(origin, dpop)
        body = assert_oauth_error(resp, 400, "invalid_dpop_proof")
        assert "access_token" not in body, (why, body)
    # Two DPoP headers (http.client: requests merges a header's values).
    import http.client
    from urllib.parse import urlsplit, urlencode
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", parts.path)
    conn.putheader("Authorization", basic(MACHINE, SECRET))
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("DPoP", proof(key, "POST", url))
    conn.putheader("DPoP", proof(key, "POST", url))
    body = urlencode({"grant_type": "client_credentials"}).encode()
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    answer = conn.getresponse()
    assert answer.status == 400
    assert json.loads(answer.read())["error"] == "invalid_dpop_proof"
    conn.close()


def test_with_nonces_required_a_proof_needs_the_servers_nonce(nonce_origin):
    key = ECKey.generate_key("P-256")
    url = f"{nonce_origin}/oauth/token"
    first = token_request(nonce_origin, proof(key, "POST", url))
    assert_oauth_error(first, 400, "use_dpop_nonce")
    nonce = first.headers.get("DPoP-Nonce")
    assert nonce, first.headers
    again = token_request(nonce_origin, proof(key, "POST", url, nonce=nonce))
    assert again.status_code == 200, again.text
    assert again.json()["token_type"] == "DPoP"
    assert again.headers.get("DPoP-Nonce"), "every answer carries the current nonce"
    made_up = token_request(nonce_origin, proof(key, "POST", url, nonce="made-up"))
    assert_oauth_error(made_up, 400, "use_dpop_nonce")
