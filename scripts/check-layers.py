#!/usr/bin/env python3
"""Checks that src/ modules import only downwards: every `crate::<module>` path a top-level module
names (in `use` lines and in code) must point to a module on a lower layer, or its own.

The layers, lowest first, are listed below; a module on layer N may use layers < N (and itself).
A new top-level module must be added here, which is the point: its place is a decision.
Run: python3 scripts/check-layers.py   (exit 1 and a list of offending lines when it fails)
"""
import pathlib
import re
import sys

LAYERS = [
    # primitives: the process' allocator, its log and the error type, the URL grammar's types
    # and the metrics, then sizes and the YAML's types
    ["allocator", "error", "log_limit"],
    ["url", "metrics", "s3", "disk"],
    ["geometry", "config"],
    # policies and accounting: which origins may be fetched, what a render or fetch may spend,
    # which formats a client accepts; the access log
    ["security", "budget", "fetched", "negotiate", "access_log"],
    # pixels: decoders and encoders, then resampling/orientation and the size limits on them
    ["codec"],
    ["imaging", "limits"],
    # one request's render: filters on those primitives, the job that names them, the steps
    ["filters"],
    ["job"],
    ["pipeline", "loader", "site", "connections"],
    # answering: headers and the result cache, then the render pool that fetches and renders
    ["response"],
    ["cache"],
    ["render"],
    # admitted requests remembered by their raw target (a hit skips parsing and hashing)
    ["admission"],
    # fresh results in memory answered at the connection, before Pingora's session
    ["fast_hit"],
    # Pingora glue (the proxy, the admin listener's app) and the process; the subcommands beside
    # serving (sign, config, migrate)
    ["proxy", "lifecycle", "tls", "admin"],
    ["server", "fuzzing", "preflight", "cli"],
]

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
layer_of = {m: i for i, mods in enumerate(LAYERS) for m in mods}
path_re = re.compile(r"\bcrate::(\w+)")
use_group_re = re.compile(r"\buse crate::\{([^}]*)\}", re.S)


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(SRC)
    if rel.parts[0] in ("lib.rs", "main.rs"):
        return None
    return rel.parts[0].removesuffix(".rs")


def strip_comments_and_tests(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    # Unit tests may reach anywhere; they are not part of the module's dependencies.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def main() -> int:
    errors = []
    edges = set()
    for path in sorted(SRC.rglob("*.rs")):
        module = top_module(path)
        if module is None:
            continue
        if module not in layer_of:
            errors.append(f"{path.relative_to(SRC)}: module `{module}` has no layer in scripts/check-layers.py")
            continue
        text = strip_comments_and_tests(path.read_text())
        targets = set(path_re.findall(text))
        for group in use_group_re.findall(text):
            targets |= {t.strip().split("::")[0] for t in group.split(",") if t.strip()}
        for target in targets:
            if target == module or target in ("self", "super"):
                continue
            if target not in layer_of:
                errors.append(f"{path.relative_to(SRC)}: uses unknown module `crate::{target}`")
                continue
            edges.add((module, target))
            if layer_of[target] >= layer_of[module]:
                errors.append(
                    f"{path.relative_to(SRC)}: `{module}` (layer {layer_of[module]}) uses "
                    f"`crate::{target}` (layer {layer_of[target]}): not below it"
                )
    for e in errors:
        print(e)
    if not errors:
        print(f"layers ok: {len(layer_of)} modules, {len(edges)} edges, all downwards (so no cycle)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
