"""The forwarder against a local server that behaves like Segment, on a real Redis."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from service.forwarder import (
    MAX_BATCH_BYTES,
    Forwarder,
    RetryPolicy,
    batch_body,
    split_batches,
)
from service.keys import Keys
from service.outbox import Entry, Outbox
from service.transport import FileSinkTransport, HttpTransport, Transport, parse_retry_after
from tests.conftest import WRITE_KEY
from tests.segment_receiver import Scripted, SegmentReceiver

FAST = RetryPolicy(base_s=0.01, cap_s=0.05)


def message(n: int, pad: int = 0) -> bytes:
    body: dict[str, object] = {
        "type": "track",
        "event": "E",
        "messageId": f"m-{n}",
        "anonymousId": "a",
    }
    if pad:
        body["properties"] = {"pad": "x" * pad}
    return json.dumps(body).encode()


@pytest.fixture
async def outbox(redis_client: Redis, prefix: str) -> AsyncIterator[Outbox]:
    yield Outbox(redis_client, Keys(prefix), answer_ttl_s=60)


def http(segment: SegmentReceiver, key: str = WRITE_KEY, timeout_s: float = 2.0) -> HttpTransport:
    return HttpTransport(segment.url + "/v1/batch", key, timeout_s)


def forwarder(outbox: Outbox, transport: Transport, batch: int = 500) -> Forwarder:
    return Forwarder(
        outbox,
        transport,
        consumer="t",
        batch_max_messages=batch,
        block_ms=20,
        retry=FAST,
        rng=random.Random(1),
    )


async def enqueue(outbox: Outbox, count: int, pad: int = 0) -> None:
    await outbox.commit("fp", "batch", b"{}", [message(i, pad) for i in range(count)])


async def run_until(fw: Forwarder, segment: SegmentReceiver, count: int) -> None:
    fw.start()
    try:
        await asyncio.to_thread(segment.wait_for, count)
    finally:
        await fw.stop()


def ids(segment: SegmentReceiver) -> list[str]:
    return [m["messageId"] for m in segment.messages]


async def test_delivers_in_order_with_basic_auth_and_acks(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    await enqueue(outbox, 30)
    fw = forwarder(outbox, http(segment), batch=10)
    await run_until(fw, segment, 30)
    assert ids(segment) == [f"m-{i}" for i in range(30)]
    assert len(segment.accepted) == 3  # 10 per batch
    assert all("sentAt" in batch for batch in segment.accepted)
    assert await outbox.length() == 0
    assert fw.stats.delivered == 30


async def test_wrong_write_key_is_retried_never_dropped(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    await enqueue(outbox, 2)
    fw = forwarder(outbox, http(segment, key="wrong"))
    fw.start()
    await asyncio.sleep(0.3)
    await fw.stop()
    assert segment.messages == []
    assert 401 in segment.statuses
    assert fw.stats.retries >= 2
    assert await outbox.length() == 2  # still there for a corrected key


async def test_server_errors_then_recovery_deliver_everything_once(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    segment.script.extend(Scripted(status) for status in (500, 503, 502, 408))
    await enqueue(outbox, 5)
    fw = forwarder(outbox, http(segment))
    await run_until(fw, segment, 5)
    assert sorted(ids(segment)) == [f"m-{i}" for i in range(5)]
    assert segment.statuses[:5] == [500, 503, 502, 408, 200]
    assert fw.stats.retries == 4


async def test_429_honours_retry_after(outbox: Outbox, segment: SegmentReceiver) -> None:
    segment.script.append(Scripted(429, {"Retry-After": "1"}))
    await enqueue(outbox, 1)
    # Without Retry-After this policy would retry within 10 ms.
    fw = Forwarder(
        outbox,
        http(segment),
        consumer="t",
        batch_max_messages=10,
        block_ms=20,
        retry=RetryPolicy(base_s=0.01, cap_s=5.0),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_until(fw, segment, 1)
    assert loop.time() - started >= 0.95
    assert segment.statuses == [429, 200]


async def test_hanging_server_times_out_and_is_retried(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    segment.script.append(Scripted(200, hang_s=1.0))
    await enqueue(outbox, 3)
    fw = forwarder(outbox, http(segment, timeout_s=0.3))
    await run_until(fw, segment, 3)
    # The hung request may also have been accepted after the client gave up: at-least-once,
    # with stable messageIds for Segment to dedupe.
    assert set(ids(segment)) == {"m-0", "m-1", "m-2"}
    assert fw.stats.retries >= 1


async def test_refused_connection_then_recovery(outbox: Outbox) -> None:
    await enqueue(outbox, 4)
    receiver = SegmentReceiver(WRITE_KEY)
    url = receiver.url  # bound but not serving yet: connections are not answered
    receiver._server.server_close()
    fw = forwarder(outbox, HttpTransport(url + "/v1/batch", WRITE_KEY, 0.5))
    fw.start()
    await asyncio.sleep(0.2)
    assert fw.stats.retries >= 1 and fw.stats.delivered == 0
    await fw.stop()
    assert await outbox.length() == 4
    with SegmentReceiver(WRITE_KEY) as segment:
        fw = forwarder(outbox, http(segment))
        await run_until(fw, segment, 4)
        assert sorted(ids(segment)) == [f"m-{i}" for i in range(4)]


async def test_one_bad_message_is_parked_and_does_not_block_the_rest(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    segment.reject_message_ids.add("m-5")
    await enqueue(outbox, 12)
    fw = forwarder(outbox, http(segment))
    await run_until(fw, segment, 11)
    assert sorted(ids(segment)) == sorted(f"m-{i}" for i in range(12) if i != 5)
    parked = await outbox.parked()
    assert len(parked) == 1
    assert json.loads(parked[0][1][b"m"])["messageId"] == "m-5"
    assert parked[0][1][b"error"].startswith(b"HTTP 400")
    assert fw.stats.parked == 1
    assert await outbox.length() == 0


async def test_pending_entries_of_a_crashed_run_are_redelivered(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    await enqueue(outbox, 3)
    await outbox.ensure_group()
    read = await outbox.read("t", 10, 10, pending=False)  # read, then "crash" before acking
    assert len(read) == 3
    fw = forwarder(outbox, http(segment))
    await run_until(fw, segment, 3)
    assert sorted(ids(segment)) == ["m-0", "m-1", "m-2"]


async def test_file_sink_writes_one_json_line_per_batch(outbox: Outbox, tmp_path: Path) -> None:
    sink = tmp_path / "nested" / "sink.jsonl"
    await enqueue(outbox, 7)
    fw = forwarder(outbox, FileSinkTransport(str(sink)), batch=5)
    await fw.drain()
    lines = sink.read_bytes().splitlines()
    assert len(lines) == 2
    batches = [json.loads(line)["batch"] for line in lines]
    assert [m["messageId"] for b in batches for m in b] == [f"m-{i}" for i in range(7)]
    assert await outbox.length() == 0


def test_batches_respect_segment_limits() -> None:
    entries = [Entry(str(i).encode(), message(i, pad=30_000)) for i in range(40)]
    batches = split_batches(entries, 2500)
    assert [e for b in batches for e in b] == entries
    assert all(len(batch_body(b)) <= MAX_BATCH_BYTES for b in batches)
    assert len(batches) == 3  # 16 messages of ~30 KB fit under 500 KB
    small = [Entry(str(i).encode(), b"{}") for i in range(5001)]
    assert [len(b) for b in split_batches(small, 2500)] == [2500, 2500, 1]


async def test_full_batches_are_accepted_by_the_receiver(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    await enqueue(outbox, 40, pad=30_000)
    fw = forwarder(outbox, http(segment), batch=100)
    await run_until(fw, segment, 40)
    assert 400 not in segment.statuses
    assert len(segment.accepted) == 3


def test_retry_policy_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=60)
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(60, 0.5 * 2**attempt)
        delay = policy.delay(attempt, rng, None)
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(0, rng, 120) == 60


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 10 ", 10.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


async def test_after_a_read_short_of_a_batch_the_forwarder_lingers_so_the_next_fills(
    outbox: Outbox, segment: SegmentReceiver
) -> None:
    """One message goes out alone; what arrives while the forwarder lingers goes out in one
    batch after it, not message by message."""
    fw = Forwarder(
        outbox,
        http(segment),
        consumer="t",
        batch_max_messages=500,
        block_ms=20,
        linger_ms=600,
        retry=FAST,
        rng=random.Random(1),
    )
    await outbox.commit("fp", "first", b"{}", [message(0)])
    fw.start()
    try:
        await asyncio.to_thread(segment.wait_for, 1)
        for n in range(1, 6):  # one at a time, as webhooks arrive
            await outbox.commit("fp", f"r{n}", b"{}", [message(n)])
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert fw.stats.delivered == 1  # still lingering
        await asyncio.to_thread(segment.wait_for, 6)
    finally:
        await fw.stop()
    assert [len(batch["batch"]) for batch in segment.accepted] == [1, 5]
    assert ids(segment) == [f"m-{i}" for i in range(6)]
