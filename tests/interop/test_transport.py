"""Connections, transport headers and keys at rest, against the real `doorward serve`.

Each test starts its own server with the default limits (`[server]` in the README): a request
head must arrive within 10 s (also the idle timeout of a kept-alive connection), request line
and headers are capped at 32 KiB, a body must arrive within 30 s, and the server accepts no
more connections than its open-file limit leaves room for. The assertions are about closure,
status codes and headers within generous deadlines, never about how fast.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import socket
import sqlite3
import stat
import subprocess
import time

import pytest
import requests

from helpers import DoorwardServer, doorward_bin, started

# Generous bounds over the 10 s header timeout and the 30 s body timeout.
CLOSE_DEADLINE_S = 40.0
BODY_DEADLINE_S = 60.0


def start(tmp_path, **kw) -> DoorwardServer:
    srv = started(DoorwardServer(doorward_bin(), tmp_path, **kw))
    return srv


def connect(srv: DoorwardServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.setblocking(False)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset); drains what it sent."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def wait_until_closed(socks: list[socket.socket], deadline_s: float, trickle: bool = False) -> int:
    """Waits until the server closed every socket or the deadline passed; returns how many are
    still open. With `trickle`, each open socket sends one more header byte a second (a
    slowloris keeps its connection busy that way)."""
    open_socks = list(socks)
    deadline = time.monotonic() + deadline_s
    while open_socks and time.monotonic() < deadline:
        readable, _, _ = select.select(open_socks, [], [], 1.0)
        for sock in readable:
            if closed_by_peer(sock):
                open_socks.remove(sock)
        if trickle:
            for sock in list(open_socks):
                try:
                    sock.send(b"a")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    open_socks.remove(sock)
    return len(open_socks)


def test_slow_headers_are_closed_while_the_server_answers_others(tmp_path):
    srv = start(tmp_path)
    socks = []
    try:
        for _ in range(50):
            sock = connect(srv)
            # An unfinished head: no blank line will ever come.
            sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000)
            socks.append(sock)
        answer = requests.get(srv.url("/.well-known/openid-configuration"), timeout=15)
        assert answer.status_code == 200, "the server must answer others during the attack"
        still_open = wait_until_closed(socks, CLOSE_DEADLINE_S, trickle=True)
        assert still_open == 0, f"{still_open} of 50 slow-header connections still open after {CLOSE_DEADLINE_S:.0f} s"
        assert requests.get(srv.url("/.well-known/openid-configuration"), timeout=15).status_code == 200
    finally:
        for sock in socks:
            sock.close()
        srv.stop()


def test_an_oversized_header_gets_431_and_the_connection_closes(tmp_path):
    srv = start(tmp_path)
    try:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        request = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed before it all went out: what matters is what was answered
        received = b""
        try:
            while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
                received += chunk
        except ConnectionResetError:
            pass
        sock.close()
        status_line = received.split(b"\r\n", 1)[0]
        assert received == b"" or status_line.startswith(b"HTTP/1.1 431"), status_line
        # A normal request still works.
        assert requests.get(srv.url("/login"), timeout=15).status_code == 200
    finally:
        srv.stop()


def test_a_body_that_never_arrives_is_answered_and_closed(tmp_path):
    srv = start(tmp_path)
    try:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=BODY_DEADLINE_S)
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            b"grant_type=authorization_code"
        )
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received:
                    break
        except socket.timeout:
            pytest.fail(f"no answer and no close {BODY_DEADLINE_S:.0f} s after a body stalled")
        except ConnectionResetError:
            pass
        sock.close()
        status_line = received.split(b"\r\n", 1)[0]
        assert received == b"" or status_line.startswith(b"HTTP/1.1 4"), status_line
    finally:
        srv.stop()


def test_idle_connections_under_a_low_open_file_limit_do_not_stop_the_server(tmp_path):
    """300 idle connections against a server limited to 256 open files: it keeps answering new
    clients once it has dropped the idle ones, and does not die of EMFILE."""

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        pytest.skip(f"this test needs 1024 open files in the test process (soft limit {soft})")
    srv = start(tmp_path, preexec_fn=low_limit)
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        answer = requests.get(srv.url("/.well-known/openid-configuration"), timeout=CLOSE_DEADLINE_S)
        assert answer.status_code == 200
        assert srv.proc.poll() is None, "the server must still run"
    except requests.exceptions.RequestException as e:
        pytest.fail(f"no answer within {CLOSE_DEADLINE_S:.0f} s with 300 idle connections: {e}")
    finally:
        for sock in socks:
            sock.close()
        srv.stop()


def test_hsts_when_the_external_uri_is_https_only(tmp_path):
    (tmp_path / "https").mkdir()
    (tmp_path / "http").mkdir()
    https = start(tmp_path / "https", external_uri="https://id.example")
    try:
        for path in ("/login", "/.well-known/openid-configuration", "/no-such-page"):
            resp = requests.get(https.url(path), timeout=15)
            assert resp.headers.get("Strict-Transport-Security") == "max-age=31536000", (path, resp.status_code)
    finally:
        https.stop()
    plain = start(tmp_path / "http")
    try:
        resp = requests.get(plain.url("/login"), timeout=15)
        assert "Strict-Transport-Security" not in resp.headers
    finally:
        plain.stop()


def test_the_request_log_names_the_client_address(tmp_path):
    srv = start(tmp_path)
    try:
        requests.get(srv.url("/login"), timeout=15)
        requests.get(srv.url("/login"), timeout=15)
    finally:
        srv.stop()
    served = [line for line in srv.stderr_lines if "served" in line and "/login" in line]
    assert served, srv.output()
    assert all("client=127.0.0.1" in line for line in served), served


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_key_file_are_private(tmp_path):
    db = tmp_path / "fresh.sqlite"
    srv = start(tmp_path, database=f"sqlite:{db}")
    try:
        assert requests.get(srv.url("/oauth/jwks"), timeout=15).status_code == 200
        files = [db, tmp_path / "fresh.sqlite-wal", tmp_path / "fresh.sqlite-shm",
                 tmp_path / "fresh.sqlite.key"]
        modes = {p.name: oct(mode_of(p)) for p in files if p.exists()}
        assert set(modes) >= {"fresh.sqlite", "fresh.sqlite.key"}, modes
        assert all(m == oct(0o600) for m in modes.values()), modes
    finally:
        srv.stop()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT private_key FROM signing_keys").fetchall()
        secret = conn.execute("SELECT value FROM server_secrets WHERE name = 'csrf'").fetchone()[0]
    assert stored and all(bytes(k).startswith(b"x1") for (k,) in stored), "keys sealed by default"
    assert bytes(secret).startswith(b"x1") and len(secret) == 74, "the server secret is sealed"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_plaintext_key_planted_under_encryption_is_refused(tmp_path):
    """With `keys.encryption_secret`, a private key stored in the clear (here planted by
    someone with write access to the database, as the newest active ES256 key) is never used:
    the server refuses to start and names `doorward keys seal`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    db = tmp_path / "sealed.sqlite"
    secret = "interop key encryption secret"
    start(tmp_path, database=f"sqlite:{db}", key_encryption_secret=secret).stop()

    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
           "y": b64url(numbers.y.to_bytes(32, "big")), "kid": "planted", "use": "sig",
           "alg": "ES256"}
    now = int(time.time())
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO signing_keys (kid, alg, generation, private_key, public_jwk, created_at,"
            " activate_at, remove_at) VALUES ('planted', 'ES256', 99, ?, ?, ?, ?, NULL)",
            (b"p1" + der, json.dumps(jwk), now - 60, now - 60),
        )
    again = DoorwardServer(doorward_bin(), tmp_path, database=f"sqlite:{db}",
                           key_encryption_secret=secret)
    try:
        again.start()
    except RuntimeError as e:
        message = str(e)
        assert "doorward keys seal" in message and "planted" in message, message
    else:
        try:
            kids = [k.get("kid") for k in requests.get(again.url("/oauth/jwks"), timeout=15).json()["keys"]]
        finally:
            again.stop()
        pytest.fail(f"the server started with a plaintext key planted under encryption (JWKS kids: {kids})")

    # The upgrade path: an operator who vouches for the rows in the clear seals them, once.
    seal = [str(doorward_bin()), "keys", "seal", "--config", str(again.config_path),
            "--database", f"sqlite:{db}"]
    out = subprocess.run(seal, capture_output=True, text=True, timeout=120, env=again.child_env())
    assert out.returncode == 0 and "sealed 1 signing keys" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(seal, capture_output=True, text=True, timeout=120, env=again.child_env())
    assert "sealed 0 signing keys" in out.stdout, out.stdout + out.stderr
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT private_key FROM signing_keys WHERE kid = 'planted'").fetchone()
    assert bytes(stored).startswith(b"x1")
    sealed = start(tmp_path, database=f"sqlite:{db}", key_encryption_secret=secret)
    try:
        kids = [k.get("kid") for k in requests.get(sealed.url("/oauth/jwks"), timeout=15).json()["keys"]]
        assert "planted" in kids, kids
    finally:
        sealed.stop()
