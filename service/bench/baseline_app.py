"""The bare baseline: Litestar + msgspec doing only what any JSON endpoint must do.

It takes the same request bytes as ``POST /v1/score`` and decodes them into a struct of the
same shape, so the gap between it and the service is the service's own work (guard, scoring,
Redis), not HTTP parsing or JSON decoding.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, post


class ScoreRequestShape(msgspec.Struct, rename="camel", kw_only=True):
    request_id: str | None = None
    visitor_id: str | None = None
    user_id: str | None = None
    email: str | None = None
    ip: str | None = None
    event: dict[str, Any] | None = None


class Acknowledged(msgspec.Struct, rename="camel", kw_only=True):
    ok: bool
    visitor_id: str | None


_decoder = msgspec.json.Decoder(ScoreRequestShape)


@post("/v1/score", status_code=200)
async def score(request: Request[Any, Any, Any]) -> Acknowledged:
    shape = _decoder.decode(await request.body())
    return Acknowledged(ok=True, visitor_id=shape.visitor_id)


def create_baseline_app() -> Litestar:
    """ASGI factory (``uvicorn --factory service.bench.baseline_app:create_baseline_app``)."""
    return Litestar(route_handlers=[score])
