#!/usr/bin/env python3
"""Records what real thumbor 7.8 answers for every line of urls.txt.

    /opt/thumbor-venv/bin/python scripts/compat/record.py [--origin-port 8901] [--only REGEX]
        [--out tests/fixtures/compat/expected.json] [--log-report /tmp/thumbor-odd.txt]
        [--thumbor /opt/thumbor-venv/bin/python] [--keep-conf DIR] [--conf 'MAX_WIDTH = 500' ...]

Starts origin.py (127.0.0.1:--origin-port) and thumbor (through thumbor_guarded.py,
which keeps name resolution on loopback) on a free port with the config below,
sends each corpus line sequentially and writes expected.json (a JSON list, one
object per line of urls.txt, stable key order, no dates or ETag values).
Paths keep their placeholders; signatures are recomputed at replay time.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import corpus

THUMBOR_CONF = """\
SECURITY_KEY = 'my-security-key'
ALLOW_UNSAFE_URL = True
LOADER = 'thumbor.loaders.http_loader'
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
HTTP_LOADER_REQUEST_TIMEOUT = 2
HTTP_LOADER_CONNECT_TIMEOUT = 1
"""

THUMBOR_PYTHON = "/opt/thumbor-venv/bin/python"
GUARD = os.path.join(corpus.HERE, "thumbor_guarded.py")


class Thumbor:
    def __init__(self, python, conf_dir):
        self.port = corpus.free_port()
        self.conf = os.path.join(conf_dir, "thumbor.conf")
        with open(self.conf, "w") as f:
            f.write(THUMBOR_CONF)
        self.log_path = os.path.join(conf_dir, "thumbor.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [python, GUARD, "-p", str(self.port), "-i", "127.0.0.1", "-c", self.conf, "-l", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=conf_dir)
        try:
            corpus.wait_http("127.0.0.1", self.port, "/healthcheck", 30)
        except RuntimeError:
            self.stop()
            print(self.read_log_from(0), file=sys.stderr)
            raise

    def log_size(self):
        self.log.flush()
        return os.path.getsize(self.log_path)

    def read_log_from(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="record thumbor answers for urls.txt")
    ap.add_argument("--origin-port", type=int, default=corpus.DEFAULT_ORIGIN_PORT)
    ap.add_argument("--urls", default=corpus.URLS_TXT)
    ap.add_argument("--out", default=corpus.EXPECTED_JSON)
    ap.add_argument("--only", help="regex on the corpus line; prints, does not write --out")
    ap.add_argument("--thumbor-python", default=THUMBOR_PYTHON)
    ap.add_argument("--log-report", help="write the thumbor log excerpt of every non-200 line here")
    ap.add_argument("--keep-conf", help="directory for thumbor.conf / thumbor.log (kept)")
    ap.add_argument("--auto-webp", action="store_true",
                    help="record with AUTO_WEBP = True (for urls_auto_webp.txt)")
    ap.add_argument("--conf", action="append", default=[], metavar="'NAME = VALUE'",
                    help="one more thumbor.conf line (repeatable), e.g. 'MAX_WIDTH = 500'")
    args = ap.parse_args(argv)
    global THUMBOR_CONF
    if args.auto_webp:
        THUMBOR_CONF += "AUTO_WEBP = True\n"
    for line in args.conf:
        THUMBOR_CONF += line + "\n"

    entries = corpus.parse_urls(args.urls)
    seen = {}
    for e in entries:
        if e.key() in seen:
            print(f"warning: line {e.lineno} duplicates line {seen[e.key()]}: {e.label()}",
                  file=sys.stderr)
        seen.setdefault(e.key(), e.lineno)
    if args.only:
        rx = re.compile(args.only)
        entries = [e for e in entries if rx.search(e.label())]

    if not args.origin_port:
        args.origin_port = corpus.free_port()
    elif not corpus.port_is_free(args.origin_port):
        sys.exit(f"origin port {args.origin_port} is busy; pass another --origin-port")
    closed_port = corpus.free_port()
    while closed_port == args.origin_port:
        closed_port = corpus.free_port()

    conf_dir = args.keep_conf or tempfile.mkdtemp(prefix="thumbor-compat-")
    os.makedirs(conf_dir, exist_ok=True)
    open(os.path.join(conf_dir, "thumbor.log"), "wb").close()
    origin = thumbor = None
    results = []
    report = []
    t_start = time.monotonic()
    try:
        origin = corpus.Origin(args.origin_port, slow_seconds=4.0)
        thumbor = Thumbor(args.thumbor_python, conf_dir)
        print(f"origin 127.0.0.1:{origin.port}  thumbor 127.0.0.1:{thumbor.port}  "
              f"closed {closed_port}  {len(entries)} requests", file=sys.stderr)
        for i, e in enumerate(entries, 1):
            if not corpus.port_is_free(closed_port):
                sys.exit(f"closed port {closed_port} got taken; re-run")
            for attempt in (1, 2):
                off = thumbor.log_size()
                summary, elapsed, err = corpus.run_entry(e, "127.0.0.1", thumbor.port, origin, closed_port)
                died = thumbor.proc.poll() is not None
                if not err and not died:
                    break
                tail = thumbor.read_log_from(off)[-2000:]
                msg = f"line {e.lineno}: {err or 'thumbor exited'}\n{tail}"
                if attempt == 2:
                    sys.exit(f"giving up; {msg}")
                # A memory-unsafe C filter earlier in the run can corrupt thumbor's heap and kill
                # it on a later request: restart it once and retry this line.
                print(f"warning: {msg}\nrestarting thumbor and retrying once", file=sys.stderr)
                thumbor.stop()
                thumbor = Thumbor(args.thumbor_python, conf_dir)
            results.append(summary)
            log = thumbor.read_log_from(off).strip()
            marker = "" if summary["status"] == 200 else "  <--"
            if args.only or summary["status"] != 200 or elapsed > 1.5:
                print(f"[{i}/{len(entries)}] {summary['status']} {elapsed:5.2f}s "
                      f"{summary['content_type']} {summary['width']}x{summary['height']} "
                      f"L{e.lineno} {e.label()}{marker}", file=sys.stderr)
            if summary["status"] != 200 or log:
                report.append(f"### L{e.lineno} {e.label()} -> {summary['status']}\n{log}\n")
    finally:
        if thumbor:
            thumbor.stop()
        if origin:
            origin.stop()
        if not args.keep_conf:
            shutil.rmtree(conf_dir, ignore_errors=True)

    if args.log_report:
        with open(args.log_report, "w") as f:
            f.write("\n".join(report))

    if args.only:
        print(json.dumps(results, indent=2))
        return 0

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"wrote {args.out}: {len(results)} entries in {time.monotonic() - t_start:.1f}s; "
          f"by status: {dict(sorted(counts.items()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
