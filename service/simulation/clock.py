"""Simulated time: epoch milliseconds, and when people (not bots) are awake to shop."""

from __future__ import annotations

import bisect
import itertools
import random
from datetime import UTC, datetime, timedelta

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Relative web-shop traffic per local hour: a night trough, a lunch bump, an evening peak.
_HOURLY = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.4, 3.6, 4.4, 4.8, 5.0,
    5.4, 5.2, 4.8, 4.6, 4.6, 4.9, 5.6, 6.4, 6.8, 6.2, 4.4, 2.4,
)  # fmt: skip
_CUMULATIVE = tuple(itertools.accumulate(_HOURLY))


def to_datetime(time_ms: int) -> datetime:
    # timedelta keeps whole milliseconds exact, where float seconds could round.
    return _EPOCH + timedelta(milliseconds=time_ms)


def to_ms(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(milliseconds=1)


def iso(time_ms: int) -> str:
    """ISO 8601 with milliseconds and ``Z``, as Fingerprint writes its v3 times."""
    day, rest = divmod(time_ms, DAY_MS)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        # strftime is slow and a run only touches a few hundred distinct days.
        prefix = _DAY_PREFIXES[day] = to_datetime(day * DAY_MS).strftime("%Y-%m-%dT")
    minute, rest = divmod(rest, MINUTE_MS)
    second, millis = divmod(rest, SECOND_MS)
    return prefix + _HH_MM[minute] + _SS[second] + _MMM[millis]


_DAY_PREFIXES: dict[int, str] = {}
# Lookup tables instead of formatting: this runs several times per simulated event.
_HH_MM = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(24 * 60))
_SS = tuple(f"{s:02d}." for s in range(60))
_MMM = tuple(f"{ms:03d}Z" for ms in range(SECOND_MS))


def local_hour_ms(rng: random.Random) -> int:
    """A time of day (ms after local midnight) drawn from the shopping curve."""
    hour = bisect.bisect_right(_CUMULATIVE, rng.random() * _CUMULATIVE[-1])
    return min(hour, 23) * HOUR_MS + rng.randrange(HOUR_MS)


def daytime(rng: random.Random, day_start_ms: int, utc_offset_min: int) -> int:
    """A waking-hours moment on the local calendar day that contains ``day_start_ms``."""
    offset = utc_offset_min * MINUTE_MS
    local_midnight = (day_start_ms + offset) // DAY_MS * DAY_MS
    return local_midnight - offset + local_hour_ms(rng)


def next_visit(rng: random.Random, after_ms: int, mean_gap_days: float, offset_min: int) -> int:
    """The next visit of someone who comes back every ``mean_gap_days`` on average."""
    gap_ms = int(rng.expovariate(1.0 / mean_gap_days) * DAY_MS)
    candidate = daytime(rng, after_ms + gap_ms, offset_min)
    # A draw that lands before the last visit ended means "later that day or the next".
    while candidate <= after_ms + 30 * MINUTE_MS:
        candidate += DAY_MS
    return candidate


def first_visit(rng: random.Random, start_ms: int, end_ms: int, offset_min: int) -> int:
    """A waking-hours moment somewhere in [start, end)."""
    days = max(1, (end_ms - start_ms) // DAY_MS)
    candidate = daytime(rng, start_ms + rng.randrange(days) * DAY_MS, offset_min)
    if candidate < start_ms:
        candidate += DAY_MS
    return candidate
