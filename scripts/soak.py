#!/usr/bin/env python3
"""The soak: a release build under mixed load for a long time (20 minutes by default), with the
CPU saturated. Cache hits, misses (each a new size), hostile sources, requests abandoned by their
clients, clients trickling their request heads, and a silent origin, all at once. Every minute it
records the server's resident memory, open descriptors, threads, and the latency of hits and
misses; at the end it says whether anything grew after the warm-up and whether any request that
should have succeeded failed.

    scripts/soak.sh                              # builds, then DURATION=1200 by default
    scripts/soak.py --binary BIN --inputs DIR --duration SECONDS

Everything runs on 127.0.0.1; every loop ends with the run.
"""

import argparse
import http.server
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

WARMUP_MINUTES = 3


class OriginHandler(http.server.SimpleHTTPRequestHandler):
    """Files from the inputs directory; /silent/... never answers (for 30 s)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/silent/"):
            time.sleep(30)
            return
        super().do_GET()


class Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stats:
    """Latencies and outcomes per minute, by kind of request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.latency = {}
        self.counts = {}
        self.failures = []

    def record(self, kind, seconds, ok, detail=""):
        with self.lock:
            self.latency.setdefault(kind, []).append(seconds)
            key = (kind, "ok" if ok else "failed")
            self.counts[key] = self.counts.get(key, 0) + 1
            if not ok:
                self.failures.append(f"{kind}: {detail}")

    def take(self):
        with self.lock:
            snapshot = (self.latency, self.counts, self.failures)
            self.reset()
            return snapshot


