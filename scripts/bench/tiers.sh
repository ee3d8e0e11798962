#!/usr/bin/env bash
# Cache-tier benchmark: hit throughput and p99 from each tier, against nginx serving the same bytes
# as static files in the same run; restart-to-first-hit with a full disk tier; the disk budget's
# accuracy under churn. Everything on 127.0.0.1, every run bounded by DURATION.
#
#   scripts/bench/tiers.sh                  # DURATION=10 N=2000 by default
#
# What each row measures, and what it rules out:
#   memory   one hot URL: every request a memory hit (X-Cache: HIT memory).
#   disk     N distinct results cycled round robin with a 1 MiB memory tier (N x ~10 KB on disk):
#            the memory tier cannot hold them, so requests are disk hits (the share of disk hits is
#            read from the metrics and printed); no render: the origin is stopped first.
#   shared   the same N results cycled on a second node with no disk tier and a 1 MiB memory tier:
#            each is a local miss answered from the SeaweedFS bucket (HIT shared); the origin is
#            stopped, so nothing can render.
#   nginx    the same bytes: one file for the memory row, the N files for the disk row.
# Needs wrk and nginx (apt), SeaweedFS's weed (scripts/test-deps.sh installs it), Rust.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
N=${N:-2000}
OUT=${OUT:-$ROOT/bench-results/tiers}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

source scripts/bench/tools.sh
source scripts/test-deps.sh

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building (release)"
  cargo build --release --bin thumbora --example gen_sources 2>&1 | tail -1
fi
./target/release/examples/gen_sources "$OUT/src" >/dev/null
BIN=$ROOT/target/release/thumbora

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pids=()
# TERM first (an nginx master stops its workers on TERM; a KILL would leave them listening).
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_nginx() { # NAME ROOT PORT
  mkdir -p "$OUT/nginx-$1"
  cat > "$OUT/nginx-$1/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx-$1/nginx.pid;
error_log $OUT/nginx-$1/error.log warn;
events { worker_connections 1024; }
http { access_log off; sendfile on; server { listen 127.0.0.1:$3; root $2; } }
EOF
  $NGINX -c "$OUT/nginx-$1/nginx.conf" -p "$OUT/nginx-$1" &
  pids+=($!)
}

# ---- origin and bucket -------------------------------------------------------------------------
ORIGIN_PORT=$(free_port)
start_nginx origin "$OUT/src" "$ORIGIN_PORT"
ORIGIN_PID=${pids[-1]}
# weed derives each gRPC port as port + 10000 unless told: every port is chosen here.
S3_PORT=$(free_port); MASTER_PORT=$(free_port); VOLUME_PORT=$(free_port); FILER_PORT=$(free_port)
mkdir -p "$OUT/weed"
"$THUMBORA_WEED" -logdir="$OUT/weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$OUT/weed" \
  -master.port="$MASTER_PORT" -master.port.grpc="$(free_port)" -volume.port="$VOLUME_PORT" \
  -volume.port.grpc="$(free_port)" -filer -filer.port="$FILER_PORT" -filer.port.grpc="$(free_port)" \
  -s3 -s3.port="$S3_PORT" -s3.port.grpc="$(free_port)" -master.volumeSizeLimitMB=64 -master.telemetry=false -volume.max=200 \
  -s3.port.iceberg=0 -s3.port.lance=0 -master.electionTimeout=1s >"$OUT/weed/out.log" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 120); do curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/bench" 2>/dev/null && { up=1; break; }; sleep 0.5; done
[ "$up" = 1 ] || { echo "SeaweedFS did not start: $OUT/weed" >&2; exit 1; }
for _ in $(seq 1 60); do
  curl -fsS -o /dev/null -X PUT --data-binary x "http://127.0.0.1:$S3_PORT/bench/warm" 2>/dev/null && break; sleep 0.5
done

