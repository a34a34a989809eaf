"""Attackers who keep trying (issue 17), against the real `doorward serve`.

- Online password guessing at `POST /login` is throttled per account (RFC 6819 §4.4.3.6): after
  5 wrong passwords the form comes back with 429, `Retry-After` and the wait in words, even for
  the right password; an unknown username gets exactly the same answers.
- A flood of wrong passwords from one address cannot keep everyone else from signing in: each
  address holds a bounded share of the Argon2 queue (and is locked out after 100 failures).
- Wrong client secrets are counted per client even once the right one is cached: past 10, the
  client gets 429 `slow_down` with `Retry-After` (RFC 6749 §10.10).

The server learns the peer address from its socket (axum `ConnectInfo`); the tests bind their
client sockets to other loopback addresses (Linux accepts any 127.x.y.z) to play several
clients. This module runs its own server, with users and a client of its own named per run, so
that its counters (kept in the store, which the PostgreSQL variant shares) never touch the other
modules' accounts and clients.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from helpers import DoorwardServer, basic, describe, doorward_bin, find_form, json_of, started

RUN = secrets.token_hex(3)
PASSWORD = "correct horse battery"
VICTIM = f"thr{RUN}victim"
VICTIM2 = f"thr{RUN}victim2"
GENUINE = [f"thr{RUN}user{i}" for i in range(10)]
CLIENT = f"thr{RUN}"
CLIENT_ID = f"{CLIENT}@clients"
CLIENT_SECRET = "throttle_secret_0123"
# Two clients nobody authenticates before the cold-cache flood test.
FLOODED_CLIENT = f"thr{RUN}flooded"
QUIET_CLIENT = f"thr{RUN}quiet"
TIMEOUT_S = 120


def _address(last: int) -> str:
    """A loopback address of this run: 127.<run>.<run>.<last>."""
    a, b = int(RUN[:2], 16), int(RUN[2:4], 16)
    return f"127.{a}.{b}.{last}"


FLOODER = _address(2)
GENUINE_FROM = [_address(3 + i) for i in range(len(GENUINE))]
GUESSER = _address(20)
UNKNOWN_GUESSER = _address(21)
CLIENT_GUESSER = _address(22)


def _extra_config() -> str:
    lines = [
        f"[clients.{CLIENT}]",
        'display_name = "Throttle Test App"',
        'app_uri = "http://localhost:8099"',
        'callback_uri = "http://localhost:8099/oauth/callback"',
        f'secret = "{CLIENT_SECRET}"',
        "",
    ]
    for name in [FLOODED_CLIENT, QUIET_CLIENT]:
        lines += [
            f"[clients.{name}]",
            f'display_name = "{name}"',
            'app_uri = "http://localhost:8099"',
            'callback_uri = "http://localhost:8099/oauth/callback"',
            f'secret = "{CLIENT_SECRET}"',
            "",
        ]
    for username in [VICTIM, VICTIM2, *GENUINE]:
        lines += [
            f"[seed.user.{username}]",
            f'username = "{username}"',
            f'password = "{PASSWORD}"',
            "",
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def throttle_origin(tmp_path_factory) -> str:
    srv = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("throttle"), extra_config=_extra_config()))
    yield srv.origin
    srv.stop()


class _BoundAdapter(HTTPAdapter):
    """Connections from one source address."""

    def __init__(self, source: str):
        self._source = source
        super().__init__(pool_connections=1, pool_maxsize=64)

    def init_poolmanager(self, connections, maxsize, block=False, **kw):
        kw["source_address"] = (self._source, 0)
        super().init_poolmanager(connections, maxsize, block=block, **kw)


def session_from(source: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", _BoundAdapter(source))
    return s


def sign_in(http: requests.Session, origin: str, username: str, password: str) -> requests.Response:
    """GET /login then POST it (a fresh CSRF token each time), redirects not followed."""
    page = http.get(f"{origin}/login", allow_redirects=False, timeout=TIMEOUT_S)
    assert page.status_code == 200, describe(page)
    form = find_form(page, "/login")
    data = list(form.hidden) + [("username", username), ("password", password)]
    return http.post(f"{origin}/login", data=data, allow_redirects=False, timeout=TIMEOUT_S)


def _guess_twenty_then_the_right_one(origin: str, source: str, username: str) -> list[requests.Response]:
    http = session_from(source)
    answers = [sign_in(http, origin, username, f"wrong-{i}") for i in range(20)]
    answers.append(sign_in(http, origin, username, PASSWORD))
    return answers


def _assert_throttled_page(resp: requests.Response) -> None:
    assert resp.status_code == 429, describe(resp)
    retry_after = resp.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 30, describe(resp)
    assert "no-store" in resp.headers.get("Cache-Control", ""), describe(resp)
    assert re.search(r"Too many failed sign-ins\. Try again in \d+ seconds?\.", resp.text), describe(resp)
    assert "dw_session" not in resp.cookies
    find_form(resp, "/login")  # the form is shown again


def test_twenty_wrong_passwords_then_the_right_one_is_refused_with_429(throttle_origin):
    answers = _guess_twenty_then_the_right_one(throttle_origin, GUESSER, VICTIM)
    statuses = [r.status_code for r in answers]
    assert statuses == [401] * 5 + [429] * 16, statuses
    for resp in answers[5:]:
        _assert_throttled_page(resp)


def test_an_unknown_username_gets_the_same_answers(throttle_origin):
    known = [r.status_code for r in _guess_twenty_then_the_right_one(throttle_origin, _address(23), VICTIM2)]
    unknown = _guess_twenty_then_the_right_one(throttle_origin, UNKNOWN_GUESSER, f"thr{RUN}nobody")
    assert [r.status_code for r in unknown] == known, ([r.status_code for r in unknown], known)
    for resp in unknown[5:]:
        _assert_throttled_page(resp)


def test_a_flood_from_one_address_does_not_block_other_sign_ins(throttle_origin):
    stop = threading.Event()
    flood_answers: list[int] = []
    lock = threading.Lock()

    def flood() -> None:
        http = session_from(FLOODER)
        page = http.get(f"{throttle_origin}/login", timeout=TIMEOUT_S)
        hidden = list(find_form(page, "/login").hidden)
        while not stop.is_set():
            data = hidden + [("username", f"thr{RUN}x{secrets.token_hex(4)}"), ("password", "guess")]
            try:
                resp = http.post(f"{throttle_origin}/login", data=data, allow_redirects=False, timeout=TIMEOUT_S)
            except requests.RequestException:
                continue
            with lock:
                flood_answers.append(resp.status_code)

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(48)]
    for t in flooders:
        t.start()
    # The flood is under way once a few dozen of its requests were answered.
    deadline = time.monotonic() + 60
    while len(flood_answers) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    results: dict[str, requests.Response | Exception] = {}

    def genuine(username: str, source: str) -> None:
        try:
            results[username] = sign_in(session_from(source), throttle_origin, username, PASSWORD)
        except requests.RequestException as e:
            results[username] = e

    users = [threading.Thread(target=genuine, args=pair) for pair in zip(GENUINE, GENUINE_FROM)]
    try:
        for t in users:
            t.start()
        for t in users:
            t.join(TIMEOUT_S + 10)
    finally:
        stop.set()
        for t in flooders:
            t.join(TIMEOUT_S + 10)
    assert len(flood_answers) >= 40, f"the flood never got going: {len(flood_answers)} answers"
    served = {u: r for u, r in results.items() if isinstance(r, requests.Response) and r.status_code == 303}
    refused = {
        u: (r.status_code if isinstance(r, requests.Response) else repr(r))
        for u, r in results.items()
        if u not in served
    }
    assert len(served) == len(GENUINE), f"genuine sign-ins refused during the flood: {refused}"
    assert set(flood_answers) <= {401, 429, 503}, sorted(set(flood_answers))


def test_wrong_client_secrets_get_429_after_the_limit(throttle_origin):
    http = session_from(CLIENT_GUESSER)

    def token(secret: str) -> requests.Response:
        return http.post(
            f"{throttle_origin}/oauth/token",
            data={"grant_type": "authorization_code", "code": "dwc_nothing", "redirect_uri": "http://localhost:8099/oauth/callback"},
            headers={"Authorization": basic(CLIENT_ID, secret)},
            timeout=TIMEOUT_S,
        )

    # The right secret, so that it is cached and wrong guesses cost no Argon2.
    warm = token(CLIENT_SECRET)
    assert warm.status_code == 400 and json_of(warm)["error"] == "invalid_grant", describe(warm)
    answers = [token(f"guess-{i}") for i in range(30)]
    statuses = [r.status_code for r in answers]
    assert statuses == [401] * 10 + [429] * 20, statuses
    for resp in answers[10:] + [token(CLIENT_SECRET)]:
        assert resp.status_code == 429, describe(resp)
        assert json_of(resp)["error"] == "slow_down", describe(resp)
        retry_after = resp.headers.get("Retry-After", "")
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 10, describe(resp)
        assert "no-store" in resp.headers.get("Cache-Control", ""), describe(resp)


def test_a_flood_of_wrong_client_secrets_on_a_cold_cache_does_not_block_other_clients(throttle_origin):
    """Right after a start no secret is cached, so every wrong secret costs an Argon2 run; a flood of
    them from one address must not fill the queue for everyone else's token requests."""
    stop = threading.Event()
    flood_answers: list[int] = []
    lock = threading.Lock()

    def token(http: requests.Session, client: str, secret: str) -> requests.Response:
        return http.post(
            f"{throttle_origin}/oauth/token",
            data={"grant_type": "authorization_code", "code": "dwc_nothing"},
            headers={"Authorization": basic(f"{client}@clients", secret)},
            timeout=TIMEOUT_S,
        )

    def flood() -> None:
        http = session_from(_address(30))
        while not stop.is_set():
            try:
                status = token(http, FLOODED_CLIENT, f"guess-{secrets.token_hex(4)}").status_code
            except requests.RequestException:
                continue
            with lock:
                flood_answers.append(status)

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(48)]
    for t in flooders:
        t.start()
    deadline = time.monotonic() + 60
    while len(flood_answers) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    results: dict[int, requests.Response | Exception] = {}

    def quiet(i: int) -> None:
        try:
            results[i] = token(session_from(_address(31 + i)), QUIET_CLIENT, CLIENT_SECRET)
        except requests.RequestException as e:
            results[i] = e

    askers = [threading.Thread(target=quiet, args=(i,)) for i in range(10)]
    try:
        for t in askers:
            t.start()
        for t in askers:
            t.join(TIMEOUT_S + 10)
    finally:
        stop.set()
        for t in flooders:
            t.join(TIMEOUT_S + 10)
    assert len(flood_answers) >= 40, f"the flood never got going: {len(flood_answers)} answers"
    answers = {
        i: (f"{r.status_code} {r.text[:80]}" if isinstance(r, requests.Response) else repr(r))
        for i, r in results.items()
    }
    authenticated = [r for r in results.values() if isinstance(r, requests.Response) and r.status_code == 400
                     and json_of(r).get("error") == "invalid_grant"]
    assert len(authenticated) == 10, f"the quiet client's requests during the flood: {answers}"
