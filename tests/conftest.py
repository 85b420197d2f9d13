"""Shared fixtures: a real Redis for the session, a private key prefix per test, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from service.redis_server import LocalRedis, any_binary, free_port, redis_answers
from service.settings import Secret, Settings
from tests.segment_receiver import SegmentReceiver

WRITE_KEY = "test-write-key"


@pytest.fixture
def no_riskwire_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment without the caller's RISKWIRE_*: a tool run in-process
    reads its settings from it."""
    for name in [n for n in os.environ if n.startswith("RISKWIRE_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """RISKWIRE_TEST_REDIS_URL if it answers, else a redis-server of our own on a free port."""
    url = os.environ.get("RISKWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_answers(url):
        yield url
        return
    server = LocalRedis(any_binary(), free_port()).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test (or deployment) uses; its keys are deleted afterwards."""
    name = f"rwtest-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def segment() -> Iterator[SegmentReceiver]:
    with SegmentReceiver(WRITE_KEY) as receiver:
        yield receiver


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path, segment: SegmentReceiver) -> Settings:
    return Settings(
        redis_url=redis_url,
        redis_prefix=prefix,
        segment_write_key=Secret(WRITE_KEY),
        segment_endpoint=segment.url,
        segment_timeout_s=2.0,
        sink_path=str(tmp_path / "sink.jsonl"),
        forwarder_consumer="test",
        forwarder_block_ms=50,
        retry_base_s=0.01,
        retry_cap_s=0.2,
        api_keys=(Secret("checkout-key"),),
        hash_key=Secret("test-hash-key-of-some-length"),
    )
