"""Nothing stays stuck: stale messages of a dead consumer are taken over, parked ones can be
inspected, replayed and purged (API and command line)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from redis.asyncio import Redis

from service.forwarder import Forwarder, RetryPolicy
from service.keys import Keys
from service.outbox import Outbox
from service.transport import HttpTransport
from tests.conftest import WRITE_KEY
from tests.segment_receiver import SegmentReceiver


def message(n: int) -> bytes:
    return json.dumps({"type": "track", "event": "E", "messageId": f"m-{n}"}).encode()


async def test_a_dead_consumers_messages_are_taken_over(
    redis_client: Redis, prefix: str, segment: SegmentReceiver
) -> None:
    outbox = Outbox(redis_client, Keys(prefix), answer_ttl_s=60)
    await outbox.commit("fp", "r", b"{}", [message(n) for n in range(5)])
    await outbox.ensure_group()
    # "old-host" read everything, then died: its name never comes back.
    assert len(await outbox.read("old-host", 10, 10, pending=False)) == 5
    assert (await outbox.stats()).pending == 5
    forwarder = Forwarder(
        outbox,
        HttpTransport(segment.url + "/v1/batch", WRITE_KEY, 2.0),
        consumer="new-host",
        batch_max_messages=100,
        block_ms=20,
        retry=RetryPolicy(0.01, 0.05),
        claim_idle_ms=50,
        claim_every_s=0.05,
    )
    await asyncio.sleep(0.1)  # idle longer than claim_idle_ms
    forwarder.start()
    try:
        messages = await asyncio.to_thread(segment.wait_for, 5)
    finally:
        await forwarder.stop()
    assert sorted(m["messageId"] for m in messages) == [f"m-{n}" for n in range(5)]
    stats = await outbox.stats()
    assert (stats.length, stats.pending, stats.parked) == (0, 0, 0)


async def test_parked_messages_can_be_replayed_and_purged(redis_client: Redis, prefix: str) -> None:
    outbox = Outbox(redis_client, Keys(prefix), answer_ttl_s=60)
    await outbox.commit("fp", "r", b"{}", [message(n) for n in range(3)])
    await outbox.ensure_group()
    for entry in await outbox.read("c", 10, 10, pending=False):
        await outbox.park(entry, "HTTP 400: bad")
    assert (await outbox.stats()).parked == 3
    parked = await outbox.parked()
    assert await outbox.replay_parked([parked[0][0]]) == 1
    assert await outbox.replay_parked([parked[0][0]]) == 0  # already gone
    stats = await outbox.stats()
    assert (stats.length, stats.parked) == (1, 2)
    replayed = await outbox.read("c", 10, 10, pending=False)
    assert [e.message for e in replayed] == [message(0)]
    assert await outbox.purge_parked([parked[1][0]]) == 1
    assert await outbox.replay_parked() == 1
    assert await outbox.purge_parked() == 0
    assert (await outbox.stats()).parked == 0


async def test_the_outbox_command_line(redis_client: Redis, prefix: str, redis_url: str) -> None:
    outbox = Outbox(redis_client, Keys(prefix), answer_ttl_s=60)
    await outbox.commit("fp", "r", b"{}", [message(7)])
    await outbox.ensure_group()
    (entry,) = await outbox.read("c", 10, 10, pending=False)
    await outbox.park(entry, "HTTP 400: invalid message")
    env = {**os.environ, "RISKWIRE_REDIS_URL": redis_url, "RISKWIRE_REDIS_PREFIX": prefix}

    def cli(*args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "service", "outbox", *args],
            env=env, capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        return json.loads(done.stdout)

    listed = cli("list")
    assert isinstance(listed, list) and len(listed) == 1
    assert listed[0]["messageId"] == "m-7" and listed[0]["error"] == "HTTP 400: invalid message"
    assert cli("stats") == {"length": 0, "pending": 0, "parked": 1, "consumers": 1, "lagSeconds": 0}
    assert cli("replay", "--all") == {"replayed": 1}
    stats = cli("stats")
    assert isinstance(stats, dict)
    # Replayed messages join the outbox anew: their wait starts at the replay.
    assert 0 <= stats.pop("lagSeconds") < 30
    assert stats == {"length": 1, "pending": 0, "parked": 0, "consumers": 1}
