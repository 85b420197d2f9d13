"""Fingerprint's Velocity signal, computed from the simulated stream itself.

Counts per visitor id, IP and linked id over the last 5 minutes, hour and 24 hours (the
current event included, as Fingerprint counts it). Each key keeps only its last 24 hours,
and idle keys are swept every six hours, so memory follows a day's traffic, not the run's length.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from service.simulation.clock import DAY_MS, HOUR_MS, MINUTE_MS

WINDOWS_MS = (5 * MINUTE_MS, HOUR_MS, DAY_MS)
SWEEP_MS = 6 * HOUR_MS
Triple = tuple[int, int, int]


class _Series:
    """Timed values under one key over the last 24 hours.

    Counts are taken on demand from the window's tail: nearly every key holds a handful of
    events a day, and even a bot's busiest device only a few hundred, so scanning beats
    maintaining per-window counters on every insert.
    """

    __slots__ = ("columns", "head", "times")

    def __init__(self, width: int) -> None:
        self.times: list[int] = []
        self.columns: list[list[str | None]] = [[] for _ in range(width)]
        self.head = 0

    def add(self, time: int, values: tuple[str | None, ...]) -> Triple:
        """Append one event; returns where each window (5 min, 1 h, 24 h) starts."""
        times = self.times
        times.append(time)
        for column, value in zip(self.columns, values, strict=True):
            column.append(value)
        head = self.head
        limit = time - DAY_MS
        while times[head] <= limit:
            head += 1
        if head > 64 and head * 2 > len(times):
            # Forget what the widest window has passed, so a busy key stays a day long.
            del times[:head]
            for column in self.columns:
                del column[:head]
            head = 0
        self.head = head
        if head == len(times) - 1:
            return head, head, head
        return (
            bisect.bisect_right(times, time - WINDOWS_MS[0], head),
            bisect.bisect_right(times, time - WINDOWS_MS[1], head),
            head,
        )

    def events(self, starts: Triple) -> Triple:
        # Counts include the current event, as Fingerprint's do.
        size = len(self.times)
        return size - starts[0], size - starts[1], size - starts[2]

    def distinct(self, column: int, starts: Triple) -> Triple:
        values = self.columns[column]
        if starts[2] == len(values) - 1:
            # The current event is alone in the day (the common case): no set needed.
            only = 0 if values[-1] is None else 1
            return only, only, only
        widest = set(values[starts[2] :])
        widest.discard(None)
        day = len(widest)
        if day == 0 or (day == 1 and values[-1] is not None):
            # Every window holds the current event: its value is the only one there is.
            return day, day, day
        hour = day if starts[1] == starts[2] else len(set(values[starts[1] :]) - {None})
        five = hour if starts[0] == starts[1] else len(set(values[starts[0] :]) - {None})
        return five, hour, day


class Counts(NamedTuple):
    distinct_ip: Triple
    distinct_linked_id: Triple
    distinct_country: Triple
    events: Triple
    ip_events: Triple
    distinct_ip_by_linked_id: Triple | None
    distinct_visitor_id_by_linked_id: Triple | None


_ONE: Triple = (1, 1, 1)
_NONE: Triple = (0, 0, 0)


class Velocity:
    def __init__(self) -> None:
        self._visitors: dict[str, _Series] = {}  # columns: ip, country, linked id
        self._ips: dict[str, list[int]] = {}  # event times only
        self._linked: dict[str, _Series] = {}  # columns: ip, visitor id
        self._next_sweep = 0

    def observe(
        self, time: int, visitor_id: str, ip: str, country: str, linked_id: str | None
    ) -> Counts:
        if time >= self._next_sweep:
            self._sweep(time)
        visitor = self._series(self._visitors, visitor_id, 3)
        at = visitor.add(time, (ip, country, linked_id))
        ip_events = self._ip_events(time, ip)
        by_ip_linked = by_visitor_linked = None
        if linked_id is not None:
            by_linked = self._series(self._linked, linked_id, 2)
            linked_at = by_linked.add(time, (ip, visitor_id))
            by_ip_linked = by_linked.distinct(0, linked_at)
            by_visitor_linked = by_linked.distinct(1, linked_at)
        if at[2] == len(visitor.times) - 1:
            # The visitor's only event in 24 hours, as it is for most: nothing to count.
            linked = _ONE if linked_id is not None else _NONE
            return Counts(_ONE, linked, _ONE, _ONE, ip_events, by_ip_linked, by_visitor_linked)
        return Counts(
            distinct_ip=visitor.distinct(0, at),
            distinct_linked_id=visitor.distinct(2, at),
            distinct_country=visitor.distinct(1, at),
            events=visitor.events(at),
            ip_events=ip_events,
            distinct_ip_by_linked_id=by_ip_linked,
            distinct_visitor_id_by_linked_id=by_visitor_linked,
        )

    @staticmethod
    def _series(table: dict[str, _Series], key: str, width: int) -> _Series:
        series = table.get(key)
        if series is None:
            series = table[key] = _Series(width)
        return series

    def _ip_events(self, time: int, ip: str) -> Triple:
        times = self._ips.get(ip)
        if times is None:
            self._ips[ip] = [time]
            return _ONE
        times.append(time)
        if times[0] <= time - DAY_MS:
            del times[: bisect.bisect_right(times, time - DAY_MS)]
        size = len(times)
        return (
            size - bisect.bisect_right(times, time - WINDOWS_MS[0]),
            size - bisect.bisect_right(times, time - WINDOWS_MS[1]),
            size,
        )

    def _sweep(self, time: int) -> None:
        limit = time - DAY_MS
        for table in (self._visitors, self._linked):
            for key in [key for key, series in table.items() if series.times[-1] <= limit]:
                del table[key]
        for ip in [ip for ip, times in self._ips.items() if times[-1] <= limit]:
            del self._ips[ip]
        self._next_sweep = time + SWEEP_MS
