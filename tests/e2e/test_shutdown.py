"""Shutdown delivers what is still queued, within a bound; what it cannot deliver stays in
Redis, pending, and the next start delivers it. Nothing is lost, nothing is sent twice."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.__main__ import GRACEFUL_SHUTDOWN_S, _run
from service.keys import Keys
from service.redis_server import free_port, redis_answers
from service.settings import Settings
from tests import server
from tests.conftest import WRITE_KEY
from tests.payloads import encode, v3
from tests.segment_receiver import Scripted, SegmentReceiver

COUNT = 20


def webhook(n: int) -> bytes:
    return encode(v3({"identify": {"userId": f"u-{n}"}}, requestId=f"shutdown-{n}"))


def expected_ids() -> set[str]:
    return {f"rw-fp-shutdown-{n}-identify" for n in range(COUNT)}


async def enqueue(client: AsyncTestClient[Litestar], segment: SegmentReceiver) -> None:
    for n in range(COUNT):
        assert (await client.post("/webhooks/fingerprint", content=webhook(n))).status_code == 200
    # The forwarder has taken its first batch to Segment (and met the scripted trouble).
    await asyncio.to_thread(lambda: _wait(lambda: segment.requests >= 1))


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def outbox_length(redis: Redis, prefix: str) -> int:
    return int(await redis.xlen(Keys(prefix).outbox))


async def test_shutdown_delivers_everything_still_queued_once(
    app_with: Callable[..., Litestar], segment: SegmentReceiver, redis_client: Redis, prefix: str
) -> None:
    # Segment fails once; the forwarder then backs off for at least 2.5 s, so whatever
    # arrives at Segment within the shutdown below was delivered by the shutdown flush.
    segment.script.append(Scripted(503))
    app = app_with(retry_base_s=5.0, retry_cap_s=10.0, shutdown_flush_s=5.0)
    client = AsyncTestClient(app)
    async with client:
        await enqueue(client, segment)
        assert segment.messages == []
        started = time.monotonic()
    took = time.monotonic() - started
    assert took < 2.0, took
    delivered = [m["messageId"] for m in segment.messages]
    assert sorted(delivered) == sorted(expected_ids())  # every one, none twice
    assert segment.statuses[0] == 503
    assert await outbox_length(redis_client, prefix) == 0


async def test_shutdown_gives_up_at_the_bound_and_the_next_start_delivers_the_rest(
    app_with: Callable[..., Litestar],
    segment: SegmentReceiver,
    redis_client: Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Segment hangs (and then refuses) every post, far beyond the shutdown bound.
    segment.script.extend(Scripted(503, hang_s=4) for _ in range(50))
    slow = {"segment_timeout_s": 30.0, "shutdown_flush_s": 1.0}
    client = AsyncTestClient(app_with(**slow))
    with caplog.at_level(logging.INFO, logger="riskwire.forwarder"):
        async with client:
            await enqueue(client, segment)
            started = time.monotonic()
        took = time.monotonic() - started
    assert 0.9 < took < 2.5, took  # the bound, not the hang
    assert await outbox_length(redis_client, prefix) == COUNT  # cut off, nothing lost
    flushed = [r.getMessage() for r in caplog.records if "shutdown flush" in r.getMessage()]
    assert flushed == [
        f"shutdown flush: 0 messages delivered, {COUNT} still in the outbox (kept in Redis, "
        "delivered after the next start)"
    ]

    segment.script.clear()  # Segment recovers; the same consumer starts again
    async with AsyncTestClient(app_with()):
        await asyncio.to_thread(segment.wait_for, COUNT)
    assert sorted(m["messageId"] for m in segment.messages) == sorted(expected_ids())
    assert await outbox_length(redis_client, prefix) == 0


def test_the_server_command_bounds_open_requests(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def fake_run(app: Litestar, **options: Any) -> None:
        served.update(options)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert _run(settings) == 0
    assert served["timeout_graceful_shutdown"] == GRACEFUL_SHUTDOWN_S


def test_sigterm_ends_the_server_within_the_bound_keeping_the_rest(
    segment: SegmentReceiver, redis_url: str, prefix: str
) -> None:
    """The production path: ``python -m service run`` SIGTERMed while Segment hangs."""
    segment.script.extend(Scripted(503, hang_s=4) for _ in range(50))
    env = {
        "RISKWIRE_REDIS_URL": redis_url,
        "RISKWIRE_REDIS_PREFIX": prefix,
        "RISKWIRE_SEGMENT_WRITE_KEY": WRITE_KEY,
        "RISKWIRE_SEGMENT_ENDPOINT": segment.url,
        "RISKWIRE_SEGMENT_TIMEOUT_S": "30",
        "RISKWIRE_HASH_KEY": "shutdown-test",
        "RISKWIRE_FORWARDER_BLOCK_MS": "50",
        "RISKWIRE_SHUTDOWN_FLUSH_S": "1",
        "RISKWIRE_LOG_LEVEL": "WARNING",
    }
    process, url = server.start(env, stderr=subprocess.PIPE)
    try:
        with httpx.Client(timeout=5) as client:
            for n in range(COUNT):
                response = client.post(f"{url}/webhooks/fingerprint", content=webhook(n))
                assert response.status_code == 200
        _wait(lambda: segment.requests >= 1)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        server.stop(process)
    # uvicorn re-raises the signal once it has shut down, so the exit status reports it.
    assert process.returncode == -signal.SIGTERM
    assert took < 3.0, took  # 1 s of flush, plus uvicorn's own steps
    messages = [json.loads(line)["message"] for line in stderr.splitlines() if line[:1] == b"{"]
    assert (
        f"shutdown flush: 0 messages delivered, {COUNT} still in the outbox (kept in Redis, "
        "delivered after the next start)"
    ) in messages
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(Keys(prefix).outbox) == COUNT


def test_sigterm_stops_the_embedded_redis_too() -> None:
    """Without a Redis, ``python -m service run`` starts one; a SIGTERM must not orphan it."""
    redis_port = free_port()
    env = {
        "RISKWIRE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RISKWIRE_FORWARDER_ENABLED": "false",
        "RISKWIRE_HASH_KEY": "shutdown-test",
        "RISKWIRE_LOG_LEVEL": "WARNING",
    }
    process, _url = server.start(env)
    try:
        assert redis_answers(env["RISKWIRE_REDIS_URL"])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    finally:
        server.stop(process)
    assert process.returncode == 128 + signal.SIGTERM
    assert not redis_answers(env["RISKWIRE_REDIS_URL"])


def test_ctrl_c_to_the_whole_job_keeps_the_embedded_redis_up_for_the_flush(
    tmp_path: Path,
) -> None:
    """A terminal's Ctrl-C signals every process of the job: the embedded redis-server must
    not die with riskwire's first breath, before the shutdown flush has read the outbox."""
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        "RISKWIRE_REDIS_URL": redis_url,
        "RISKWIRE_SINK_PATH": str(tmp_path / "sink.jsonl"),
        "RISKWIRE_HASH_KEY": "shutdown-test",
        "RISKWIRE_LOG_LEVEL": "INFO",
    }
    process, _url = server.start(env, stderr=subprocess.PIPE, own_group=True)
    try:
        assert redis_answers(redis_url)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=15)
    finally:
        server.stop(process)
    log = err.decode()
    assert "shutdown flush: 0 messages delivered, 0 still in the outbox" in log, log
    assert "outbox length unknown" not in log and "flush stopped" not in log
    assert not redis_answers(redis_url)
