#!/usr/bin/env python3
"""Runs real thumbor with a loopback-only name resolver.

    /opt/thumbor-venv/bin/python scripts/compat/thumbor_guarded.py -p PORT -c CONF -l warning

Same arguments as the `thumbor` command.  Before starting, socket.getaddrinfo is
wrapped so that any host other than 127.0.0.1 / localhost fails with
socket.gaierror(EAI_NONAME), exactly like an NXDOMAIN answer.  Several corpus
lines make thumbor try to load a junk host name (`/unsafe/<signature>/...` puts
the signature in the host position, `*.invalid` hosts); with this guard no DNS
query or connection ever leaves 127.0.0.1 while thumbor still sees the same
error it would see from a real resolver.
"""

import re
import socket
import sys

_real_getaddrinfo = socket.getaddrinfo
_ALLOWED = {"127.0.0.1", "localhost", "::1"}


def _guarded_getaddrinfo(host, *args, **kwargs):
    h = host.decode() if isinstance(host, bytes) else host
    if h is None or h in _ALLOWED or (isinstance(h, str) and h.startswith("127.")):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (compat guard)")


socket.getaddrinfo = _guarded_getaddrinfo

from thumbor.server import main  # noqa: E402  (import after the patch)

if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(main())
