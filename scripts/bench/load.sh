#!/usr/bin/env bash
# Load benchmark: Thumbora against the classic nginx + 4 thumbor 7.8 stack and libvips, on this
# machine, with the same generated sources and the same workloads. Everything on 127.0.0.1, every
# run bounded by DURATION.
#
#   scripts/bench/load.sh                 # everything available on the machine
#   DURATION=10 SKIP_THUMBOR=1 scripts/bench/load.sh
#   WORK_STEALING=true scripts/bench/load.sh   # Thumbora and bare Pingora on Pingora's default runtime
#
# Workloads (imgproxy's published benchmark shape plus ours):
#   miss_2k      distinct URLs: 2048x1536 JPEG -> fit-in 512x512, q80
#   miss_12mp    distinct URLs: 4000x3000 JPEG -> 300x200
#   miss_1080p   distinct URLs: 1920x1080 JPEG -> 300x200
#   hit          one hot URL, wrk 2 threads 32 connections (Thumbora serves it from its cache;
#                thumbor re-renders: no result storage), beside two anchors in the same run:
#                nginx serving the same bytes as a static file (2 workers, as Thumbora's 2
#                threads) and a bare Pingora `ProxyHttp` writing them from request_filter
#                (examples/bare_pingora.rs: the framework's own floor); then the three again in
#                HIT_ROUNDS (3) alternating rounds, whose median ratios go in the goal table
#   mix          80% hits on 20 hot URLs, 20% distinct misses
#   static       nginx serving the same rendered bytes as a file (the speed of light for hits)
#   hit_under_miss  hits measured while 12 MP misses saturate the cores
#   burst64      64 concurrent distinct 12 MP misses: errors and peak RSS
#   site_proxy   a 2 KB page of the app, reverse-proxied (Thumbora's `site` vs nginx proxy_pass,
#                one worker thread each, both keeping upstream connections alive; Thumbora with
#                its access log on, then off as nginx's is; then SITE_ROUNDS (3) alternating
#                rounds, whose median ratio goes in the goal table)
# plus single-thread CPU per image (12 MP and 1080p): Thumbora's renderer vs `vipsthumbnail`
# (batch, one process) vs the bare libjpeg-turbo scaled decode of the same file.
# Every miss URL carries a unique query on the source URL: no result cache, no originals cache
# and no earlier run can answer it.
#
# Needs: wrk and nginx (installed with apt when missing and possible), Rust (scripts/deps.sh).
# thumbor: THUMBOR_VENV (a venv with thumbor 7.8), else /opt/thumbor-venv, else one is created in
# $OUT/thumbor-venv with pip (set SKIP_THUMBOR=1 to skip). vips: `vipsthumbnail` when installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${DURATION:-20}
CONNS=${CONNS:-16}
OUT=${OUT:-$ROOT/bench-results}
SKIP_THUMBOR=${SKIP_THUMBOR:-0}
# The runtime flavour of Thumbora and of the bare-Pingora anchor alike (false: Thumbora's default).
WORK_STEALING=${WORK_STEALING:-false}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

source scripts/bench/tools.sh

echo "== building (release)"
cargo build --release --bin thumbora --example render --example gen_sources --example bare_pingora 2>&1 | tail -1
./target/release/examples/gen_sources "$OUT/src" >/dev/null
# The site rows' page: 2 KB of HTML.
python3 -c 'import sys; sys.stdout.write(("<p>thumbora site page</p>" * 100)[:2048])' >"$OUT/src/page.html"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# cpu_ticks PID: user and system CPU of a process so far, in clock ticks ("USER SYS").
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }
# cpu_per_request BEFORE AFTER WRK_LOG: "user X us, system Y us per request" between two
# cpu_ticks readings, over the requests the wrk log counted.
cpu_per_request() {
  python3 -c "
import sys, os
before, after, log = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3]
n = next((int(l.split()[0]) for l in open(log) if 'requests in' in l), 0)
tick = 1e6 / os.sysconf('SC_CLK_TCK')
u, s = ((int(a) - int(b)) * tick / n if n else 0 for a, b in zip(after, before))
print(f'user {u:.1f} us, system {s:.1f} us per request')" "$1" "$2" "$3"
}