def get(url, timeout=30):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status, time.monotonic() - started
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - started
    except Exception as e:
        return f"{type(e).__name__}", time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--inputs", required=True, help="directory written by examples/hostile.rs")
    parser.add_argument("--duration", type=int, default=1200, help="seconds")
    args = parser.parse_args()

    origin = Origin(("127.0.0.1", 0), lambda *a, **k: OriginHandler(*a, directory=args.inputs, **k))
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    o = f"127.0.0.1:{origin.server_address[1]}"

    work = tempfile.TemporaryDirectory()
    port = free_port()
    conf = os.path.join(work.name, "thumbora.yaml")
    with open(conf, "w") as f:
        f.write(f"pid_file: {work.name}/pid\nupgrade_sock: {work.name}/sock\n"
                f"thumbora:\n  listen: [\"127.0.0.1:{port}\"]\n"
                "  sources:\n    loader: http\n    allow_private_networks: true\n")
    server = subprocess.Popen([args.binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "RUST_LOG": "error"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthcheck", timeout=1).read()
            break
        except Exception:
            time.sleep(0.05)

    stats = Stats()
    stop = threading.Event()
    miss_counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def next_miss():
        with counter_lock:
            return next(miss_counter)

    hot = [f"/unsafe/{w}x{h}/{o}/photo.jpg" for w, h in [(100, 75), (200, 150), (300, 200), (120, 120), (640, 480)]]
    hot += [f"/unsafe/fit-in/{s}x{s}/filters:format(webp)/{o}/photo.jpg" for s in (128, 256)]

    def hits():
        while not stop.is_set():
            status, took = get(base + random.choice(hot))
            stats.record("hit", took, status == 200, f"{status}")

    def misses():
        # Each a size never asked before: a fetch (or the originals cache) and a full render.
        while not stop.is_set():
            n = next_miss()
            path = f"/unsafe/{200 + n % 1400}x{150 + n % 1000}/filters:quality({50 + n % 40})/{o}/photo.jpg"
            status, took = get(base + path)
            stats.record("miss", took, status == 200, f"{status} {path}")

    many_marks = ":".join(f"watermark({o}/m{i}.png,0,0,0)" for i in range(30))
    hostile = [
        (f"/unsafe/4x4/{o}/icc-bomb.png", {200}),
        (f"/unsafe/4x4/{o}/text-bomb.png", {200}),
        (f"/unsafe/100x100/{o}/deep.png", {200, 400, 503}),
        (f"/unsafe/100x100/{o}/declared-75mp.jpg", {200, 503}),
        (f"/unsafe/200x200/{o}/damaged-64mp.jpg", {200, 503}),
        (f"/unsafe/100x100/{o}/scans.jpg", {400}),
        (f"/unsafe/10x10/{o}/frames.gif", {400}),
        (f"/unsafe/2000x2000/filters:blur(150)/{o}/photo.jpg", {400}),
        (f"/unsafe/200x150/filters:{many_marks}/{o}/photo.jpg", {400}),
        (f"/unsafe/210x150/filters:watermark({o}/huge-mark.png,0,0,50)/{o}/photo.jpg", {200, 400, 503}),
    ]

    def hostiles():
        while not stop.is_set():
            path, expected = random.choice(hostile)
            # A new quality each time, so that the result cache never answers.
            quality = f"quality({random.randint(1, 99)})"
            if "filters:" in path:
                path = path.replace("filters:", f"filters:{quality}:", 1)
            else:
                path = path.replace(f"/{o}/", f"/filters:{quality}/{o}/", 1)
            status, took = get(base + path)
            stats.record("hostile", took, status in expected, f"{status} {path}")
            stop.wait(0.5)

    def abandoned():
        while not stop.is_set():
            n = next_miss()
            path = f"/unsafe/{1500 - n % 100}x1100/filters:blur(40)/{o}/photo.jpg"
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                stop.wait(0.1)
                s.close()
            except OSError:
                pass
            stop.wait(1.0)

    def silent_origin():
        while not stop.is_set():
            path = f"/unsafe/100x100/{o}/silent/{next_miss()}.jpg"
            status, took = get(base + path, timeout=40)
            stats.record("silent-origin", took, status == 504, f"{status}")

    def slowloris():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthcheck HTTP/1.1\r\n")
                for i in range(30):
                    if stop.wait(2):
                        break
                    s.sendall(f"X-Slow-{i}: 1\r\n".encode())
                s.close()
            except OSError:
                pass  # the head deadline closed it

    threads = [threading.Thread(target=f, daemon=True) for f in
               [hits, hits, misses, misses, misses, hostiles, abandoned, silent_origin, slowloris, slowloris]]
    for t in threads:
        t.start()

    pid = server.pid
    rows = []
    started = time.monotonic()
    minutes = max(1, args.duration // 60)
    for minute in range(1, minutes + 1):
        stop.wait(max(0.0, started + minute * 60 - time.monotonic()))
        latency, counts, failures = stats.take()
        pct = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) >= 2 else 0.0
        row = {
            "minute": minute,
            "rss_mib": status_kib(pid, "VmRSS:") // 1024,
            "peak_mib": status_kib(pid, "VmHWM:") // 1024,
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": status_kib(pid, "Threads:"),
            "cpu": cpu_seconds(pid),
            "hit_p50": pct(latency.get("hit", []), 50), "hit_p99": pct(latency.get("hit", []), 99),
            "miss_p50": pct(latency.get("miss", []), 50), "miss_p99": pct(latency.get("miss", []), 99),
            "hits": counts.get(("hit", "ok"), 0), "misses": counts.get(("miss", "ok"), 0),
            "hostile": counts.get(("hostile", "ok"), 0),
            "failed": sum(v for (k, r), v in counts.items() if r == "failed"),
            "failures": failures[:5],
        }
        rows.append(row)
        print(f"min {minute:3d}: RSS {row['rss_mib']:4d} MiB (peak {row['peak_mib']}), fds {row['fds']:4d}, "
              f"threads {row['threads']}, hits {row['hits']:6d} p50 {row['hit_p50']:.1f} p99 {row['hit_p99']:.1f} ms, "
              f"misses {row['misses']:5d} p50 {row['miss_p50']:.0f} p99 {row['miss_p99']:.0f} ms, "
              f"hostile ok {row['hostile']}, failed {row['failed']}", flush=True)
        for failure in row["failures"]:
            print(f"         failed: {failure}", flush=True)
    stop.set()
    cpu_total = cpu_seconds(pid)
    server.kill()
    server.wait(timeout=10)
    origin.shutdown()

    after = [r for r in rows if r["minute"] > WARMUP_MINUTES] or rows
    rss_growth = after[-1]["rss_mib"] - after[0]["rss_mib"]
    fd_growth = after[-1]["fds"] - after[0]["fds"]
    failed = sum(r["failed"] for r in rows)
    print(f"\nafter warm-up: RSS {after[0]['rss_mib']} -> {after[-1]['rss_mib']} MiB ({rss_growth:+d}), "
          f"fds {after[0]['fds']} -> {after[-1]['fds']} ({fd_growth:+d}), max RSS {max(r['rss_mib'] for r in rows)} MiB, "
          f"peak {rows[-1]['peak_mib']} MiB; CPU {cpu_total:.0f} s in {minutes} min; failed requests: {failed}")
    grew = rss_growth > max(32, after[0]["rss_mib"] // 10) or fd_growth > 20
    sys.exit(1 if grew or failed else 0)


if __name__ == "__main__":
    main()
