"""Operating `doorward serve`: `/healthz` and `/readyz` on both listeners, `/metrics` on its own
listener only, parsed by prometheus_client's OpenMetrics and Prometheus text parsers after real
traffic; `/readyz` says 503 when the store fails (PostgreSQL: its schema dropped under the
server); SIGTERM lets a request in flight finish, accepts no new connection, and writes the
audit events of the last requests before the process exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

from helpers import (
    psql,
    Browser,
    DoorwardServer,
    assert_token_response,
    authorize_as,
    authorize_url,
    basic,
    doorward_bin,
    find_form,
    token_request,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
)

PG_URL = os.environ.get("DOORWARD_TEST_POSTGRES_URL")


@pytest.fixture
def server(tmp_path):
    server = DoorwardServer(doorward_bin(), tmp_path, database=f"sqlite:{tmp_path / 'ops.sqlite'}")
    server.start()
    yield server
    server.stop()


def samples(text: str) -> dict[tuple, float]:
    """Every sample of the exposition, by (name, sorted labels)."""
    found = {}
    for family in openmetrics_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_health_and_metrics_after_real_traffic(server):
    ops = server.metrics_origin
    assert ops != server.origin
    for origin in (server.origin, ops):
        r = requests.get(origin + "/healthz", timeout=10)
        assert r.status_code == 200 and r.text == "ok\n"
        r = requests.get(origin + "/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "checks": {"store": "ok", "keys": "ok"}}
        assert r.headers["Cache-Control"] == "no-store"
    assert requests.get(server.origin + "/metrics", timeout=10).status_code == 404, \
        "metrics are not on the public listener"

    # Traffic: a failed and a good sign-in, a code flow, a refused token request, an unknown path.
    browser = Browser(server.origin)
    page = browser.get("/login?next=/account")
    bad = browser.submit(page, find_form(page, "/login"), {"username": "alice", "password": "wrong"})
    assert bad.status_code == 401
    result = authorize_as(browser, authorize_url(server.origin), "alice")
    assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))
    assert token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": "dwc_forged"}).status_code == 400
    secret_path = f"/nowhere/{uuid.uuid4().hex}"
    assert requests.get(server.origin + secret_path, timeout=10).status_code == 404

    r = requests.get(ops + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    text = r.text
    # Both parsers read it: OpenMetrics (strict, needs `# EOF`) and the classic text format.
    found = samples(text)
    classic = {f.name for f in prometheus_families(text)}
    assert "doorward_http_requests" in classic or "doorward_http_requests_total" in classic

    def value(name, **labels):
        return found.get((name, tuple(sorted(labels.items()))))

    assert value("doorward_http_requests_total", route="/oauth/token", method="POST", status="200") >= 1
    assert value("doorward_http_requests_total", route="/oauth/token", method="POST", status="400") >= 1
    assert value("doorward_http_requests_total", route="/login", method="POST", status="401") == 1
    assert value("doorward_http_requests_total", route="unmatched", method="GET", status="404") >= 1
    assert secret_path not in text, "a request's path never becomes a label"
    assert value("doorward_http_request_duration_seconds_count", route="/oauth/token") >= 2
    assert value("doorward_http_request_duration_seconds_bucket", route="/oauth/token", le="+Inf") >= 2
    assert value("doorward_tokens_issued_total", grant_type="authorization_code") == 1
    assert value("doorward_sign_in_failures_total", reason="password") == 1
    assert value("doorward_events_total", kind="sign_in.succeeded") == 1
    assert value("doorward_events_total", kind="token.refused") >= 1
    assert value("doorward_argon2_running") == 0
    assert value("doorward_audit_events_dropped_total", queue="audit") == 0
    assert value("doorward_internal_errors_total", **{"class": "store_failure"}) == 0
    assert value("doorward_store_connections", state="idle") >= 1
    assert value("doorward_store_connections_max") == 5
    assert value("doorward_build_info", version=next(
        dict(k)["version"] for (n, k) in found if n == "doorward_build_info")) == 1


@pytest.mark.skipif(not PG_URL, reason="skipped: DOORWARD_TEST_POSTGRES_URL is not set")
def test_readyz_says_when_the_store_fails(tmp_path):
    schema = f"ops_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE SCHEMA {schema}")
    database = f"{PG_URL}?options=-csearch_path%3D{schema}"
    server = DoorwardServer(doorward_bin(), tmp_path, database=database)
    server.start()
    try:
        assert requests.get(server.origin + "/readyz", timeout=10).status_code == 200
        psql(f"DROP SCHEMA {schema} CASCADE")
        r = requests.get(server.metrics_origin + "/readyz", timeout=10)
        assert r.status_code == 503, r.text
        assert r.json() == {"status": "unready", "checks": {"store": "failing", "keys": "ok"}}
        assert requests.get(server.origin + "/healthz", timeout=10).status_code == 200, \
            "alive, even when not ready"
        # A request that needs the store is a 500, counted.
        # (plain requests: the helpers' session refuses a 5xx)
        r = requests.post(server.origin + "/oauth/token", timeout=10,
                          headers={"Authorization": basic(CLIENT_ID, CLIENT_SECRET)},
                          data={"grant_type": "authorization_code", "code": "dwc_x",
                                "redirect_uri": REDIRECT_URI})
        assert r.status_code == 500 and "failing" not in r.text
        found = samples(requests.get(server.metrics_origin + "/metrics", timeout=10).text)
        assert found[("doorward_internal_errors_total", (("class", "store_failure"),))] >= 1
    finally:
        server.stop()
        psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(server):
    # Half a token request: its head and part of its body.
    body = urlencode({"grant_type": "client_credentials"}).encode()
    head = (f"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: {basic(CLIENT_ID, CLIENT_SECRET)}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    conn.sendall(head + body[:5])
    # Time for the server to accept the connection and read the head (a connection it has not
    # read from yet is idle, and a graceful shutdown closes idle connections).
    time.sleep(2)
    server.proc.send_signal(signal.SIGTERM)
    # The server is stopping: new connections are refused (soon: the signal is handled on
    # the server's own time).
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        except OSError:
            break
        assert time.monotonic() < deadline, "the server still accepts connections 10 s after SIGTERM"
        time.sleep(0.05)
    # The request in flight gets its answer.
    conn.sendall(body[5:])
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    conn.close()
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    payload = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "access_token" in payload or payload.get("error") == "unauthorized_client", payload
    assert server.proc.wait(timeout=15) == 0
    assert any("shutting down" in line for line in server.stderr_lines)
    # The audit event of that last request was written before the exit.
    database = server.command[server.command.index("--database") + 1]
    out = subprocess.run(
        [str(doorward_bin()), "events", "--json", "--kind", "token.", "--config",
         str(server.config_path), "--database", database],
        capture_output=True, text=True, timeout=60, env=server.child_env(), cwd=server.workdir)
    assert out.returncode == 0, out.stderr
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    assert kinds and kinds[-1] in ("token.issued", "token.refused"), kinds
