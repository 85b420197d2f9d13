"""Logs are JSON lines carrying the request id, and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.logs import JsonFormatter
from service.redis_server import free_port
from service.settings import Secret
from tests.payloads import FULL_EXAMPLE, encode, signed, v3
from tests.segment_receiver import SegmentReceiver

SECRETS = {
    "fingerprint": "fp-secret-do-not-log",
    "write_key": "write-key-do-not-log",
    "api_key": "api-key-do-not-log",
    "hash_key": "hash-key-do-not-log",
    "redis_password": "redis-password-do-not-log",
}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


async def test_request_ids_are_echoed_or_made(client: AsyncTestClient[Litestar]) -> None:
    given = await client.get("/health", headers={"x-request-id": "checkout-42.a"})
    assert given.headers["x-request-id"] == "checkout-42.a"
    made = await client.get("/health", headers={"x-request-id": "bad id\\r\\ninjected"})
    assert made.headers["x-request-id"] != "bad id\\r\\ninjected"
    assert len(made.headers["x-request-id"]) == 32
    assert (await client.get("/health")).headers["x-request-id"] != made.headers["x-request-id"]


async def test_forged_and_failing_requests_log_no_secret(
    app_with: Callable[..., Litestar], captured: io.StringIO, segment: SegmentReceiver
) -> None:
    # Segment refuses this write key: the forwarder logs errors about it, never the key.
    app = app_with(
        fingerprint_secret=Secret(SECRETS["fingerprint"]),
        segment_write_key=Secret(SECRETS["write_key"]),
        api_keys=(Secret(SECRETS["api_key"]),),
        hash_key=Secret(SECRETS["hash_key"]),
    )
    async with AsyncTestClient(app) as client:
        body = encode(v3(FULL_EXAMPLE))
        forged = await client.post(
            "/webhooks/fingerprint",
            content=body,
            headers={"fpjs-event-signature": "v1=" + "0" * 64, "x-request-id": "forged-1"},
        )
        assert forged.status_code == 401
        wrong = await client.post(
            "/v1/score",
            json={"visitorId": "v"},
            headers={"authorization": f"Bearer {SECRETS['api_key']}x"},
        )
        assert wrong.status_code == 401
        await client.post("/webhooks/fingerprint", content=body)  # no signature: 401 too
        accepted = await client.post(
            "/webhooks/fingerprint", content=body, headers=signed(body, SECRETS["fingerprint"])
        )
        assert accepted.status_code == 200
        for _ in range(100):  # the forwarder posts with the (refused) write key and logs it
            if 401 in segment.statuses:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    down = app_with(
        redis_url=f"redis://:{SECRETS['redis_password']}@127.0.0.1:{free_port()}/0",
        redis_timeout_s=0.2,
        api_keys=(Secret(SECRETS["api_key"]),),
    )
    async with AsyncTestClient(down) as client:
        response = await client.post(
            "/v1/score",
            json={"visitorId": "v"},
            headers={"authorization": f"Bearer {SECRETS['api_key']}", "x-request-id": "down-1"},
        )
        assert response.status_code == 503
        await asyncio.sleep(0.2)
    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines, "nothing was logged"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("request_id") == "down-1" for line in lines)
    assert any("HTTP 401" in line["message"] and line["level"] == "ERROR" for line in lines)
    for name, secret in SECRETS.items():
        assert secret not in output, name
