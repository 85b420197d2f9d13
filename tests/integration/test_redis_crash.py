"""Fault injection: Redis with AOF (appendfsync always) is SIGKILLed and restarted while
webhooks arrive. Every webhook answered 200 reaches Segment; during the outage the service
answers 503 (which Fingerprint retries), never 500, never a silent loss."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.redis_server import LocalRedis, any_binary, free_port
from service.settings import Settings
from tests.payloads import encode, v3
from tests.segment_receiver import Scripted, SegmentReceiver


@pytest.fixture
def aof_redis() -> Iterator[LocalRedis]:
    server = LocalRedis(
        any_binary(), free_port(), ("--appendonly", "yes", "--appendfsync", "always")
    ).start()
    yield server
    server.stop()


async def test_acknowledged_webhooks_survive_a_redis_crash(
    aof_redis: LocalRedis, settings: Settings, segment: SegmentReceiver
) -> None:
    client_for_checks = redis.Redis.from_url(aof_redis.url)
    assert client_for_checks.config_get("appendfsync") == {"appendfsync": "always"}
    client_for_checks.close()
    app = create_app(
        msgspec.structs.replace(settings, redis_url=aof_redis.url, redis_timeout_s=0.3)
    )
    accepted: list[str] = []
    refused: list[str] = []

    async def deliver(client: AsyncTestClient[Litestar], n: int) -> int:
        body = v3({"identify": {"userId": f"u-{n}"}}, requestId=f"crash-{n}")
        response = await client.post("/webhooks/fingerprint", content=encode(body))
        assert response.status_code in (200, 503), response.text
        (accepted if response.status_code == 200 else refused).append(f"crash-{n}")
        return response.status_code

    # Segment is failing too: what was accepted before the crash is still only in the outbox.
    segment.script.extend(Scripted(500) for _ in range(10_000))
    async with AsyncTestClient(app) as client:
        for n in range(40):
            await deliver(client, n)
        assert segment.messages == [] and 500 in segment.statuses
        aof_redis.kill()
        for n in range(40, 50):
            assert await deliver(client, n) == 503  # down: a clear "retry later"
        aof_redis.start()
        segment.script.clear()  # Segment recovers too
        for n in range(50, 90):
            await deliver(client, n)
        # Fingerprint retries what was refused: now accepted.
        for request_id in list(refused):
            n = int(request_id.split("-")[1])
            refused.remove(request_id)
            assert await deliver(client, n) == 200
        expected = {f"rw-fp-{rid}-identify" for rid in accepted}
        for _ in range(300):
            if expected <= {m["messageId"] for m in segment.messages}:
                break
            await asyncio.sleep(0.05)
    assert len(accepted) == 90
    assert expected <= {m["messageId"] for m in segment.messages}
