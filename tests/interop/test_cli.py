"""The command line the README promises, against the real binary: the `DOORWARD_*` environment
variables and their order (flag, then environment, then file), `doorward migrate`,
`doorward keys list`, a rotation by `doorward keys rotate` that the running server publishes at
once, and client Ids that stay the same across restarts and databases.

Each test starts its own server (or command) in its own directory, on SQLite, or on the
PostgreSQL schema of `DOORWARD_INTEROP_DATABASE` where a database is shared on purpose.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    DoorwardServer,
    authorize_url,
    basic,
    config_toml,
    database_for,
    describe,
    doorward_bin,
    doorward_cli,
    fetch_jwks,
)

# README, "Set up": the Id printed for python_client@clients (a UUIDv5 of its Key).
PYTHON_CLIENT_ID = "cfeae7a5-0fba-5048-9c14-405062ec98a9"

COMMAND_TIMEOUT_S = 120


class EnvServer(DoorwardServer):
    """`doorward serve` with `args` only: the rest comes from the environment (set by the
    test with monkeypatch) and the file."""

    def __init__(self, binary: Path, workdir: Path, args: list[str], extra_config: str = ""):
        super().__init__(binary, workdir, extra_config=extra_config)
        self.args = args

    @property
    def command(self) -> list[str]:
        return [str(self.binary), "serve", *self.args]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(doorward_bin()), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def issuer_of(origin: str) -> str:
    r = requests.get(f"{origin}/.well-known/openid-configuration", timeout=15)
    assert r.status_code == 200, describe(r)
    return r.json()["issuer"]


def printed_client_ids(server: DoorwardServer) -> dict[str, str]:
    """Key -> Id from the start-up listing (`NAME {`, `  Id: …`, `  Key: …`)."""
    out = "".join(server.stdout_lines)
    return {key: uid for uid, key in re.findall(r"Id: ([0-9a-f-]{36})\n\s*Key: (\S+)", out)}


def test_environment_variables_and_their_order(tmp_path, monkeypatch):
    """DOORWARD_CONFIG, DOORWARD_LISTEN, DOORWARD_EXTERNAL_URI and DOORWARD_DATABASE configure
    the server; a flag beats its variable, and a variable beats the file."""
    db = tmp_path / "from-env.sqlite"
    server = EnvServer(doorward_bin(), tmp_path, args=[],
                       extra_config='[server]\nexternal_uri = "http://file.example"\nlisten = "127.0.0.1:1"\n'
                                    'insecure_allow_http = true\n')
    monkeypatch.delenv("DOORWARD_INTEROP_DATABASE", raising=False)
    monkeypatch.setenv("DOORWARD_CONFIG", str(server.config_path))
    monkeypatch.setenv("DOORWARD_LISTEN", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("DOORWARD_EXTERNAL_URI", "http://env.example")
    monkeypatch.setenv("DOORWARD_DATABASE", f"sqlite:{db}")
    server.start()
    try:
        assert issuer_of(server.origin) == "http://env.example", "the variable beats the file"
        assert db.is_file(), "the database named by DOORWARD_DATABASE"
    finally:
        server.stop()

    (tmp_path / "flags").mkdir()
    server = EnvServer(doorward_bin(), tmp_path / "flags", args=["--external-uri", "http://flag.example", "--insecure-allow-http"])
    monkeypatch.setenv("DOORWARD_CONFIG", str(server.config_path))
    monkeypatch.setenv("DOORWARD_LISTEN", f"127.0.0.1:{server.port}")
    server.start()
    try:
        assert issuer_of(server.origin) == "http://flag.example", "the flag beats the variable"
    finally:
        server.stop()


def test_plain_http_on_a_network_host_needs_the_insecure_switch(tmp_path, monkeypatch):
    """An http external URI other than loopback is refused at start unless the operator says
    so (TxOAuth2's allowInsecureRequestDebug; RFC 6749 section 10.9); the banner says which."""
    monkeypatch.delenv("DOORWARD_INTEROP_DATABASE", raising=False)
    (tmp_path / "doorward.toml").write_text("")
    refused = run(["serve", "--config", "doorward.toml", "--listen", "127.0.0.1:0",
                   "--external-uri", "http://net.example", "--database", f"sqlite:{tmp_path / 'r.sqlite'}"],
                  tmp_path)
    assert refused.returncode != 0
    assert "insecure_allow_http" in refused.stderr and "net.example" in refused.stderr, refused.stderr
    assert "listening" not in refused.stdout

    server = EnvServer(doorward_bin(), tmp_path / "insecure",
                       args=["--external-uri", "http://net.example", "--insecure-allow-http"])
    monkeypatch.setenv("DOORWARD_CONFIG", str(server.config_path))
    monkeypatch.setenv("DOORWARD_LISTEN", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("DOORWARD_DATABASE", f"sqlite:{tmp_path / 'insecure.sqlite'}")
    (tmp_path / "insecure").mkdir()
    server.start()
    try:
        assert issuer_of(server.origin) == "http://net.example"
        assert any("INSECURE plain http" in line for line in server.stdout_lines), server.stdout_lines
    finally:
        server.stop()


def test_migrate_applies_the_migrations_and_exits(tmp_path):
    (tmp_path / "doorward.toml").write_text(config_toml())
    database = os.environ.get("DOORWARD_INTEROP_DATABASE") or f"sqlite:{tmp_path / 'migrated.sqlite'}"
    for attempt in (1, 2):  # a second run finds nothing to do and still succeeds
        done = run(["migrate", "--config", "doorward.toml", "--database", database], tmp_path)
        assert done.returncode == 0, (attempt, done.stdout, done.stderr)
        assert "migrations applied" in done.stdout, done.stdout
    if database.startswith("sqlite:"):
        with sqlite3.connect(tmp_path / "migrated.sqlite") as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert version > 0 and len(tables) > 3, (version, tables)


def test_keys_list_shows_the_keys_the_server_publishes(tmp_path):
    server = DoorwardServer(doorward_bin(), tmp_path)
    server.database = f"sqlite:{tmp_path / 'keys.sqlite'}"
    server.start()
    try:
        published = {k["kid"] for k in fetch_jwks(server.origin)["keys"]}
    finally:
        server.stop()
    listed = run(["keys", "list", "--config", str(server.config_path), "--database", server.database], tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["alg", "gen", "stage", "kid"], listed.stdout
    rows = [line.split() for line in lines[1:]]
    assert {row[3] for row in rows} == published, listed.stdout
    assert {row[0] for row in rows} == {"ES256", "RS256", "EdDSA"}, listed.stdout
    assert all(row[2] == "active" for row in rows), listed.stdout


@pytest.fixture(params=["sqlite", "postgres"])
def own_database(request, tmp_path):
    return database_for(request, tmp_path, "rotation")


def test_a_rotation_from_the_command_line_is_published_by_the_running_server_at_once(tmp_path, own_database):
    """`doorward keys rotate` stores the new key beside a running server, which hears of it
    through the change feed (SQLite's table, PostgreSQL's notifications) and publishes it in
    its JWKS within seconds, not at its next periodic key reload (every 30 s)."""
    server = DoorwardServer(doorward_bin(), tmp_path, database=own_database)
    server.start()
    try:
        before = {k["kid"] for k in fetch_jwks(server.origin)["keys"]}
        rotated = doorward_cli(server, "keys", "rotate", "--alg", "ES256")
        assert rotated.returncode == 0, rotated.stderr
        stored = time.monotonic()
        while not ({k["kid"] for k in fetch_jwks(server.origin)["keys"]} - before):
            assert time.monotonic() - stored < 5, "the running server did not publish the new key"
            time.sleep(0.02)
        print(f"published {1000 * (time.monotonic() - stored):.0f} ms after `keys rotate` returned")
    finally:
        server.stop()


def test_client_ids_are_the_same_across_restarts_and_databases(tmp_path):
    ids = []
    for run_no in range(2):
        workdir = tmp_path / f"run{run_no}"
        workdir.mkdir()
        server = DoorwardServer(doorward_bin(), workdir)
        server.database = f"sqlite:{workdir / 'fresh.sqlite'}"  # a new database each time
        server.start()
        try:
            printed = printed_client_ids(server)
            assert any("plain http on a loopback host" in line for line in server.stdout_lines)
            # The Id is accepted as client_id, with the authorization request and with Basic.
            r = requests.get(authorize_url(server.origin, client_id=printed[CLIENT_ID]),
                             allow_redirects=False, timeout=15)
            assert r.status_code == 303 and "/login" in r.headers["Location"], describe(r)
            r = requests.post(f"{server.origin}/oauth/introspect", data={"token": "dwat_x"},
                              headers={"Authorization": basic(printed[CLIENT_ID], CLIENT_SECRET)}, timeout=15)
            assert r.status_code == 200 and r.json() == {"active": False}, describe(r)
        finally:
            server.stop()
        ids.append(printed)
    assert ids[0] == ids[1], ids
    assert ids[0][CLIENT_ID] == PYTHON_CLIENT_ID, "the Id the README shows"
    assert len(set(ids[0].values())) == len(ids[0]), "one Id per client"
