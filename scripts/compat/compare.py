#!/usr/bin/env python3
"""Replays the recorded thumbor corpus against any server and reports mismatches.

    /opt/thumbor-venv/bin/python scripts/compat/compare.py --base http://127.0.0.1:8888
        [--origin-port 0] [--only REGEX] [--expected tests/fixtures/compat/expected.json]
        [--fields status,content_type,...] [--allow exif,upstream,dns,output-cap,thumbor-bugs|all]
        [--key my-security-key] [--verbose]

Starts origin.py itself (127.0.0.1:--origin-port, any free port by default) and a
"closed" port, re-renders every recorded request (placeholders, fresh signatures),
sends it to --base and compares the answer with expected.json.

Compared by default: status, content_type, width, height, frames, cache_control, vary.
content_type is only compared when the expected status is < 400 (thumbor's error pages
are tornado HTML, not part of the contract) unless --strict-errors is given.
Prints one row per mismatching field and "N/M match"; exit status 1 on any mismatch.

--allow accepts the deliberate differences listed in the compatibility contract
(reported as "allowed", not as mismatches):
  exif        orient6/orient8 sources: width/height may differ (Thumbora applies EXIF orientation)
  upstream    origin 5xx (thumbor: 404), refused connection / TLS failure (thumbor: 500) -> 502
  dns         unresolvable image host (thumbor: 504) -> 502 or 400
  output-cap  expected outputs >= 16 Mpx may be refused with 400/413/422
  thumbor-bugs  thumbor answered 500 from an exception (see README): any 4xx accepted
"""

import argparse
import json
import re
import sys
import time
from urllib.parse import urlsplit

import corpus

DEFAULT_FIELDS = ["status", "content_type", "width", "height", "frames", "cache_control", "vary"]
ALL_FIELDS = DEFAULT_FIELDS + ["etag", "expires", "content_length_matches", "meta_json",
                               "jsonp_callback", "image_format", "mode", "progressive", "body_text",
                               "origin_hits"]


def field(summary, name):
    if name in ("cache_control", "vary", "etag", "expires", "content_length_matches"):
        return summary["headers"].get(name)
    return summary.get(name)


def _numeq(a, b):
    """JSON equality where 300 == 300.0 (thumbor's meta mixes ints and floats)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_numeq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_numeq(a[k], b[k]) for k in a)
    return a == b


def allowed_difference(exp, name, want, got, allow):
    """Returns the name of the contract difference that explains this mismatch, or None."""
    path = exp["path"]
    status = exp["status"]
    if "exif" in allow and name in ("width", "height") and re.search(r"orient[68]\.jpg", path):
        return "exif"
    if "upstream" in allow and name == "status":
        if status == 404 and re.search(r"/status/5\d\d/", path) and got == 502:
            return "upstream"
        if status == 500 and got == 502 and re.search(r"\{closed\}|localhost:1/|https://", path):
            return "upstream"
    if "dns" in allow and name == "status" and status == 504 and exp.get("origin_hits") == 0 \
            and got in (400, 502):
        return "dns"
    if "output-cap" in allow and name == "status" and status == 200 and got in (400, 413, 422) \
            and (exp.get("width") or 0) * (exp.get("height") or 0) >= 16_000_000:
        return "output-cap"
    if "thumbor-bugs" in allow and name == "status" and status == 500 and got is not None \
            and 400 <= got < 500:
        return "thumbor-bugs"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="compare a server with the recorded thumbor answers")
    ap.add_argument("--base", default="http://127.0.0.1:8888", help="server under test")
    ap.add_argument("--origin-port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--expected", default=corpus.EXPECTED_JSON)
    ap.add_argument("--only", help="regex on 'METHOD path' (placeholders kept)")
    ap.add_argument("--fields", default=",".join(DEFAULT_FIELDS),
                    help=f"comma list from {','.join(ALL_FIELDS)}")
    ap.add_argument("--allow", default="", help="exif,upstream,dns,output-cap,thumbor-bugs or all")
    ap.add_argument("--strict-errors", action="store_true",
                    help="also compare content_type of 4xx/5xx answers")
    ap.add_argument("--key", default=corpus.SECURITY_KEY)
    ap.add_argument("--verbose", action="store_true", help="print every line, not only mismatches")
    args = ap.parse_args(argv)

    base = urlsplit(args.base)
    if base.scheme != "http" or not base.hostname:
        sys.exit("--base must look like http://host:port")
    host, port = base.hostname, base.port or 80
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    bad = [f for f in fields if f not in ALL_FIELDS]
    if bad:
        sys.exit(f"unknown fields: {bad}")
    allow = {"exif", "upstream", "dns", "output-cap", "thumbor-bugs"} if args.allow == "all" \
        else {a.strip() for a in args.allow.split(",") if a.strip()}

    with open(args.expected, encoding="utf-8") as f:
        expected = json.load(f)
    if args.only:
        rx = re.compile(args.only)
        expected = [e for e in expected if rx.search(f"{e['method']} {e['path']}")]

    origin_port = args.origin_port or corpus.free_port()
    closed_port = corpus.free_port()
    while closed_port == origin_port:
        closed_port = corpus.free_port()

    origin = corpus.Origin(origin_port)
    rows = []
    n_match = n_allowed = 0
    t0 = time.monotonic()
    try:
        for exp in expected:
            entry = corpus.Entry(exp.get("line", 0), exp["method"], exp["path"],
                                 list((exp.get("request_headers") or {}).items()))
            got, _, err = corpus.run_entry(entry, host, port, origin, closed_port, args.key)
            diffs = []
            allowed = []
            if err:
                diffs.append(("request", "ok", err))
            else:
                for name in fields:
                    if name == "content_type" and exp["status"] >= 400 and not args.strict_errors:
                        continue
                    want, have = field(exp, name), field(got, name)
                    if _numeq(want, have):
                        continue
                    why = allowed_difference(exp, name, want, have, allow)
                    if why:
                        allowed.append((name, want, have, why))
                    else:
                        diffs.append((name, want, have))
            if diffs:
                for d in diffs:
                    rows.append((exp.get("line", ""), entry.label(), *d))
            else:
                n_match += 1
                if allowed:
                    n_allowed += 1
            if args.verbose:
                state = "MISMATCH" if diffs else ("allowed " + ",".join(a[3] for a in allowed)
                                                  if allowed else "ok")
                st = got["status"] if got else err
                print(f"L{exp.get('line', '')} {state:10s} {st} {entry.label()}")
    finally:
        origin.stop()

    if rows:
        w_label = min(90, max(len(r[1]) for r in rows))
        print(f"{'line':>5}  {'request':{w_label}}  {'field':14} {'expected':28} got")
        for line, label, name, want, have in rows:
            lab = label if len(label) <= w_label else label[: w_label - 3] + "..."
            print(f"{line!s:>5}  {lab:{w_label}}  {name:14} {json.dumps(want)[:28]:28} "
                  f"{json.dumps(have)[:60]}")
    total = len(expected)
    extra = f" ({n_allowed} via --allow)" if n_allowed else ""
    print(f"{n_match}/{total} match{extra}; fields: {','.join(fields)}; "
          f"{time.monotonic() - t0:.1f}s")
    return 0 if n_match == total else 1


if __name__ == "__main__":
    sys.exit(main())
