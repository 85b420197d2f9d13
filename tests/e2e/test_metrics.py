"""Prometheus metrics: requests by route template, scores by level, outbox and forwarder."""

from __future__ import annotations

import asyncio
import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

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
