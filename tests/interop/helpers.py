"""Shared helpers for the Doorward interop tests.

Past 700 lines, still one idea: what every interop module shares (the server, the scripted
browser, the config every module's clients and users go in), kept in one place so that no
module grows its own.

- `DoorwardServer`: starts `$DOORWARD_BIN serve ...` on a free loopback port and waits for the
  `listening on http://127.0.0.1:PORT` line on stdout (no sleep-polling).
- `Browser`: a cookie-keeping `requests.Session` that never follows redirects by itself and
  submits HTML forms the way a browser does (all hidden inputs of the form, plus visible fields
  and the clicked submit button).
- `authorize_as`: drives /oauth/authorize -> /login -> consent -> callback and returns the
  callback URL with its parsed `code` / `state` / `error`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import secrets
import socket
import subprocess
import threading
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "python_client@clients"
CLIENT_SECRET = "dev_secret"
CLIENT_DISPLAY_NAME = "Python Client"
REDIRECT_URI = "http://localhost:8000/oauth/callback"

OTHER_CLIENT_ID = "other_app@clients"
OTHER_CLIENT_SECRET = "other_secret"
OTHER_REDIRECT_URI = "http://localhost:8001/oauth/callback"

# A client whose secret holds a ':' and a space: Basic must be split at the first ':'.
COLON_CLIENT_ID = "colon_app@clients"
COLON_CLIENT_SECRET = "dev:sec ret"
COLON_REDIRECT_URI = "http://localhost:8002/oauth/callback"

# OIDC clients ([clients.NAME] form plus the OIDC keys; see config_toml). Every Eternaltwin-form
# client without `scopes` may ask for every scope the server offers (python_client included).
OIDC_CLIENT_ID = "oidc_app@clients"
OIDC_CLIENT_SECRET = "oidc_secret"
OIDC_REDIRECT_URI = "http://localhost:8003/oauth/callback"
OIDC_POST_LOGOUT_URI = "http://localhost:8003/logged-out"

# Same as oidc_app but with id_token_signed_response_alg = ES256 / EdDSA.
OIDC_ES_CLIENT_ID = "oidc_es@clients"
OIDC_ES_CLIENT_SECRET = "oidc_es_secret"
OIDC_ES_REDIRECT_URI = "http://localhost:8004/oauth/callback"
OIDC_ED_CLIENT_ID = "oidc_ed@clients"
OIDC_ED_CLIENT_SECRET = "oidc_ed_secret"
OIDC_ED_REDIRECT_URI = "http://localhost:8005/oauth/callback"

# access_token_format = "jwt" (RFC 9068 access tokens).
JWT_CLIENT_ID = "jwt_app@clients"
JWT_CLIENT_SECRET = "jwt_secret"
JWT_REDIRECT_URI = "http://localhost:8006/oauth/callback"

# scopes = ["base"]: asking it for `openid` is invalid_scope.
BASE_ONLY_CLIENT_ID = "base_only@clients"
BASE_ONLY_CLIENT_SECRET = "base_only_secret"
BASE_ONLY_REDIRECT_URI = "http://localhost:8007/oauth/callback"

# [keys] algorithms: the first one signs JWT access tokens.
KEY_ALGORITHMS = ["ES256", "RS256", "EdDSA"]

# username -> (password, display name). Each test module signs in with its own users, so
# consent state never leaks between modules and test order does not matter.
USERS = {
    name: (f"{name}-password-1", name.capitalize())
    for name in [
        "alice",  # eternaltwin sync
        "bob",  # eternaltwin async
        "carol",  # auth-code-flow JSON
        "dave",  # auth-code-flow form
        "erin",  # authlib client_secret_basic
        "frank",  # authlib client_secret_post
        "grace",  # errors: code factory (already consented)
        "heidi",  # errors: consent denied
        "ivan",  # errors: login page / cookies
        "judy",  # errors: other_app codes
        "mallory",  # errors: refresh-token family
        "niaj",  # account page / revoke
        "olivia",  # logout
        "peggy",  # errors: csrf on consent
        "sybil",  # authlib wrong verifier (basic)
        "trent",  # authlib wrong verifier (post)
        # test_oidc.py (every one has an email, see USER_EMAILS)
        "uma",  # oidc: Authlib Flask client, RS256 id_token (oidc_app)
        "victor",  # oidc: Authlib Flask client, ES256 id_token (oidc_es); email not verified
        "wendy",  # oidc: Authlib Flask client, EdDSA id_token (oidc_ed)
        "xavier",  # oidc: python_client with scope base / openid
        "yvonne",  # oidc: code factory for oidc_app (consented), prompt/max_age/iss/userinfo
        "zoe",  # oidc: signed in, never consents (prompt=none -> consent_required)
        "quinn",  # oidc: jwt_app (JWT access tokens)
        "rupert",  # oidc: end_session (RP-initiated logout)
        "steve",  # oidc: introspection / revocation (RFC 7662 / 7009)
        # test_client_example.py: the doorward-client example app
        "emil",  # Eternaltwin preset
        "elena",  # OIDC preset (has an email)
        # test_client_documents.py: metadata-document clients and jwks_uri
        # test_algorithms.py: Ed25519 (RFC 9864) and EdDSA ID tokens through Authlib
        "fiona",
        "ursula",  # test_jwt_bearer.py: assertions name her
        "ulla",  # test_claims.py: has claims of her own (USER_CLAIMS)
        "cimd_ann",
        "cimd_ben",
        "cimd_cat",
    ]
}

# username -> (email, email_verified) for the users that have one (the OIDC ones).
USER_EMAILS = {
    name: (f"{name}@example.com", name != "victor")
    for name in ["uma", "victor", "wendy", "xavier", "yvonne", "zoe", "quinn", "rupert", "steve", "elena",
                 "fiona"]
}

# username -> the `claims` inline table of the users that have claims of their own.
USER_CLAIMS = {"ulla": '{ roles = ["player", "moderator"], guild = "owls" }'}

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

READY_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 15


def config_toml(refresh_grace: Optional[int] = 0) -> str:
    """The servers' configuration. `refresh_grace`: 0 (the shared server) makes a second use of
    a refresh token a replay at once, which the family-revocation tests rely on; None keeps
    Doorward's default window (10 s)."""
    lines = [
        *(["[tokens]", f"refresh_grace = {refresh_grace}", ""] if refresh_grace is not None else []),
        "[clients.python_client]",
        f'display_name = "{CLIENT_DISPLAY_NAME}"',
        'app_uri = "http://localhost:8000"',
        f'callback_uri = "{REDIRECT_URI}"',
        f'secret = "{CLIENT_SECRET}"',
        "",
        "[seed.app.other_app]",
        'display_name = "Other App"',
        'uri = "http://localhost:8001"',
        f'oauth_callback = "{OTHER_REDIRECT_URI}"',
        f'secret = "{OTHER_CLIENT_SECRET}"',
        "",
        "[seed.app.colon_app]",
        'display_name = "Colon App"',
        'uri = "http://localhost:8002"',
        f'oauth_callback = "{COLON_REDIRECT_URI}"',
        f'secret = "{COLON_CLIENT_SECRET}"',
        "",
        "[keys]",
        "algorithms = [" + ", ".join(f'"{a}"' for a in KEY_ALGORITHMS) + "]",
        "publish_delay = 2",
        "",
        "[clients.oidc_app]",
        'display_name = "OIDC App"',
        'app_uri = "http://localhost:8003"',
        f'callback_uri = "{OIDC_REDIRECT_URI}"',
        f'secret = "{OIDC_CLIENT_SECRET}"',
        'scopes = ["base", "openid", "profile", "email"]',
        f'post_logout_redirect_uris = ["{OIDC_POST_LOGOUT_URI}"]',
        "",
        "[clients.oidc_es]",
        'display_name = "OIDC ES256 App"',
        'app_uri = "http://localhost:8004"',
        f'callback_uri = "{OIDC_ES_REDIRECT_URI}"',
        f'secret = "{OIDC_ES_CLIENT_SECRET}"',
        'id_token_signed_response_alg = "ES256"',
        "",
        "[clients.oidc_ed]",
        'display_name = "OIDC EdDSA App"',
        'app_uri = "http://localhost:8005"',
        f'callback_uri = "{OIDC_ED_REDIRECT_URI}"',
        f'secret = "{OIDC_ED_CLIENT_SECRET}"',
        'id_token_signed_response_alg = "EdDSA"',
        "",
        "[clients.jwt_app]",
        'display_name = "JWT App"',
        'app_uri = "http://localhost:8006"',
        f'callback_uri = "{JWT_REDIRECT_URI}"',
        f'secret = "{JWT_CLIENT_SECRET}"',
        'access_token_format = "jwt"',
        "",
        "[clients.base_only]",
        'display_name = "Base Only App"',
        'app_uri = "http://localhost:8007"',
        f'callback_uri = "{BASE_ONLY_REDIRECT_URI}"',
        f'secret = "{BASE_ONLY_CLIENT_SECRET}"',
        'scopes = ["base"]',
        "",
    ]
    for username, (password, display_name) in USERS.items():
        lines += [
            f"[seed.user.{username}]",
            f'username = "{username}"',
            f'password = "{password}"',
            f'display_name = "{display_name}"',
        ]
        if username in USER_EMAILS:
            email, verified = USER_EMAILS[username]
            lines += [f'email = "{email}"', f"email_verified = {'true' if verified else 'false'}"]
        if username in USER_CLAIMS:
            lines.append(f"claims = {USER_CLAIMS[username]}")
        lines.append("")
    return "\n".join(lines)


