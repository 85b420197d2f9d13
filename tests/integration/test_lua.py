"""The lean command batches over both links: NOSCRIPT recovery, error replies, reuse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service.keys import Keys
from service.lua import Link, LuaScript, execute
from service.redis_link import MultiplexedLink, PooledLink
from service.redis_server import LocalRedis, any_binary, free_port
from service.reuse import EntityRefs, ReuseStore


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A private redis-server: these tests flush its script cache."""
    server = LocalRedis(any_binary(), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
async def client(own_redis: LocalRedis) -> AsyncIterator[Redis]:
    redis = Redis.from_url(own_redis.url)
    yield redis
    await redis.aclose()


@pytest.fixture(params=["pooled", "multiplexed"])
async def link(
    request: pytest.FixtureRequest, client: Redis, own_redis: LocalRedis
) -> AsyncIterator[Link]:
    if request.param == "pooled":
        yield PooledLink(client)
        return
    multiplexed = MultiplexedLink(own_redis.url, timeout_s=2.0)
    yield multiplexed
    await multiplexed.aclose()


async def test_scripts_are_reloaded_after_a_flush(client: Redis, link: Link) -> None:
    store = ReuseStore(client, Keys("t"), windows_ms=(60_000,), cap=10, ipqs_window_ms=1, link=link)
    first = await store.observe(EntityRefs(device="D", user="u1"), 1_000)
    await client.script_flush()
    second = await store.observe(EntityRefs(device="D", user="u2"), 2_000)
    assert first.counts["users_per_device"] == (1,)
    assert second.counts["users_per_device"] == (2,)


async def test_error_replies_raise_and_leave_the_connection_usable(link: Link) -> None:
    script = LuaScript("return redis.call('INCR', KEYS[1])")
    with pytest.raises(ResponseError, match="not an integer"):
        await execute(
            link,
            [("SET", "s", "text"), script.call(["s"], []), ("SET", "after", "1")],
            [script],
        )
    # Every reply of the failed batch was read: the next batch gets its own replies.
    assert await execute(link, [("GET", "after"), ("ECHO", b"x\r\ny")]) == [b"1", b"x\r\ny"]
    assert await execute(link, [script.call(["n"], []), script.call(["n"], [])], [script]) == [
        1,
        2,
    ]
