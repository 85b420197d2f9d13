"""API-key guard: ``Authorization: Bearer <key>``, keys from ``RISKWIRE_API_KEYS``.

The guard is a coroutine on purpose: Litestar runs a plain-function guard in a worker
thread, which cost a thread hop (and ~15 % of the CPU of a score request) every call.
"""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import Unauthorized
from service.ratelimit import key_id
from service.settings import Settings

SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]


async def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    settings: Settings = connection.app.state.settings
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    presented = token.strip().encode()
    matched = False
    # No early exit: the time taken does not depend on which key (if any) matched.
    for key in settings.api_keys:
        matched |= hmac.compare_digest(presented, key.reveal().encode())
    if scheme.lower() != "bearer" or not presented or not matched:
        raise Unauthorized(
            "missing or invalid API key (Authorization: Bearer <key>)", field="Authorization"
        )
    # Which key it was, for per-key rate limits: a hash, never the key.
    connection.state.api_key_id = key_id(presented.decode(errors="replace"))