def psql(sql: str) -> None:
    """Runs `sql` on the test PostgreSQL database (`DOORWARD_TEST_POSTGRES_URL`), quietly."""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", os.environ["DOORWARD_TEST_POSTGRES_URL"],
                    "-c", sql], check=True,
                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})


def database_for(request, tmp_path: Path, prefix: str) -> str:
    """The database of a test's own server: SQLite in `tmp_path`, or, when the test is
    parametrized with "postgres", a fresh schema of `DOORWARD_TEST_POSTGRES_URL` dropped after the
    test (skipped without the variable). SQLite explicitly: in the suite's PostgreSQL pass the
    shared database would otherwise carry this test's rows to the other modules' servers."""
    if getattr(request, "param", "sqlite") != "postgres":
        return f"sqlite:{tmp_path / (prefix + '.sqlite')}"
    url = os.environ.get("DOORWARD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("skipped: DOORWARD_TEST_POSTGRES_URL is not set")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE SCHEMA {schema}")
    request.addfinalizer(lambda: psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    return f"{url}?options=-csearch_path%3D{schema}"


# Commands of the `doorward` binary that take a second word (`users add`).
TWO_WORD_COMMANDS = {"clients", "users", "keys", "dev", "token"}


def doorward_cli(server: "DoorwardServer", *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`doorward ARGS` against `server`'s configuration, database and issuer."""
    database = server.command[server.command.index("--database") + 1]
    words = 2 if args[0] in TWO_WORD_COMMANDS else 1
    return subprocess.run(
        [str(doorward_bin()), *args[:words], "--config", str(server.config_path), "--database",
         database, "--external-uri", server.external_uri, *args[words:]],
        capture_output=True, text=True, timeout=120, env=server.child_env(), cwd=server.workdir,
        input=stdin)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def doorward_bin() -> Path:
    env = os.environ.get("DOORWARD_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "doorward"


class DoorwardServer:
    """One `doorward serve` child process on 127.0.0.1:<free port>."""

    def __init__(self, binary: Path, workdir: Path, *, database: Optional[str] = None,
                 external_uri: Optional[str] = None, refresh_grace: Optional[int] = 0,
                 extra_config: str = "", extra_env: Optional[dict[str, str]] = None,
                 preexec_fn=None, key_encryption_secret: Optional[str] = None,
                 key_algorithms: Optional[list[str]] = None):
        self.preexec_fn = preexec_fn
        self.key_algorithms = key_algorithms
        self.key_encryption_secret = key_encryption_secret
        self.refresh_grace = refresh_grace
        self.extra_env = extra_env or {}
        self.extra_config = extra_config
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        # Several instances behind one address share one external URI (the issuer).
        self.external_uri = external_uri or self.origin
        self.database = database
        self.config_path = workdir / "doorward.toml"
        self.db_path = workdir / "doorward.sqlite"
        self.proc: Optional[subprocess.Popen] = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()
        self._exited = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def command(self) -> list[str]:
        return [
            str(self.binary),
            "serve",
            "--config",
            str(self.config_path),
            "--listen",
            f"127.0.0.1:{self.port}",
            # A free port of its own: several servers run at once.
            "--metrics-listen",
            "127.0.0.1:0",
            "--external-uri",
            self.external_uri,
            "--database",
            self.database or os.environ.get("DOORWARD_INTEROP_DATABASE") or f"sqlite:{self.db_path}",
        ]

    def child_env(self) -> dict[str, str]:
        """The environment of this server's processes (`serve`, and `doorward dev`/`keys`
        commands run against its database)."""
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        if self.command[-1].startswith("postgres"):
            # PostgreSQL instances share the secret that seals the keys (SQLite keeps its own
            # key file beside the database).
            env.setdefault("DOORWARD_KEY_ENCRYPTION_SECRET", "interop-tests-key-encryption-secret")
        env.update(self.extra_env)
        return env

    def output(self, last: int = 200) -> str:
        out = "".join(self.stdout_lines[-last:])
        err = "".join(self.stderr_lines[-last:])
        return f"--- doorward stdout ---\n{out}\n--- doorward stderr ---\n{err}"

    def _pump(self, stream, sink: list[str], watch: bool) -> None:
        needle = f"listening on {self.origin}"
        for line in iter(stream.readline, ""):
            sink.append(line)
            if watch and needle in line:
                self._ready.set()
        stream.close()
        if watch:
            self._exited.set()
            self._ready.set()  # wake the waiter; it checks _exited

    def start(self) -> "DoorwardServer":
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            raise RuntimeError(
                f"doorward binary not found or not executable: {self.binary} "
                "(build it with `cargo build --bin doorward` or set DOORWARD_BIN)"
            )
        text = config_toml(self.refresh_grace)
        if self.key_encryption_secret:
            text = text.replace("[keys]\n", f'[keys]\nencryption_secret = "{self.key_encryption_secret}"\n', 1)
        if self.key_algorithms is not None:
            text = text.replace(
                "algorithms = [" + ", ".join(f'"{a}"' for a in KEY_ALGORITHMS) + "]",
                "algorithms = [" + ", ".join(f'"{a}"' for a in self.key_algorithms) + "]", 1)
        self.config_path.write_text(text + "\n" + self.extra_config)
        env = self.child_env()
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            cwd=self.workdir,
            env=env,
            preexec_fn=self.preexec_fn,
        )
        for stream, sink, watch in (
            (self.proc.stdout, self.stdout_lines, True),
            (self.proc.stderr, self.stderr_lines, False),
        ):
            t = threading.Thread(target=self._pump, args=(stream, sink, watch), daemon=True)
            t.start()
            self._threads.append(t)
        started = time.monotonic()
        if not self._ready.wait(READY_TIMEOUT_S):
            self.stop()
            raise RuntimeError(
                f"doorward did not print 'listening on {self.origin}' within "
                f"{READY_TIMEOUT_S:.0f} s\ncommand: {' '.join(self.command)}\n{self.output()}"
            )
        if self._exited.is_set() and not any(f"listening on {self.origin}" in l for l in self.stdout_lines):
            code = self.proc.wait(timeout=10)
            raise RuntimeError(
                f"doorward exited with status {code} before listening "
                f"(after {time.monotonic() - started:.1f} s)\ncommand: {' '.join(self.command)}\n{self.output()}"
            )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        terminate(self.proc)
        for t in self._threads:
            t.join(timeout=5)

    def url(self, path: str) -> str:
        return urljoin(self.origin + "/", path.lstrip("/"))

    @property
    def metrics_origin(self) -> str:
        """The origin of /metrics, /healthz and /readyz, from the start-up banner."""
        for line in self.stdout_lines:
            if line.startswith("metrics on "):
                return line.split()[2].removesuffix("/metrics")
        raise AssertionError(f"no 'metrics on' line\n{self.output()}")


def started(srv: "DoorwardServer") -> "DoorwardServer":
    """Starts `srv`; a server that does not come up fails the test with its own message."""
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    return srv


class ReadyProcess:
    """A child process (an example app) with `env` added to ours, ready once a line of its
    output contains `ready_text`; its output is kept for failure messages."""

    def __init__(self, command: list[str], env: dict[str, str], ready_text: str, timeout: float = 30):
        if not Path(command[0]).is_file():
            raise RuntimeError(f"{command[0]} is missing: bash scripts/test.sh builds it")
        self.lines: list[str] = []
        ready = threading.Event()
        self.proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

        def pump():
            for line in iter(self.proc.stdout.readline, ""):
                self.lines.append(line)
                if ready_text in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# HTTP


def describe(resp: requests.Response, body_chars: int = 1500) -> str:
    """A compact dump of a response for assertion messages."""
    req = resp.request
    headers = "\n".join(f"  {k}: {v}" for k, v in resp.headers.items())
    return (
        f"{req.method} {req.url} -> {resp.status_code}\n{headers}\n  body: {resp.text[:body_chars]!r}"
    )


def _no_5xx(resp: requests.Response, *args, **kwargs):
    assert resp.status_code < 500, f"server error\n{describe(resp)}"
    return resp


def http_session() -> requests.Session:
    """A requests.Session that never follows redirects by default and fails on any 5xx."""
    s = requests.Session()
    s.hooks["response"].append(_no_5xx)
    return s


def query_of(url: str) -> dict[str, str]:
    """Query parameters of a URL (each must appear once)."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    names = [k for k, _ in pairs]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"repeated query parameters {dup} in {url!r}"
    return dict(pairs)


def json_of(resp: requests.Response) -> dict:
    try:
        return resp.json()
    except ValueError as e:  # pragma: no cover - message only
        raise AssertionError(f"response is not JSON: {e}\n{describe(resp)}") from None


def assert_no_store(resp: requests.Response) -> None:
    cc = resp.headers.get("Cache-Control", "")
    directives = [d.strip().lower() for d in cc.split(",")]
    assert "no-store" in directives, f"expected Cache-Control: no-store\n{describe(resp)}"


def assert_oauth_error(resp: requests.Response, status: int, error: str) -> dict:
    """RFC 6749 §5.2 JSON error body with the exact status and `error` code."""
    assert resp.status_code == status, f"expected {status} {error}\n{describe(resp)}"
    body = json_of(resp)
    assert isinstance(body, dict), describe(resp)
    assert body.get("error") == error, f"expected error={error!r}\n{describe(resp)}"
    if "error_description" in body:
        assert isinstance(body["error_description"], str), describe(resp)
    return body


def basic(client_id: str, secret: str) -> str:
    """Raw Basic credentials, as the eternaltwin client and Authlib send them (no urlencoding)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --------------------------------------------------------------------------------------------
# HTML forms


@dataclasses.dataclass
class Button:
    name: Optional[str]
    value: str
    text: str


@dataclasses.dataclass
class Form:
    method: str
    action: str
    hidden: list[tuple[str, str]]
    inputs: list[dict]  # every <input> (any type) as its attribute dict
    buttons: list[Button]

    def input_names(self) -> set[str]:
        return {i.get("name") for i in self.inputs if i.get("name")}

    def button(self, *, value: Optional[str] = None, text: Optional[str] = None) -> Button:
        for b in self.buttons:
            if value is not None and b.value == value:
                return b
            if text is not None and b.text.strip() == text:
                return b
        raise AssertionError(f"no submit button value={value!r} text={text!r} in {self.buttons}")


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Optional[Form] = None
        self._button: Optional[dict] = None
        self._button_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(
                method=a.get("method", "get").lower(),
                action=a.get("action", ""),
                hidden=[],
                inputs=[],
                buttons=[],
            )
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input":
            self._form.inputs.append(a)
            typ = a.get("type", "text").lower()
            if typ == "hidden" and a.get("name"):
                self._form.hidden.append((a["name"], a.get("value", "")))
            elif typ in ("submit", "image"):
                self._form.buttons.append(Button(a.get("name"), a.get("value", ""), a.get("value", "")))
        elif tag == "button":
            self._button = a
            self._button_text = []

    def handle_data(self, data):
        if self._button is not None:
            self._button_text.append(data)

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None and self._form is not None:
            a = self._button
            if a.get("type", "submit").lower() == "submit":
                self._form.buttons.append(Button(a.get("name"), a.get("value", ""), "".join(self._button_text).strip()))
            self._button = None
        elif tag == "form":
            self._form = None


def parse_forms(html: str) -> list[Form]:
    p = _FormParser()
    p.feed(html)
    p.close()
    return p.forms


def find_form(resp: requests.Response, action_path: str, method: str = "post") -> Form:
    """The form whose action resolves to `action_path` on the page's origin."""
    page_url = resp.url
    for f in parse_forms(resp.text):
        if f.method == method and urlsplit(urljoin(page_url, f.action)).path == action_path:
            return f
    raise AssertionError(f"no <form method={method} action={action_path}> on the page\n{describe(resp, 4000)}")


# --------------------------------------------------------------------------------------------
# Browser-like driving


class Browser:
    """A cookie-keeping client that follows nothing by itself (like a browser with a debugger)."""

    def __init__(self, origin: str):
        self.origin = origin
        self.http = http_session()

    def get(self, url: str, **kw) -> requests.Response:
        return self.http.get(urljoin(self.origin + "/", url), allow_redirects=False, timeout=HTTP_TIMEOUT_S, **kw)

    def post(self, url: str, **kw) -> requests.Response:
        return self.http.post(urljoin(self.origin + "/", url), allow_redirects=False, timeout=HTTP_TIMEOUT_S, **kw)

    def submit(self, page: requests.Response, form: Form, fields: Optional[dict] = None,
               button: Optional[Button] = None) -> requests.Response:
        """Submit `form` as a browser would: every hidden input, then `fields`, then the button."""
        data: list[tuple[str, str]] = list(form.hidden)
        for k, v in (fields or {}).items():
            data.append((k, v))
        if button is None:
            named = [b for b in form.buttons if b.name]
            button = named[0] if named else None
        if button is not None and button.name:
            data.append((button.name, button.value))
        action = urljoin(page.url, form.action or page.url)
        assert urlsplit(action).netloc == urlsplit(self.origin).netloc, f"form posts off-origin: {action}"
        if form.method == "post":
            return self.post(action, data=data)
        return self.get(action, params=data)

    def follow_303(self, resp: requests.Response) -> requests.Response:
        assert resp.status_code == 303, f"expected 303 See Other\n{describe(resp)}"
        loc = resp.headers["Location"]
        return self.get(urljoin(resp.url, loc))

    def login(self, username: str, password: Optional[str] = None, next_url: str = "/account") -> requests.Response:
        """Sign in through GET/POST /login; returns the 303 response."""
        if password is None:
            password = USERS[username][0]
        page = self.get("/login?" + urlencode({"next": next_url}))
        assert page.status_code == 200, describe(page)
        form = find_form(page, "/login")
        resp = self.submit(page, form, {"username": username, "password": password})
        assert resp.status_code == 303, f"login as {username} failed\n{describe(resp)}"
        return resp


@dataclasses.dataclass
class AuthorizeResult:
    location: str  # absolute callback URL with its query
    params: dict[str, str]
    consent_shown: bool
    login_shown: bool

    @property
    def code(self) -> str:
        assert "code" in self.params, f"no code in callback {self.location!r}"
        return self.params["code"]

    @property
    def state(self) -> Optional[str]:
        return self.params.get("state")


def assert_callback(resp: requests.Response, redirect_uri: str = REDIRECT_URI) -> AuthorizeResult:
    """A 302 (or 303) whose Location is `redirect_uri?...`."""
    assert resp.status_code in (302, 303), f"expected a redirect to the client\n{describe(resp)}"
    loc = resp.headers["Location"]
    base = loc.split("?", 1)[0]
    assert base == redirect_uri, f"redirected to {loc!r}, expected the callback {redirect_uri!r}"
    return AuthorizeResult(loc, query_of(loc), False, False)


def authorize_as(browser: Browser, authorize_url: str, username: str, *, decision: str = "approve",
                 redirect_uri: str = REDIRECT_URI, expect_consent: Optional[bool] = None) -> AuthorizeResult:
    """Drive a full authorization in `browser`: login if needed, consent if asked, stop at the callback.

    Never follows the final redirect (nothing listens on the client's callback).
    """
    login_shown = consent_shown = False
    resp = browser.get(authorize_url)
    if resp.status_code == 303:
        # Not signed in: /login?next=<relative authorize URL>
        loc = resp.headers["Location"]
        parts = urlsplit(loc)
        assert parts.path == "/login", f"expected a redirect to /login\n{describe(resp)}"
        assert not parts.netloc or parts.netloc == urlsplit(browser.origin).netloc, describe(resp)
        nxt = query_of(loc).get("next")
        assert nxt, f"no next= in {loc!r}"
        want = urlsplit(urljoin(browser.origin + "/", authorize_url))
        got = urlsplit(urljoin(browser.origin + "/", nxt))
        assert got.path == want.path and sorted(parse_qsl(got.query, keep_blank_values=True)) == sorted(
            parse_qsl(want.query, keep_blank_values=True)
        ), f"next={nxt!r} does not carry the authorize request {authorize_url!r}"
        assert not urlsplit(nxt).netloc, f"next should be relative, got {nxt!r}"

        page = browser.get(loc)
        assert page.status_code == 200, describe(page)
        login_shown = True
        form = find_form(page, "/login")
        assert {"username", "password", "csrf", "next"} <= form.input_names(), form
        password = USERS[username][0]
        resp = browser.submit(page, form, {"username": username, "password": password})
        assert resp.status_code == 303, f"login as {username} failed\n{describe(resp)}"
        back = resp.headers["Location"]
        assert urljoin(browser.origin + "/", back) == urljoin(browser.origin + "/", nxt), (
            f"login redirected to {back!r}, expected next={nxt!r}"
        )
        resp = browser.get(back)

    if resp.status_code == 200:
        consent_shown = True
        form = find_form(resp, "/oauth/authorize")
        assert "csrf" in {n for n, _ in form.hidden}, f"consent form has no csrf\n{form}"
        allow = form.button(value="approve")
        deny = form.button(value="deny")
        assert allow.name == "decision" and deny.name == "decision", form.buttons
        assert allow.text == "Allow" and deny.text == "Deny", form.buttons
        resp = browser.submit(resp, form, button=form.button(value=decision))

    if expect_consent is not None:
        assert consent_shown == expect_consent, f"consent page shown={consent_shown}, expected {expect_consent}"
    result = assert_callback(resp, redirect_uri)
    result.consent_shown = consent_shown
    result.login_shown = login_shown
    return result


def authorize_url(origin: str, *, client_id: str = CLIENT_ID, redirect_uri: str = REDIRECT_URI,
                  scope: Optional[str] = "base", state: Optional[str] = None, **extra) -> str:
    """Authorize URL; any parameter given as None is left out (extra may override response_type)."""
    params: dict[str, Optional[str]] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
    }
    params.update(extra)
    return f"{origin}/oauth/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}"


def token_request(origin: str, *, auth: Optional[str] = None, json_body=None, form=None,
                  headers: Optional[dict] = None, data: Optional[bytes] = None) -> requests.Response:
    """POST /oauth/token with exactly the given credentials and body (nothing added)."""
    h = dict(headers or {})
    if auth is not None:
        h["Authorization"] = auth
    s = http_session()
    if json_body is not None:
        return s.post(f"{origin}/oauth/token", json=json_body, headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    if form is not None:
        return s.post(f"{origin}/oauth/token", data=form, headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    return s.post(f"{origin}/oauth/token", data=data, headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)


def auth_self(origin: str, access_token: Optional[str]) -> requests.Response:
    h = {"Authorization": f"Bearer {access_token}"} if access_token is not None else {}
    return http_session().get(f"{origin}/api/v1/auth/self", headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)


def assert_token_response(resp: requests.Response) -> dict:
    """200 with exactly access_token, token_type=Bearer, expires_in=7200, refresh_token; no-store."""
    assert resp.status_code == 200, describe(resp)
    assert_no_store(resp)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), describe(resp)
    body = json_of(resp)
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}, describe(resp)
    assert body["token_type"] == "Bearer", describe(resp)
    assert body["expires_in"] == 7200 and isinstance(body["expires_in"], int), describe(resp)
    assert isinstance(body["access_token"], str) and body["access_token"], describe(resp)
    assert isinstance(body["refresh_token"], str) and body["refresh_token"], describe(resp)
    return body


def parse_qs_single(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


# --------------------------------------------------------------------------------------------
# OIDC / RFC 7662 / RFC 7009 helpers


def drive_to_callback(browser: Browser, resp: requests.Response, username: str, *,
                      redirect_uri: str = REDIRECT_URI, decision: str = "approve",
                      max_steps: int = 8) -> AuthorizeResult:
    """From any authorize response, go through login and consent until the redirect to the client.

    Looser than `authorize_as` (the login `next` may differ from the request, e.g. when the server
    drops prompt=login from it); fails on a second login page (a login loop) or too many hops.
    """
    login_shown = consent_shown = False
    for _ in range(max_steps):
        if resp.status_code in (302, 303):
            loc = urljoin(resp.url, resp.headers["Location"])
            if loc.split("?", 1)[0] == redirect_uri:
                result = assert_callback(resp, redirect_uri)
                result.login_shown, result.consent_shown = login_shown, consent_shown
                return result
            assert urlsplit(loc).netloc == urlsplit(browser.origin).netloc, f"redirected off-origin\n{describe(resp)}"
            resp = browser.get(loc)
            continue
        assert resp.status_code == 200, describe(resp)
        forms = parse_forms(resp.text)
        if any(urlsplit(urljoin(resp.url, f.action)).path == "/login" for f in forms):
            assert not login_shown, f"login page shown twice (login loop?)\n{describe(resp)}"
            login_shown = True
            form = find_form(resp, "/login")
            resp = browser.submit(resp, form, {"username": username, "password": USERS[username][0]})
            assert resp.status_code == 303, f"login as {username} failed\n{describe(resp)}"
            continue
        form = find_form(resp, "/oauth/authorize")
        assert not consent_shown, f"consent page shown twice\n{describe(resp)}"
        consent_shown = True
        resp = browser.submit(resp, form, button=form.button(value=decision))
    raise AssertionError(f"no redirect to {redirect_uri} after {max_steps} steps\n{describe(resp)}")


def client_post(origin: str, path: str, data: Optional[dict], *, auth: Optional[str] = None,
                headers: Optional[dict] = None) -> requests.Response:
    """POST a form to an endpoint with exactly the given credentials (no redirects, no 5xx)."""
    h = dict(headers or {})
    if auth is not None:
        h["Authorization"] = auth
    return http_session().post(f"{origin}{path}", data=data, headers=h, allow_redirects=False,
                               timeout=HTTP_TIMEOUT_S)


def introspect(origin: str, token: str, auth: Optional[str], **extra) -> requests.Response:
    return client_post(origin, "/oauth/introspect", {"token": token, **extra}, auth=auth)


def revoke(origin: str, token: Optional[str], auth: Optional[str], **extra) -> requests.Response:
    data = {**({"token": token} if token is not None else {}), **extra}
    return client_post(origin, "/oauth/revoke", data, auth=auth)


def userinfo(origin: str, access_token: Optional[str], method: str = "GET") -> requests.Response:
    h = {"Authorization": f"Bearer {access_token}"} if access_token is not None else {}
    s = http_session()
    if method == "POST":
        h["Content-Type"] = "application/x-www-form-urlencoded"
        return s.post(f"{origin}/oauth/userinfo", data=b"", headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    return s.get(f"{origin}/oauth/userinfo", headers=h, allow_redirects=False, timeout=HTTP_TIMEOUT_S)


def fetch_jwks(origin: str) -> dict:
    resp = http_session().get(f"{origin}/oauth/jwks", allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 200, describe(resp)
    return json_of(resp)


def b64url_half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 at_hash / c_hash; EdDSA (Ed25519) uses SHA-512 (OIDC errata, Authlib)."""
    h = hashlib.sha512 if alg == "EdDSA" else getattr(hashlib, f"sha{alg[2:]}")
    digest = h(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
