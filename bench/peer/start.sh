#!/usr/bin/env bash
# Doorward for the side-by-side kit: exec the release build on 127.0.0.1:$PORT (the PID is the
# server's), with a fresh database under $BENCH_TMP.
set -euo pipefail
PORT="${PORT:-30404}"
: "${DOORWARD_BIN:?set DOORWARD_BIN to the release binary}" "${DOORWARD_BENCH_CONFIG:?}"
db="$BENCH_TMP/doorward-bench.sqlite"
rm -f "$db" "$db-wal" "$db-shm"
export RUST_LOG="${RUST_LOG:-warn}"
exec "$DOORWARD_BIN" serve --config "$DOORWARD_BENCH_CONFIG" --listen "127.0.0.1:$PORT" \
  --external-uri "http://127.0.0.1:$PORT" --database "sqlite:$db"
