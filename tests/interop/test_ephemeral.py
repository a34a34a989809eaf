"""`doorward serve --ephemeral`, used the way the README shows it from a pytest fixture: a
throwaway server on a free port with users and clients from flags, which Authlib uses at once
(client_credentials, and a code flow with PKCE signed in as the flag's user). Two run side by
side without sharing anything, nothing is written to disk, and bad flags are refused with one
line.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from helpers import Browser, doorward_bin, find_form, query_of

USER = ("ada", "ada-password-1")
WEB = ("web", "web-secret-1", "http://127.0.0.1:8000/cb")
SERVICE = ("svc", "svc-secret-1")


def start(cwd, *flags: str):
    """The README's fixture body: start, read the issuer from the `listening on` line."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(doorward_bin()), "serve", "--ephemeral", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )
    for line in proc.stdout:
        if line.startswith("listening on "):
            issuer = line.split()[2]
            break
    else:
        raise RuntimeError(f"doorward exited: {proc.stderr.read()}")
    print(f"ready in {time.monotonic() - started:.3f} s at {issuer}")
    return proc, issuer


@pytest.fixture
def doorward(tmp_path):
    proc, issuer = start(
        tmp_path,
        "--user", ":".join(USER),
        "--client", ":".join(WEB),
        "--client", f"{SERVICE[0]}:{SERVICE[1]}:",
    )
    yield issuer
    proc.terminate()
    proc.wait(timeout=15)


def test_a_service_gets_a_token_at_once(doorward):
    metadata = requests.get(doorward + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == doorward
    session = OAuth2Session(f"{SERVICE[0]}@clients", SERVICE[1])
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["access_token"]


def test_a_code_flow_as_the_flags_user(doorward):
    metadata = requests.get(doorward + "/.well-known/openid-configuration", timeout=10).json()
    client = OAuth2Session(f"{WEB[0]}@clients", WEB[1], redirect_uri=WEB[2], scope="openid profile",
                           code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                  code_verifier=verifier, nonce="n-0S6")
    browser = Browser(doorward)
    resp = browser.get(url)
    assert resp.status_code == 303
    page = browser.get(resp.headers["Location"])
    resp = browser.submit(page, find_form(page, "/login"), {"username": USER[0], "password": USER[1]})
    assert resp.status_code == 303
    consent = browser.get(resp.headers["Location"])
    form = find_form(consent, "/oauth/authorize")
    callback = browser.submit(consent, form, button=form.button(value="approve"))
    location = callback.headers["Location"]
    assert location.startswith(WEB[2]) and query_of(location)["state"] == state
    token = client.fetch_token(metadata["token_endpoint"], authorization_response=location,
                               code_verifier=verifier)
    userinfo = client.get(metadata["userinfo_endpoint"]).json()
    assert userinfo["preferred_username"] == USER[0] and token["id_token"]


def test_two_run_side_by_side_and_leave_nothing_on_disk(tmp_path):
    first, one = start(tmp_path, "--client", "only_here:only-secret-1:")
    second, two = start(tmp_path)
    try:
        assert one != two
        here = requests.post(one + "/oauth/token", auth=("only_here@clients", "only-secret-1"),
                             data={"grant_type": "client_credentials"}, timeout=10)
        there = requests.post(two + "/oauth/token", auth=("only_here@clients", "only-secret-1"),
                              data={"grant_type": "client_credentials"}, timeout=10)
        assert here.status_code == 200 and there.status_code == 401
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait(timeout=15)
    assert list(tmp_path.iterdir()) == [], "an ephemeral server writes nothing"


@pytest.mark.parametrize("flags,words", [
    (["--user", "no-colon"], "USERNAME:PASSWORD"),
    (["--client", "name-only"], "NAME:SECRET:REDIRECT_URI"),
    (["--client", "bad name:x:"], "NAME is letters"),
    (["--client", "short:tiny:"], "use at least 10"),
    (["--client", "web:web-secret-1:javascript:alert(1)"], "redirect"),
    (["--database", "sqlite::memory:"], "cannot be used with"),
])
def test_bad_flags_are_refused(tmp_path, flags, words):
    result = subprocess.run([str(doorward_bin()), "serve", "--ephemeral", *flags],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert words in result.stderr, result.stderr
