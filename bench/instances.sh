#!/usr/bin/env bash
# Code redemptions/s and refreshes/s: Doorward on SQLite, on PostgreSQL with one instance, and
# on PostgreSQL with two instances sharing the database, in one run on this machine.
#
#   bash bench/instances.sh                  # ~10 min; prints a markdown table
#   DURATION=10 CONC=16 bash bench/instances.sh
#   DOORWARD_BIN=/tmp/baseline/doorward WORKLOADS=code CODES=30000 bash bench/instances.sh
#
# Needs wrk (the shared kit's install.sh installs it) and PostgreSQL 15 (started if down; the
# role and database of scripts/test.sh). Each cell gets a fresh database (a new schema on
# PostgreSQL); single-use codes and refresh tokens are minted into it beforehand with
# `doorward dev mint-codes` / `mint-refresh-tokens`, enough that none is presented twice
# (a reused code counts as an error; a reused refresh token may be answered from the grace
# window, which would flatter the figure): 150,000 each, for SQLite's ~10-14 k/s over 10 s. Doorward instances are pinned to CPU 1, wrk to CPU 0,
# PostgreSQL is not pinned: on 2 cores two instances share CPU 1, so the two-instance figure
# shows that they coordinate through PostgreSQL without loss, not that they scale out.
# Never run it while cargo builds.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/bench/common.sh" instances
DURATION="${DURATION:-10}"
CONC="${CONC:-16}"

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap stop_all EXIT

start() {  # $1 port, $2 database URL
  local log="$tmp/server-$1.log"
  taskset -c 1 "$bin" serve --config "$config" --listen "127.0.0.1:$1" \
    --external-uri "http://127.0.0.1:30500" --database "$2" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do grep -q "listening on" "$log" && return 0; sleep 0.05; done
  echo "server on $1 did not start:" >&2; cat "$log" >&2; exit 1
}

basic="Basic $(printf '%s' 'python_client@clients:dev_secret' | base64 -w0)"
cb='http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback'

run_wrk() {  # $1 port, $2 body file, $3 connections -> JSON line
  env BENCH_METHOD=POST BENCH_BODY_FILE="$2" BENCH_CTYPE=application/x-www-form-urlencoded \
    BENCH_AUTH="$basic" taskset -c 0 wrk -t1 -c"$3" -d"${DURATION}s" --timeout 20s -s "$lua" \
    "http://127.0.0.1:$1/oauth/token" | grep '^{'
}

rows=()
cell() {  # $1 label, $2 instances, $3 workload (code|refresh), $4 database URL, $5 count
  local label="$1" n="$2" workload="$3" db="$4" count="$5"
  start 30500 "$db"
  [ "$n" = 2 ] && start 30501 "$db"
  local raw="$tmp/raw.txt"
  if [ "$workload" = code ]; then
    "$bin" dev mint-codes --config "$config" --database "$db" "$count" 2>>"$tmp/mint.log" \
      | sed "s|.*|grant_type=authorization_code\&code=&\&redirect_uri=$cb|" >"$raw"
  else
    "$bin" dev mint-refresh-tokens --config "$config" --database "$db" "$count" 2>>"$tmp/mint.log" \
      | sed "s|.*|grant_type=refresh_token\&refresh_token=&|" >"$raw"
  fi
  local results=()
  if [ "$n" = 1 ]; then
    results+=("$(run_wrk 30500 "$raw" "$CONC")")
  else
    split -n l/2 -d "$raw" "$tmp/part."
    run_wrk 30500 "$tmp/part.00" $((CONC / 2)) >"$tmp/a.json" &
    local wa=$!
    run_wrk 30501 "$tmp/part.01" $((CONC / 2)) >"$tmp/b.json" &
    local wb=$!
    wait "$wa" "$wb"
    results+=("$(cat "$tmp/a.json")" "$(cat "$tmp/b.json")")
  fi
  stop_all
  rows+=("$(python3 - "$label" "$workload" "$n" "$count" "${results[@]}" <<'PY'
import json, sys
label, workload, n, count, *lines = sys.argv[1:]
runs = [json.loads(l) for l in lines]
rps = sum(r["rps"] for r in runs)
p50 = max(r["p50_ms"] for r in runs)
p99 = max(r["p99_ms"] for r in runs)
err = sum(r["http_err"] + r["connect_err"] + r["read_err"] + r["write_err"] + r["timeout"] for r in runs)
req = sum(r["requests"] for r in runs)
what = "code redemption" if workload == "code" else "refresh (rotation)"
print(f"| {label} | {n} | {what} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {req:,} of {int(count):,} | {err} |")
PY
)")
  echo "${rows[-1]}"
}

fresh_schema() {
  local s="bench_$(date +%s%N)"
  psql_q "CREATE SCHEMA $s"
  echo "$PG?options=-csearch_path%3D$s&sslmode=disable"  # plain on loopback, as the figures before TLS
}

echo "PostgreSQL: $(psql_q 'SELECT version()' | cut -d' ' -f1-2); $(psql_q "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','synchronous_commit','fsync','wal_level','max_connections','full_page_writes')")"
for workload in ${WORKLOADS:-code refresh}; do
  if [ "$workload" = code ]; then count="${CODES:-150000}"; else count="${REFRESH_TOKENS:-150000}"; fi
  db="sqlite:$tmp/bench-$workload.sqlite"; rm -f "$tmp/bench-$workload.sqlite"*
  cell "SQLite (WAL, synchronous=NORMAL)" 1 "$workload" "$db" "$count"
  cell "PostgreSQL 15" 1 "$workload" "$(fresh_schema)" "$count"
  cell "PostgreSQL 15" 2 "$workload" "$(fresh_schema)" "$count"
done
echo
echo "| store | instances | workload | req/s | p50 ms | p99 ms | requests (of minted) | errors |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
psql_q "SELECT string_agg(format('DROP SCHEMA %I CASCADE', nspname), '; ') FROM pg_namespace WHERE nspname LIKE 'bench_%'" \
  | { read -r drops; [ -z "$drops" ] || psql_q "$drops"; }
