"""The outbox commit script and dead-letter parking, on a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from service.keys import Keys
from service.lua import execute
from service.outbox import GROUP, Outbox
from service.redis_link import PooledLink


async def test_commit_enqueues_once_and_remembers_the_answer(
    redis_client: Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    outbox = Outbox(redis_client, keys, answer_ttl_s=60)
    fresh, answer = await outbox.commit("fp", "r1", b'{"first":1}', [b'{"a":1}', b'{"b":2}'])
    assert (fresh, answer) == (True, b'{"first":1}')
    fresh, answer = await outbox.commit("fp", "r1", b'{"second":2}', [b'{"c":3}'])
    assert (fresh, answer) == (False, b'{"first":1}')
    assert await outbox.length() == 2
    recalled = await execute(
        PooledLink(redis_client),
        [outbox.recall_command("fp", "r1"), outbox.recall_command("ipqs", "r1")],
    )
    assert recalled == [b'{"first":1}', None]
    ttl = await redis_client.ttl(keys.answer("fp", "r1"))
    assert 0 < ttl <= 60


async def test_concurrent_commits_of_one_request_enqueue_once(
    redis_client: Redis, prefix: str
) -> None:
    outbox = Outbox(redis_client, Keys(prefix), answer_ttl_s=60)
    results = await asyncio.gather(
        *(outbox.commit("fp", "same", f'{{"n":{i}}}'.encode(), [b"{}"]) for i in range(20))
    )
    assert sum(fresh for fresh, _ in results) == 1
    assert len({answer for _, answer in results}) == 1
    assert await outbox.length() == 1


async def test_read_ack_and_park(redis_client: Redis, prefix: str) -> None:
    keys = Keys(prefix)
    outbox = Outbox(redis_client, keys, answer_ttl_s=60)
    await outbox.ensure_group()
    await outbox.ensure_group()  # idempotent
    await outbox.commit("fp", "r", b"{}", [b'{"m":1}', b'{"m":2}'])
    first = await outbox.read("c1", 10, 10, pending=False)
    assert [e.message for e in first] == [b'{"m":1}', b'{"m":2}']
    # Read but not acked: still pending for c1, invisible as new.
    assert await outbox.read("c1", 10, 10, pending=False) == []
    assert [e.id for e in await outbox.read("c1", 10, 10, pending=True)] == [e.id for e in first]
    await outbox.ack([first[0].id])
    await outbox.park(first[1], "HTTP 400: bad")
    assert await outbox.length() == 0
    assert await outbox.read("c1", 10, 10, pending=True) == []
    pending = await redis_client.xpending(keys.outbox, GROUP)
    assert pending["pending"] == 0
    parked = await outbox.parked()
    assert len(parked) == 1
    fields = parked[0][1]
    assert fields[b"m"] == b'{"m":2}' and fields[b"error"] == b"HTTP 400: bad"
    assert fields[b"id"] == first[1].id


def test_keys_share_one_cluster_slot(prefix: str) -> None:
    # The commit and park scripts touch these keys together; on Redis Cluster they must
    # hash to one slot, whatever the request id contains.
    keys = Keys(prefix)
    names = [keys.outbox, keys.parked, keys.answer("fp", "x{y}"), keys.answer("ipqs", "}{")]
    assert len({key_slot(name.encode()) for name in names}) == 1


async def test_a_pending_entry_deleted_under_the_reader_comes_back_empty(
    redis_client: Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    outbox = Outbox(redis_client, keys, answer_ttl_s=60)
    await outbox.ensure_group()
    await outbox.commit("fp", "r", b"{}", [b'{"m":1}', b'{"m":2}'])
    first, second = await outbox.read("c1", 10, 10, pending=False)
    await redis_client.xdel(keys.outbox, first.id)
    # Redis keeps the id pending with no fields: it must come back (to be acked), empty.
    again = await outbox.read("c1", 10, 10, pending=True)
    assert [(e.id, e.message) for e in again] == [(first.id, b""), (second.id, b'{"m":2}')]
    # Another consumer taking over what c1 left gets the live entry; Redis 7 drops the
    # deleted id from the group itself (XAUTOCLAIM's third element).
    claimed = await outbox.claim_stale("c2", 0, 10)
    assert [(e.id, e.message) for e in claimed] == [(second.id, b'{"m":2}')]


async def test_an_ack_that_fails_inside_its_transaction_raises(
    redis_client: Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    outbox = Outbox(redis_client, keys, answer_ttl_s=60)
    # Not a stream: XACK fails at EXEC, inside the transaction's reply.
    await redis_client.set(keys.outbox, "not a stream")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await outbox.ack([b"1-0"])