# start_nginx NAME WORKERS HTTP_BLOCK: an nginx in $OUT/nginx-NAME with that http {} body, in the
# foreground of a background job (its pid in NGINX_PID, also in pids for the cleanup).
start_nginx() {
  mkdir -p "$OUT/nginx-$1"
  cat > "$OUT/nginx-$1/nginx.conf" <<EOF
worker_processes $2;
daemon off;
pid $OUT/nginx-$1/nginx.pid;
error_log $OUT/nginx-$1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
$3
}
EOF
  $NGINX -c "$OUT/nginx-$1/nginx.conf" -p "$OUT/nginx-$1" &
  NGINX_PID=$!
  pids+=($NGINX_PID)
}

# ---- origin: nginx serving the sources ------------------------------------------------------
ORIGIN_PORT=$(free_port)
start_nginx origin 1 "  sendfile on;
  server { listen 127.0.0.1:$ORIGIN_PORT; root $OUT/src; }"
ORIGIN="127.0.0.1:$ORIGIN_PORT"

# ---- Thumbora -------------------------------------------------------------------------------
start_thumbora() {
  THUMBORA_PORT=$(free_port)
  cat > "$OUT/thumbora.yaml" <<EOF
threads: ${THUMBORA_THREADS:-2}
work_stealing: $WORK_STEALING
pid_file: $OUT/thumbora.pid
upgrade_sock: $OUT/thumbora-upgrade.sock
grace_period_seconds: 1
graceful_shutdown_timeout_seconds: 1
thumbora:
  listen: ["127.0.0.1:$THUMBORA_PORT"]
  sources:
    loader: http
    allowed: ["127.0.0.1"]
  cache:
    max_bytes: 268435456
EOF
  printf '%b' "${THUMBORA_EXTRA:-}" >> "$OUT/thumbora.yaml"
  RUST_LOG=warn ./target/release/thumbora -c "$OUT/thumbora.yaml" >"$OUT/thumbora.log" 2>&1 &
  THUMBORA_PID=$!
  pids+=($THUMBORA_PID)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$THUMBORA_PORT/healthcheck" >/dev/null && return; sleep 0.1; done
  echo "thumbora did not start" >&2; exit 1
}
# SIGINT: Pingora's fast shutdown (SIGTERM would drain for the grace period).
stop_thumbora() { kill -INT "$THUMBORA_PID" 2>/dev/null || true; wait "$THUMBORA_PID" 2>/dev/null || true; }

# ---- classic stack: nginx in front of 4 thumbor processes -----------------------------------
CLASSIC=""
if [ "$SKIP_THUMBOR" != 1 ]; then
  VENV=${THUMBOR_VENV:-}
  [ -z "$VENV" ] && [ -x /opt/thumbor-venv/bin/thumbor ] && VENV=/opt/thumbor-venv
  if [ -z "$VENV" ]; then
    echo "== installing thumbor 7.8 in $OUT/thumbor-venv"
    python3 -m venv "$OUT/thumbor-venv" && "$OUT/thumbor-venv/bin/pip" install -q 'thumbor==7.8.0' && VENV="$OUT/thumbor-venv" || VENV=""
  fi
  if [ -n "$VENV" ] && [ -x "$VENV/bin/thumbor" ]; then
    cat > "$OUT/thumbor.conf" <<EOF
ALLOW_UNSAFE_URL = True
LOADER = 'thumbor.loaders.http_loader'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
EOF
    upstreams=""
    for i in 0 1 2 3; do
      p=$(free_port)
      "$VENV/bin/thumbor" -p "$p" -c "$OUT/thumbor.conf" -l error >"$OUT/thumbor-$i.log" 2>&1 &
      pids+=($!); THUMBOR_PIDS+=" $!"
      upstreams+="    server 127.0.0.1:$p;"$'\n'
    done
    CLASSIC_PORT=$(free_port)
    start_nginx classic 1 "  upstream thumbor {
