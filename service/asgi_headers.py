"""A request header read straight from the ASGI scope.

Litestar's ``Headers`` parses every header of a request into a multi-dict; the paths that
need a single header on every request (the API key, the webhook signature, the request id)
scan the raw list instead, which costs a fraction of that.
"""

from __future__ import annotations

from litestar.types import Scope


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case, as ASGI servers pass names)."""
    # A plain loop, not ``next()`` over a generator: building and resuming the generator
    # cost three times the scan, and a lane request reads three or four headers.
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None
