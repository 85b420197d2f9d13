"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.metrics import CONTENT_TYPE, Metrics


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    redis: bool
    outbox_length: int | None = None


class HealthController(Controller):
    """Liveness, readiness and metrics; no API key (expose them to your infrastructure only)."""

    tags = ["operations"]

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """The process is up and serving."""
        return Health("ok")

    @get("/ready", operation_id="ready")
    async def ready(self, state: State) -> Response[Readiness]:
        """Ready when Redis answers; 503 otherwise."""
        redis: Redis = state.redis
        try:
            await redis.ping()
            length = await state.outbox.length()
        except RedisError:
            return Response(Readiness("unavailable", redis=False), status_code=503)
        return Response(Readiness("ok", redis=True, outbox_length=length))

    @get("/metrics", operation_id="metrics", media_type=CONTENT_TYPE)
    async def metrics(self, state: State) -> Response[bytes]:
        """Prometheus metrics (text exposition format)."""
        metrics: Metrics = state.metrics
        body = await metrics.render(state.outbox.stats, state.forwarder.stats)
        return Response(body, media_type=CONTENT_TYPE)
