# What bench/instances.sh and bench/scale.sh share, sourced with the name of their work folder:
#   repo=...; source "$repo/bench/common.sh" NAME
# Sets kit, lua, tmp ($BENCH_TMP/NAME), PG, config, bin (DOORWARD_BIN, else this tree's release
# build, built now), starts PostgreSQL 15 if it is down, and defines psql_q.
kit="${BENCH_KIT:-$repo/../shared/bench}"
lua="$kit/lib/bench.lua"
[ -f "$lua" ] || { echo "no bench kit at $kit (set BENCH_KIT)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found: bash $kit/install.sh" >&2; exit 2; }
tmp="${BENCH_TMP:-/tmp/bench}/$1"
mkdir -p "$tmp"
PG="${PG_URL:-postgres://doorward:doorward@127.0.0.1:5432/doorward_test}"
config="$repo/bench/doorward.toml"

pg_ctlcluster 15 main start 2>/dev/null || true
# DOORWARD_BIN: another build to measure (an A/B against a saved baseline); else this tree's.
if [ -z "${DOORWARD_BIN:-}" ]; then
  cargo build --release --locked -p doorward --manifest-path "$repo/Cargo.toml"
fi
bin="${DOORWARD_BIN:-$repo/target/release/doorward}"
export RUST_LOG=warn
# Instances on PostgreSQL share the secret that seals the keys in the database.
export DOORWARD_KEY_ENCRYPTION_SECRET="${DOORWARD_KEY_ENCRYPTION_SECRET:-bench-key-encryption-secret}"

psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -qAt "$PG" -c "$1"; }
