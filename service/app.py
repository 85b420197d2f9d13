"""The app factory: ``create_app(settings)`` wires routes, errors and resources, nothing else."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from redis.asyncio import BlockingConnectionPool, Redis

from service import __version__
from service.errors import EXCEPTION_HANDLERS
from service.forwarder import Forwarder, RetryPolicy
from service.ingest import Ingestor
from service.keys import Keys
from service.outbox import Outbox
from service.routes import HealthController, WebhookController
from service.settings import Settings
from service.transport import FileSinkTransport, HttpTransport, Transport


def connect_redis(settings: Settings, *, max_connections: int, block_s: float = 0.0) -> Redis:
    """A client on its own bounded pool; ``block_s`` extends the read timeout for XREAD BLOCK."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s + block_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    return Redis(connection_pool=pool)


def make_transport(settings: Settings) -> Transport:
    if settings.segment_write_key is None:
        return FileSinkTransport(settings.sink_path)
    return HttpTransport(
        settings.segment_batch_url,
        settings.segment_write_key.reveal(),
        settings.segment_timeout_s,
    )


def _resources(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        keys = Keys(settings.redis_prefix)
        redis = connect_redis(settings, max_connections=settings.redis_max_connections)
        # The forwarder blocks on XREADGROUP: it gets its own small pool with a read timeout
        # longer than the block, so it neither times out nor starves request handlers.
        forwarder_redis = connect_redis(
            settings, max_connections=2, block_s=settings.forwarder_block_ms / 1000
        )
        transport = make_transport(settings)
        outbox = Outbox(redis, keys, settings.idempotency_ttl_s)
        forwarder = Forwarder(
            Outbox(forwarder_redis, keys, settings.idempotency_ttl_s),
            transport,
            consumer=settings.forwarder_consumer,
            batch_max_messages=settings.forwarder_batch_max_messages,
            block_ms=settings.forwarder_block_ms,
            retry=RetryPolicy(settings.retry_base_s, settings.retry_cap_s),
        )
        app.state.redis = redis
        app.state.outbox = outbox
        app.state.forwarder = forwarder
        app.state.ingestor = Ingestor(outbox, settings.fingerprint_secret)
        if settings.forwarder_enabled:
            forwarder.start()
        try:
            yield
        finally:
            await forwarder.stop()
            await transport.aclose()
            await forwarder_redis.aclose(close_connection_pool=True)
            await redis.aclose(close_connection_pool=True)

    return resources


def create_app(settings: Settings) -> Litestar:
    return Litestar(
        route_handlers=[WebhookController, HealthController],
        lifespan=[_resources(settings)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        state=State({"settings": settings}),
        openapi_config=OpenAPIConfig(title="riskwire", version=__version__),
    )


def app_from_env() -> Litestar:
    """ASGI factory for servers (``uvicorn --factory service.app:app_from_env``)."""
    return create_app(Settings.from_env(os.environ))
