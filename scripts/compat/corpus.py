"""Shared code for record.py and compare.py: corpus parsing, URL signing,
the HTTP runner, the origin process and response summarising.

Standard library plus Pillow (run with /opt/thumbor-venv/bin/python).

urls.txt syntax (one request per line, `#` starts a comment line, blank lines ignored):

    [METHOD ]PATH[ | Header: value[ | Header: value ...]]

  METHOD        GET (default), HEAD, POST, PUT, DELETE, ...
  {origin}      127.0.0.1:<origin port>
  {closed}      127.0.0.1:<a port nothing listens on>
  {sign}/       replaced by the signature of everything that follows `{sign}/` in the
                path (query string excluded), key my-security-key, libthumbor's
                algorithm: urlsafe_b64encode(HMAC-SHA1(key, payload)), with `=` padding.
  {sign:MOD}/   a deliberately broken signature:
                  flip       one character changed (index 5)
                  wrongkey   signed with the key "not-my-security-key"
                  nopad      `=` padding removed
                  std        standard base64 alphabet (`+` and `/`); see {salt}
                  pct        `=` sent percent-encoded as %3D (thumbor accepts this)
                  withquery  payload includes `?query` (thumbor excludes it)
                  lower      lower-cased
  {salt}        a small integer chosen so that the signature contains `-` or `_`
                (only needed with sign:std, so the standard alphabet really differs);
                chosen deterministically as the smallest n >= 0 that works.

Paths are sent as written (after substitution): percent-encoding is preserved.
"""

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
URLS_TXT = os.path.join(HERE, "urls.txt")
EXPECTED_JSON = os.path.join(ROOT, "tests", "fixtures", "compat", "expected.json")
IMAGES_DIR = os.path.join(ROOT, "tests", "fixtures", "compat", "images")
ORIGIN_PY = os.path.join(HERE, "origin.py")

SECURITY_KEY = "my-security-key"
WRONG_KEY = "not-my-security-key"
DEFAULT_ORIGIN_PORT = 0  # 0 = any free port (answers do not depend on it)
REQUEST_TIMEOUT = 20.0  # seconds, per request (the slow origin needs ~2 s)

SIGN_RE = re.compile(r"\{sign(?::([a-z]+))?\}/")


class Entry:
    def __init__(self, lineno, method, path, headers):
        self.lineno = lineno
        self.method = method
        self.path = path  # template, placeholders kept
        self.headers = headers  # list of (name, value)

    def key(self):
        return (self.method, self.path, tuple(self.headers))

    def label(self):
        h = "".join(f" | {k}: {v}" for k, v in self.headers)
        return f"{self.method} {self.path}{h}"


def parse_urls(path=URLS_TXT):
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ")]
            first = parts[0]
            method = "GET"
            m = re.match(r"^([A-Z]+)\s+(/.*)$", first)
            if m:
                method, first = m.group(1), m.group(2)
            if not first.startswith("/"):
                raise ValueError(f"{path}:{lineno}: path must start with /: {line!r}")
            headers = []
            for h in parts[1:]:
                name, _, value = h.partition(":")
                headers.append((name.strip(), value.strip()))
            entries.append(Entry(lineno, method, first, headers))
    return entries


