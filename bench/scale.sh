#!/usr/bin/env bash
# Does latency stay flat as the store grows? W1 (client_credentials: one new token stored per
# request) and W2 (code redemption: a code spent and two tokens stored per request) on SQLite
# and PostgreSQL holding 10^3, 10^5 and 10^7 live access tokens, each size a fresh database
# seeded with `doorward dev seed-tokens` (SQL in batches of 100,000). With oha installed (the
# kit's `WITH_OHA=1 bash install.sh`), W1 is also run at a fixed rate, half of the rate wrk
# measured in that cell, for its p99 without coordinated omission (`--latency-correction`).
# W1 rather than W2: oha takes the bodies of `-Z FILE` at random, with replacement, so it
# cannot present single-use codes once each; a W1 request is a durable write too.
#
#   bash bench/scale.sh                                  # ~25 min on 2 cores
#   SIZES="1000 100000" STORES=sqlite bash bench/scale.sh
#
# Server on CPU 1, load on CPU 0, PostgreSQL not pinned (as bench/instances.sh). Never run it
# while cargo builds.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/bench/common.sh" scale
oha="${OHA:-${BENCH_TMP:-/tmp/bench}/oha/bin/oha}"
SIZES="${SIZES:-1000 100000 10000000}"
STORES="${STORES:-sqlite postgres}"
DURATION="${DURATION:-8}"
CONC="${CONC:-16}"

server=""
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""; }; }
trap stop EXIT
start() {  # $1 database URL
  local log="$tmp/server.log"
  taskset -c 1 "$bin" serve --config "$config" --listen 127.0.0.1:30600 \
    --external-uri http://127.0.0.1:30600 --database "$1" >"$log" 2>&1 &
  server=$!
  for _ in $(seq 1 400); do grep -q "listening on" "$log" && return 0; sleep 0.05; done
  echo "the server did not start:" >&2; cat "$log" >&2; exit 1
}

basic="Basic $(printf '%s' 'python_client@clients:dev_secret' | base64 -w0)"
cb='http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback'
url=http://127.0.0.1:30600/oauth/token

wrk_json() {  # extra env assignments in "$@" -> one JSON line
  env BENCH_METHOD=POST BENCH_CTYPE=application/x-www-form-urlencoded BENCH_AUTH="$basic" "$@" \
    taskset -c 0 wrk -t1 -c"$CONC" -d"${DURATION}s" --timeout 20s -s "$lua" "$url" | grep '^{'
}

rows=()
row() {  # $1 store, $2 size, $3 seeding, $4 workload, $5 wrk JSON, $6 fixed-rate cell
  rows+=("$(python3 - "$@" <<'PY'
import json, sys
store, size, seeding, workload, line, fixed = sys.argv[1:]
r = json.loads(line)
err = r["http_err"] + r["connect_err"] + r["read_err"] + r["write_err"] + r["timeout"]
print(f"| {store} | {int(size):,} | {seeding} | {workload} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {err} | {fixed} |")
PY
)")
  echo "${rows[-1]}"
}

fixed_rate() {  # $1 rate -> "rate/s: p50 / p99 ms" of W1 from oha, or "—"
  [ -x "$oha" ] || { echo "—"; return; }
  local n=$(( $1 * DURATION ))
  taskset -c 0 "$oha" --no-tui --output-format json --latency-correction -q "$1" -n "$n" -c "$CONC" -m POST \
    -H "Authorization: $basic" -T application/x-www-form-urlencoded \
    -d 'grant_type=client_credentials&scope=base' "$url" \
    >"$tmp/oha.json" 2>"$tmp/oha.err" || { echo "oha failed"; return; }
  python3 - "$1" "$tmp/oha.json" <<'PY'
import json, sys
rate, path = sys.argv[1:]
d = json.load(open(path))
p = d["latencyPercentiles"]
bad = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
print(f"{int(rate):,}/s: {p['p50'] * 1000:.2f} / {p['p99'] * 1000:.2f} ms" + (f" ({bad} errors)" if bad else ""))
PY
}

for store in $STORES; do
  for size in $SIZES; do
    if [ "$store" = sqlite ]; then
      rm -f "$tmp/scale.sqlite"*; db="sqlite:$tmp/scale.sqlite"; label="SQLite"
      codes=$(( 14000 * (DURATION + 2) ))
    else
      s="scale_$(date +%s%N)"; psql_q "CREATE SCHEMA $s"
      db="$PG?options=-csearch_path%3D$s&sslmode=disable"; label="PostgreSQL 15"  # plain on loopback, as the figures before TLS
      codes=$(( 2500 * (DURATION + 2) ))
    fi
    seeding="$("$bin" dev seed-tokens --config "$config" --database "$db" "$size" | sed 's/.* in //')"
    "$bin" dev mint-codes --config "$config" --database "$db" "$codes" 2>>"$tmp/mint.log" \
      | sed "s|.*|grant_type=authorization_code\&code=&\&redirect_uri=$cb|" >"$tmp/codes.txt"
    start "$db"
    w1="$(wrk_json BENCH_BODY='grant_type=client_credentials&scope=base')"
    half="$(python3 -c "import json,sys; print(max(1, int(json.loads(sys.argv[1])['rps'] / 2)))" "$w1")"
    row "$label" "$size" "$seeding" "W1 client_credentials" "$w1" "$(fixed_rate "$half")"
    w2="$(wrk_json BENCH_BODY_FILE="$tmp/codes.txt")"
    row "$label" "$size" "$seeding" "W2 code redemption" "$w2" "—"
    stop
  done
done
echo
echo "| store | live tokens | seeded in | workload | req/s | p50 ms | p99 ms | errors | at half the rate (oha): p50 / p99 |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
psql_q "SELECT string_agg(format('DROP SCHEMA %I CASCADE', nspname), '; ') FROM pg_namespace WHERE nspname LIKE 'scale_%'" \
  | { read -r drops; [ -z "$drops" ] || psql_q "$drops"; }
rm -f "$tmp/scale.sqlite"*
