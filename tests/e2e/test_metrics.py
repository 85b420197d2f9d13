"""Prometheus metrics: requests by route template, scores by level, outbox and forwarder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.keys import Keys
from tests.payloads import FULL_EXAMPLE, encode, v3
from tests.segment_receiver import SegmentReceiver

AUTH = {"authorization": "Bearer checkout-key"}


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{text}")


async def test_metrics_count_what_happened(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    await client.post("/webhooks/fingerprint", content=encode(v3(FULL_EXAMPLE)))
    await client.post("/webhooks/fingerprint", content=b"{oops")
    for visitor in ("a", "b"):
        await client.get(f"/v1/visitors/{visitor}", headers=AUTH)
    await asyncio.to_thread(segment.wait_for, 4)
    await asyncio.sleep(0.1)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    webhook = "/webhooks/fingerprint"
    assert value(text, "riskwire_requests_total", route=webhook, status="200") == 1
    assert value(text, "riskwire_requests_total", route=webhook, status="400") == 1
    # Path parameters stay templates: one series for every visitor.
    assert value(text, "riskwire_requests_total", route="/v1/visitors/{visitor_id}") == 2
    assert value(text, "riskwire_scores_total", level="high", source="fingerprint_v3") == 1
    assert value(text, "riskwire_request_seconds_count", route=webhook) == 2
    assert value(text, "riskwire_forwarder", what="delivered") == 4
    assert value(text, "riskwire_outbox", state="length") == 0
    assert value(text, "riskwire_outbox", state="parked") == 0


async def test_ready_fails_when_the_outbox_lags_past_its_bound(
    app_with: Callable[..., Litestar], redis_client: Redis, prefix: str
) -> None:
    # A message XADDed ten minutes ago by Redis's clock and never delivered.
    seconds, _ = await redis_client.time()
    old_id = f"{(seconds - 600) * 1000}-0"
    await redis_client.xadd(Keys(prefix).outbox, {"m": b"{}"}, id=old_id)
    lagging = app_with(forwarder_enabled=False, ready_max_outbox_lag_s=300)
    async with AsyncTestClient(lagging) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "outbox lag over 300 s" and body["redis"] is True
        assert 599 <= body["outboxLagSeconds"] < 660 and body["outboxLength"] == 1
        assert body["modelVersion"]
        metrics = (await client.get("/metrics")).text
        lag = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("riskwire_outbox_lag_seconds ")
        )
        assert 599 <= lag < 660
    async with AsyncTestClient(app_with(forwarder_enabled=False, ready_max_outbox_lag_s=0)) as c:
        assert (await c.get("/ready")).status_code == 200
    async with AsyncTestClient(app_with(forwarder_enabled=False)) as client:  # 900 s default
        assert (await client.get("/ready")).json()["status"] == "ok"


async def test_lane_requests_fill_the_latency_histogram(client: AsyncTestClient[Litestar]) -> None:
    for _ in range(3):
        answer = await client.post("/v1/score", content=b"{}", headers={"authorization": "x"})
        assert answer.status_code == 401
    await client.get("/health")
    text = (await client.get("/metrics")).text
    score = "/v1/score"
    assert value(text, "riskwire_requests_total", route=score, method="POST", status="401") == 3
    assert value(text, "riskwire_request_seconds_count", route=score) == 3
    assert value(text, "riskwire_request_seconds_bucket", route=score, le="+Inf") == 3
    # A local 401 takes well under three seconds: every one is in the last finite bucket too.
    assert value(text, "riskwire_request_seconds_bucket", route=score, le="3.0") == 3
    assert 0 < value(text, "riskwire_request_seconds_sum", route=score) < 9
    assert value(text, "riskwire_request_seconds_count", route="/health") == 1
