#!/usr/bin/env bash
# A/B load benchmark of two Thumbora binaries (a change's before and after) on the same origin,
# images and workloads. Runs alternate A, B, A, B... so that drift on the machine hits both.
#
#   scripts/bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]      # DURATION=10 CONNS=16 by default
#
# Workloads, each on a fresh process:
#   hit        one hot URL, rendered once before the run: every request is a result-cache hit
#   miss_2k    distinct URLs (a unique origin query string each): 2048x1536 JPEG -> fit-in 512x512 q80
#   miss_12mp  distinct URLs: 4000x3000 JPEG -> 300x200
#   miss_1080p distinct URLs: 1920x1080 JPEG -> 300x200
#   site       a 2 KB page of the app reverse-proxied by `site` (one proxy thread; the origin
#              nginx stands in for the app)
#   hit_under_miss  the hit run (wrk -t1 -c4) while 8 connections of distinct 12 MP misses
#              saturate the cores: the row's p99 is the hits' (its CPU figure counts both)
# No miss URL repeats within or across runs (wrk's counter starts at a random offset per run), so
# neither the result cache nor the originals cache can answer a miss: what is measured is fetch +
# decode + resize + encode + the proxy around them. The hit run measures the cache path only.
# Everything on 127.0.0.1; every run lasts DURATION seconds. WORKLOADS picks some of them.
# Each row also gives the server's CPU time (user + system, all its threads, from /proc) and its
# minor page faults (memory the kernel had to map and zero) per request over the wrk run.
#
# YAML_A / YAML_B: extra lines under `thumbora:` for A / B (two-space indented sections), to
# compare one binary with itself under two configurations, e.g. metrics and access log on vs off:
#   YAML_A=$'  access_log:\n    enabled: false' \
#   YAML_B=$'  metrics:\n    listen: "127.0.0.1:19100"\n  access_log:\n    file: /tmp/ab-access.log' \
#   WORKLOADS=hit scripts/bench/ab.sh target/release/thumbora target/release/thumbora 5
# TOP_A / TOP_B: extra top-level lines (Pingora's server keys) for A / B, e.g.
#   TOP_B='work_stealing: false' WORKLOADS="hit site" scripts/bench/ab.sh BIN BIN 3
# Without them each binary runs on its defaults (the access log, where a binary has one, goes to
# its stderr, i.e. $OUT/thumbora.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
A=$(realpath "$1"); B=$(realpath "$2"); ROUNDS=${3:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
OUT=${OUT:-$ROOT/bench-results/ab}
mkdir -p "$OUT"

command -v wrk >/dev/null 2>&1 && { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || {
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq wrk nginx-light >/dev/null
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x target/release/examples/gen_sources ] || cargo build --release --example gen_sources 2>&1 | tail -1
[ -f "$OUT/src/12mp_0.jpg" ] || ./target/release/examples/gen_sources "$OUT/src" >/dev/null
[ -f "$OUT/src/page.html" ] || python3 -c 'import sys; sys.stdout.write(("<p>thumbora site page</p>" * 100)[:2048])' >"$OUT/src/page.html"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

ORIGIN_PORT=$(free_port)
mkdir -p "$OUT/nginx"
cat > "$OUT/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 1024; }
http { access_log off; sendfile on; server { listen 127.0.0.1:$ORIGIN_PORT; root $OUT/src; } }
EOF
$NGINX -c "$OUT/nginx/nginx.conf" -p "$OUT/nginx" &
pids+=($!)
ORIGIN="127.0.0.1:$ORIGIN_PORT"

# start BINARY EXTRA_YAML [THREADS]
start() {
  PORT=$(free_port)
  cat > "$OUT/thumbora.yaml" <<EOF
threads: ${3:-2}
pid_file: $OUT/thumbora.pid
upgrade_sock: $OUT/thumbora-upgrade.sock
grace_period_seconds: 1
graceful_shutdown_timeout_seconds: 1
${TOP:-}
thumbora:
  listen: ["127.0.0.1:$PORT"]
  sources:
    loader: http
    allowed: ["127.0.0.1"]
    allow_private_networks: true
$2
EOF
  RUST_LOG=warn "$1" -c "$OUT/thumbora.yaml" >"$OUT/thumbora.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null && return; sleep 0.1; done
  echo "thumbora did not start: $(tail -3 "$OUT/thumbora.log")" >&2; exit 1
}
stop() { kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

# The CPU ticks (user + system) PID has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
minor_faults() { awk '{print $10}' "/proc/$1/stat"; }

# run BINARY WORKLOAD EXTRA_YAML -> "req/s p99 errors cpu_us_per_request faults_per_request"
run() {
  local bin=$1 workload=$2 log="$OUT/wrk.txt" hot="/unsafe/fit-in/512x512/$ORIGIN/2k_0.jpg"
  if [ "$workload" = site ]; then
    start "$bin" "$3"$'\n'"  site:"$'\n'"    upstreams: [\"$ORIGIN\"]"$'\n'"    image_prefix: /img"$'\n'"    health_check_seconds: 0" 1
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/page.html"
  else
    start "$bin" "$3"
  fi
  local before faults_before
  before=$(cpu_ticks "$PID")
  faults_before=$(minor_faults "$PID")
  case $workload in
    hit)
      curl -sf -o /dev/null "http://127.0.0.1:$PORT$hot"
      HOT="$hot" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/hot.lua "http://127.0.0.1:$PORT" >"$log" 2>&1 ;;
    miss_2k)
      PREFIX='/unsafe/fit-in/512x512/filters:quality(80)' ORIGIN="$ORIGIN" SOURCES="2k_0.jpg 2k_1.jpg 2k_2.jpg 2k_3.jpg" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency -s scripts/bench/unique.lua "http://127.0.0.1:$PORT" >"$log" 2>&1 ;;
    miss_12mp)
      PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="12mp_0.jpg 12mp_1.jpg 12mp_2.jpg 12mp_3.jpg" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency -s scripts/bench/unique.lua "http://127.0.0.1:$PORT" >"$log" 2>&1 ;;
    miss_1080p)
      PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="1080p_0.jpg 1080p_1.jpg 1080p_2.jpg 1080p_3.jpg" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency -s scripts/bench/unique.lua "http://127.0.0.1:$PORT" >"$log" 2>&1 ;;
    hit_under_miss)
      curl -sf -o /dev/null "http://127.0.0.1:$PORT$hot"
      PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="12mp_0.jpg 12mp_1.jpg 12mp_2.jpg 12mp_3.jpg" \
        wrk -t1 -c8 -d"$((DURATION + 2))s" --timeout 30s -s scripts/bench/unique.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1 &
      local bg=$!
      sleep 2
      HOT="$hot" wrk -t1 -c4 -d"${DURATION}s" --latency -s scripts/bench/hot.lua "http://127.0.0.1:$PORT" >"$log" 2>&1
      wait "$bg" || true ;;
    site)
      HOT=/page.html wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/hot.lua "http://127.0.0.1:$PORT" >"$log" 2>&1 ;;
  esac
  local ticks=$(( $(cpu_ticks "$PID") - before ))
  local faults=$(( $(minor_faults "$PID") - faults_before ))
  stop
  local rps p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$log")
  p99=$(awk '$1=="99%" {print $2}' "$log")
  errs=$(awk -F= '/errors_non2xx|errors_socket/ {s+=$2} END {print s+0}' "$log")
  local n cpu
  n=$(awk '/requests in/ {print $1}' "$log")
  cpu=$(python3 -c "print(round($ticks * 1e6 / $(getconf CLK_TCK) / ${n:-0}, 1) if ${n:-0} else '-')")
  local per
  per=$(python3 -c "print(round($faults / ${n:-0}, 1) if ${n:-0} else '-')")
  echo "${rps:-0} ${p99:--} ${errs:-0} $cpu $per"
}

echo "| workload | round | A req/s | B req/s | B/A | A p99 | B p99 | errors A/B | CPU µs/request A | B | page faults/request A | B |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for workload in ${WORKLOADS:-hit miss_2k miss_12mp miss_1080p site}; do
  for round in $(seq 1 "$ROUNDS"); do
    read -r ra pa ea ca fa < <(TOP="${TOP_A:-}" run "$A" "$workload" "${YAML_A:-}")
    read -r rb pb eb cb fb < <(TOP="${TOP_B:-}" run "$B" "$workload" "${YAML_B:-}")
    echo "| $workload | $round | $ra | $rb | $(python3 -c "print(round($rb/$ra, 3) if $ra else 'n/a')") | $pa | $pb | $ea/$eb | $ca | $cb | $fa | $fb |"
  done
done
