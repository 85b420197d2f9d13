"""The request, latency and score series as Prometheus reads them from ``Metrics.render``."""

from __future__ import annotations

from collections.abc import Iterator

from litestar.types import Message, Receive, Scope, Send
from prometheus_client.parser import text_string_to_metric_families

from service.forwarder import ForwarderStats
from service.metrics import LATENCY_BUCKETS, Metrics
from service.outbox import OutboxStats


class Durations:
    """A clock under which each request takes the next of ``seconds``."""

    def __init__(self, seconds: list[float]) -> None:
        self._ticks: Iterator[float] = iter([t for s in seconds for t in (0.0, s)])

    def __call__(self) -> float:
        return next(self._ticks)


async def serve(metrics: Metrics, route: str | None, method: str, status: int) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def sink(message: Message) -> None:
        pass

    scope: dict[str, object] = {"type": "http", "method": method, "headers": []}
    if route is not None:
        scope["path_template"] = route
    await metrics.middleware(app)(scope, None, sink)  # type: ignore[arg-type]


async def empty_outbox() -> OutboxStats:
    return OutboxStats(length=0, pending=0, parked=0, consumers=1)


async def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = (await metrics.render(empty_outbox, ForwarderStats())).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


async def test_counts_buckets_and_sums_after_some_requests() -> None:
    # Bounds are inclusive (le): 0.0005 s lands in the first bucket, 0.0006 s in the second.
    seconds = [0.0005, 0.0006, 0.004, 0.004, 2.0, 7.5, 0.0001]
    metrics = Metrics(clock=Durations(seconds))
    await serve(metrics, "/v1/score", "POST", 200)
    await serve(metrics, "/v1/score", "POST", 200)
    await serve(metrics, "/v1/score", "POST", 401)
    await serve(metrics, "/v1/score", "POST", 200)
    await serve(metrics, "/webhooks/fingerprint", "POST", 503)
    await serve(metrics, "/v1/score", "POST", 200)
    await serve(metrics, None, "GET", 404)
    for _ in range(3):
        metrics.count_score("high", "fingerprint_v4")
    metrics.count_score("low", "ipqs")
    found = await scrape(metrics)

    score = "/v1/score"
    requests = "riskwire_requests_total"
    assert found[(requests, labels(route=score, method="POST", status="200"))] == 4
    assert found[(requests, labels(route=score, method="POST", status="401"))] == 1
    assert (
        found[(requests, labels(route="/webhooks/fingerprint", method="POST", status="503"))] == 1
    )
    assert found[(requests, labels(route="unmatched", method="GET", status="404"))] == 1

    cumulative = {
        float(dict(key[1])["le"]): value
        for key, value in found.items()
        if key[0] == "riskwire_request_seconds_bucket" and ("route", score) in key[1]
    }
    assert sorted(cumulative) == [*map(float, LATENCY_BUCKETS), float("inf")]
    # /v1/score took 0.0005, 0.0006, 0.004, 0.004 and 7.5 s.
    expected = {0.0005: 1, 0.001: 2, 0.002: 2, 0.005: 4, 3.0: 4, float("inf"): 5}
    for bound, count in expected.items():
        assert cumulative[bound] == count, bound
    assert found[("riskwire_request_seconds_count", labels(route=score))] == 5
    assert abs(found[("riskwire_request_seconds_sum", labels(route=score))] - 7.5091) < 1e-9
    assert found[("riskwire_request_seconds_count", labels(route="/webhooks/fingerprint"))] == 1
    assert ("riskwire_request_seconds_created", labels(route=score)) in found

    assert found[("riskwire_scores_total", labels(level="high", source="fingerprint_v4"))] == 3
    assert found[("riskwire_scores_total", labels(level="low", source="ipqs"))] == 1
    assert ("riskwire_scores_created", labels(level="low", source="ipqs")) in found


async def test_a_scrape_declares_the_families_once_with_their_types() -> None:
    metrics = Metrics(clock=Durations([0.01]))
    await serve(metrics, "/health", "GET", 200)
    metrics.count_score("low", "ipqs")
    text = (await metrics.render(empty_outbox, ForwarderStats())).decode()
    declared = [line.split()[2:] for line in text.splitlines() if line.startswith("# TYPE")]
    types = dict(declared)
    assert len(types) == len(declared)
    assert types["riskwire_requests_total"] == "counter"
    assert types["riskwire_request_seconds"] == "histogram"
    assert types["riskwire_scores_total"] == "counter"
    # prometheus_client's own series write their creation times as gauges in this format.
    assert types["riskwire_requests_created"] == "gauge"
