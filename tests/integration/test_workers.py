"""The production command with several workers: requests land on any worker, each message
reaches Segment exactly once, duplicates are answered the same by whichever worker."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from service.bench.servers import SERVICE_FACTORY, clean_environment, uvicorn_command
from service.redis_server import free_port
from service.settings import Settings
from tests.conftest import WRITE_KEY
from tests.payloads import encode, v3
from tests.segment_receiver import SegmentReceiver


def test_two_workers_deliver_each_message_once(
    settings: Settings, segment: SegmentReceiver
) -> None:
    port = free_port()
    env = clean_environment(
        {
            "RISKWIRE_REDIS_URL": settings.redis_url,
            "RISKWIRE_REDIS_PREFIX": settings.redis_prefix,
            "RISKWIRE_SEGMENT_WRITE_KEY": WRITE_KEY,
            "RISKWIRE_SEGMENT_ENDPOINT": segment.url,
            "RISKWIRE_FORWARDER_BLOCK_MS": "50",
            "RISKWIRE_LOG_LEVEL": "WARNING",
        }
    )  # no hash key: both workers must agree on the generated one through Redis
    command = [*uvicorn_command(SERVICE_FACTORY, port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/webhooks/fingerprint"
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)

        def send(n: int) -> tuple[int, str]:
            body = encode(v3({"identify": {"userId": f"u-{n % 40}"}}, requestId=f"w-{n % 100}"))
            with httpx.Client(timeout=5) as client:  # new connections: spread over workers
                response = client.post(url, content=body)
            return response.status_code, response.text

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(200)))  # every request id twice
        assert {status for status, _ in answers} == {200}
        by_request: dict[str, set[str]] = {}
        for n, (_, text) in enumerate(answers):
            by_request.setdefault(f"w-{n % 100}", set()).add(text)
        assert all(len(texts) == 1 for texts in by_request.values())  # same answer twice
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(segment.messages) < 100:
            time.sleep(0.1)
        time.sleep(0.5)  # would a second delivery of anything arrive?
        counts = Counter(m["messageId"] for m in segment.messages)
        assert len(counts) == 100
        assert max(counts.values()) == 1
        # All requests are one device with 40 user ids. Both workers hashed identifiers with
        # the same (generated) key: a user counts once, whichever worker served it.
        users = [m["traits"]["fraud_users_per_device_1h"] for m in segment.messages]
        assert max(users) == 40
    finally:
        process.terminate()
        process.wait(timeout=20)
