"""Prometheus metrics, in a registry of the app's own (no process-global collectors).

Request counts and latencies by route template (never by raw path: ids would explode the
series), scores by level and source, Redis errors; the outbox (length, in flight, parked) and
the forwarder's counters are read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from service.forwarder import ForwarderStats
from service.outbox import OutboxStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _RequestSeries:
    __slots__ = ("count", "latency")

    def __init__(self, count: Any, latency: Any) -> None:
        self.count, self.latency = count, latency

    def observe(self, seconds: float) -> None:
        self.count.inc()
        self.latency.observe(seconds)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "riskwire_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "riskwire_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
            registry=r,
        )
        self.scores = Counter("riskwire_scores", "Scores given", ["level", "source"], registry=r)
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
        self._request_series: dict[tuple[str, str, int], _RequestSeries] = {}
        self._score_series: dict[tuple[str, str], Any] = {}

    def _series(self, route: str, method: str, status: int) -> _RequestSeries:
        # ``labels()`` validates and locks on every call (~4 us a request for the two);
        # the children are looked up once per route, method and status instead.
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = _RequestSeries(
                self.requests.labels(route, method, str(status)), self.latency.labels(route)
            )
            self._request_series[key] = series
        return series

    def count_score(self, level: str, source: str) -> None:
        child = self._score_series.get((level, source))
        if child is None:
            child = self._score_series[(level, source)] = self.scores.labels(level, source)
        child.inc()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def measure(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                route = str(scope.get("path_template") or "unmatched")
                # Bounded keys: Litestar answers a method a route lacks (405) before any
                # middleware runs, so only the routes' own methods get here.
                self._series(route, scope["method"], status).observe(time.perf_counter() - started)

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
