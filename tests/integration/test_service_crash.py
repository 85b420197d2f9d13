"""Fault injection: the service process is SIGTERMed, and another SIGKILLed, while webhooks
arrive; a fresh process takes over. Every webhook answered 200 reaches Segment."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from service.bench.servers import SERVICE_FACTORY, clean_environment, uvicorn_command
from service.redis_server import free_port
from service.settings import Settings
from tests.conftest import WRITE_KEY
from tests.payloads import encode, v3
from tests.segment_receiver import Scripted, SegmentReceiver


class Service:
    def __init__(self, settings: Settings, segment_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_environment(
            {
                "RISKWIRE_REDIS_URL": settings.redis_url,
                "RISKWIRE_REDIS_PREFIX": settings.redis_prefix,
                "RISKWIRE_SEGMENT_WRITE_KEY": WRITE_KEY,
                "RISKWIRE_SEGMENT_ENDPOINT": segment_url,
                "RISKWIRE_HASH_KEY": "crash-test",
                "RISKWIRE_RETRY_BASE_S": "0.02",
                "RISKWIRE_RETRY_CAP_S": "0.2",
                "RISKWIRE_FORWARDER_BLOCK_MS": "50",
                "RISKWIRE_FORWARDER_CLAIM_IDLE_S": "1",
                "RISKWIRE_LOG_LEVEL": "WARNING",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, consumer: str) -> None:
        command = uvicorn_command(SERVICE_FACTORY, self.port)
        env = {**self.env, "RISKWIRE_FORWARDER_CONSUMER": consumer}
        self.process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("service did not start")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)


@pytest.fixture
def service(settings: Settings, segment: SegmentReceiver) -> Iterator[Service]:
    running = Service(settings, segment.url)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def load(service: Service, start: int, count: int, accepted: list[str]) -> None:
    with httpx.Client(timeout=2.0) as client:
        for n in range(start, start + count):
            body = encode(v3({"identify": {"userId": f"u-{n}"}}, requestId=f"kill-{n}"))
            try:
                response = client.post(f"{service.url}/webhooks/fingerprint", content=body)
            except httpx.HTTPError:
                continue  # refused while down: Fingerprint would retry
            if response.status_code == 200:
                accepted.append(f"kill-{n}")


def test_nothing_acknowledged_is_lost_when_the_service_is_killed(
    service: Service, segment: SegmentReceiver
) -> None:
    # Segment fails throughout the first two lives: what was accepted stays in the outbox.
    segment.script.extend(Scripted(500) for _ in range(100_000))
    accepted: list[str] = []

    service.start("first")
    loader = threading.Thread(target=load, args=(service, 0, 150, accepted))
    loader.start()
    time.sleep(0.5)
    service.signal(signal.SIGTERM)
    assert service.process is not None
    started = time.monotonic()
    service.process.wait(timeout=15)
    assert time.monotonic() - started < 10  # a bounded, clean exit
    loader.join()

    service.start("second")
    loader = threading.Thread(target=load, args=(service, 150, 150, accepted))
    loader.start()
    time.sleep(0.5)
    service.signal(signal.SIGKILL)
    service.process.wait(timeout=5)
    loader.join()

    segment.script.clear()  # Segment recovers; a third process (another host name) takes over
    service.start("third")
    expected = {f"rw-fp-{rid}-identify" for rid in accepted}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if expected <= {m["messageId"] for m in segment.messages}:
            break
        time.sleep(0.2)
    numbers = [int(rid.split("-")[1]) for rid in accepted]
    # Both lives acknowledged webhooks that Segment had not taken when they ended.
    assert any(n < 150 for n in numbers) and any(n >= 150 for n in numbers)
    missing = expected - {m["messageId"] for m in segment.messages}
    assert not missing, f"{len(missing)} acknowledged webhooks never reached Segment"
