"""Attackers who keep trying, measured against a `doorward serve` binary (issue 17).

    .venv/bin/python bench/throttle.py BINARY

Starts BINARY with config/dev.toml (user1 / 1234567891, python_client@clients / dev_secret) on a
free port and a fresh SQLite file, then prints:

1. wrong passwords per second answered as wrong (401: the password was checked) for one account,
   4 clients for 30 s, and what else they got;
2. genuine sign-ins of user1 served out of 10 (each from its own loopback address) while 48
   threads send wrong passwords (a new username each) from 127.0.0.2;
3. wrong client secrets per second answered as wrong (401) once the right one is cached, 4
   clients for 10 s.

Each measurement runs on a fresh server. Linux only (binds 127.x.y.z source addresses).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent


class Bound(HTTPAdapter):
    def __init__(self, source: str):
        self.source = source
        super().__init__(pool_connections=1, pool_maxsize=64)

    def init_poolmanager(self, connections, maxsize, block=False, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(connections, maxsize, block=block, **kw)


def session(source: str = "127.0.0.1") -> requests.Session:
    s = requests.Session()
    s.mount("http://", Bound(source))
    return s


def serve(binary: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = Path(tempfile.mkdtemp()) / "db.sqlite"
    proc = subprocess.Popen(
        [binary, "serve", "--config", str(ROOT / "config/dev.toml"), "--listen", f"127.0.0.1:{port}",
         "--external-uri", f"http://127.0.0.1:{port}", "--database", f"sqlite:{db}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RUST_LOG": "warn"})
    for line in proc.stdout:
        if "listening on" in line:
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, f"http://127.0.0.1:{port}"


def csrf_form(http: requests.Session, origin: str) -> list[tuple[str, str]]:
    page = http.get(f"{origin}/login", timeout=60).text
    value = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return [("csrf", value), ("next", "/account")]


def in_threads(n: int, seconds: float, work) -> Counter:
    counts: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(i: int):
        state = {}
        while time.monotonic() < deadline:
            try:
                status = work(i, state)
            except requests.RequestException as e:
                status = type(e).__name__
            with lock:
                counts[status] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def wrong_passwords(origin: str) -> None:
    def guess(i, state):
        if "http" not in state:
            state["http"] = session()
            state["form"] = csrf_form(state["http"], origin)
        data = state["form"] + [("username", "user1"), ("password", f"guess{time.monotonic_ns()}")]
        return state["http"].post(f"{origin}/login", data=data, allow_redirects=False, timeout=60).status_code

    counts = in_threads(4, 30, guess)
    print(f"1. wrong passwords for user1, 30 s: {counts[401] / 30:.1f}/s answered 401 (checked); all answers {dict(counts)}")
    http = session()
    right = http.post(f"{origin}/login", data=csrf_form(http, origin) + [("username", "user1"), ("password", "1234567891")],
                      allow_redirects=False, timeout=60)
    print(f"   then the right password: {right.status_code} Retry-After={right.headers.get('Retry-After')}")


def flood(origin: str) -> None:
    stop = threading.Event()
    flood_counts: Counter = Counter()
    lock = threading.Lock()

    def attacker():
        http = session("127.0.0.2")
        form = csrf_form(http, origin)
        while not stop.is_set():
            data = form + [("username", f"u{time.monotonic_ns()}"), ("password", "guess")]
            try:
                status = http.post(f"{origin}/login", data=data, allow_redirects=False, timeout=60).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            with lock:
                flood_counts[status] += 1

    attackers = [threading.Thread(target=attacker, daemon=True) for _ in range(48)]
    for t in attackers:
        t.start()
    time.sleep(2)
    results = {}

    def genuine(i):
        http = session(f"127.0.0.{3 + i}")
        try:
            data = csrf_form(http, origin) + [("username", "user1"), ("password", "1234567891")]
            results[i] = http.post(f"{origin}/login", data=data, allow_redirects=False, timeout=60).status_code
        except requests.RequestException as e:
            results[i] = type(e).__name__

    users = [threading.Thread(target=genuine, args=(i,)) for i in range(10)]
    for t in users:
        t.start()
    for t in users:
        t.join()
    stop.set()
    for t in attackers:
        t.join()
    served = sum(1 for s in results.values() if s == 303)
    print(f"2. genuine sign-ins of user1 from 10 other addresses during a flood of wrong passwords "
          f"(a new username each) from 127.0.0.2: {served}/10 served; theirs {dict(Counter(results.values()))}; the flood's {dict(flood_counts)}")


def wrong_secrets(origin: str) -> None:
    def token(secret):
        return requests.post(f"{origin}/oauth/token", data={"grant_type": "authorization_code", "code": "dwc_x"},
                             auth=("python_client@clients", secret), timeout=60)

    warm = token("dev_secret")
    assert warm.status_code == 400, warm.text
    counts = in_threads(4, 10, lambda i, state: token(f"guess{time.monotonic_ns()}").status_code)
    print(f"3. wrong client secrets after a warm cache, 10 s: {counts[401] / 10:.1f}/s answered 401; all answers {dict(counts)}")


def main() -> None:
    binary = sys.argv[1]
    for measure in (wrong_passwords, flood, wrong_secrets):
        proc, origin = serve(binary)
        try:
            measure(origin)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
