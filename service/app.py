"""The app factory: ``create_app(settings)`` wires routes, errors and resources, nothing else."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import BlockingConnectionPool, Redis

from service import __version__
from service.auth import ApiKeys
from service.checkout import ScoreService
from service.collector import serving_collector
from service.errors import EXCEPTION_HANDLERS
from service.features import FeatureSpec
from service.forwarder import Forwarder, RetryPolicy
from service.history import DeferredWrites, Memory
from service.identifiers import IdentifierPolicy
from service.ingest import Ingestor
from service.keys import Keys
from service.labels import LabelStore
from service.lists import AccessLists
from service.logs import configure as configure_logging
from service.logs import request_id_middleware
from service.metrics import Metrics
from service.model import RiskModel, Thresholds
from service.outbox import Outbox
from service.ratelimit import RateLimiter
from service.redis_link import MultiplexedLink
from service.reuse import ReuseStore
from service.routes import AdminController, HealthController, ScoreController, WebhookController
from service.routes.hot_path import LaneApp
from service.scoring import Scorer
from service.settings import Settings, SettingsError
from service.transport import FileSinkTransport, HttpTransport, Transport

log = logging.getLogger("riskwire")

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "risk-model.json"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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


def load_model(settings: Settings) -> tuple[FeatureSpec, RiskModel, Thresholds]:
    """The feature spec for the configured windows, the model that must match it, thresholds."""
    spec = FeatureSpec(settings.reuse_window_labels)
    model = RiskModel.load(
        Path(settings.model_path) if settings.model_path else DEFAULT_MODEL, spec
    )
    shipped = model.artifact.thresholds
    try:
        thresholds = Thresholds(
            review=settings.review_threshold
            if settings.review_threshold is not None
            else shipped.review,
            block=settings.block_threshold
            if settings.block_threshold is not None
            else shipped.block,
        )
    except ValueError as exc:
        raise SettingsError(
            f"RISKWIRE_REVIEW_THRESHOLD / RISKWIRE_BLOCK_THRESHOLD: {exc}"
        ) from None
    return spec, model, thresholds


def identifier_policy(settings: Settings, redis: Redis, keys: Keys) -> IdentifierPolicy:
    if settings.hash_key is not None:
        return IdentifierPolicy(settings.hash_key.reveal().encode(), settings.blocked_identifiers)

    async def generated_key() -> bytes:
        # Shared by every worker and kept across restarts, so counts stay comparable.
        await redis.set(keys.hash_key, secrets.token_hex(32), nx=True)
        stored = cast(bytes | None, await redis.get(keys.hash_key))
        if stored is None:  # evicted between the two calls: generate again
            return await generated_key()
        return stored

    log.warning(
        "RISKWIRE_HASH_KEY is not set: identifiers are hashed with a generated key stored in "
        "Redis; set the variable in production so a Redis dump cannot be reversed"
    )
    return IdentifierPolicy(None, settings.blocked_identifiers, load_key=generated_key)


def _resources(
    settings: Settings,
    spec: FeatureSpec,
    model: RiskModel,
    thresholds: Thresholds,
    lists: AccessLists,
    clock: Clock,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        keys = Keys(settings.redis_prefix)
        redis = connect_redis(settings, max_connections=settings.redis_max_connections)
        # The forwarder blocks on XREADGROUP: it gets its own small pool with a read timeout
        # longer than the block, so it neither times out nor starves request handlers.
        forwarder_redis = connect_redis(
            settings, max_connections=2, block_s=settings.forwarder_block_ms / 1000
        )
        # Request handlers' batches share one pipelined connection (service.redis_link).
        link = MultiplexedLink(settings.redis_url, timeout_s=settings.redis_timeout_s)
        transport = make_transport(settings)
        outbox = Outbox(redis, keys, settings.idempotency_ttl_s, link=link)
        forwarder = Forwarder(
            Outbox(forwarder_redis, keys, settings.idempotency_ttl_s),
            transport,
            consumer=settings.forwarder_consumer,
            batch_max_messages=settings.forwarder_batch_max_messages,
            block_ms=settings.forwarder_block_ms,
            linger_ms=settings.forwarder_linger_ms,
            retry=RetryPolicy(settings.retry_base_s, settings.retry_cap_s),
            claim_idle_ms=int(settings.forwarder_claim_idle_s * 1000),
            claim_every_s=min(15.0, settings.forwarder_claim_idle_s / 2),
        )
        windows = settings.reuse_windows_ms
        store = ReuseStore(
            redis,
            keys,
            windows_ms=windows,
            cap=settings.reuse_cap,
            ipqs_window_ms=settings.ipqs_join_window_s * 1000,
            link=link,
        )
        memory = Memory(
            redis,
            keys,
            history_length=settings.score_history,
            history_ttl_ms=windows[-1],
            obs_ttl_s=settings.observation_ttl_s,
            link=link,
        )
        policy = identifier_policy(settings, redis, keys)
        labels = LabelStore(redis, keys, policy, settings.feature_log_max, link=link)
        scorer = Scorer(
            policy=policy,
            store=store,
            spec=spec,
            model=model,
            thresholds=thresholds,
            lists=lists,
        )
        deferred = DeferredWrites(memory)
        app.state.redis = redis
        app.state.outbox = outbox
        app.state.forwarder = forwarder
        app.state.scorer = scorer
        app.state.ingestor = Ingestor(
            outbox=outbox,
            memory=memory,
            labels=labels,
            scorer=scorer,
            fingerprint_secret=settings.fingerprint_secret,
            trait_prefix=settings.trait_prefix,
            metrics=app.state.metrics,
        )
        app.state.scores = ScoreService(
            scorer=scorer,
            store=store,
            memory=memory,
            labels=labels,
            deferred=deferred,
            outbox=outbox,
            limiter=RateLimiter(keys, settings.rate_limit_per_minute),
            trait_prefix=settings.trait_prefix,
            clock=clock,
            metrics=app.state.metrics,
        )
        deferred.start()
        if settings.forwarder_enabled:
            forwarder.start()
        try:
            with serving_collector():
                yield
        finally:
            await deferred.stop()
            # One bound for the batch in flight and the flush after it; what is left when it
            # runs out stays pending in Redis and is delivered after the next start.
            flush_until = asyncio.get_running_loop().time() + settings.shutdown_flush_s
            await forwarder.stop(timeout_s=settings.shutdown_flush_s)
            if settings.forwarder_enabled:
                await forwarder.flush(flush_until)
            await transport.aclose()
            await link.aclose()
            await forwarder_redis.aclose(close_connection_pool=True)
            await redis.aclose(close_connection_pool=True)

    return resources


def create_app(settings: Settings, *, clock: Clock = utc_now) -> Litestar:
    """The ASGI app. ``clock`` is the score API's notion of now (tests move it)."""
    spec, model, thresholds = load_model(settings)
    lists = AccessLists(settings)
    metrics = Metrics()
    return LaneApp(
        max_body_bytes=settings.max_body_bytes,
        # Outermost first: the lanes are answered inside the request-id and metrics layers.
        layers=[request_id_middleware, metrics.middleware],
        route_handlers=[WebhookController, ScoreController, AdminController, HealthController],
        lifespan=[_resources(settings, spec, model, thresholds, lists, clock)],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_id_middleware, metrics.middleware],
        # Logging is configured once per process by the entry points (service.logs).
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
        state=State(
            {
                "settings": settings,
                "metrics": metrics,
                "checkout_keys": ApiKeys(settings.api_keys),
                "admin_keys": ApiKeys(settings.admin_api_keys),
            }
        ),
        openapi_config=OpenAPIConfig(
            title="riskwire",
            version=__version__,
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http", scheme="bearer", description="a key of RISKWIRE_API_KEYS"
                    ),
                    "adminKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="a key of RISKWIRE_ADMIN_API_KEYS (checkout keys do not work)",
                    ),
                }
            ),
        ),
    )


def app_from_env() -> Litestar:
    """ASGI factory for servers (``uvicorn --factory service.app:app_from_env``)."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    return create_app(settings)
