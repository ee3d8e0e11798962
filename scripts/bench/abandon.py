#!/usr/bin/env python3
"""Clients that leave early must cost no decode (issue 13, item 5).

    python3 scripts/bench/abandon.py THUMBORA_HOST:PORT METRICS_HOST:PORT ORIGIN_HOST:PORT \
        [--clients 32] [--requests 256] [--patience 0.5] [--source 12mp_0.jpg]

Each of CLIENTS threads sends distinct 300x200 misses of SOURCE (a unique query on the source URL,
so no cache answers), one connection per request, waits PATIENCE seconds for the answer and
closes the connection if none came; REQUESTS in all. Then it reads Thumbora's metrics and prints
how many requests were answered, how many abandoned, and how many decodes and origin fetches
Thumbora ran for them: decodes should equal the answered requests plus the renders already running
when their client left (at most one per render thread), not the requests sent.
"""
import argparse, re, socket, threading, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("server"); p.add_argument("metrics"); p.add_argument("origin")
p.add_argument("--clients", type=int, default=32)
p.add_argument("--requests", type=int, default=256)
p.add_argument("--patience", type=float, default=0.5)
p.add_argument("--source", default="12mp_0.jpg")
a = p.parse_args()

def metric(text, pattern):
    return sum(float(m) for m in re.findall(pattern + r" ([0-9.e+]+)\n", text))

def scrape():
    text = urllib.request.urlopen(f"http://{a.metrics}/metrics", timeout=10).read().decode()
    return {
        "decodes": metric(text, r'thumbora_render_stage_duration_seconds_count\{stage="decode"\}'),
        "fetches": metric(text, r"thumbora_origin_fetches_total"),
        "answered": metric(text, r'thumbora_requests_total\{route="image",status="200"\}'),
        "left": metric(text, r'thumbora_requests_total\{route="image",status="499"\}'),
    }

host, port = a.server.rsplit(":", 1)
counter = iter(range(a.requests))
lock = threading.Lock()
answered = abandoned = 0
run = int(time.time() * 1000)

def client():
    global answered, abandoned
    while True:
        with lock:
            n = next(counter, None)
        if n is None:
            return
        path = f"/unsafe/300x200/{a.origin}/{a.source}%3Fabandon%3D{run}-{n}"
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {a.server}\r\n\r\n".encode())
        s.settimeout(a.patience)
        try:
            got = s.recv(64).startswith(b"HTTP/1.1 200")
        except socket.timeout:
            got = False
        s.close()
        with lock:
            if got:
                answered += 1
            else:
                abandoned += 1

before = scrape()
threads = [threading.Thread(target=client) for _ in range(a.clients)]
for t in threads: t.start()
for t in threads: t.join()
time.sleep(3)  # let renders already running finish and be counted
after = scrape()
d = {k: int(after[k] - before[k]) for k in after}
print(f"{a.requests} requests, {a.clients} clients, patience {a.patience}s: answered {answered}, abandoned {abandoned}")
print(f"Thumbora: {d['answered']} answered, {d['left']} counted as left (499), "
      f"{d['decodes']} decodes, {d['fetches']} origin fetches")
print(f"decodes for abandoned requests: {d['decodes'] - answered} of {abandoned}")
