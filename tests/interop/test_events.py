"""The audit trail of a running `doorward serve`, on SQLite and on PostgreSQL: sign-ins (with
the client's address; a failure names the account only when it exists), consent, tokens
issued, refused and revoked, a refresh replay, and admin changes from the command line (with
the operating-system user as actor) are read back with `doorward events --json`, filtered by
kind and user, followed live with `--follow`, and copied as JSON lines to the server's stderr
(`[audit] stderr = true`). No password, token or code is ever written.
"""

from __future__ import annotations

import json
import select
import subprocess
import time

import pytest

from helpers import (
    database_for,
    doorward_cli,
    Browser,
    DoorwardServer,
    assert_token_response,
    authorize_as,
    authorize_url,
    basic,
    doorward_bin,
    find_form,
    revoke,
    token_request,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    USERS,
)

AUDIT_CONFIG = """
[audit]
stderr = true
retention_days = 30
"""
PASSWORD = "events passphrase for gwen"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    database = database_for(request, tmp_path, "events")
    server = DoorwardServer(doorward_bin(), tmp_path, database=database, extra_config=AUDIT_CONFIG)
    server.start()
    yield server
    server.stop()


def doorward(server: DoorwardServer, *args: str, stdin: str = "", user: str = "auditor") -> subprocess.CompletedProcess:
    # The actor of the command line's changes is the operating-system user.
    server.extra_env["USER"] = user
    return doorward_cli(server, *args, stdin=stdin)


def events(server, *args: str) -> list[dict]:
    limit = () if "--limit" in args else ("--limit", "1000")
    result = doorward(server, "events", "--json", *limit, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait_for(server, kind: str, count: int = 1, *args: str) -> list[dict]:
    """The events, once `count` of `kind` are stored (the writer batches them)."""
    deadline = time.monotonic() + 15
    while True:
        found = events(server, *args)
        if sum(1 for e in found if e["kind"] == kind) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def sign_in(server, username: str, password: str):
    browser = Browser(server.origin)
    page = browser.get("/login?next=/account")
    return browser, browser.submit(page, find_form(page, "/login"), {"username": username, "password": password})


def test_the_trail_records_sign_ins_tokens_replays_and_admin_changes(server):
    added = doorward(server, "users", "add", "gwen", "--password-stdin", "--json", stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    gwen = json.loads(added.stdout)["id"]
    assert sign_in(server, "gwen", "a wrong password entirely")[1].status_code == 401
    assert sign_in(server, "nobody-at-all", "whatever it is here")[1].status_code == 401
    browser, resp = sign_in(server, "gwen", PASSWORD)
    assert resp.status_code == 303
    result = authorize_as(browser, authorize_url(server.origin), "gwen")
    tokens = assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))
    # The same code again: refused, and its family revoked.
    replay = token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI})
    assert replay.status_code == 400
    # A second grant: refreshed, the spent refresh token replayed, then a token revoked.
    result = authorize_as(browser, authorize_url(server.origin), "gwen")
    second = assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "authorization_code", "code": result.code, "redirect_uri": REDIRECT_URI}))
    refreshed = assert_token_response(token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]}))
    again = token_request(server.origin, auth=basic(CLIENT_ID, CLIENT_SECRET), form={
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert again.status_code == 400
    assert revoke(server.origin, refreshed["access_token"], basic(CLIENT_ID, CLIENT_SECRET)).status_code == 200
    bad = token_request(server.origin, auth=basic(CLIENT_ID, "not-the-secret"), form={
        "grant_type": "client_credentials"})
    assert bad.status_code == 401
    assert doorward(server, "users", "disable", "gwen").returncode == 0

    trail = wait_for(server, "token.revoked")
    trail = wait_for(server, "token.refused", 3)
    kinds = [e["kind"] for e in trail]
    for kind in ("admin.user.created", "sign_in.failed", "sign_in.succeeded", "consent.given",
                 "token.issued", "token.code_replayed", "token.refresh_replayed", "token.refused",
                 "token.revoked", "admin.user.disabled"):
        assert kind in kinds, (kind, kinds)
    ids = [e["id"] for e in trail]
    assert ids == sorted(ids), "oldest first, increasing ids"

    created = next(e for e in trail if e["kind"] == "admin.user.created")
    assert created["actor"] == "cli:auditor" and created["user_id"] == gwen
    failed = [e for e in trail if e["kind"] == "sign_in.failed"]
    assert [e["user_id"] for e in failed] == [gwen, None], "an unknown name is not recorded"
    assert all(e["address"] == "127.0.0.1" for e in failed)
    signed_in = next(e for e in trail if e["kind"] == "sign_in.succeeded")
    assert signed_in["user_id"] == gwen and signed_in["detail"]["amr"] == ["pwd"]
    issued = [e for e in trail if e["kind"] == "token.issued"]
    assert {e["detail"]["grant_type"] for e in issued} == {"authorization_code", "refresh_token"}
    assert all(e["user_id"] == gwen and e["client_id"] for e in issued)
    refused = [e["detail"] for e in trail if e["kind"] == "token.refused"]
    assert {"error": "invalid_client", "grant_type": "client_credentials",
            "client_id": CLIENT_ID} in refused, refused
    assert any(d["error"] == "invalid_grant" for d in refused)

    # Nothing secret is in the trail.
    text = json.dumps(trail)
    for secret in (PASSWORD, "a wrong password entirely", "nobody-at-all", result.code,
                   tokens["access_token"], tokens["refresh_token"], second["refresh_token"],
                   refreshed["access_token"], "not-the-secret", CLIENT_SECRET):
        assert secret not in text, secret

    # Filters: a prefix of kinds, a user.
    admin = events(server, "--kind", "admin.")
    assert {e["kind"] for e in admin} == {"admin.user.created", "admin.user.disabled"}
    hers = events(server, "--user", "gwen")
    assert hers and all(e["user_id"] == gwen for e in hers)
    assert len(events(server, "--limit", "2")) == 2
    text_out = doorward(server, "events", "--kind", "admin.")
    assert text_out.returncode == 0 and "admin.user.disabled" in text_out.stdout
    assert "actor=cli:auditor" in text_out.stdout

    # The server's stderr carries the same events as JSON lines.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(l) for l in server.stderr_lines if l.startswith("{") and '"audit":true' in l]
        if any(l["kind"] == "token.revoked" for l in lines):
            break
        time.sleep(0.2)
    assert any(l["kind"] == "token.revoked" for l in lines)
    assert {l["kind"] for l in lines} >= {"sign_in.succeeded", "token.issued", "consent.given"}


def test_follow_prints_what_happens_next(server):
    database = server.command[server.command.index("--database") + 1]
    follower = subprocess.Popen(
        [str(doorward_bin()), "events", "--follow", "--json", "--limit", "1", "--kind", "sign_in.",
         "--config", str(server.config_path), "--database", database],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.child_env(),
        cwd=server.workdir,
    )
    try:
        time.sleep(1.5)
        assert sign_in(server, "alice", USERS["alice"][0])[1].status_code == 303
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready, "--follow printed nothing within 20 s"
        event = json.loads(follower.stdout.readline())
        assert event["kind"] == "sign_in.succeeded"
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_bad_options_are_refused(server):
    result = doorward(server, "events", "--limit", "0")
    assert result.returncode != 0 and "--limit" in result.stderr
    result = doorward(server, "events", "--user", "nobody")
    assert result.returncode != 0 and "no user" in result.stderr
