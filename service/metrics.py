"""Prometheus metrics, in a registry of the app's own (no process-global collectors).

Request counts and latencies by route template (never by raw path: ids would explode the
series), scores by level and source, Redis errors; the outbox (length, in flight, parked) and
the forwarder's counters are read when scraped.

The per-request series (requests, latency, scores) are plain Python numbers, exposed through
a collector of their own at scrape time: prometheus_client's ``Counter.inc`` and
``Histogram.observe`` take a lock per update, ~4.5 % of a score request's CPU. Requests are
counted on the event loop's thread only, so nothing can interleave an update.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

import prometheus_client.metrics
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from service.forwarder import ForwarderStats
from service.outbox import OutboxStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3)
# Upper bounds with +Inf, as prometheus_client's Histogram keeps them: an observation goes to
# the first bucket whose bound is >= it, which is what bisect_left finds.
_BOUNDS: Final = (*map(float, LATENCY_BUCKETS), float("inf"))
_LE: Final[tuple[str, ...]] = tuple(floatToGoString(b) for b in _BOUNDS)  # type: ignore[no-untyped-call]
_HTTP: Final[str] = ScopeType.HTTP.value  # a plain str compares faster than the enum member


class _Latency:
    """One route's latency histogram: observations per bucket (not cumulative), their sum."""

    __slots__ = ("buckets", "created", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(_BOUNDS)
        self.sum = 0.0
        self.created = time.time()


class _Requests:
    """One (route, method, status) request count, and its route's latency histogram."""

    __slots__ = ("count", "created", "latency")

    def __init__(self, latency: _Latency) -> None:
        self.count = 0
        self.latency = latency
        self.created = time.time()


class _Scores:
    __slots__ = ("count", "created")

    def __init__(self) -> None:
        self.count = 0
        self.created = time.time()


class _RequestCollector:
    """Exposes ``Metrics``' plain counts as prometheus_client's Counter and Histogram would:
    the same names, help, labels, samples and ``_created`` series."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        # Names only, for the registry's duplicate check (so registering collects nothing).
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        # Read at scrape time, like prometheus_client's own series; its switch
        # (PROMETHEUS_DISABLE_CREATED_SERIES, disable_created_metrics()) applies here too.
        created = getattr(prometheus_client.metrics, "_use_created", True)
        requests, latency, scores = self._families()
        m = self._metrics
        # Copies: scrapes run on the event loop, between requests, but should one ever run
        # on another thread, a series added meanwhile must not break the iteration.
        for (route, method, status), series in list(m.request_series.items()):
            requests.add_metric(
                (route, method, str(status)),
                series.count,
                created=series.created if created else None,
            )
        for route, histogram in list(m.latency_series.items()):
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(_LE, histogram.buckets, strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            latency.add_metric((route,), buckets, histogram.sum)
            if created:
                latency.samples.append(
                    Sample(latency.name + "_created", {"route": route}, histogram.created)
                )
        for (level, source), score in list(m.score_series.items()):
            scores.add_metric(
                (level, source), score.count, created=score.created if created else None
            )
        yield requests
        yield latency
        yield scores

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "riskwire_requests", "HTTP requests", labels=("route", "method", "status")
            ),
            HistogramMetricFamily(
                "riskwire_request_seconds", "HTTP request latency", labels=("route",)
            ),
            CounterMetricFamily("riskwire_scores", "Scores given", labels=("level", "source")),
        )


class Metrics:
    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        """``clock`` times requests, in seconds (tests give the durations)."""
        self._clock = clock
        self.request_series: dict[tuple[str, str, int], _Requests] = {}
        self.latency_series: dict[str, _Latency] = {}
        self.score_series: dict[tuple[str, str], _Scores] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Registered first: the families keep the order they had as prometheus_client series.
        r.register(_RequestCollector(self))
        self.redis_errors = Counter("riskwire_redis_errors", "Requests failed on Redis", registry=r)
        self.outbox = Gauge("riskwire_outbox", "Outbox entries", ["state"], registry=r)
        self.outbox_lag = Gauge(
            "riskwire_outbox_lag_seconds",
            "Age of the oldest undelivered outbox message",
            registry=r,
        )
        self.forwarder = Gauge(
            "riskwire_forwarder", "Forwarder counters since start", ["what"], registry=r
        )

    def _new_series(self, key: tuple[str, str, int]) -> _Requests:
        route = key[0]
        latency = self.latency_series.get(route)
        if latency is None:
            latency = self.latency_series[route] = _Latency()
        series = self.request_series[key] = _Requests(latency)
        return series

    def count_score(self, level: str, source: str) -> None:
        series = self.score_series.get((level, source))
        if series is None:
            series = self.score_series[(level, source)] = _Scores()
        series.count += 1

    def middleware(self, app: ASGIApp) -> ASGIApp:
        request_series = self.request_series
        new_series = self._new_series
        clock = self._clock

        async def measure(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != _HTTP:
                await app(scope, receive, send)
                return
            started = clock()
            status = 500

            # Not a coroutine function: it hands back the server's own awaitable, which
            # saves a coroutine per message (callers await what ``send`` returns at once).
            def capture(message: Message) -> Awaitable[None]:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                return send(message)

            try:
                await app(scope, receive, capture)
            finally:
                seconds = clock() - started
                # Bounded keys: Litestar answers a method a route lacks (405) before any
                # middleware runs, so only the routes' own methods get here.
                route = str(scope.get("path_template") or "unmatched")
                # An HTTP scope (checked above against a plain str, which mypy cannot narrow by).
                key = (route, scope["method"], status)  # type: ignore[typeddict-item]
                series = request_series.get(key) or new_series(key)
                series.count += 1
                latency = series.latency
                latency.buckets[bisect_left(_BOUNDS, seconds)] += 1
                latency.sum += seconds

        return measure

    async def render(
        self,
        outbox_stats: Callable[[], Awaitable[OutboxStats]],
        forwarder: ForwarderStats,
    ) -> bytes:
        try:
            stats = await outbox_stats()
        except Exception:  # Redis down: the scrape still answers, without these gauges
            self.redis_errors.inc()
        else:
            for state in ("length", "pending", "parked"):
                self.outbox.labels(state).set(getattr(stats, state))
            self.outbox_lag.set(stats.lag_seconds)
        for what in ("delivered", "batches", "retries", "parked"):
            self.forwarder.labels(what).set(getattr(forwarder, what))
        return generate_latest(self.registry)
