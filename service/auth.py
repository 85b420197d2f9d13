"""API-key checks: ``Authorization: Bearer <key>``, one constant-time comparison for both.

Checkout backends use ``RISKWIRE_API_KEYS``; the outbox admin routes use their own
``RISKWIRE_ADMIN_API_KEYS``, so a leaked checkout key cannot replay or purge messages.
The hooks are coroutines on purpose: Litestar runs a plain function in a worker thread, a
thread hop (~15 % of a score request's CPU) every call. The checkout check is a before-request
hook rather than a guard because Litestar copies the route handler for every guard call; the
admin routes are cold and keep the guard. The hot routes' lanes (``service.routes.hot_path``)
run no hooks: they call ``ApiKeys.verify`` / ``ApiKeys.key_id`` themselves.
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
from service.settings import Secret

SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminKey": []}]

# What ``str.strip()`` removes from a header decoded as latin-1, so the token can be cut out
# of the raw bytes without decoding and re-encoding it.
_WHITESPACE = bytes(c for c in range(256) if chr(c).isspace())


class ApiKeys:
    """One list of API keys, ready for the per-request check: encoded, each with its id.

    Built once per app: encoding every key and hashing the presented one for its id on each
    request were ~2.6 % of a score request's CPU.
    """

    __slots__ = ("_encoded", "_ids")

    def __init__(self, keys: Sequence[Secret]) -> None:
        self._encoded = tuple(key.reveal().encode() for key in keys)
        self._ids = {key.reveal().encode(): key_id(key.reveal()) for key in keys}

    def __bool__(self) -> bool:
        return bool(self._encoded)

    def verify(self, scope: Scope) -> bytes:
        """The bearer token if it is one of these keys; 401 otherwise."""
        # Straight from the ASGI scope: building Litestar's Headers costs more than the check.
        header = scope_header(scope, b"authorization") or b""
        scheme, _sep, token = header.partition(b" ")
        presented = token.strip(_WHITESPACE)
        matched = False
        # No early exit: the time taken does not depend on which key (if any) matched.
        for key in self._encoded:
            matched |= hmac.compare_digest(presented, key)
        if scheme.lower() != b"bearer" or not presented or not matched:
            raise Unauthorized(
                "missing or invalid API key (Authorization: Bearer <key>)", field="Authorization"
            )
        return presented

    def key_id(self, scope: Scope) -> str:
        """``verify``, answering the key's id (a hash, for per-key rate limits; never the
        key itself)."""
        # Looked up only once the presented key matched one in constant time.
        return self._ids[self.verify(scope)]


async def require_api_key(request: Request) -> None:  # type: ignore[type-arg]
    """A before-request hook, not a guard: Litestar copies the route handler for every
    guard call, ~4 % of a score request's CPU."""
    keys: ApiKeys = request.app.state.checkout_keys
    keys.verify(request.scope)


async def require_admin_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    keys: ApiKeys = connection.app.state.admin_keys
    if not keys:
        raise Forbidden(
            "the admin API is disabled: set RISKWIRE_ADMIN_API_KEYS to enable it",
            field="RISKWIRE_ADMIN_API_KEYS",
        )
    keys.verify(connection.scope)
