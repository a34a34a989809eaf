"""`doorward login` and `doorward token` against `doorward serve`: a terminal signs in with a
loopback redirect (RFC 8252 §7.3, the browser's part done by the test's scripted browser) or
with the device grant (RFC 8628, the user's part at `/device`), keeps its tokens in a 0600
file, or in the OS keyring where one answers (GNOME Keyring's Secret Service in a private
D-Bus session), and prints, refreshes, introspects and revokes them."""
from __future__ import annotations

import json
import os
import pathlib
import re
import stat
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import Browser, DoorwardServer, USERS, auth_self, authorize_as, doorward_bin, find_form, http_session

CLIENT = "cli@clients"
CONFIG = """
[clients.cli]
display_name = "Doorward CLI"
app_uri = "http://127.0.0.1"
redirect_uris = ["http://127.0.0.1/callback"]
token_endpoint_auth_method = "none"
grant_types = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("login")
    # SQLite always: its own server, whatever the suite's database.
    srv = DoorwardServer(doorward_bin(), workdir, database=f"sqlite:{workdir / 'login.sqlite'}",
                         extra_config=CONFIG)
    srv.start()
    yield srv
    srv.stop()


def doorward(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(doorward_bin()), *args], capture_output=True, text=True, timeout=60)


def start_login(server, store, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(doorward_bin()), "login", "--issuer", server.origin, "--client-id", CLIENT,
         "--store", str(store), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def line_matching(proc: subprocess.Popen, pattern: str) -> re.Match:
    seen = []
    for line in proc.stderr:
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r}: {seen}")


def token_print(store) -> str:
    out = doorward("token", "print", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_login_through_the_loopback_redirect_then_the_token_tools(server, tmp_path):
    store = tmp_path / "config" / "tokens.json"
    proc = start_login(server, store, "--no-browser", "--scope", "openid", "--scope", "base")
    url = line_matching(proc, r"^(http\S+/oauth/authorize\?\S+)").group(1)
    query = parse_qs(urlsplit(url).query)
    redirect = query["redirect_uri"][0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", redirect), redirect
    assert query["code_challenge_method"] == ["S256"]
    result = authorize_as(Browser(server.origin), url, "alice", redirect_uri=redirect)
    page = http_session().get(result.location, timeout=10)
    assert page.status_code == 200 and "close this window" in page.text
    assert proc.wait(timeout=30) == 0, proc.stderr.read()

    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.parent).st_mode) == 0o700
    access = token_print(store)
    assert auth_self(server.origin, access).status_code == 200
    shown = json.loads(doorward("token", "show", "--store", str(store)).stdout)
    assert shown["provider"] == {"issuer": server.origin, "client_id": CLIENT}
    assert shown["refresh_token"] is True and shown["id_token"] is True and shown["expired"] is False
    assert access not in json.dumps(shown), "show prints no secret"

    assert doorward("token", "refresh", "--store", str(store)).returncode == 0
    fresh = token_print(store)
    assert fresh != access and auth_self(server.origin, fresh).status_code == 200
    introspected = doorward("token", "introspect", "--store", str(store))
    assert introspected.returncode == 0, introspected.stderr
    assert json.loads(introspected.stdout)["active"] is True

    revoked = doorward("token", "revoke", "--store", str(store))
    assert revoked.returncode == 0, revoked.stderr
    assert auth_self(server.origin, fresh).status_code == 401
    gone = doorward("token", "print", "--store", str(store))
    assert gone.returncode != 0 and "doorward login" in gone.stderr


def test_login_with_the_device_grant(server, tmp_path):
    store = tmp_path / "tokens.json"
    proc = start_login(server, store, "--device")
    m = line_matching(proc, r"open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})")
    verification, code = m.group(1), m.group(2)
    assert verification == f"{server.origin}/device"
    browser = Browser(server.origin)
    to_login = browser.get("/device")
    assert to_login.status_code == 303
    login = browser.get(to_login.headers["Location"])
    signed_in = browser.submit(login, find_form(login, "/login"),
                               {"username": "bob", "password": USERS["bob"][0]})
    assert signed_in.status_code == 303
    entry = browser.get(signed_in.headers["Location"])
    question = browser.submit(entry, find_form(entry, "/device"), {"user_code": code})
    assert "Doorward CLI" in question.text
    form = find_form(question, "/device")
    done = browser.submit(question, form, button=form.button(value="approve"))
    assert "Device connected" in done.text
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert auth_self(server.origin, token_print(store)).status_code == 200


def test_login_refusals_are_one_line_errors(server, tmp_path):
    store = tmp_path / "tokens.json"
    out = doorward("login", "--issuer", server.origin, "--client-id", "nobody@clients", "--device",
                   "--store", str(store))
    assert out.returncode != 0 and "invalid_client" in out.stderr, out.stderr
    out = doorward("token", "print", "--store", str(store))
    assert out.returncode != 0 and "doorward login" in out.stderr
    # --redirect-uri names where the command listens: plain http on a loopback host only.
    for uri in ("https://127.0.0.1:8123/cb", "http://example.com:8123/cb", "http://127.0.0.1/cb"):
        out = doorward("login", "--issuer", server.origin, "--client-id", CLIENT, "--no-browser",
                       "--redirect-uri", uri, "--store", str(store))
        assert out.returncode != 0 and "--redirect-uri" in out.stderr, (uri, out.stderr)
    assert not store.exists()


def test_login_by_a_name_from_a_providers_file(server, tmp_path):
    providers = tmp_path / "providers.toml"
    providers.write_text(f"""
