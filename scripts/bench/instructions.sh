#!/usr/bin/env bash
# Instructions per request, counted by callgrind, for the two paths whose cost is the proxy's own
# rather than the renderer's, each beside its anchor:
#   hit   Thumbora answering one hot URL from its memory cache (two threads), and the bare
#         Pingora floor (examples/bare_pingora.rs: the same bytes written from request_filter);
#   site  an app request through Thumbora's `site` proxy (one thread), and nginx's proxy_pass
#         (one worker, upstream keep-alive, setting the same four forwarding headers Thumbora
#         sets), both to the same nginx serving the same bytes.
# Instruction counts do not depend on what else the machine is doing, so this compares two builds
# (or a change) where a wrk run on a shared 2-core machine cannot.
#
#   scripts/bench/instructions.sh            # N=1000 requests over one keep-alive connection
#   N=5000 OUT=/tmp/ins scripts/bench/instructions.sh
#
# Each server runs twice under callgrind, once for 200 requests and once for 200+N; the
# difference divided by N is the cost of one request (start-up, the first render and shutdown
# cancel out). Counted: everything in the server process, user space only (the kernel's share,
# about 40% of a hit's CPU time in perf, is not in these figures). Thumbora's access log is on
# (to a file), nginx's is off, as in load.sh. Everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000}
OUT=${OUT:-$(pwd)/bench-results/instructions}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
source scripts/bench/tools.sh
if ! command -v valgrind >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq valgrind >/dev/null
fi

echo "== building (release)" >&2
cargo build --release --bin thumbora --example bare_pingora 2>&1 | tail -1 >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
  for _ in $(seq 1 600); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return
    sleep 0.1
  done
  echo "port $1 never opened" >&2; exit 1
}

# requests PORT COUNT PATH [BODY_OUT]: COUNT GETs of PATH over one keep-alive connection, each a 200.
requests() {
  python3 -c '
import http.client, sys
port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
body = b""
for _ in range(count):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, r.status
if len(sys.argv) > 4:
    open(sys.argv[4], "wb").write(body)
' "$@"
}

# measure NAME PORT PATH COUNT CMD...: the user-space instructions (Ir) CMD spends from start to
# exit serving COUNT requests for PATH on PORT. SIGINT stops Pingora; nginx without its master
# process stops on SIGQUIT.
measure() {
  local name=$1 port=$2 path=$3 count=$4; shift 4
  rm -f "$OUT/$name-$count.out"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name-$count.out" "$@" >"$OUT/$name-$count.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  requests "$port" "$count" "$path"
  kill -INT "$pid" 2>/dev/null || true
  sleep 0.5
  kill -QUIT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$OUT/$name-$count.out"
}

# thumbora_conf PORT THREADS [EXTRA_YAML]: file loader on samples/, memory cache, access log to a file.
thumbora_conf() {
  cat > "$OUT/thumbora.yaml" <<EOF
threads: $2
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
${3:-}
EOF
}

# nginx_conf NAME HTTP_BODY MASTER_PROCESS: an nginx config with one worker.
nginx_conf() {
  cat > "$OUT/nginx-$1.conf" <<EOF
worker_processes 1;
daemon off;
master_process $3;
pid $OUT/nginx-$1.pid;
error_log $OUT/nginx-$1.err warn;
events { worker_connections 1024; }
http { access_log off; $2 }
EOF
}

HIT=/unsafe/300x200/thumbora-sample.jpg
# The hit's body: the bare server's answer and the app's page.
PORT=$(free_port); thumbora_conf "$PORT" 2
./target/release/thumbora -c "$OUT/thumbora.yaml" >"$OUT/plain.log" 2>&1 &
pid=$!; wait_port "$PORT"; requests "$PORT" 2 "$HIT" "$OUT/body.jpg"; kill -INT "$pid"; wait "$pid" 2>/dev/null || true
mkdir -p "$OUT/app"; cp "$OUT/body.jpg" "$OUT/app/page.jpg"

APP_PORT=$(free_port)
nginx_conf app "sendfile on; server { listen 127.0.0.1:$APP_PORT; root $OUT/app; }" on
$NGINX -c "$OUT/nginx-app.conf" -p "$OUT" >/dev/null 2>&1 &
APP_PID=$!
trap 'kill $APP_PID 2>/dev/null || true' EXIT
wait_port "$APP_PORT"
SITE_YAML="  site:
    upstreams: [\"127.0.0.1:$APP_PORT\"]
    image_prefix: /img
    health_check_seconds: 0"

declare -A IR
for count in 200 $((200 + N)); do
  PORT=$(free_port); thumbora_conf "$PORT" 2
  IR[thumbora-$count]=$(measure thumbora "$PORT" "$HIT" "$count" ./target/release/thumbora -c "$OUT/thumbora.yaml")
  PORT=$(free_port)
  IR[bare-$count]=$(measure bare "$PORT" "$HIT" "$count" ./target/release/examples/bare_pingora "127.0.0.1:$PORT" "$OUT/body.jpg" 2)
  PORT=$(free_port); thumbora_conf "$PORT" 1 "$SITE_YAML"
  IR[site-$count]=$(measure site "$PORT" /page.jpg "$count" ./target/release/thumbora -c "$OUT/thumbora.yaml")
  PORT=$(free_port)
  nginx_conf proxy "upstream app { server 127.0.0.1:$APP_PORT; keepalive 32; }
    server { listen 127.0.0.1:$PORT; location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$host; } }" off
  IR[nginx-$count]=$(measure nginx "$PORT" /page.jpg "$count" "$NGINX" -c "$OUT/nginx-proxy.conf" -p "$OUT")
done

per() { echo $(( (IR[$1-$((200 + N))] - IR[$1-200]) / N )); }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
T=$(per thumbora); B=$(per bare); S=$(per site); X=$(per nginx)
echo "| path ($N requests, instructions per request, user space) | Thumbora | anchor | anchor / Thumbora |"
echo "|---|---|---|---|"
echo "| memory hit | $T | bare Pingora $B | $(ratio "$B" "$T") |"
echo "| site proxy, one thread | $S | nginx proxy_pass, one worker, $X | $(ratio "$X" "$S") |"
echo "profiles: callgrind_annotate $OUT/NAME-$((200 + N)).out (NAME: thumbora, bare, site, nginx)" >&2
