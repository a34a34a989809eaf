"""kill -9 during code redemptions: no answered token is lost, no code is spent twice.

The SQLite store commits redemptions in groups (crates/doorward-store/src/sqlite/batch.rs) and
answers only after the group's COMMIT; PostgreSQL commits each. This test holds either to it
with a real crash: a server on its own database (a SQLite file, or a fresh PostgreSQL schema in
the PostgreSQL pass) redeems minted codes from many threads, a third of them presented twice at
once, and is killed with SIGKILL while they run. Restarted on the same database:

- every access token answered before the kill for a code presented once is active
  (introspection), and its refresh token works (a code presented twice has its tokens revoked
  by the second presentation, RFC 6749 §4.1.2);
- no code was answered twice, and every code that was answered is refused now (`invalid_grant`);
- a code whose requests got no answer is either spent (its tokens were committed, the answer
  lost with the process) or still redeemable once, never both.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    DoorwardServer,
    basic,
    doorward_bin,
    introspect,
    psql,
)

AUTH = basic(CLIENT_ID, CLIENT_SECRET)
CODES = 1500
THREADS = 24
PG_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL")


@pytest.fixture
def database(tmp_path):
    """This test's own database: a fresh schema in the PostgreSQL pass, else a SQLite file."""
    if os.environ.get("DOORWARD_INTEROP_DATABASE") and PG_URL:
        schema = f"crash_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE SCHEMA {schema}")
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
        psql(f"DROP SCHEMA {schema} CASCADE")
    else:
        yield f"sqlite:{tmp_path / 'crash.sqlite'}"


def mint_codes(server: DoorwardServer, count: int) -> list[str]:
    out = subprocess.run(
        [str(server.binary), "dev", "mint-codes", "--config", str(server.config_path),
         "--database", server.command[-1], "--client", CLIENT_ID, "--user", "alice", str(count)],
        env=server.child_env(), capture_output=True, text=True, timeout=120, check=True,
    )
    codes = out.stdout.split()
    assert len(codes) == count, out.stderr
    return codes


def redeem(origin: str, code: str) -> requests.Response:
    return requests.post(
        f"{origin}/oauth/token",
        headers={"Authorization": AUTH},
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        timeout=10,
    )


def test_kill_9_during_redemptions_loses_no_answered_token_and_spends_no_code_twice(
    tmp_path, database
):
    server = DoorwardServer(doorward_bin(), tmp_path, database=database)
    server.start()
    codes = mint_codes(server, CODES)
    # One client authentication first, so that the secret is verified (Argon2) once.
    assert introspect(server.origin, "warm-up", AUTH).status_code == 200
    answers: dict[str, list[dict]] = {code: [] for code in codes}
    unanswered: set[str] = set()
    lock = threading.Lock()
    killed = threading.Event()
    origin = server.origin

    def present(code: str) -> None:
        if killed.is_set():
            with lock:
                unanswered.add(code)
            return
        try:
            resp = redeem(origin, code)
            # The fair Argon2 queue may shed a request while the secret is checked for the
            # first time (503 temporarily_unavailable): a client retries.
            for _ in range(20):
                if resp.status_code != 503 or killed.is_set():
                    break
                time.sleep(0.05)
                resp = redeem(origin, code)
        except requests.RequestException:
            with lock:
                unanswered.add(code)
            return
        if resp.status_code == 503:
            with lock:
                unanswered.add(code)
            return
        assert resp.status_code < 500, resp.text
        if resp.status_code == 200:
            with lock:
                answers[code].append(resp.json())
        else:
            assert resp.json()["error"] == "invalid_grant", resp.text

    # A third of the codes twice, the two presentations side by side in the queue.
    doubled = set(codes[::3])
    work = [c for code in codes for c in ([code, code] if code in doubled else [code])]
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(present, code) for code in work]
        # Kill once a good part has been answered, while the rest is in flight.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                done = sum(1 for a in answers.values() if a)
            if done >= CODES // 3:
                break
            time.sleep(0.01)
        os.kill(server.proc.pid, signal.SIGKILL)
        killed.set()
        for f in futures:
            f.result()
    server.proc.wait(timeout=10)

    answered = {code: a for code, a in answers.items() if a}
    assert len(answered) >= CODES // 3, "the kill came before enough answers"
    twice = [code for code, a in answered.items() if len(a) > 1]
    assert not twice, f"{len(twice)} codes were answered twice"

    # The same database, a new process.
    restarted = DoorwardServer(doorward_bin(), tmp_path, database=database)
    restarted.start()
    try:
        once = {code: body for code, (body,) in answered.items() if code not in doubled}
        assert once, "no code presented once was answered"
        for body in once.values():
            resp = introspect(restarted.origin, body["access_token"], AUTH)
            assert resp.status_code == 200 and resp.json().get("active") is True, (
                f"an answered token was lost: {resp.text}"
            )
        # A sample of refresh tokens works (each use rotates one family; a sample is enough).
        for body in list(once.values())[:50]:
            resp = requests.post(
                f"{restarted.origin}/oauth/token",
                headers={"Authorization": AUTH},
                data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
        for code in answered:
            again = redeem(restarted.origin, code)
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant", (
                f"an answered code was redeemable again: {again.text}"
            )
        # Codes in flight at the kill: spent with their tokens kept, or not spent at all.
        outcomes = {"spent": 0, "redeemable": 0}
        for code in unanswered - answered.keys():
            resp = redeem(restarted.origin, code)
            if resp.status_code == 200:
                outcomes["redeemable"] += 1
                second = redeem(restarted.origin, code)
                assert second.status_code == 400, second.text
            else:
                assert resp.json()["error"] == "invalid_grant", resp.text
                outcomes["spent"] += 1
        print(f"answered {len(answered)}, in flight at the kill: {outcomes}")
    finally:
        restarted.stop()
