#!/usr/bin/env bash
# Instructions per cache hit, counted by callgrind: Thumbora answering one hot URL from its
# memory cache, beside the bare Pingora floor (examples/bare_pingora.rs, the same bytes written
# from request_filter). Instruction counts do not depend on what else the machine is doing, so
# this compares two builds (or a change) where a wrk run on a shared 2-core machine cannot.
#
#   scripts/bench/hit-instructions.sh            # N=2000 hits over one keep-alive connection
#   N=5000 OUT=/tmp/hits scripts/bench/hit-instructions.sh
#
# Each server runs twice under callgrind, once for 200 hits and once for 200+N; the difference
# divided by N is the cost of one hit (start-up, the first render and shutdown cancel out). What
# is counted: everything in the server process, user space only (the kernel's share of a hit,
# about 40% of its CPU time in perf, is not in these figures). Everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-2000}
OUT=${OUT:-$(pwd)/bench-results/hit-instructions}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
source scripts/deps.sh
command -v valgrind >/dev/null 2>&1 || { sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"; $sudo_cmd apt-get install -y -qq valgrind >/dev/null; }

echo "== building (release)" >&2
cargo build --release --bin thumbora --example bare_pingora 2>&1 | tail -1 >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
URL=/unsafe/300x200/thumbora-sample.jpg

# hits PORT COUNT [BODY_OUT]: COUNT GETs of $URL over one keep-alive connection (each must be a 200).
hits() {
  python3 - "$@" <<'EOF'
import http.client, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
body = b""
for _ in range(count):
    c.request("GET", "/unsafe/300x200/thumbora-sample.jpg")
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, r.status
if len(sys.argv) > 3:
    open(sys.argv[3], "wb").write(body)
EOF
}

wait_port() { for _ in $(seq 1 600); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# measure NAME COUNT CMD...: total user-space instructions (Ir) of CMD serving COUNT hits.
measure() {
  local name=$1 count=$2; shift 2
  local port=$PORT
  rm -f "$OUT/$name-$count.out"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name-$count.out" "$@" >"$OUT/$name-$count.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  hits "$port" "$count"
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$OUT/$name-$count.out"
}

# ---- Thumbora: file loader on samples/, memory cache, default access log (to a file) ---------
thumbora_conf() {
  cat > "$OUT/thumbora.yaml" <<EOF
threads: 2
pid_file: $OUT/thumbora.pid
upgrade_sock: $OUT/thumbora-upgrade.sock
grace_period_seconds: 0
graceful_shutdown_timeout_seconds: 1
thumbora:
  listen: ["127.0.0.1:$1"]
  sources:
    loader: file
    file_root: $(pwd)/samples
  access_log:
    file: $OUT/access.log
EOF
}
PORT=$(free_port); thumbora_conf "$PORT"
# The hit's body, for the bare server.
./target/release/thumbora -c "$OUT/thumbora.yaml" >"$OUT/plain.log" 2>&1 &
pid=$!; wait_port "$PORT"; hits "$PORT" 2 "$OUT/body.jpg"; kill -INT "$pid"; wait "$pid" 2>/dev/null || true

declare -A IR
for count in 200 $((200 + N)); do
  PORT=$(free_port); thumbora_conf "$PORT"
  IR[thumbora-$count]=$(measure thumbora "$count" ./target/release/thumbora -c "$OUT/thumbora.yaml")
  PORT=$(free_port)
  IR[bare-$count]=$(measure bare "$count" ./target/release/examples/bare_pingora "127.0.0.1:$PORT" "$OUT/body.jpg" 2)
done
per() { echo $(( (IR[$1-$((200 + N))] - IR[$1-200]) / N )); }
T=$(per thumbora); B=$(per bare)
echo "| server | instructions per hit (user space, callgrind, $N hits) |"
echo "|---|---|"
echo "| thumbora (memory hit, access log on) | $T |"
echo "| bare Pingora (request_filter writes the bytes) | $B |"
echo "| ratio bare/thumbora | $(python3 -c "print(f'{$B/$T:.2f}')") |"
echo "profiles: callgrind_annotate $OUT/thumbora-$((200 + N)).out" >&2