# ---- two nodes -----------------------------------------------------------------------------------
node() { # NAME PORT METRICS_PORT MEMORY_BYTES DISK_BYTES(0: none) SHARED(yes|no)
  local disk="    disk: null" shared="    shared: null"
  [ "$5" != 0 ] && disk="    disk: {dir: $OUT/$1-disk, max_bytes: $5}"
  [ "$6" = yes ] && shared="    shared:
      store_unsafe: true
      s3: {endpoint: \"http://127.0.0.1:$S3_PORT\", bucket: bench, prefix: r, timeout_ms: 2000}"
  cat > "$OUT/$1.yaml" <<EOF
threads: 2
pid_file: $OUT/$1.pid
upgrade_sock: $OUT/$1.sock
thumbora:
  listen: ["127.0.0.1:$2"]
  sources: {loader: http, allow_private_networks: true, cache_bytes: 0}
  access_log: {enabled: false}
  metrics: {listen: "127.0.0.1:$3"}
  cache:
    max_bytes: $4
$disk
$shared
EOF
  [ "${7:-}" = conf-only ] && return
  RUST_LOG=warn "$BIN" -c "$OUT/$1.yaml" >>"$OUT/$1.log" 2>&1 &
  NODE_PID=$!
  pids+=($NODE_PID)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$2/healthcheck" && break; sleep 0.1; done
}
A_PORT=$(free_port); A_METRICS=$(free_port); B_PORT=$(free_port); B_METRICS=$(free_port)
node a "$A_PORT" "$A_METRICS" 268435456 1073741824 yes
A_PID=$NODE_PID

# N distinct results (300x200 of the ten 2K sources at N widths), rendered once on A: memory,
# disk and the bucket; the same bytes saved for nginx.
echo "== rendering $N results on node A"
mkdir -p "$OUT/static"
: > "$OUT/paths.txt"
for i in $(seq 0 $((N - 1))); do
  p="/unsafe/$((200 + i / 10))x200/127.0.0.1:$ORIGIN_PORT/2k_$((i % 10)).jpg"
  echo "$p" >> "$OUT/paths.txt"
done
xargs -P 4 -I{} curl -fsS -o /dev/null "http://127.0.0.1:$A_PORT{}" < "$OUT/paths.txt"
i=0
while read -r p; do
  curl -fsS -o "$OUT/static/r$i.jpg" "http://127.0.0.1:$A_PORT$p"; i=$((i + 1))
done < "$OUT/paths.txt"
cp "$OUT/static/r0.jpg" "$OUT/static/hot.jpg"
HOT=$(head -1 "$OUT/paths.txt")
sleep 6 # disk writer and the index save
kill -TERM "$ORIGIN_PID" 2>/dev/null || true # nothing may render from here on
STATIC_PORT=$(free_port)
start_nginx static "$OUT/static" "$STATIC_PORT"
sleep 0.5

run_wrk() { # NAME BASE (the paths in $HOT)
  local name=$1 base=$2
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/hot.lua "$base" >"$OUT/wrk-$name.txt" 2>&1 || true
  local rps p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$name.txt")
  p99=$(awk '$1=="99%" {print $2}' "$OUT/wrk-$name.txt")
  errs=$(awk -F= '/errors_non2xx|errors_socket/ {s+=$2} END {print s+0}' "$OUT/wrk-$name.txt")
  echo "${rps:-0} ${p99:--} ${errs:-0}"
}
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }

RESULTS="$OUT/results.md"
row() { echo "$*" | tee -a "$RESULTS"; }
row "machine: $(nproc) cores, $(awk '/model name/ {sub(/.*: /,""); print; exit}' /proc/cpuinfo); wrk -t2 -c$CONNS ${DURATION}s"
row ""
row "| tier | Thumbora req/s | p99 | errors | nginx static, same bytes | ratio |"
row "|---|---|---|---|---|---|"

NG_PATHS=$(seq 0 $((N - 1)) | sed 's|^|/r|; s|$|.jpg|' | tr '\n' ' ')
ALL=$(tr '\n' ' ' < "$OUT/paths.txt")

read -r nrps np99 _ < <(HOT="/hot.jpg" run_wrk nginx-hot "http://127.0.0.1:$STATIC_PORT")
read -r rps p99 errs < <(HOT="$HOT" run_wrk memory "http://127.0.0.1:$A_PORT")
row "| memory (1 hot URL) | $rps | $p99 | $errs | $nrps (p99 $np99) | $(python3 -c "print(f'{$rps/$nrps:.2f}')") |"

