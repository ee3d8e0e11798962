#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the URL parser, the filter parser, the header
# probe and the decoders of every format, RUNS executions per target (default 1 000 000).
#
#   scripts/fuzz.sh                 # every target
#   RUNS=200000 scripts/fuzz.sh url decode
#
# Installs cargo-fuzz from crates.io and uses the nightly toolchain (rustup installs it when
# missing). Corpora grow in fuzz/corpus/<target> (not committed), seeded from the test fixtures
# and the recorded thumbor URLs. Any crash, timeout or out-of-memory input is copied to
# fuzz/regressions/<target>/, which `cargo test` replays (tests/e2e/fuzz_regressions.rs): commit
# it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
RUNS="${RUNS:-1000000}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(url filters probe decode)

seed() {
  local target=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return
  case $target in
    url | filters)
      # The recorded thumbor URLs, one file each (the filter target gets their filter segments).
      local i=0
      while IFS= read -r line; do
        i=$((i + 1))
        line="${line//\{origin\}/127.0.0.1:8901}"
        if [ "$target" = filters ]; then
          [[ "$line" == *filters:* ]] || continue
          line="${line#*filters:}"
          line="${line%%)/*})"
        fi
        printf '%s' "$line" >"$dir/seed-$i"
      done < <(grep -v '^#' scripts/compat/urls.txt | cut -d' ' -f1)
      ;;
    probe | decode)
      # Every fixture image; for decode, behind the selector byte 5 (no prefix added).
      for f in tests/fixtures/compat/images/*; do
        if [ "$target" = decode ]; then
          { printf '\005'; cat "$f"; } >"$dir/$(basename "$f")"
        else
          cp "$f" "$dir/"
        fi
      done
      ;;
  esac
}

for target in "${targets[@]}"; do
  seed "$target"
  mkdir -p "fuzz/artifacts/$target" "fuzz/regressions/$target"
  echo "== $target: $RUNS runs"
  status=0
  (cd fuzz && cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -runs="$RUNS" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1) >"fuzz/artifacts/$target.log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|DONE|SUMMARY|Test unit written' "fuzz/artifacts/$target.log" || true
  found=$(find "fuzz/artifacts/$target" -type f | wc -l)
  if [ "$found" -gt 0 ]; then
    cp "fuzz/artifacts/$target"/* "fuzz/regressions/$target/"
    echo "$target: $found finding(s) copied to fuzz/regressions/$target"
  fi
  [ "$status" -eq 0 ] || echo "$target: libFuzzer exited with $status"
done
