"""Two `doorward serve` processes on one PostgreSQL database, as behind a load balancer.

Each test module of this directory runs against the session server; this one starts its own pair
(A and B) on a fresh PostgreSQL schema, with one external URI (the issuer) as a load balancer
would give them. It needs `DOORWARD_TEST_POSTGRES_URL` (scripts/test.sh exports it) and runs in
the SQLite pass of the suite only (it restarts PostgreSQL, which the PostgreSQL pass uses). The
cluster it stops and starts is `DOORWARD_TEST_POSTGRES_CLUSTER` ("VERSION NAME", default
"15 main", the one scripts/test.sh starts).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from helpers import (
    psql,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Browser,
    DoorwardServer,
    auth_self,
    authorize_url,
    revoke,
    basic,
    describe,
    doorward_bin,
    find_form,
    http_session,
    json_of,
    query_of,
    token_request,
)

PG_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL")

pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="skipped: DOORWARD_TEST_POSTGRES_URL is not set"),
    pytest.mark.skipif(
        bool(os.environ.get("DOORWARD_INTEROP_DATABASE")),
        reason="runs in the SQLite pass only (it restarts PostgreSQL)",
    ),
]

AUTH = basic(CLIENT_ID, CLIENT_SECRET)
PG_CLUSTER = os.environ.get("DOORWARD_TEST_POSTGRES_CLUSTER", "15 main").split()


@pytest.fixture(scope="module")
def database():
    schema = f"instances_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    psql(f"DROP SCHEMA {schema} CASCADE")


def start_pair(tmp_path_factory, database: str) -> tuple[DoorwardServer, DoorwardServer]:
    # Doorward's default refresh grace window (10 s), unlike the shared server's 0.
    a = DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("instance-a"), database=database,
                       refresh_grace=None)
    b = DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("instance-b"), database=database,
                       external_uri=a.origin, refresh_grace=None)
    # Started together: both run the migrations, under PostgreSQL's advisory lock.
    errors: list[BaseException] = []

    def start_b():
        try:
            b.start()
        except BaseException as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=start_b)
    t.start()
    a.start()
    t.join()
    if errors:
        a.stop()
        raise errors[0]
    return a, b


@pytest.fixture(scope="module")
def pair(tmp_path_factory, database):
    a, b = start_pair(tmp_path_factory, database)
    yield a, b
    a.stop()
    b.stop()


def redeem(origin: str, code: str) -> requests.Response:
    return token_request(origin, auth=AUTH, form={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})


def mint_codes(server: DoorwardServer, count: int, user: str = "alice") -> list[str]:
    out = subprocess.run(
        [str(doorward_bin()), "dev", "mint-codes", "--config", str(server.config_path),
         "--database", server.database, "--user", user, str(count)],
        check=True, capture_output=True, text=True, timeout=120, env=server.child_env(),
    ).stdout.split()
    assert len(out) == count, out
    return out


def test_a_login_started_on_one_instance_finishes_on_the_other(pair):
    a, b = pair
    on_a, on_b = Browser(a.origin), Browser(b.origin)
    on_b.http = on_a.http  # one browser; the load balancer sends each request anywhere
    start = on_a.get(authorize_url(a.origin, state="lb"))
    assert start.status_code == 303, describe(start)
    next_url = parse_qs(urlsplit(start.headers["Location"]).query)["next"][0]
    on_b.login("alice", next_url=next_url)  # sign-in page and form on B, CSRF from the store
    consent = on_a.get(next_url)
    assert consent.status_code == 200, describe(consent)
    form = find_form(consent, "/oauth/authorize")
    # The consent form rendered by A is posted to B: the CSRF key and the session are shared.
    approved = on_b.post("/oauth/authorize", data=form.hidden + [("decision", "approve")])
    assert approved.status_code == 303, describe(approved)
    params = query_of(approved.headers["Location"])
    assert params["state"] == "lb" and params["iss"] == a.origin, params
    tokens = redeem(a.origin, params["code"])
    assert tokens.status_code == 200, describe(tokens)
    access = json_of(tokens)["access_token"]
    assert auth_self(b.origin, access).status_code == 200
    # The ID-token keys are shared too: both publish the same JWKS.
    jwks = [http_session().get(f"{s.origin}/oauth/jwks", timeout=10).json() for s in pair]
    assert jwks[0] == jwks[1] and jwks[0]["keys"], jwks


def test_one_code_sent_to_both_instances_is_redeemed_once(pair):
    a, b = pair
    codes = mint_codes(a, 1000)
    barrier_pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)

    def race(code: str) -> list[tuple[int, dict]]:
        start = threading.Barrier(2)

        def send(origin: str):
            start.wait(timeout=10)
            r = redeem(origin, code)
            return r.status_code, json_of(r)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as two:
            results = list(two.map(send, [a.origin, b.origin]))
        return results

    outcomes = list(barrier_pool.map(race, codes))
    barrier_pool.shutdown()
    for code, results in zip(codes, outcomes):
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 400], (code, results)
        error = next(body for status, body in results if status == 400)
        assert error["error"] == "invalid_grant", results


def test_one_refresh_token_sent_to_both_instances_gets_one_answer(pair):
    a, b = pair
    for code in mint_codes(a, 50):
        tokens = json_of(redeem(a.origin, code))
        start = threading.Barrier(2)

        def send(origin: str, refresh=tokens["refresh_token"]):
            start.wait(timeout=10)
            r = token_request(origin, auth=AUTH, form={
                "grant_type": "refresh_token", "refresh_token": refresh})
            return r.status_code, json_of(r)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as two:
            results = list(two.map(send, [a.origin, b.origin]))
        # The grace window: both get the same pair (one grant family, still alive).
        assert [status for status, _ in results] == [200, 200], results
        assert results[0][1]["refresh_token"] == results[1][1]["refresh_token"], results
        assert results[0][1]["access_token"] == results[1][1]["access_token"], results
        assert auth_self(b.origin, results[0][1]["access_token"]).status_code == 200


# The read cache's stated bound (`doorward_core::cache::STALENESS_BOUND`): a change committed by
# one instance is seen by the other within it. A request sent later than that after the
# revocation answered must be refused, however long the machine then takes to answer it.
CACHE_BOUND_S = 0.5


@pytest.mark.parametrize("revoked", ["access_token", "refresh_token"])
def test_a_revocation_through_one_instance_reaches_the_other_within_the_bound(pair, revoked):
    """Both instances answer bearer checks from memory once warm (the read cache). A revocation
    through A (the access token alone, or the refresh token: its whole family) is refused by A
    at once and by B within the bound, through PostgreSQL's notifications."""
    a, b = pair
    tokens = json_of(redeem(a.origin, mint_codes(a, 1)[0]))
    access = tokens["access_token"]
    for server in (a, b, a, b):  # the second round is answered from memory
        assert auth_self(server.origin, access).status_code == 200
    r = revoke(a.origin, tokens[revoked], auth=AUTH)
    assert r.status_code == 200, describe(r)
    revoked_at = time.monotonic()
    assert auth_self(a.origin, access).status_code == 401, "A refuses at once"
    while True:
        sent = time.monotonic() - revoked_at
        if auth_self(b.origin, access).status_code != 200:
            break
        assert sent < CACHE_BOUND_S, f"B accepted the token in a request sent {sent:.3f} s after the revocation"
        assert time.monotonic() - revoked_at < 10, "B still accepts the token"
        time.sleep(0.01)
    print(f"B refused the {revoked}'s access token {1000 * (time.monotonic() - revoked_at):.0f} ms after the revocation")


