#!/usr/bin/env bash
# Build the Eternaltwin 0.16.4 server (crates.io `eternaltwin_cli`, tests/eternaltwin/) once per
# machine, in a cache folder outside the clone keyed by version, and print the binary's path.
# About 10 minutes on 2 cores the first time; seconds afterwards.
#   DOORWARD_CACHE_DIR   cache root (default: ~/.cache/doorward)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=0.16.4
cache="${DOORWARD_CACHE_DIR:-$HOME/.cache/doorward}/eternaltwin-$version"
bin="$cache/target/release/doorward_eternaltwin_peer"
stamp="$cache/inputs.sha256"
want="$(cat tests/eternaltwin/Cargo.toml tests/eternaltwin/Cargo.lock tests/eternaltwin/src/main.rs | sha256sum | cut -d' ' -f1)"
if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$cache"
  echo "building Eternaltwin $version into $cache (first run on this machine: ~10 min)" >&2
  CARGO_TARGET_DIR="$cache/target" cargo build --release --locked \
    --manifest-path tests/eternaltwin/Cargo.toml >&2
  echo "$want" > "$stamp"
fi
echo "$bin"
