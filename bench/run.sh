#!/usr/bin/env bash
# Side-by-side benchmark: Doorward against the shared kit's peers (a bare hyper ceiling,
# node-oidc-provider, Authlib), in one run, same CPU split (server on CPU 1, wrk on CPU 0).
#
#   bash bench/run.sh                       # the default matrix (W1-W4), ~20 min on 2 cores
#   WORKLOADS="W2" PEERS="doorward" bash bench/run.sh
#
# Needs ../shared/bench beside the repository (the kit). It copies the kit to $BENCH_TMP/kit,
# adds Doorward as a peer from bench/peer/, installs the peers (wrk, node-oidc, Authlib, the
# ceiling) once, builds Doorward in release mode, runs the matrix and prints the table.
# Never run it while cargo builds: the kit waits for builds to end before measuring.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
kit_src="${BENCH_KIT:-$repo/../shared/bench}"
[ -x "$kit_src/run-peers.sh" ] || { echo "no bench kit at $kit_src (set BENCH_KIT)" >&2; exit 2; }
export BENCH_TMP="${BENCH_TMP:-/tmp/bench}"
kit="$BENCH_TMP/kit"
mkdir -p "$BENCH_TMP"
rm -rf "$kit"; cp -r "$kit_src" "$kit"; chmod -R u+w "$kit"
rm -rf "$kit/peers/doorward"; cp -r "$repo/bench/peer" "$kit/peers/doorward"
chmod +x "$kit/peers/doorward/"*.sh

if [ ! -x "$BENCH_TMP/target/release/bench-ceiling" ] || [ ! -d "$BENCH_TMP/node-oidc/node_modules" ] || [ ! -x "$BENCH_TMP/venv/bin/gunicorn" ]; then
  bash "$kit/install.sh"
fi
cargo build --release --locked -p doorward --manifest-path "$repo/Cargo.toml"
export DOORWARD_BIN="$repo/target/release/doorward"
export DOORWARD_BENCH_CONFIG="$repo/bench/doorward.toml"

export RESULTS="${RESULTS:-$BENCH_TMP/results-$(date +%Y%m%dT%H%M%S).jsonl}"
PEERS="${PEERS:-doorward authlib node-oidc}"
WORKLOADS="${WORKLOADS:-W1 W2 W3 W4}"
echo "results: $RESULTS"
LABEL=start "$kit/run-peers.sh" ceiling W1
for w in $WORKLOADS; do
  for p in $PEERS; do
    # Doorward redeems more codes per second than the kit seeds by default (3000/s): seed
    # enough that no code is used twice within a run.
    if [ "$p" = doorward ]; then cps=12000; else cps="${CODES_PER_SEC:-3000}"; fi
    CODES_PER_SEC="$cps" "$kit/run-peers.sh" "$p" "$w" || echo "$p $w: failed (exit $?)"
  done
done
LABEL=end "$kit/run-peers.sh" ceiling W1
python3 "$kit/report.py" "$RESULTS"

# What an `openid` token response adds: one ID-token signature, per algorithm (CPU 1 alone).
echo
taskset -c 1 "$DOORWARD_BIN" dev sign-cost --iterations 2000

# What a sign-in's second factor costs: a TOTP code, a passkey's ES256 assertion (CPU 1 alone).
echo
taskset -c 1 "$DOORWARD_BIN" dev second-factor-cost --iterations 2000

# A resource server's bearer check in-process (doorward-axum's ResourceServer): JWT access
# tokens (signature, then cached) and opaque tokens of a provider in the same process.
echo
cargo build --release --locked -p doorward-axum --features remote --example resource_check_cost \
  --manifest-path "$repo/Cargo.toml"
taskset -c 1 "$repo/target/release/examples/resource_check_cost" 200000

# Cold start: exec to the first answered request, probed every 2 ms (fresh and existing
# database, --ephemeral), server on CPU 1.
echo
python3 "$repo/bench/cold_start.py" "$DOORWARD_BIN"
