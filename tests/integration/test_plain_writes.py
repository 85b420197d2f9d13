"""The writes sent as plain commands rather than scripts: score history and rate counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from service.history import HistoryEntry, Memory
from service.keys import Keys
from service.lua import execute
from service.ratelimit import WINDOW_MS, RateLimiter, TooManyRequests
from service.redis_link import PooledLink

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def entry(n: int) -> HistoryEntry:
    return HistoryEntry(
        request_id=f"r{n}",
        source="fingerprint_v3",
        time=T0 + timedelta(minutes=n),
        score=n,
        level="low",
        action="allow",
        reasons=[],
        model_version="m",
    )


async def test_history_keeps_the_newest_entries_under_a_ttl(
    redis_client: Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    memory = Memory(redis_client, keys, history_length=3, history_ttl_ms=60_000, obs_ttl_s=60)
    # Out of time order, as deliveries may come: ranked by event time all the same.
    for n in (2, 0, 4, 1, 3):
        await memory.run(memory.history_commands("device-1", entry(n)))
    assert [e.request_id for e in await memory.recent("device-1")] == ["r4", "r3", "r2"]
    assert 0 < await redis_client.pttl(keys.history("device-1")) <= 60_000


async def test_the_rate_counter_counts_per_window_and_expires(
    redis_client: Redis, prefix: str
) -> None:
    limiter = RateLimiter(Keys(prefix), per_minute=2)
    link = PooledLink(redis_client)
    now = 1_700_000_000_000
    for expected in (1, 2):
        replies = await execute(link, limiter.commands("key-a", now))
        assert int(replies[-1]) == expected
        limiter.check(replies, now)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check(await execute(link, limiter.commands("key-a", now)), now)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    # Another key, and the next window, count from one again.
    assert int((await execute(link, limiter.commands("key-b", now)))[-1]) == 1
    later = await execute(link, limiter.commands("key-a", now + WINDOW_MS))
    assert int(later[-1]) == 1
    counters = [key async for key in redis_client.scan_iter(match=f"{prefix}:{{rl:*")]
    assert len(counters) == 3
    for key in counters:
        assert 0 < await redis_client.pttl(key) <= 2 * WINDOW_MS