def test_tokens_answered_by_a_killed_instance_work_on_the_other(tmp_path_factory, database):
    a, b = start_pair(tmp_path_factory, database)
    try:
        codes = mint_codes(a, 40, user="bob")
        answered: list[dict] = []
        stop = threading.Event()

        def load():
            for code in codes:
                if stop.is_set():
                    return
                try:
                    r = redeem(a.origin, code)
                except requests.RequestException:
                    return  # A is gone
                if r.status_code == 200:
                    answered.append(json_of(r))

        t = threading.Thread(target=load)
        t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 10 and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(answered) >= 10, f"A answered {len(answered)} codes before the load ended or 60 s"
        os.kill(a.proc.pid, signal.SIGKILL)
        stop.set()
        t.join(timeout=30)
        assert answered, "A answered nothing before it was killed"
        for tokens in answered:
            assert auth_self(b.origin, tokens["access_token"]).status_code == 200
        # Every code stays single-use across the crash: none redeems twice.
        for code in codes:
            first = redeem(b.origin, code)
            assert first.status_code in (200, 400), describe(first)
            again = redeem(b.origin, code)
            assert again.status_code == 400 and json_of(again)["error"] == "invalid_grant"
    finally:
        a.stop()
        b.stop()


def pg_ctl(action: str) -> None:
    subprocess.run(["pg_ctlcluster", *PG_CLUSTER, action, *(["-m", "fast"] if action != "start" else [])],
                   check=True, timeout=120)


def test_a_database_restart_gives_503s_never_500s_and_service_resumes(pair):
    a, b = pair
    code = mint_codes(a, 1)[0]
    access = json_of(redeem(a.origin, code))["access_token"]
    # What the load threads saw, checked here: an assert in a thread is only a warning.
    answers: list[tuple[int, str | None]] = []
    failures: list[str] = []
    stop = threading.Event()

    plain = requests.Session  # no 5xx assertion hook: 503s are expected here

    def self_of(session: requests.Session, origin: str) -> requests.Response:
        return session.get(f"{origin}/api/v1/auth/self",
                           headers={"Authorization": f"Bearer {access}"}, timeout=15)

    def load(origin: str):
        s = plain()
        while not stop.is_set():
            try:
                r = self_of(s, origin)
            except requests.RequestException as e:
                failures.append(f"{origin} stopped answering: {e}")
                return
            answers.append((r.status_code, r.headers.get("Retry-After")))
            time.sleep(0.005)

    threads = [threading.Thread(target=load, args=(s.origin,)) for s in pair]
    for t in threads:
        t.start()
    poll = plain()
    down: list[requests.Response] = []
    try:
        deadline = time.monotonic() + 30
        while len(answers) < 10 and not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        # The database goes away: each instance answers 503 with Retry-After, never 500, once
        # its read cache stops answering (the bound: without a successful poll of the database,
        # it is not used).
        pg_ctl("stop")
        time.sleep(2 * CACHE_BOUND_S)
        down = [self_of(poll, server.origin) for server in pair]
    finally:
        pg_ctl("start")
    # Service resumes without restarting Doorward.
    resumed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if self_of(poll, a.origin).status_code == 200 and self_of(poll, b.origin).status_code == 200:
            resumed = True
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a load thread is stuck"
    assert not failures, failures
    for r in down:
        assert r.status_code == 503, describe(r)
        assert r.headers.get("Retry-After"), describe(r)
        assert r.json()["error"] == "temporarily_unavailable", describe(r)
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert all(retry for status, retry in answers if status == 503), "a 503 without Retry-After"
    assert statuses.count(200) > 0
    print(f"during the restart: {statuses.count(200)} × 200, {statuses.count(503)} × 503")
    assert resumed, "the instances did not answer 200 again within 30 s of the restart"
    assert auth_self(a.origin, access).status_code == 200
    assert auth_self(b.origin, access).status_code == 200
