#!/usr/bin/env bash
# Same-run A/B of two Doorward builds, W3 and W4 (or $WORKLOADS), between two ceiling runs. Run bench/run.sh
# once first (it installs the kit into $BENCH_TMP and builds target/release/doorward).
#   BASE_BIN=/path/to/older/doorward BASE_LABEL="caf3a44, before" bash bench/ab.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
: "${BASE_BIN:?set BASE_BIN to the release binary to compare with}"
export BENCH_TMP="${BENCH_TMP:-/tmp/bench}"
kit=$BENCH_TMP/kit
rm -rf "$kit/peers/doorward"; cp -r $repo/bench/peer "$kit/peers/doorward"; chmod +x "$kit/peers/doorward/"*.sh
export DOORWARD_BENCH_CONFIG=$repo/bench/doorward.toml
export RESULTS=$BENCH_TMP/ab-$(date +%Y%m%dT%H%M%S).jsonl
echo "results: $RESULTS"
LABEL=start "$kit/run-peers.sh" ceiling W1
for w in ${WORKLOADS:-W3 W4}; do
  for bin in "$BASE_BIN" "$repo/target/release/doorward"; do
    if [ "$bin" = "$BASE_BIN" ]; then tag="${BASE_LABEL:-before}"; else tag=after; fi
    DOORWARD_BIN=$bin LABEL="$tag" "$kit/run-peers.sh" doorward "$w" || echo "$bin $w failed"
  done
done
LABEL=end "$kit/run-peers.sh" ceiling W1
python3 "$kit/report.py" "$RESULTS"
