#!/usr/bin/env bash
# The soak (scripts/soak.py): the release build under mixed load (hits, misses, hostile sources,
# abandoned requests, slow clients, a silent origin) for DURATION seconds (default 1200), RSS,
# descriptors and latency printed each minute. Exits 1 if memory or descriptors grew after the
# warm-up or a request that should have succeeded failed. Not a CI stage: run it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --bin thumbora --example hostile
inputs="$(mktemp -d)"
trap 'rm -rf "$inputs"' EXIT
target/release/examples/hostile "$inputs" >/dev/null
python3 scripts/soak.py --binary "${BINARY:-target/release/thumbora}" --inputs "$inputs" --duration "${DURATION:-1200}"
