#!/usr/bin/env bash
# Hostile inputs against the release build, one fresh server each: status, answer time, CPU and
# peak memory per case (scripts/hostile.py). `--check` fails when a case misses the bar (answered
# within 3 s, at most 3 s of CPU, peak RSS under 600 MiB). BINARY=path compares another build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --bin thumbora --example hostile
inputs="$(mktemp -d)"
trap 'rm -rf "$inputs"' EXIT
target/release/examples/hostile "$inputs" >/dev/null
python3 scripts/hostile.py --binary "${BINARY:-target/release/thumbora}" --inputs "$inputs" "$@"
