"""The whole app on a Redis reached over a unix socket (``unix://`` in RISKWIRE_REDIS_URL)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.redis_server import LocalRedis, any_binary, free_port
from tests.payloads import clean_v3, encode
from tests.segment_receiver import SegmentReceiver

AUTH = {"authorization": "Bearer checkout-key"}


@pytest.fixture
def socket_url() -> Iterator[str]:
    # A short directory: a socket path is limited to ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="rw-") as directory:
        path = Path(directory) / "redis.sock"
        server = LocalRedis(any_binary(), free_port(), ("--unixsocket", str(path))).start()
        try:
            yield f"unix://{path}?db=0"
        finally:
            server.stop()


async def test_scores_webhooks_and_delivery_over_a_unix_socket(
    app_with: Callable[..., Litestar], socket_url: str, segment: SegmentReceiver
) -> None:
    app = app_with(redis_url=socket_url)
    async with AsyncTestClient(app) as client:
        body = encode(clean_v3("unix-request-1", user="unix-user"))
        first = await client.post("/webhooks/fingerprint", content=body)
        assert first.status_code == 200, first.text
        again = await client.post("/webhooks/fingerprint", content=body)
        assert again.headers["riskwire-replayed"] == "true"
        for user, users in (("unix-a", 1), ("unix-b", 2)):
            scored = await client.post(
                "/v1/score",
                json={"visitorId": "UnixVisitor000000001", "userId": user},
                headers=AUTH,
            )
            assert scored.status_code == 200, scored.text
            # Counts kept in the socket's Redis from one request to the next.
            assert scored.json()["signals"]["users_per_device_24h"] == users
        assert (await client.get("/health")).status_code == 200
        # The forwarder read the outbox over the socket and delivered the webhook's specs
        # (its stream is emptied as it acks).
        delivered = await asyncio.to_thread(segment.wait_for, 1)
        assert all("unix-request-1" in m["messageId"] for m in delivered)
    # The state is in the socket's Redis: nothing fell back to the TCP default.
    on_socket = redis.Redis.from_url(socket_url)
    try:
        assert on_socket.keys("*{outbox}:stream") and on_socket.keys("*{d:*}:meta")
    finally:
        on_socket.close()