def sign(payload, key=SECURITY_KEY):
    digest = hmac.new(key.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _mangle(sig, mod, payload, query):
    if mod is None:
        return sig
    if mod == "flip":
        c = sig[5]
        return sig[:5] + ("B" if c == "A" else "A") + sig[6:]
    if mod == "wrongkey":
        return sign(payload, WRONG_KEY)
    if mod == "nopad":
        return sig.rstrip("=")
    if mod == "std":
        return sig.replace("-", "+").replace("_", "/")
    if mod == "pct":
        return sig.replace("=", "%3D")
    if mod == "withquery":
        return sign(payload + ("?" + query if query else ""))
    if mod == "lower":
        return sig.lower()
    raise ValueError(f"unknown signature modifier {mod!r}")


def render(template, origin_port, closed_port, key=SECURITY_KEY):
    """Turns a urls.txt path template into the request path that is sent."""
    path = template.replace("{origin}", f"127.0.0.1:{origin_port}")
    path = path.replace("{closed}", f"127.0.0.1:{closed_port}")
    m = SIGN_RE.search(path)
    if not m:
        if "{salt}" in path:
            path = path.replace("{salt}", "0")
        return path
    mod = m.group(1)
    before, after = path[: m.start()], path[m.end():]
    rest, _, query = after.partition("?")
    for n in range(0, 10000):
        payload = rest.replace("{salt}", str(n))
        sig = sign(payload, key)
        if mod != "std" or "{salt}" not in rest or ("-" in sig or "_" in sig):
            break
    sig = _mangle(sig, mod, payload, query)
    out = before + sig + "/" + payload
    if query:
        out += "?" + query
    return out


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def http_request(host, port, method, path, headers=(), timeout=REQUEST_TIMEOUT, body=None):
    """Returns (status, headers as list of (name, value), body bytes, elapsed seconds)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        hdrs = {k: v for k, v in headers}
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read() if method != "HEAD" else b""
        return resp.status, resp.getheaders(), data, time.monotonic() - t0
    finally:
        conn.close()


def wait_http(host, port, path, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, _, _ = http_request(host, port, "GET", path, timeout=2)
            if status == 200:
                return True
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"http://{host}:{port}{path} not ready after {timeout}s: {last}")


class Origin:
    """origin.py as a subprocess."""

    def __init__(self, port, slow_seconds=4.0, images_dir=IMAGES_DIR):
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, ORIGIN_PY, "--port", str(port), "--dir", images_dir,
             "--slow-seconds", str(slow_seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wait_http("127.0.0.1", port, "/__hits", 15)

    def hits_total(self):
        _, _, body, _ = http_request("127.0.0.1", self.port, "GET", "/__hits", timeout=5)
        return json.loads(body)["total"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _header(headers, name):
    vals = [v for k, v in headers if k.lower() == name.lower()]
    return ", ".join(vals) if vals else None


def decode_image(body):
    """(format, mode, width, height, frames, jpeg progressive) or None if Pillow cannot decode it."""
    if not body:
        return None
    from PIL import Image  # noqa: imported lazily so --help works without Pillow

    try:
        im = Image.open(io.BytesIO(body))
        im.load()
        frames = getattr(im, "n_frames", 1)
        progressive = None
        if im.format == "JPEG":
            progressive = bool(im.info.get("progressive") or im.info.get("progression"))
        return im.format, im.mode, im.size[0], im.size[1], frames, progressive
    except Exception:
        return None


def _normalize_hosts(value, hosts):
    """Replaces the real origin / closed host:port (raw or %3A-encoded) by placeholders."""
    if isinstance(value, str):
        for real, placeholder in hosts:
            value = value.replace(real, placeholder)
            value = value.replace(real.replace(":", "%3A"), placeholder)
        return value
    if isinstance(value, list):
        return [_normalize_hosts(v, hosts) for v in value]
    if isinstance(value, dict):
        return {k: _normalize_hosts(v, hosts) for k, v in value.items()}
    return value


def summarize(entry, status, headers, body, origin_hits=None, hosts=()):
    """The expected.json object for one response.  Key order is fixed.

    hosts: [(real "127.0.0.1:PORT", "{origin}"), ...] -- text bodies (meta JSON, JSONP,
    short text) are normalised with it so the record does not depend on the ports;
    body_len of a text body is measured after that normalisation.
    """
    ctype = _header(headers, "Content-Type")
    clen = _header(headers, "Content-Length")
    out = {
        "line": entry.lineno,
        "method": entry.method,
        "path": entry.path,
    }
    if entry.headers:
        out["request_headers"] = {k: v for k, v in entry.headers}
    out["status"] = status
    out["content_type"] = ctype
    img = decode_image(body)
    out["width"] = img[2] if img else None
    out["height"] = img[3] if img else None
    out["frames"] = img[4] if img else None
    out["image_format"] = img[0] if img else None
    out["mode"] = img[1] if img else None
    out["progressive"] = img[5] if img else None
    out["headers"] = {
        "cache_control": _header(headers, "Cache-Control"),
        "vary": _header(headers, "Vary"),
        "etag": _header(headers, "ETag") is not None,
        "expires": _header(headers, "Expires") is not None,
        "content_length_matches": (None if entry.method == "HEAD" or clen is None
                                   else int(clen) == len(body)),
        "content_length_present": clen is not None,
    }
    meta_json = None
    jsonp_callback = None
    if body and ctype and not img:
        text = None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if text is not None and ctype.startswith("application/json"):
            try:
                meta_json = json.loads(text)
            except ValueError:
                pass
        elif text is not None and ctype.startswith("text/javascript"):
            m = re.match(r"^(.*?)\((.*)\);?\s*$", text, re.S)
            if m:
                jsonp_callback = m.group(1)
                try:
                    meta_json = json.loads(m.group(2))
                except ValueError:
                    pass
    out["meta_json"] = _normalize_hosts(meta_json, hosts)
    if jsonp_callback is not None:
        out["jsonp_callback"] = jsonp_callback
    body_len = len(body)
    text = None
    if body and not img:
        try:
            text = _normalize_hosts(body.decode("utf-8"), hosts)
            body_len = len(text.encode("utf-8"))
        except UnicodeDecodeError:
            text = None
    out["body_len"] = body_len
    if text is not None and meta_json is None and len(text) <= 200:
        out["body_text"] = text
    if origin_hits is not None:
        out["origin_hits"] = origin_hits
    return out


def run_entry(entry, host, port, origin, closed_port, key=SECURITY_KEY):
    """Sends one corpus entry; returns (summary, elapsed, error string or None)."""
    path = render(entry.path, origin.port, closed_port, key)
    before = origin.hits_total()
    try:
        status, headers, body, elapsed = http_request(host, port, entry.method, path, entry.headers)
    except (OSError, http.client.HTTPException) as exc:
        return None, 0.0, f"{type(exc).__name__}: {exc}"
    # let a slow origin thread register its hit before counting (bounded)
    hits = origin.hits_total() - before
    hosts = [(f"127.0.0.1:{origin.port}", "{origin}"), (f"127.0.0.1:{closed_port}", "{closed}")]
    return summarize(entry, status, headers, body, hits, hosts), elapsed, None
