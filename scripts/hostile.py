#!/usr/bin/env python3
"""Hostile inputs against a release build: for each one, a fresh server on the shipped limits
(loopback origins allowed), the request(s), and what they cost: status, wall time, the server's
CPU time (including work after the answer) and its peak resident memory.

    scripts/hostile.sh                      # builds, then runs this on target/release/thumbora
    scripts/hostile.py --binary BIN --inputs DIR [--check]

`--check` exits non-zero when a case misses the bar: answered within 3 s, at most 3 s of CPU,
peak RSS under 600 MiB. Everything runs on 127.0.0.1; every wait is bounded.
"""

import argparse
import concurrent.futures
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

BAR_SECONDS, BAR_CPU, BAR_MIB = 3.0, 3.0, 600


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True


def start_origin(directory):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=directory, **k)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = Origin(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


class Thumbora:
    def __init__(self, binary, extra_yaml=""):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        conf = os.path.join(self.dir.name, "thumbora.yaml")
        with open(conf, "w") as f:
            f.write(
                f"threads: 2\npid_file: {self.dir.name}/pid\nupgrade_sock: {self.dir.name}/sock\n"
                f"thumbora:\n  listen: [\"127.0.0.1:{self.port}\"]\n"
                "  sources:\n    loader: http\n    allow_private_networks: true\n" + extra_yaml
            )
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_LOG": "error"})
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url("/healthcheck"), timeout=1).read()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("thumbora did not start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def peak_mib(self):
        return proc_status_kib(self.proc.pid, "VmHWM:") // 1024

    def rss_mib(self):
        return proc_status_kib(self.proc.pid, "VmRSS:") // 1024

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.dir.cleanup()


def get(url, timeout=30):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception as e:
        status = f"error: {type(e).__name__}"
    return status, time.monotonic() - started


def abandon(port, path, after):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(after)
    s.close()


def run_case(binary, origin, name, paths, extra_yaml="", abandon_after=None):
    server = Thumbora(binary, extra_yaml)
    try:
        paths = [p.format(o=origin) for p in paths]
        cpu_before = server.cpu()
        started = time.monotonic()
        if abandon_after is not None:
            for p in paths:
                abandon(server.port, p, abandon_after)
            statuses, slowest = ["left"], time.monotonic() - started
        else:
            with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
                results = list(pool.map(lambda p: get(server.url(p)), paths))
            statuses = sorted({str(s) for s, _ in results})
            slowest = max(t for _, t in results)
        # Work that goes on after the answers (or after the clients left) counts too.
        time.sleep(1.5)
        cpu = server.cpu() - cpu_before
        return {"case": name, "status": ",".join(statuses), "seconds": slowest, "cpu": cpu,
                "peak_mib": server.peak_mib(), "idle_rss_mib": server.rss_mib()}
    finally:
        server.stop()


def cases(o):
    many_marks = ":".join(f"watermark({o}/m{i}.png,0,0,0)" for i in range(30))
    many_filters = ":".join(["brightness(1)"] * 500)
    kernel = ";".join(["1"] * (41 * 41))
    return [
        ("PNG profile bomb (600 MiB inflated)", ["/unsafe/4x4/{o}/icc-bomb.png"], ""),
        ("PNG text bomb (8 x 64 MiB)", ["/unsafe/4x4/{o}/text-bomb.png"], ""),
        ("64 MP 16-bit PNG", ["/unsafe/100x100/{o}/deep.png"], ""),
        ("progressive JPEG declaring 75 MP, 2 at once",
         ["/unsafe/100x100/{o}/declared-75mp.jpg", "/unsafe/101x100/{o}/declared-75mp.jpg"], ""),
        ("damaged JPEG declaring 64 MP, 3 at once",
         [f"/unsafe/{200 + i}x200/{{o}}/damaged-64mp.jpg" for i in range(3)], ""),
        ("JPEG with 1000 scans", ["/unsafe/100x100/{o}/scans.jpg"], ""),
        ("75 MP JPEG with 64 scans (at the limit)", ["/unsafe/100x100/{o}/scans-64.jpg"], ""),
        ("GIF: 200 frames of 2000x2000 on a 1x1 screen", ["/unsafe/10x10/{o}/frames.gif"], ""),
        ("blur(150) on 2000x2000", ["/unsafe/2000x2000/filters:blur(150)/{o}/photo.jpg"], ""),
        ("convolution 41x41 on 2000x2000", [f"/unsafe/2000x2000/filters:convolution({kernel},41,false)/{{o}}/photo.jpg"], ""),
        ("blur(150) on 1.5 MP (under the cost cap)", ["/unsafe/1500x1000/filters:blur(150)/{o}/photo.jpg"], ""),
        ("AVIF of 16 MP upscaled from 1.9 MP", ["/unsafe/fit-in/4800x4800/filters:upscale():format(avif)/{o}/photo.jpg"], ""),
        ("GIF: 100 frames of 1000x1000 re-encoded", ["/unsafe/1000x1000/{o}/anim.gif"], ""),
        ("500 filters", [f"/unsafe/200x150/filters:{many_filters}/{{o}}/photo.jpg"], ""),
        ("30 watermark URLs", [f"/unsafe/200x150/filters:{many_marks}/{{o}}/photo.jpg"], ""),
        ("64 MP watermark, 2 at once",
         [f"/unsafe/{200 + i}x150/filters:watermark({{o}}/huge-mark.png,0,0,50)/{{o}}/photo.jpg" for i in range(2)], ""),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--inputs", required=True, help="directory written by examples/hostile.rs")
    parser.add_argument("--check", action="store_true", help="exit 1 when a case misses the bar")
    parser.add_argument("--no-extra-config", action="store_true",
                        help="run every case on the plain configuration (for builds older than its keys)")
    args = parser.parse_args()
    origin_server = start_origin(args.inputs)
    o = f"127.0.0.1:{origin_server.server_address[1]}"
    extra_ok = not args.no_extra_config
    rows = [run_case(args.binary, o, name, paths, extra if extra_ok else "") for name, paths, extra in cases(o)]
    # Four heavy renders whose clients leave after 150 ms (no deadline to stop them).
    heavy = [f"/unsafe/{1600 - i}x1200/filters:blur(60):blur(60):blur(60)/{{o}}/photo.jpg" for i in range(4)]
    rows.append(run_case(args.binary, o, "4 heavy renders abandoned after 150 ms", heavy,
                         "  render:\n    deadline_ms: 60000\n" if extra_ok else "", abandon_after=0.15))
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  {'status':>10}  {'answer s':>8}  {'CPU s':>6}  {'peak MiB':>8}  {'idle MiB':>8}")
    failed = False
    for r in rows:
        ok = r["seconds"] <= BAR_SECONDS and r["cpu"] <= BAR_CPU and r["peak_mib"] < BAR_MIB
        failed |= not ok
        print(f"{r['case']:<{width}}  {r['status']:>10}  {r['seconds']:8.2f}  {r['cpu']:6.2f}  {r['peak_mib']:8d}  "
              f"{r['idle_rss_mib']:8d}{'' if ok else '  <- over the bar'}")
    origin_server.shutdown()
    if args.check and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
