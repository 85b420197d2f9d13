"""API-key checks: ``Authorization: Bearer <key>``, one constant-time comparison for both.

Checkout backends use ``RISKWIRE_API_KEYS``; the outbox admin routes use their own
``RISKWIRE_ADMIN_API_KEYS``, so a leaked checkout key cannot replay or purge messages.
The hooks are coroutines on purpose: Litestar runs a plain function in a worker thread, a
thread hop (~15 % of a score request's CPU) every call. The checkout check is a before-request
hook rather than a guard because Litestar copies the route handler for every guard call; the
admin routes are cold and keep the guard. The hot routes' lanes (``service.routes.hot_path``)
run no hooks: they call ``checkout_key`` / ``verify_checkout_key`` themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from service.asgi_headers import scope_header
from service.errors import Forbidden, Unauthorized
from service.ratelimit import key_id
from service.settings import Secret, Settings

SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminKey": []}]


def _presented_key(scope: Scope, keys: Sequence[Secret]) -> bytes:
    """The bearer token if it is one of ``keys``; 401 otherwise."""
    # Straight from the ASGI scope: building Litestar's Headers costs more than the check.
    header = scope_header(scope, b"authorization") or b""
    scheme, _sep, token = header.decode("latin-1").partition(" ")
    presented = token.strip().encode("latin-1")
    matched = False
    # No early exit: the time taken does not depend on which key (if any) matched.
    for key in keys:
        matched |= hmac.compare_digest(presented, key.reveal().encode())
    if scheme.lower() != "bearer" or not presented or not matched:
        raise Unauthorized(
            "missing or invalid API key (Authorization: Bearer <key>)", field="Authorization"
        )
    return presented


def verify_checkout_key(scope: Scope, settings: Settings) -> bytes:
    """The checkout API key presented; 401 when it is none of ``RISKWIRE_API_KEYS``."""
    return _presented_key(scope, settings.api_keys)


def checkout_key(scope: Scope, settings: Settings) -> str:
    """``verify_checkout_key``, answering the key's id (a hash, for per-key rate limits;
    never the key itself)."""
    return key_id(verify_checkout_key(scope, settings).decode(errors="replace"))


async def require_api_key(request: Request) -> None:  # type: ignore[type-arg]
    """A before-request hook, not a guard: Litestar copies the route handler for every
    guard call, ~4 % of a score request's CPU."""
    verify_checkout_key(request.scope, request.app.state.settings)


async def require_admin_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    settings: Settings = connection.app.state.settings
    if not settings.admin_api_keys:
        raise Forbidden(
            "the admin API is disabled: set RISKWIRE_ADMIN_API_KEYS to enable it",
            field="RISKWIRE_ADMIN_API_KEYS",
        )
    _presented_key(connection.scope, settings.admin_api_keys)