[providers.home]
preset = "oidc"
issuer = "{server.origin}"
client_id = "{CLIENT}"
token_endpoint_auth_method = "none"
scopes = ["openid", "base"]
""")
    store = tmp_path / "tokens.json"
    proc = subprocess.Popen(
        [str(doorward_bin()), "login", "--provider", "home", "--providers", str(providers),
         "--no-browser", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = line_matching(proc, r"^(http\S+/oauth/authorize\?\S+)").group(1)
    redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    result = authorize_as(Browser(server.origin), url, "carol", redirect_uri=redirect)
    assert http_session().get(result.location, timeout=10).status_code == 200
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    shown = json.loads(doorward("token", "show", "--store", str(store), "--name", "home").stdout)
    assert shown["provider"] == {"providers": str(providers), "provider": "home"}
    assert auth_self(server.origin, token_print(store)).status_code == 200
    # The refresh reads the file again.
    assert doorward("token", "refresh", "--store", str(store)).returncode == 0


@pytest.fixture
def keyring_env(tmp_path):
    """A private D-Bus session with GNOME Keyring's Secret Service, unlocked (Debian's
    `dbus-daemon` and `gnome-keyring-daemon`, installed by scripts/test.sh): the OS keyring a
    desktop session has. The environment to run `doorward` in."""
    home = tmp_path / "home"
    run = tmp_path / "run"
    home.mkdir()
    run.mkdir(mode=0o700)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(run),
               XDG_DATA_HOME=str(home / ".local" / "share"))
    env.pop("DOORWARD_NO_KEYRING", None)
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, text=True, env=env)
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
    daemon = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize"],
                            input="keyring-test-password", capture_output=True, text=True, env=env, timeout=30)
    assert daemon.returncode == 0, daemon.stderr
    for line in daemon.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("GNOME_KEYRING_"):
            env[key] = value
    yield env
    # The daemon of this session (it forked away from us): found by its bus address.
    for pid in subprocess.run(["pgrep", "-u", str(os.getuid()), "gnome-keyring-d"],
                              capture_output=True, text=True).stdout.split():
        try:
            if env["DBUS_SESSION_BUS_ADDRESS"].encode() in pathlib.Path(f"/proc/{pid}/environ").read_bytes():
                os.kill(int(pid), 15)
        except OSError:
            pass
    bus.terminate()
    bus.wait(timeout=10)


def test_login_keeps_the_token_in_the_os_keyring_where_one_answers(server, tmp_path, keyring_env):
    store = tmp_path / "tokens.json"
    run = lambda *args: subprocess.run([str(doorward_bin()), *args], capture_output=True, text=True,  # noqa: E731
                                       timeout=60, env=keyring_env)
    proc = subprocess.Popen(
        [str(doorward_bin()), "login", "--issuer", server.origin, "--client-id", CLIENT,
         "--store", str(store), "--no-browser", "--scope", "openid", "--scope", "base"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=keyring_env)
    url = line_matching(proc, r"^(http\S+/oauth/authorize\?\S+)").group(1)
    redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    result = authorize_as(Browser(server.origin), url, "alice", redirect_uri=redirect)
    assert http_session().get(result.location, timeout=10).status_code == 200
    assert proc.wait(timeout=30) == 0
    said = proc.stderr.read()
    assert "OS keyring" in said, said

    # The file lists the entry, without the token.
    kept = json.loads(store.read_text())
    [(name, entry)] = kept.items()
    assert entry["keyring"] is True and "token" not in entry, entry
    access = run("token", "print", "--store", str(store))
    assert access.returncode == 0, access.stderr
    assert access.stdout.strip() not in store.read_text()
    assert auth_self(server.origin, access.stdout.strip()).status_code == 200
    assert run("token", "refresh", "--store", str(store)).returncode == 0
    fresh = run("token", "print", "--store", str(store)).stdout.strip()
    assert fresh != access.stdout.strip() and auth_self(server.origin, fresh).status_code == 200

    # Without the keyring's session, the token cannot be read: it is not in the file.
    outside = doorward("token", "print", "--store", str(store))
    assert outside.returncode != 0 and "keyring" in outside.stderr, outside.stderr

    # --no-keyring moves it into the file (and out of the keyring).
    assert run("token", "refresh", "--no-keyring", "--store", str(store)).returncode == 0
    entry = json.loads(store.read_text())[name]
    assert "token" in entry and not entry.get("keyring"), entry
    assert doorward("token", "print", "--store", str(store)).returncode == 0

    revoked = run("token", "revoke", "--store", str(store))
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(store.read_text()) == {}
