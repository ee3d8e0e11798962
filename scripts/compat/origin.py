#!/usr/bin/env python3
"""Tiny threaded HTTP origin for the thumbor conformance corpus.

    python3 scripts/compat/origin.py --port 8901 [--dir DIR] [--slow-seconds 4]

Binds 127.0.0.1 only.  Serves the fixture images plus fault paths:

  /<file>                     the file from DIR (Content-Type from the extension)
  /status/<code>/<anything>   answers <code> with a short text body (404, 403, 500, 502, ...)
  /empty.jpg                  200 with an empty body (Content-Type image/jpeg)
  /slow/<file>                sleeps --slow-seconds (bounded, default 4) then serves <file>
  /redirect/<n>/<file>        302 -> /redirect/<n-1>/<file> ... -> /<file>  (n <= 20)
  /as-text/<file>             <file> served as text/plain (content-type lie)
  /no-type/<file>             <file> served without a Content-Type header
  /qs/<file>                  serves <file> only when the query string contains ok=1, else 404
                              (shows whether a query string reached the origin)
  /__hits                     JSON {"total": n, "paths": {"/path?query": n}}; not counted
  /__hits?reset=1             same, then resets the counters

Every request except /__hits is counted (method, path and query as received).
Only the standard library is used; prints "READY <port>" on stdout once listening.
"""

import argparse
import json
import mimetypes
import os
import posixpath
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "tests", "fixtures", "compat", "images"))

TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".svg": "image/svg+xml",
}


class State:
    lock = threading.Lock()
    hits = {}
    total = 0


class Handler(BaseHTTPRequestHandler):
    server_version = "compat-origin/1"
    protocol_version = "HTTP/1.1"

    # configured in main()
    root = DEFAULT_DIR
    slow_seconds = 4.0

    def log_message(self, fmt, *args):  # quiet
        if self.server.verbose:
            sys.stderr.write("origin: " + (fmt % args) + "\n")

    # -- helpers -------------------------------------------------------------
    def _send(self, code, body=b"", ctype="text/plain", extra=None, head=False):
        self.send_response(code)
        if code in (204, 304) or code < 200:
            body = b""  # these statuses never carry a body (nor Content-Length for 204)
            ctype = None
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        if code != 204:
            self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _file(self, rel):
        rel = unquote(rel).lstrip("/")
        norm = posixpath.normpath(rel)
        if norm.startswith("..") or norm.startswith("/") or norm in ("", "."):
            return None, None
        path = os.path.join(self.root, *norm.split("/"))
        if not os.path.isfile(path):
            return None, None
        with open(path, "rb") as f:
            data = f.read()
        ext = os.path.splitext(path)[1].lower()
        ctype = TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"
        return data, ctype

    def _serve_file(self, rel, head, ctype_override=False, ctype=None):
        data, guessed = self._file(rel)
        if data is None:
            self._send(404, b"not found\n", head=head)
            return
        self._send(200, data, guessed if not ctype_override else ctype, head=head)

    def _count(self, raw):
        with State.lock:
            State.total += 1
            key = f"{self.command} {raw}"
            State.hits[key] = State.hits.get(key, 0) + 1

    # -- dispatch ------------------------------------------------------------
    def _handle(self, head=False):
        raw = self.path
        parts = urlsplit(raw)
        path = parts.path
        query = parts.query

        if path == "/__hits":
            with State.lock:
                body = json.dumps({"total": State.total, "paths": State.hits},
                                  sort_keys=True).encode()
                if "reset=1" in query:
                    State.hits = {}
                    State.total = 0
            self._send(200, body, "application/json", head=head)
            return

        self._count(raw)

        if path.startswith("/status/"):
            seg = path.split("/")
            try:
                code = int(seg[2])
            except (IndexError, ValueError):
                code = 400
            if code < 200 or code > 599:
                code = 400
            self._send(code, f"status {code}\n".encode(), head=head)
            return

        if path == "/empty.jpg":
            self._send(200, b"", "image/jpeg", head=head)
            return

        if path.startswith("/slow/"):
            time.sleep(self.slow_seconds)
            self._serve_file(path[len("/slow/"):], head)
            return

        if path.startswith("/redirect/"):
            seg = path.split("/", 3)
            try:
                n = max(0, min(int(seg[2]), 20))
                rest = seg[3]
            except (IndexError, ValueError):
                self._send(400, b"bad redirect\n", head=head)
                return
            target = f"/redirect/{n - 1}/{rest}" if n > 1 else f"/{rest}"
            if query:
                target += "?" + query
            self._send(302, b"", None, {"Location": target}, head=head)
            return

        if path.startswith("/as-text/"):
            self._serve_file(path[len("/as-text/"):], head, True, "text/plain")
            return

        if path.startswith("/no-type/"):
            self._serve_file(path[len("/no-type/"):], head, True, None)
            return

        if path.startswith("/qs/"):
            if parse_qs(query).get("ok") == ["1"]:
                self._serve_file(path[len("/qs/"):], head)
            else:
                self._send(404, b"query string ok=1 missing\n", head=head)
            return

        self._serve_file(path, head)

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle(head=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8901)
    ap.add_argument("--dir", default=DEFAULT_DIR)
    ap.add_argument("--slow-seconds", type=float, default=4.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    Handler.root = os.path.abspath(args.dir)
    Handler.slow_seconds = min(max(args.slow_seconds, 0.0), 30.0)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.verbose = args.verbose
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