# The disk row: node A again with a 1 MiB memory tier (restarted on the same disk).
kill -TERM "$A_PID"; wait "$A_PID" 2>/dev/null || true
node a "$A_PORT" "$A_METRICS" 1048576 1073741824 yes conf-only
started=$(date +%s.%N)
RUST_LOG=warn "$BIN" -c "$OUT/a.yaml" >>"$OUT/a.log" 2>&1 &
A_PID=$!; pids+=($A_PID)
for _ in $(seq 1 4000); do
  curl -fsS -o /dev/null -D "$OUT/first-hit.txt" "http://127.0.0.1:$A_PORT$HOT" 2>/dev/null && break; sleep 0.005
done
first_hit=$(python3 -c "import time; print(f'{(time.time()-$started)*1000:.0f}')")
files=$(find "$OUT/a-disk" -path '*/??/*' -type f | wc -l)
before_disk=$(metric "$A_METRICS" 'thumbora_cache_hits_total{tier="disk"}')
before_mem=$(metric "$A_METRICS" 'thumbora_cache_hits_total{tier="memory"}')
read -r nrps np99 _ < <(HOT="$NG_PATHS" run_wrk nginx-n "http://127.0.0.1:$STATIC_PORT")
read -r rps p99 errs < <(HOT="$ALL" run_wrk disk "http://127.0.0.1:$A_PORT")
disk_hits=$(( $(metric "$A_METRICS" 'thumbora_cache_hits_total{tier="disk"}') - before_disk ))
mem_hits=$(( $(metric "$A_METRICS" 'thumbora_cache_hits_total{tier="memory"}') - before_mem ))
row "| disk ($N URLs round robin, 1 MiB memory; $disk_hits disk / $mem_hits memory hits) | $rps | $p99 | $errs | $nrps (p99 $np99, $N files) | $(python3 -c "print(f'{$rps/$nrps:.2f}')") |"

node b "$B_PORT" "$B_METRICS" 1048576 0 yes
before=$(metric "$B_METRICS" 'thumbora_cache_hits_total{tier="shared"}')
read -r rps p99 errs < <(HOT="$ALL" run_wrk shared "http://127.0.0.1:$B_PORT")
shared_hits=$(( $(metric "$B_METRICS" 'thumbora_cache_hits_total{tier="shared"}') - before ))
row "| shared (node B: $N URLs, 1 MiB memory, no disk; $shared_hits shared hits) | $rps | $p99 | $errs | $nrps (p99 $np99, $N files) | $(python3 -c "print(f'{$rps/$nrps:.2f}')") |"
row ""
row "restart to first hit, $files results on disk: ${first_hit} ms from exec to the first \`$(awk -F': ' 'tolower($1)=="x-cache" {gsub(/\r/,"",$2); print $2}' "$OUT/first-hit.txt")\` response"

# ---- budget under churn: the same N results into a disk tier of a third of their size ----------
total=$(du -sb "$OUT/static" | awk '{print $1}')
budget=$(( total / 3 ))
[ "$budget" -lt 1048576 ] && budget=1048576
kill -TERM "$A_PID" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$A_PID" 2>/dev/null || break; sleep 0.1; done
rm -rf "$OUT/a-disk"
start_nginx origin2 "$OUT/src" "$ORIGIN_PORT"
node a "$A_PORT" "$A_METRICS" 1048576 "$budget" no
A_PID=$NODE_PID
xargs -P 4 -I{} curl -fsS -o /dev/null "http://127.0.0.1:$A_PORT{}" < "$OUT/paths.txt"
sleep 6
used=$(find "$OUT/a-disk" -path '*/??/*' -type f -printf '%s\n' | awk '{s+=int(($1+4095)/4096)*4096} END {print s+0}')
du_k=$(du -sk "$OUT/a-disk" | awk '{print $1}')
row "budget under churn: wrote $total bytes (3x) into a $budget-byte disk tier: files take $used bytes in 4 KiB blocks ($(python3 -c "print(f'{$used/$budget*100:.1f}')") % of the budget); du -sk of the whole directory (index, bans, shard directories): ${du_k} KiB"
