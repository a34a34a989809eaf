"""Fully-specified JOSE algorithms (RFC 9864): `doorward serve` signs ID tokens with `Ed25519`
for a client that asks for it, beside the deprecated `EdDSA` name today's clients expect,
each with its own key; Authlib's OIDC client (joserfc) validates both.

What differs for `Ed25519`, and why (the peers decided):
- its key is published without `alg` (the JWK library Doorward uses has no such value, and the
  `EdDSA` key's JWK says `EdDSA`, which must not verify `Ed25519` tokens);
- its ID tokens carry no `at_hash` (optional in the code flow, OIDC Core §3.1.3.6): Authlib
  1.6 finds no hash function for the name (`sha25519`) and would refuse the token."""
from __future__ import annotations

import pytest

from helpers import Browser, DoorwardServer, KEY_ALGORITHMS, doorward_bin, fetch_jwks
from test_oidc import FlaskRP, jws_header, verify_jws

CLIENTS = {
    "Ed25519": ("oidc_fs", "oidc_fs@clients", "oidc_fs_secret", "http://localhost:8031/oauth/callback"),
    "EdDSA": ("oidc_legacy_ed", "oidc_legacy_ed@clients", "oidc_legacy_ed_secret",
              "http://localhost:8032/oauth/callback"),
}
EXTRA = "\n".join(
    line
    for alg, (name, _, secret, callback) in CLIENTS.items()
    for line in [
        f"[clients.{name}]",
        f'display_name = "{alg} App"',
        f'app_uri = "{callback.rsplit("/oauth", 1)[0]}"',
        f'callback_uri = "{callback}"',
        f'secret = "{secret}"',
        'scopes = ["base", "openid", "profile", "email"]',
        f'id_token_signed_response_alg = "{alg}"',
        "",
    ]
)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("algorithms")
    server = DoorwardServer(doorward_bin(), workdir, database=f"sqlite:{workdir / 'algs.sqlite'}",
                            extra_config=EXTRA, key_algorithms=[*KEY_ALGORITHMS, "Ed25519"])
    server.start()
    yield server.origin
    server.stop()


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_authlib_validates_id_tokens_by_either_name(origin, alg):
    name, client_id, secret, callback = CLIENTS[alg]
    rp = FlaskRP(origin, name, client_id, secret, callback)
    token, _ = rp.sign_in(origin, Browser(origin), "fiona", callback)
    assert "userinfo" in token, token  # Authlib validated the ID token
    header = jws_header(token["id_token"])
    assert header["alg"] == alg, header
    # joserfc checks the signature against the published keys, by the header's name.
    _, claims = verify_jws(origin, token["id_token"], [alg])
    assert claims["aud"] == client_id, claims
    assert ("at_hash" in claims) == (alg == "EdDSA"), claims
    keys = {k["kid"]: k for k in fetch_jwks(origin)["keys"]}
    key = keys[header["kid"]]
    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519"), key
    assert key.get("alg") == (None if alg == "Ed25519" else "EdDSA"), key
    # A token of one name does not verify as the other.
    other = "EdDSA" if alg == "Ed25519" else "Ed25519"
    with pytest.raises(Exception):
        verify_jws(origin, token["id_token"], [other])


def test_the_metadata_lists_both_names(origin):
    from helpers import http_session
    metadata = http_session().get(origin + "/.well-known/openid-configuration", timeout=10).json()
    algs = metadata["id_token_signing_alg_values_supported"]
    assert "Ed25519" in algs and "EdDSA" in algs, algs
