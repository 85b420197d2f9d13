"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from redis.exceptions import RedisError

from service.metrics import CONTENT_TYPE, Metrics
from service.settings import Settings


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True, rename="camel"):
    status: str
    redis: bool
    model_version: str
    outbox_length: int | None = None
    outbox_lag_seconds: float | None = None


class HealthController(Controller):
    """Liveness, readiness and metrics; no API key (expose them to your infrastructure only)."""

    tags = ["operations"]

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """The process is up and serving."""
        return Health("ok")

    @get("/ready", operation_id="ready")
    async def ready(self, state: State) -> Response[Readiness]:
        """Ready when Redis answers and the outbox is not lagging past the bound; 503
        otherwise, with the reason in ``status``."""
        settings: Settings = state.settings
        model = state.scorer.model.version
        try:
            # Reading the outbox's stats is the Redis check too: no separate PING.
            stats = await state.outbox.stats()
        except RedisError:
            return Response(Readiness("redis unavailable", False, model), status_code=503)
        bound = settings.ready_max_outbox_lag_s
        lagging = bound > 0 and stats.lag_seconds > bound
        answer = Readiness(
            f"outbox lag over {bound:g} s" if lagging else "ok",
            True,
            model,
            outbox_length=stats.length,
            outbox_lag_seconds=stats.lag_seconds,
        )
        return Response(answer, status_code=503 if lagging else 200)

    @get("/metrics", operation_id="metrics", media_type=CONTENT_TYPE)
    async def metrics(self, state: State) -> Response[bytes]:
        """Prometheus metrics (text exposition format)."""
        metrics: Metrics = state.metrics
        body = await metrics.render(state.outbox.stats, state.forwarder.stats)
        return Response(body, media_type=CONTENT_TYPE)
