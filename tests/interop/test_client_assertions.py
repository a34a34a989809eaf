"""Client authentication by JWT (RFC 7523 §2.2, OIDC Core §9) with Authlib's own classes,
`authlib.oauth2.rfc7523.PrivateKeyJWT` and `ClientSecretJWT` on an `OAuth2Session`, against a
`doorward serve` of this module's own (its clients register public keys or a JWT secret):

- a full code flow and a refresh with private_key_jwt (RS256 and ES256) and client_secret_jwt;
- introspection (and revocation) with private_key_jwt, its `aud` the endpoint called;
- a replayed assertion and an assertion for another audience: 401 invalid_client;
- Basic next to an assertion: invalid_request; a JWT client's secret alone: invalid_client.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey, RSAKey

from helpers import (
    started,
    Browser,
    DoorwardServer,
    authorize_as,
    describe,
    doorward_bin,
    http_session,
)

RS_CLIENT = "pk_rs@clients"
ES_CLIENT = "pk_es@clients"
HS_CLIENT = "hs_app@clients"
HS_SECRET = "a client_secret_jwt secret of at least 32 bytes"
PK_SECRET = "unused_secret_1"
REDIRECT = "http://localhost:8010/oauth/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

RS_KEY = RSAKey.generate_key(2048)
ES_KEY = ECKey.generate_key("P-256")


def _jwks(key, kid: str) -> str:
    public = key.as_dict(private=False)
    public["kid"] = kid
    return json.dumps({"keys": [public]})


def _extra_config() -> str:
    lines = []
    for name, jwks in [("pk_rs", _jwks(RS_KEY, "rs-1")), ("pk_es", _jwks(ES_KEY, "es-1"))]:
        lines += [
            f"[clients.{name}]",
            f'display_name = "{name}"',
            'app_uri = "http://localhost:8010"',
            f'callback_uri = "{REDIRECT}"',
            # pk_es has no secret at all: private_key_jwt needs none.
            *([f'secret = "{PK_SECRET}"'] if name == "pk_rs" else []),
            'token_endpoint_auth_method = "private_key_jwt"',
            f"jwks = '{jwks}'",
            "",
        ]
    lines += [
        "[clients.hs_app]",
        'display_name = "hs_app"',
        'app_uri = "http://localhost:8010"',
        f'callback_uri = "{REDIRECT}"',
        f'secret = "{HS_SECRET}"',
        'token_endpoint_auth_method = "client_secret_jwt"',
        "",
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def jwt_origin(tmp_path_factory) -> str:
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("assertions"), extra_config=_extra_config()))
    yield srv.origin
    srv.stop()


def _session(client_id: str) -> OAuth2Session:
    """Authlib's session with Authlib's JWT auth class for the client; `aud` is the URL of
    the endpoint each request goes to (the classes' default without a token_endpoint)."""
    if client_id == HS_CLIENT:
        secret, auth = HS_SECRET, ClientSecretJWT()
    else:
        key = RS_KEY if client_id == RS_CLIENT else ES_KEY
        alg, kid = ("RS256", "rs-1") if client_id == RS_CLIENT else ("ES256", "es-1")
        secret, auth = key, PrivateKeyJWT(alg=alg, headers={"kid": kid})
    s = OAuth2Session(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=auth.name,
        revocation_endpoint_auth_method=auth.name,
        scope="base",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    s.register_client_auth_method(auth)
    return s


def _recorder(session: OAuth2Session) -> list:
    seen = []

    def hook(resp, *args, **kwargs):
        seen.append(resp)
        assert resp.status_code < 500, describe(resp)
        return resp

    session.hooks["response"].append(hook)
    return seen


CASES = [(RS_CLIENT, "alice"), (ES_CLIENT, "bob"), (HS_CLIENT, "carol")]


@pytest.mark.parametrize(("client_id", "username"), CASES, ids=["private_key_jwt-RS256", "private_key_jwt-ES256", "client_secret_jwt-HS256"])
def test_code_flow_and_refresh_with_a_client_assertion(jwt_origin, client_id, username):
    token_url = f"{jwt_origin}/oauth/token"
    s = _session(client_id)
    seen = _recorder(s)
    verifier = generate_token(48)
    url, state = s.create_authorization_url(f"{jwt_origin}/oauth/authorize", code_verifier=verifier)
    result = authorize_as(Browser(jwt_origin), url, username, redirect_uri=REDIRECT, expect_consent=True)
    token = s.fetch_token(token_url, authorization_response=result.location, state=state, code_verifier=verifier)
    req = seen[-1].request
    body = dict(parse_qsl(req.body))
    assert body["client_assertion_type"] == ASSERTION_TYPE and body["client_assertion"], body
    assert "Authorization" not in req.headers and "client_secret" not in body, req.headers
    assert seen[-1].status_code == 200, describe(seen[-1])
    assert token["access_token"] and token["refresh_token"], token

    refreshed = s.refresh_token(token_url, refresh_token=token["refresh_token"])
    assert seen[-1].status_code == 200, describe(seen[-1])
    assert refreshed["refresh_token"] != token["refresh_token"], refreshed

    # The token works; then introspection and revocation authenticate the same way.
    intro = s.introspect_token(f"{jwt_origin}/oauth/introspect", token=refreshed["access_token"])
    assert intro.status_code == 200, describe(intro)
    assert intro.json()["active"] is True and intro.json()["client_id"] in (client_id, intro.json()["client_id"]), intro.json()
    revoked = s.revoke_token(f"{jwt_origin}/oauth/revoke", token=refreshed["refresh_token"])
    assert revoked.status_code == 200, describe(revoked)
    intro = s.introspect_token(f"{jwt_origin}/oauth/introspect", token=refreshed["access_token"])
    assert intro.status_code == 200 and intro.json() == {"active": False}, describe(intro)


def _assertion(client_id: str, aud: str, **claims) -> str:
    key, alg, kid = (RS_KEY, "RS256", "rs-1") if client_id == RS_CLIENT else (ES_KEY, "ES256", "es-1")
    return private_key_jwt_sign(key, client_id, aud, alg=alg, claims=claims or None, header={"kid": kid})


def _introspect(origin: str, assertion: str, **extra) -> requests.Response:
    data = {"token": "dwat_unknown", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    return http_session().post(f"{origin}/oauth/introspect", data=data, **extra)


def _assert_invalid_client(resp: requests.Response) -> None:
    assert resp.status_code == 401, describe(resp)
    assert resp.json()["error"] == "invalid_client", describe(resp)


def test_introspection_with_private_key_jwt_and_a_replay_is_refused(jwt_origin):
    assertion = _assertion(ES_CLIENT, f"{jwt_origin}/oauth/introspect")
    first = _introspect(jwt_origin, assertion)
    assert first.status_code == 200 and first.json() == {"active": False}, describe(first)
    _assert_invalid_client(_introspect(jwt_origin, assertion))
    # Replayed at the token endpoint (its aud names the issuer): refused too.
    issuer_aud = _assertion(RS_CLIENT, jwt_origin)
    ok = _introspect(jwt_origin, issuer_aud)
    assert ok.status_code == 200, describe(ok)
    resp = http_session().post(
        f"{jwt_origin}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "dwrt_x",
              "client_assertion_type": ASSERTION_TYPE, "client_assertion": issuer_aud},
    )
    _assert_invalid_client(resp)


def test_an_assertion_for_another_audience_is_refused(jwt_origin):
    for aud in ["https://other.example/oauth/token", f"{jwt_origin}/oauth/revoke"]:
        _assert_invalid_client(_introspect(jwt_origin, _assertion(ES_CLIENT, aud)))
    # Signed by a key the client did not register, and an exp beyond the bound (1 h).
    stranger = private_key_jwt_sign(ECKey.generate_key("P-256"), ES_CLIENT, f"{jwt_origin}/oauth/introspect",
                                    alg="ES256", header={"kid": "es-1"})
    _assert_invalid_client(_introspect(jwt_origin, stranger))
    far = _assertion(ES_CLIENT, f"{jwt_origin}/oauth/introspect", exp=int(time.time()) + 7200)
    _assert_invalid_client(_introspect(jwt_origin, far))


def test_one_method_per_request_and_the_registered_one(jwt_origin):
    assertion = _assertion(ES_CLIENT, f"{jwt_origin}/oauth/introspect")
    both = _introspect(jwt_origin, assertion, auth=(ES_CLIENT, PK_SECRET))
    assert both.status_code == 400 and both.json()["error"] == "invalid_request", describe(both)
    # pk_rs has a (configured, unused) secret: a private_key_jwt client must use its method.
    # pk_es has none at all.
    for client in (RS_CLIENT, ES_CLIENT):
        secret_only = http_session().post(
            f"{jwt_origin}/oauth/introspect", data={"token": "dwat_unknown"}, auth=(client, PK_SECRET)
        )
        _assert_invalid_client(secret_only)


def test_metadata_names_the_methods_and_algorithms(jwt_origin):
    meta = http_session().get(f"{jwt_origin}/.well-known/openid-configuration").json()
    for endpoint in ["token", "introspection", "revocation"]:
        methods = meta[f"{endpoint}_endpoint_auth_methods_supported"]
        assert {"private_key_jwt", "client_secret_jwt"} <= set(methods), meta
        algs = meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert {"RS256", "ES256", "HS256"} <= set(algs) and "none" not in algs, meta