$upstreams  }
  server { listen 127.0.0.1:$CLASSIC_PORT; location / { proxy_pass http://thumbor; } }"
    CLASSIC="http://127.0.0.1:$CLASSIC_PORT"
    for _ in $(seq 1 100); do curl -sf "$CLASSIC/healthcheck" >/dev/null && break; sleep 0.2; done
  else
    echo "== thumbor not available: the classic stack is skipped"
  fi
fi

# ---- helpers ---------------------------------------------------------------------------------
RESULTS="$OUT/results.md"
: > "$RESULTS"
row() { echo "$*" | tee -a "$RESULTS"; }
# ratio A B: A / B to two decimals ("n/a" without B).
ratio() { python3 -c "import sys; a, b = float(sys.argv[1] or 0), float(sys.argv[2] or 0); print(round(a / b, 2) if b else 'n/a')" "$1" "$2"; }

# run_wrk NAME BASE_URL SCRIPT CONNS THREADS DURATION ENV...: prints req/s p50 p99 errors
run_wrk() {
  local name=$1 base=$2 script=$3 conns=$4 threads=$5 duration=$6; shift 6
  local log="$OUT/wrk-$name.txt"
  env "$@" wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 30s --latency -s "scripts/bench/$script" "$base" >"$log" 2>&1 || true
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$log")
  p50=$(awk '$1=="50%" {print $2}' "$log")
  p99=$(awk '$1=="99%" {print $2}' "$log")
  errs=$(awk -F= '/errors_non2xx|errors_socket/ {s+=$2} END {print s+0}' "$log")
  echo "${rps:-0} ${p50:--} ${p99:--} ${errs:-0}"
}

SOURCES_2K="2k_0.jpg 2k_1.jpg 2k_2.jpg 2k_3.jpg 2k_4.jpg 2k_5.jpg 2k_6.jpg 2k_7.jpg 2k_8.jpg 2k_9.jpg"
SOURCES_12MP="12mp_0.jpg 12mp_1.jpg 12mp_2.jpg 12mp_3.jpg"
SOURCES_1080P="1080p_0.jpg 1080p_1.jpg 1080p_2.jpg 1080p_3.jpg"
HOT_ONE="/unsafe/fit-in/512x512/$ORIGIN/2k_0.jpg"
HOT_SET=""
for i in $(seq 0 19); do HOT_SET+="/unsafe/fit-in/$((512 - i))x512/$ORIGIN/2k_$((i % 10)).jpg "; done

cores=$(nproc)
row "# Load benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $cores cores, ${DURATION}s per run, $CONNS connections)"
row ""
row "| workload | server | req/s | p50 | p99 | errors | peak RSS MiB |"
row "|---|---|---|---|---|---|---|"

scenario() {
  local name=$1 script=$2 conns=$3 threads=$4; shift 4
  # Thumbora, fresh process per workload so its peak RSS is the workload's.
  start_thumbora
  if [ "$script" = hot.lua ] || [ "$script" = mix.lua ]; then
    for u in $HOT_SET $HOT_ONE; do curl -s -o /dev/null "http://127.0.0.1:$THUMBORA_PORT$u"; done
  fi
  read -r rps p50 p99 errs < <(run_wrk "thumbora-$name" "http://127.0.0.1:$THUMBORA_PORT" "$script" "$conns" "$threads" "$DURATION" "$@")
  local rss=$(( $(rss_kib "$THUMBORA_PID") / 1024 ))
  row "| $name | thumbora | $rps | $p50 | $p99 | $errs | $rss |"
  stop_thumbora
  eval "THUMBORA_RPS_$name=$rps"
  if [ -n "$CLASSIC" ]; then
    read -r rps p50 p99 errs < <(run_wrk "classic-$name" "$CLASSIC" "$script" "$conns" "$threads" "$DURATION" "$@")
    local sum=0
    for p in $THUMBOR_PIDS; do sum=$(( sum + $(rss_kib "$p") )); done
    row "| $name | nginx + 4 thumbor | $rps | $p50 | $p99 | $errs | $(( sum / 1024 )) (4 processes) |"
    eval "CLASSIC_RPS_$name=$rps"
  fi
}

THUMBOR_PIDS=${THUMBOR_PIDS:-}
scenario miss_2k unique.lua "$CONNS" 1 PREFIX=/unsafe/fit-in/512x512/filters:quality\(80\) ORIGIN="$ORIGIN" SOURCES="$SOURCES_2K"
scenario miss_12mp unique.lua "$CONNS" 1 PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="$SOURCES_12MP"
scenario miss_1080p unique.lua "$CONNS" 1 PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="$SOURCES_1080P"
scenario hit hot.lua 32 2 HOT="$HOT_ONE"
scenario mix mix.lua "$CONNS" 1 PREFIX=/unsafe/fit-in/512x512 ORIGIN="$ORIGIN" SOURCES="$SOURCES_2K" HOT="$HOT_SET"

# nginx serving the rendered bytes as a static file (2 workers, as Thumbora's 2 threads): what a
# cache hit can hope for; and a bare Pingora ProxyHttp writing the same bytes from request_filter
# (2 threads): Pingora's own floor. Same load as Thumbora's hit row.
start_thumbora
curl -s -o "$OUT/src/hot.jpg" "http://127.0.0.1:$THUMBORA_PORT$HOT_ONE"
stop_thumbora
STATIC_PORT=$(free_port)
start_nginx static 2 "  sendfile on;
  server { listen 127.0.0.1:$STATIC_PORT; root $OUT/src; }"
static_pid=$NGINX_PID
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$STATIC_PORT/hot.jpg" && break; sleep 0.1; done
read -r rps p50 p99 errs < <(run_wrk static "http://127.0.0.1:$STATIC_PORT" hot.lua 32 2 "$DURATION" HOT=/hot.jpg)
row "| hit | nginx static file (same bytes, 2 workers) | $rps | $p50 | $p99 | $errs | - |"
STATIC_RPS=$rps
BARE_PORT=$(free_port)
./target/release/examples/bare_pingora "127.0.0.1:$BARE_PORT" "$OUT/src/hot.jpg" 2 "$WORK_STEALING" >"$OUT/bare.log" 2>&1 &
bare_pid=$!
pids+=($bare_pid)
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$BARE_PORT$HOT_ONE" && break; sleep 0.1; done
read -r rps p50 p99 errs < <(run_wrk bare "http://127.0.0.1:$BARE_PORT" hot.lua 32 2 "$DURATION" HOT="$HOT_ONE")
row "| hit | bare Pingora, request_filter writes the bytes (2 threads) | $rps | $p50 | $p99 | $errs | - |"
BARE_RPS=$rps

# The same three hit servers again in alternating rounds, all running: on a shared VM the
# machine's speed drifts over a run, so rows minutes apart can differ by 20%. Each round's ratios
# come from runs seconds apart; the goal table takes their medians.
HIT_ROUNDS=${HIT_ROUNDS:-3}
ROUND_SECONDS=$(( DURATION / 2 > 3 ? DURATION / 2 : 3 ))
start_thumbora
curl -s -o /dev/null "http://127.0.0.1:$THUMBORA_PORT$HOT_ONE"
row ""
row "Hits in $HIT_ROUNDS alternating rounds of ${ROUND_SECONDS}s (wrk -t2 -c32, same bytes):"
row ""
HIT_VS_BARE=""; HIT_VS_STATIC=""
for r in $(seq 1 "$HIT_ROUNDS"); do
  read -r t _ < <(run_wrk "round$r-thumbora" "http://127.0.0.1:$THUMBORA_PORT" hot.lua 32 2 "$ROUND_SECONDS" HOT="$HOT_ONE")
  read -r b _ < <(run_wrk "round$r-bare" "http://127.0.0.1:$BARE_PORT" hot.lua 32 2 "$ROUND_SECONDS" HOT="$HOT_ONE")
  read -r n _ < <(run_wrk "round$r-static" "http://127.0.0.1:$STATIC_PORT" hot.lua 32 2 "$ROUND_SECONDS" HOT=/hot.jpg)
  HIT_VS_BARE+="$(ratio "$t" "$b") "; HIT_VS_STATIC+="$(ratio "$t" "$n") "
  row "- round $r: Thumbora $t req/s, bare Pingora $b, nginx static $n (Thumbora / bare $(ratio "$t" "$b"), / nginx $(ratio "$t" "$n"))"
done
median() { python3 -c "import statistics, sys; v = [float(x) for x in sys.argv[1:] if x != 'n/a']; print(statistics.median(v) if v else 'n/a')" "$@"; }
HIT_VS_BARE=$(median $HIT_VS_BARE); HIT_VS_STATIC=$(median $HIT_VS_STATIC)
stop_thumbora
kill "$static_pid" 2>/dev/null || true
kill -INT "$bare_pid" 2>/dev/null || true

# Hits while 12 MP misses saturate both cores.
start_thumbora
for u in $HOT_SET; do curl -s -o /dev/null "http://127.0.0.1:$THUMBORA_PORT$u"; done
env PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="$SOURCES_12MP" \
  wrk -t1 -c8 -d"$((DURATION + 2))s" --timeout 30s -s scripts/bench/unique.lua "http://127.0.0.1:$THUMBORA_PORT" >"$OUT/wrk-background-misses.txt" 2>&1 &
bg=$!
sleep 2
read -r rps p50 p99 errs < <(run_wrk hit_under_miss "http://127.0.0.1:$THUMBORA_PORT" hot.lua 4 1 "$((DURATION - 2))" HOT="$HOT_SET")
wait $bg || true
miss_rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-background-misses.txt")
row "| hit_under_miss (hits; misses at ${miss_rps:-?} req/s behind) | thumbora | $rps | $p50 | $p99 | $errs | $(( $(rss_kib "$THUMBORA_PID") / 1024 )) |"
stop_thumbora

# 64 concurrent distinct 12 MP misses.
start_thumbora
read -r rps p50 p99 errs < <(run_wrk burst64 "http://127.0.0.1:$THUMBORA_PORT" unique.lua 64 2 "$DURATION" PREFIX=/unsafe/300x200 ORIGIN="$ORIGIN" SOURCES="$SOURCES_12MP")
row "| burst64 (64 concurrent 12 MP misses) | thumbora | $rps | $p50 | $p99 | $errs | $(( $(rss_kib "$THUMBORA_PID") / 1024 )) |"
stop_thumbora

# The rest of the site: a 2 KB page of the app reverse-proxied to it (here the origin nginx
# serving a static file stands in for the app): Thumbora's site proxy against nginx's proxy_pass,
# both with kept-alive upstream connections, nginx setting the four forwarding headers Thumbora
# sets. Thumbora runs twice: with its access log (its default; nginx's is off here, so this row
# counts a log line per request against Thumbora only), then without, like for like.
SITE_YAML="  site:\n    upstreams: [\"$ORIGIN\"]\n    image_prefix: /img\n    health_check_seconds: 0\n"
# site_run NAME LABEL EXTRA_YAML: one Thumbora site run; sets SITE_RUN_RPS and SITE_RUN_CPU.
site_run() {
  THUMBORA_THREADS=1 THUMBORA_EXTRA="$SITE_YAML$3" start_thumbora
  local before rps p50 p99 errs
  before=$(cpu_ticks "$THUMBORA_PID")
  read -r rps p50 p99 errs < <(run_wrk "$1" "http://127.0.0.1:$THUMBORA_PORT" hot.lua "$CONNS" 1 "$DURATION" HOT=/page.html)
  SITE_RUN_CPU=$(cpu_per_request "$before" "$(cpu_ticks "$THUMBORA_PID")" "$OUT/wrk-$1.txt")
  row "| $2 | thumbora | $rps | $p50 | $p99 | $errs | $(( $(rss_kib "$THUMBORA_PID") / 1024 )) |"
  SITE_RUN_RPS=$rps
  stop_thumbora
}
site_run site_proxy "site_proxy (app request, reverse-proxied, 1 thread)" ""
SITE_RPS=$SITE_RUN_RPS SITE_CPU=$SITE_RUN_CPU
site_run site_proxy_nolog "site_proxy (the same, access log off as nginx's)" "  access_log:\n    enabled: false\n"
SITE_NOLOG_RPS=$SITE_RUN_RPS SITE_NOLOG_CPU=$SITE_RUN_CPU
PROXY_PORT=$(free_port)
start_nginx proxy 1 "  upstream app { server $ORIGIN; keepalive 32; }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }"
proxy_pid=$NGINX_PID
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$PROXY_PORT/page.html" && break; sleep 0.1; done
proxy_worker=$(pgrep -P "$proxy_pid" | head -1 || true)
before=$(cpu_ticks "$proxy_worker")
read -r rps p50 p99 errs < <(run_wrk site_proxy_nginx "http://127.0.0.1:$PROXY_PORT" hot.lua "$CONNS" 1 "$DURATION" HOT=/page.html)
NGINX_PROXY_CPU=$(cpu_per_request "$before" "$(cpu_ticks "$proxy_worker")" "$OUT/wrk-site_proxy_nginx.txt")
row "| site_proxy (app request, reverse-proxied, 1 worker) | nginx proxy_pass | $rps | $p50 | $p99 | $errs | - |"
row ""
row "Site proxy CPU (from /proc over the wrk run): Thumbora $SITE_CPU (access log off: $SITE_NOLOG_CPU); nginx's worker $NGINX_PROXY_CPU."
row ""
NGINX_PROXY_RPS=$rps
# The two again in alternating rounds, both running (as the hit servers above), access logs off:
# each round's ratio comes from runs seconds apart; the goal table takes their median.
SITE_ROUNDS=${SITE_ROUNDS:-3}
THUMBORA_THREADS=1 THUMBORA_EXTRA="$SITE_YAML  access_log:\n    enabled: false\n" start_thumbora
row "Site proxy in $SITE_ROUNDS alternating rounds of ${ROUND_SECONDS}s (1 worker each, access logs off):"
row ""
SITE_VS_NGINX=""
for r in $(seq 1 "$SITE_ROUNDS"); do
  read -r t _ < <(run_wrk "site-round$r-thumbora" "http://127.0.0.1:$THUMBORA_PORT" hot.lua "$CONNS" 1 "$ROUND_SECONDS" HOT=/page.html)
  read -r n _ < <(run_wrk "site-round$r-nginx" "http://127.0.0.1:$PROXY_PORT" hot.lua "$CONNS" 1 "$ROUND_SECONDS" HOT=/page.html)
  SITE_VS_NGINX+="$(ratio "$t" "$n") "
  row "- round $r: Thumbora $t req/s, nginx proxy_pass $n (Thumbora / nginx $(ratio "$t" "$n"))"
done
row ""
SITE_VS_NGINX=$(median $SITE_VS_NGINX)
stop_thumbora
kill "$proxy_pid" 2>/dev/null || true

# ---- single-thread CPU per image -----------------------------------------------------------
cpu_ms() { sed -E 's/.*: ([0-9.]+) ms CPU.*/\1/'; }
# vips_ms FILE: vipsthumbnail's CPU per image, 20 copies in one process, one thread.
vips_ms() {
  rm -rf "$OUT/vips" && mkdir -p "$OUT/vips"
  for i in $(seq 1 20); do ln -sf "$1" "$OUT/vips/c$i.jpg"; done
  { VIPS_CONCURRENCY=1 /usr/bin/time -f "%U %S" vipsthumbnail "$OUT"/vips/c*.jpg -s 300x200 -c -o "$OUT/vips/out_%s.jpg[Q=80]" ; } 2>&1 | tail -1 | awk '{printf "%.1f", ($1+$2)*1000/20}'
}
row ""
row "## CPU per image, one thread (JPEG -> 300x200 q80)"
row ""
for src in 12mp_0 1080p_0; do
  T=$(./target/release/examples/render "$OUT/src/$src.jpg" /unsafe/300x200/x.jpg 20 | cpu_ms)
  eval "CPU_T_$src=$T"
  row "- $src: Thumbora renderer $T ms"
  if command -v vipsthumbnail >/dev/null 2>&1; then
    V=$(vips_ms "$OUT/src/$src.jpg")
    eval "CPU_V_$src=$V"
    row "- $src: vipsthumbnail $(vips --version 2>/dev/null | head -1), 20 images in one process: $V ms (Thumbora / vips: $(ratio "$T" "$V"))"
  fi
done
D=$(./target/release/examples/render "$OUT/src/12mp_0.jpg" decode:8 20 | cpu_ms)
row "- 12mp_0: bare libjpeg-turbo decode at 1/8 scale (the entropy-decoding floor): $D ms"
command -v vipsthumbnail >/dev/null 2>&1 || row "- vipsthumbnail not installed (apt install libvips-tools): vips comparison skipped"

row ""
row "## The speed goals (issue 13), this run"
row ""
row "| path | Thumbora | anchor | ratio | goal |"
row "|---|---|---|---|---|"
if [ -n "$CLASSIC" ]; then
  row "| miss, 12 MP -> 300x200 | $THUMBORA_RPS_miss_12mp req/s | nginx + 4 thumbor $CLASSIC_RPS_miss_12mp req/s | $(ratio "$THUMBORA_RPS_miss_12mp" "$CLASSIC_RPS_miss_12mp")x | >= 5x |"
  row "| miss, 1080p -> 300x200 | $THUMBORA_RPS_miss_1080p req/s | nginx + 4 thumbor $CLASSIC_RPS_miss_1080p req/s | $(ratio "$THUMBORA_RPS_miss_1080p" "$CLASSIC_RPS_miss_1080p")x | >= 5x |"
fi
if command -v vipsthumbnail >/dev/null 2>&1; then
  row "| CPU per miss, 12 MP | $CPU_T_12mp_0 ms | libvips $CPU_V_12mp_0 ms | $(ratio "$CPU_T_12mp_0" "$CPU_V_12mp_0") | <= 0.75 |"
  row "| CPU per miss, 1080p | $CPU_T_1080p_0 ms | libvips $CPU_V_1080p_0 ms | $(ratio "$CPU_T_1080p_0" "$CPU_V_1080p_0") | <= 0.75 |"
fi
row "| cache hit (wrk -t2 -c32) | $THUMBORA_RPS_hit req/s | bare Pingora $BARE_RPS req/s | $(ratio "$THUMBORA_RPS_hit" "$BARE_RPS") | >= 0.9 |"
row "| cache hit (wrk -t2 -c32) | $THUMBORA_RPS_hit req/s | nginx static $STATIC_RPS req/s | $(ratio "$THUMBORA_RPS_hit" "$STATIC_RPS") | >= 1.0 |"
row "| cache hit, median of $HIT_ROUNDS alternating rounds | | bare Pingora | $HIT_VS_BARE | >= 0.9 |"
row "| cache hit, median of $HIT_ROUNDS alternating rounds | | nginx static | $HIT_VS_STATIC | >= 1.0 |"
row "| site proxy (1 worker each; Thumbora's access log on, nginx's off) | $SITE_RPS req/s | nginx proxy_pass $NGINX_PROXY_RPS req/s | $(ratio "$SITE_RPS" "$NGINX_PROXY_RPS") | >= 1.0 |"
row "| site proxy (1 worker each, both access logs off) | $SITE_NOLOG_RPS req/s | nginx proxy_pass $NGINX_PROXY_RPS req/s | $(ratio "$SITE_NOLOG_RPS" "$NGINX_PROXY_RPS") | >= 1.0 |"
row "| site proxy, median of $SITE_ROUNDS alternating rounds (access logs off) | | nginx proxy_pass | $SITE_VS_NGINX | >= 1.0 |"
echo "results in $RESULTS"
