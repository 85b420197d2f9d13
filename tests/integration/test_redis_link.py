"""The shared pipelined connection under concurrency and faults, on a private redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.lua import execute
from service.redis_link import MultiplexedLink
from service.redis_server import LocalRedis, any_binary, free_port


@pytest.fixture
def server() -> Iterator[LocalRedis]:
    own = LocalRedis(any_binary(), free_port()).start()
    yield own
    if own.pid is not None:
        os.kill(own.pid, signal.SIGCONT)  # in case a test left it stopped
    own.stop()


@pytest.fixture
async def link(server: LocalRedis) -> AsyncIterator[MultiplexedLink]:
    shared = MultiplexedLink(server.url, timeout_s=0.5)
    yield shared
    await shared.aclose()


async def test_concurrent_batches_each_get_their_own_replies(link: MultiplexedLink) -> None:
    async def batch(n: int) -> list[object]:
        return await link.round_trip(
            [("SET", f"k{n}", n), ("INCRBY", f"k{n}", n), ("GET", f"k{n}"), ("ECHO", f"e{n}")]
        )

    results = await asyncio.gather(*(batch(n) for n in range(500)))
    for n, replies in enumerate(results):
        assert replies == [b"OK", 2 * n, str(2 * n).encode(), f"e{n}".encode()]


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_next(
    link: MultiplexedLink, server: LocalRedis
) -> None:
    assert server.pid is not None
    await link.round_trip([("SET", "a", "1")])
    os.kill(server.pid, signal.SIGSTOP)
    first = asyncio.create_task(link.round_trip([("GET", "a"), ("GET", "a")]))
    await asyncio.sleep(0.05)
    first.cancel()
    second = asyncio.create_task(link.round_trip([("ECHO", "second")]))
    await asyncio.sleep(0.05)
    os.kill(server.pid, signal.SIGCONT)
    assert await second == [b"second"]
    assert first.cancelled()


async def test_a_stuck_server_times_out_every_waiting_batch_then_recovers(
    link: MultiplexedLink, server: LocalRedis
) -> None:
    assert server.pid is not None
    await link.round_trip([("PING",)])
    os.kill(server.pid, signal.SIGSTOP)
    started = time.monotonic()
    waiting = [link.round_trip([("INCR", "n")]) for _ in range(20)]
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    elapsed = time.monotonic() - started
    assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
    assert 0.4 <= elapsed < 2.0
    os.kill(server.pid, signal.SIGCONT)
    # A fresh connection; the stuck one's queued INCRs were sent before it was dropped,
    # so they may or may not have run: what matters is that replies line up again.
    [count] = await link.round_trip([("INCR", "n")])
    [again] = await link.round_trip([("GET", "n")])
    assert isinstance(count, int) and again == str(count).encode()


async def test_a_killed_server_fails_fast_and_a_restarted_one_is_used_again(
    link: MultiplexedLink, server: LocalRedis
) -> None:
    await link.round_trip([("SET", "x", "1")])
    server.kill()
    with pytest.raises(RedisConnectionError):
        await link.round_trip([("GET", "x")])
    with pytest.raises(RedisConnectionError, match="cannot connect"):
        await link.round_trip([("GET", "x")])
    server.start()
    assert await link.round_trip([("SET", "x", "2"), ("GET", "x")]) == [b"OK", b"2"]


async def test_credentials_and_database_from_the_url(server: LocalRedis) -> None:
    # One connection, so the SELECT below sticks.
    admin = Redis.from_url(server.url, single_connection_client=True)
    try:
        await admin.acl_setuser(
            "scorer", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"]
        )
        authed = MultiplexedLink(f"redis://scorer:pw@127.0.0.1:{server.port}/3", timeout_s=0.5)
        try:
            await execute(authed, [("SET", "in-db-3", "yes")])
        finally:
            await authed.aclose()
        assert await admin.get("in-db-3") is None
        await admin.select(3)
        assert await admin.get("in-db-3") == b"yes"
        refused = MultiplexedLink(f"redis://scorer:wrong@127.0.0.1:{server.port}/0", timeout_s=0.5)
        with pytest.raises(RedisConnectionError, match="handshake"):
            await refused.round_trip([("PING",)])
        await refused.aclose()
    finally:
        await admin.aclose()


def test_under_uvloop_the_production_event_loop(server: LocalRedis) -> None:
    import uvloop

    async def scenario() -> list[list[Any]]:
        shared = MultiplexedLink(server.url, timeout_s=0.5)
        try:
            return await asyncio.gather(
                *(shared.round_trip([("INCR", "u"), ("ECHO", str(n))]) for n in range(100))
            )
        finally:
            await shared.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(scenario())
    assert sorted(int(r[0]) for r in results) == list(range(1, 101))
    assert [r[1] for r in results] == [str(n).encode() for n in range(100)]


async def test_an_empty_batch_answers_at_once_and_blocks_nothing(link: MultiplexedLink) -> None:
    assert await asyncio.wait_for(link.round_trip([]), 0.2) == []
    assert await link.round_trip([("ECHO", "next")]) == [b"next"]


async def test_a_batch_that_cannot_be_packed_leaves_the_stream_in_step(
    link: MultiplexedLink,
) -> None:
    with pytest.raises(UnicodeEncodeError):
        await link.round_trip([("SET", "k", "\ud800")])  # a lone surrogate has no UTF-8
    assert await link.round_trip([("ECHO", "after")]) == [b"after"]


async def test_a_failed_connect_whose_callers_were_cancelled_is_not_reused() -> None:
    port = free_port()
    shared = MultiplexedLink(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    try:
        first = asyncio.create_task(shared.round_trip([("PING",)]))
        await asyncio.sleep(0)  # the connect attempt starts
        first.cancel()
        await asyncio.sleep(0.1)  # and fails (nothing listens) with no caller left to see it
        server = LocalRedis(any_binary(), port).start()
        try:
            assert await shared.round_trip([("PING",)]) == [b"PONG"]
        finally:
            server.stop()
    finally:
        await shared.aclose()
