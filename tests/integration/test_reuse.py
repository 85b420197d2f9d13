"""Reuse signals on a real Redis: windows, caps, TTLs, idempotency, hashing, cluster slots."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from service.identifiers import IdentifierPolicy
from service.keys import Keys
from service.lua import Sendable
from service.redis_link import PooledLink
from service.resp import KeyedCall
from service.reuse import EntityRefs, ReuseSnapshot, ReuseStore, key_ttl_ms

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_790_000_000_000  # the clock these tests move by hand
WINDOWS = (HOUR, DAY, 30 * DAY)


@pytest.fixture
async def store(redis_client: Redis, prefix: str) -> AsyncIterator[ReuseStore]:
    yield ReuseStore(redis_client, Keys(prefix), windows_ms=WINDOWS, cap=5, ipqs_window_ms=HOUR)


async def test_windows_expire_as_the_clock_moves(store: ReuseStore) -> None:
    for i in range(3):
        await store.observe(EntityRefs(device="D", user=f"u{i}", event=f"e{i}"), T0 + i * 60_000)
    snap = await store.observe(EntityRefs(device="D"), T0 + 3 * 60_000, write=False)
    assert snap.counts["users_per_device"] == (3, 3, 3)
    assert snap.counts["events_per_device"] == (3, 3, 3)
    # Two hours later the 1 h window is empty, the 24 h and 30 d ones are not.
    snap = await store.observe(EntityRefs(device="D"), T0 + 2 * HOUR, write=False)
    assert snap.counts["users_per_device"] == (0, 3, 3)
    # A user seen again later is counted at its latest time (last seen).
    await store.observe(EntityRefs(device="D", user="u0", event="e9"), T0 + 2 * HOUR)
    snap = await store.observe(EntityRefs(device="D"), T0 + 2 * HOUR, write=False)
    assert snap.counts["users_per_device"] == (1, 3, 3)
    snap = await store.observe(EntityRefs(device="D"), T0 + 31 * DAY, write=False)
    assert snap.counts["users_per_device"] == (0, 0, 0)


async def test_members_older_than_the_widest_window_are_trimmed(
    redis_client: Redis, prefix: str
) -> None:
    store = ReuseStore(redis_client, Keys(prefix), windows_ms=WINDOWS, cap=100, ipqs_window_ms=HOUR)
    key = Keys(prefix).entity("device", "D", "user")
    for n in range(5):
        await store.observe(EntityRefs(device="D", user=f"old{n}"), T0 + n)
    later = T0 + 31 * DAY
    snap = await store.observe(EntityRefs(device="D", user="new0"), later)
    assert snap.counts["users_per_device"] == (1, 1, 1)  # stale members never count
    for n in range(1, 5):
        await store.observe(EntityRefs(device="D", user=f"new{n}"), later + n)
    # Past a few members a write trims by time: only the recent ones are left.
    assert await redis_client.zrange(key, 0, -1) == [f"new{n}".encode() for n in range(5)]


async def test_cap_keeps_the_newest_members(
    store: ReuseStore, redis_client: Redis, prefix: str
) -> None:
    for i in range(12):
        snap = await store.observe(EntityRefs(device="D", ip=f"ip{i}"), T0 + i)
    assert snap.counts["ips_per_device"] == (5, 5, 5)
    members = await redis_client.zrange(Keys(prefix).entity("device", "D", "ip"), 0, -1)
    assert members == [f"ip{i}".encode() for i in range(7, 12)]


async def test_a_redelivered_request_counts_once(store: ReuseStore) -> None:
    refs = EntityRefs(device="D", user="u", ip="I", event="same-request")
    first = await store.observe(refs, T0)
    again = await store.observe(refs, T0)
    assert again.counts == first.counts
    assert again.counts["events_per_device"] == (1, 1, 1)
    assert again.counts["events_per_ip"] == (1, 1, 1)


async def test_every_key_has_a_ttl_and_one_call_stays_in_one_slot(
    store: ReuseStore, redis_client: Redis, prefix: str
) -> None:
    refs = EntityRefs(device="D", user="U", email="E", ip="I", country="FR", linked="L", event="R")
    await store.observe(refs, T0, ipqs_blob=b"x")
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:*")]
    assert len(keys) == 7 + 4 + 4  # device: 6 relations + meta; user: 3 + meta; ip: 3 + meta
    for key in keys:
        assert 30 * DAY < await redis_client.pttl(key) <= key_ttl_ms(WINDOWS)
    by_entity: dict[str, set[int]] = {}
    for key in keys:
        tag = key.decode().split("{")[1].split("}")[0]
        by_entity.setdefault(tag, set()).add(key_slot(key))
    assert set(by_entity) == {"d:D", "u:U", "i:I"}
    assert all(len(slots) == 1 for slots in by_entity.values())


async def _device_ttls(redis_client: Redis, prefix: str) -> dict[str, int]:
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:{{d:D}}:*")]
    return {key.decode().rsplit(":", 1)[1]: await redis_client.pttl(key) for key in keys}


async def test_keys_are_renewed_together_once_the_meta_runs_low(
    store: ReuseStore, redis_client: Redis, prefix: str
) -> None:
    await store.observe(EntityRefs(device="D", user="U", country="FR", event="e1"), T0)
    # A slack's worth of Redis time has passed: every key is just under the widest window.
    for key in [k async for k in redis_client.scan_iter(match=f"{prefix}:{{d:D}}:*")]:
        await redis_client.pexpire(key, 30 * DAY - 1000)
    await store.observe(EntityRefs(device="D", user="U", event="e2"), T0 + 60_000)
    ttls = await _device_ttls(redis_client, prefix)
    # The country set was not written this time but still counts: it is renewed too.
    assert set(ttls) == {"user", "country", "event", "meta"}
    assert all(30 * DAY < ttl <= key_ttl_ms(WINDOWS) for ttl in ttls.values()), ttls


async def test_keys_are_not_renewed_while_the_meta_has_time_left(
    store: ReuseStore, redis_client: Redis, prefix: str
) -> None:
    await store.observe(EntityRefs(device="D", user="U"), T0)
    user_key = Keys(prefix).entity("device", "D", "user")
    await redis_client.pexpire(user_key, 30 * DAY + 5000)
    await store.observe(EntityRefs(device="D", user="U"), T0 + 60_000)
    # Still past the widest window from this write, and not rewritten: no PEXPIRE was spent.
    assert 30 * DAY < await redis_client.pttl(user_key) <= 30 * DAY + 5000


async def test_a_set_created_between_renewals_gets_its_own_ttl(
    store: ReuseStore, redis_client: Redis, prefix: str
) -> None:
    await store.observe(EntityRefs(device="D", user="U"), T0)
    await store.observe(EntityRefs(device="D", ip="I"), T0 + 60_000)
    ttls = await _device_ttls(redis_client, prefix)
    assert set(ttls) == {"user", "ip", "meta"}
    assert all(30 * DAY < ttl <= key_ttl_ms(WINDOWS) for ttl in ttls.values()), ttls


async def test_counts_read_past_the_oldest_member_window_by_window(store: ReuseStore) -> None:
    # Members spread over the windows: each window's count must come from the members in it,
    # not from the set's size.
    for n, age in enumerate((40 * DAY, 10 * DAY, 5 * HOUR, 30 * 60_000, 0)):
        await store.observe(EntityRefs(device="D", user=f"u{n}"), T0 - age)
    snap = await store.observe(EntityRefs(device="D"), T0, write=False)
    assert snap.counts["users_per_device"] == (2, 3, 4)
    snap = await store.observe(EntityRefs(device="D", user="u9"), T0 + 1)
    assert snap.counts["users_per_device"] == (3, 4, 5)


async def test_reads_do_not_write(store: ReuseStore, redis_client: Redis, prefix: str) -> None:
    snap = await store.observe(EntityRefs(device="D", user="U", ip="I"), T0, write=False)
    assert all(counts == (0, 0, 0) for counts in snap.counts.values())
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}:*")] == []


async def test_ipqs_blob_joins_within_its_window_only(store: ReuseStore) -> None:
    await store.observe(EntityRefs(user="U", event="ipqs-1"), T0, ipqs_blob=b"signals")
    soon = await store.observe(EntityRefs(user="U", device="D"), T0 + HOUR - 1)
    assert soon.ipqs_blob == b"signals"
    late = await store.observe(EntityRefs(user="U", device="D"), T0 + HOUR + 1)
    assert late.ipqs_blob is None


async def test_email_stands_in_for_a_missing_user(store: ReuseStore) -> None:
    for device in ("D1", "D2"):
        snap = await store.observe(EntityRefs(device=device, email="E"), T0)
    assert snap.counts["devices_per_user"] == (2, 2, 2)
    assert snap.counts["emails_per_device"] == (1, 1, 1)


async def test_device_first_seen_is_the_earliest(store: ReuseStore) -> None:
    await store.observe(EntityRefs(device="D", event="b"), T0 + DAY)
    await store.observe(EntityRefs(device="D", event="a"), T0)  # arrives late, happened first
    snap = await store.observe(EntityRefs(device="D"), T0 + DAY, write=False)
    assert snap.device_first_seen_ms == T0


async def test_a_user_seen_by_both_vendors_is_one_device_per_vendor(store: ReuseStore) -> None:
    # The same browser: Fingerprint's visitor id and IPQS's guid for it, minutes apart.
    await store.observe(EntityRefs(device="V1", user="U", ip="I", event="fp-1"), T0)
    ipqs = EntityRefs(device="G1", device_space="ipqs", user="U", ip="I", event="ipqs-1")
    snap = await store.observe(ipqs, T0 + 60_000)
    assert snap.counts["devices_per_user"] == (1, 1, 1)
    assert snap.counts["devices_per_ip"] == (1, 1, 1)
    snap = await store.observe(EntityRefs(device="V1", user="U", ip="I"), T0 + 120_000)
    assert snap.counts["devices_per_user"] == (1, 1, 1)
    # A second browser is a second device, in either vendor's eyes.
    snap = await store.observe(EntityRefs(device="V2", user="U", ip="I"), T0 + 180_000)
    assert snap.counts["devices_per_user"] == (2, 2, 2)
    assert snap.counts["devices_per_ip"] == (2, 2, 2)
    ipqs = EntityRefs(device="G2", device_space="ipqs", user="U", event="ipqs-2")
    snap = await store.observe(ipqs, T0 + 240_000)
    assert snap.counts["devices_per_user"] == (2, 2, 2)


async def test_hashed_identifiers_leave_no_raw_value_in_redis(
    redis_client: Redis, prefix: str
) -> None:
    policy = IdentifierPolicy(b"secret-key" * 3)
    store = ReuseStore(redis_client, Keys(prefix), windows_ms=WINDOWS, cap=100, ipqs_window_ms=HOUR)
    raw = {
        "device": "visitor-AbCdEf123",
        "user": "user-42-private",
        "email": "jane.doe@example.com",
        "ip": "203.0.113.77",
        "linked": "order-99-linked",
    }
    refs = EntityRefs(
        device=policy.device("fp", raw["device"]),
        user=policy.user(raw["user"]),
        email=policy.email(raw["email"]),
        ip=policy.ip(raw["ip"]),
        linked=policy.linked(raw["linked"]),
        event=policy.request("fp", "request-1"),
    )
    await store.observe(refs, T0)
    dump = b""
    async for key in redis_client.scan_iter(match=f"{prefix}:*"):
        # DUMP serialises whatever the key holds, members and hash fields alike.
        serialised = await redis_client.dump(key)
        assert serialised is not None
        dump += key + serialised
    assert dump  # something was written
    for value in [*raw.values(), "request-1", "jane.doe", "203.0.113"]:
        assert value.encode() not in dump


class _Counting:
    """A link that counts the commands it carries already packed."""

    def __init__(self, redis: Redis) -> None:
        self._link = PooledLink(redis)
        self.packed = 0

    async def round_trip(self, commands: Sequence[Sendable]) -> list[Any]:
        self.packed += sum(isinstance(command, bytes) for command in commands)
        return await self._link.round_trip(commands)


@pytest.mark.parametrize("tag", ["", "-é"], ids=["ascii-prefix", "non-ascii-prefix"])
async def test_templated_and_generic_calls_answer_the_same_counts(
    redis_client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch, tag: str
) -> None:
    """The same stream through templated RESP and through hiredis-packed tuples, each under
    its own prefix: every snapshot alike. Ids are hashed (16 characters) or short; members
    include non-ASCII text and blobs binary bytes, which the template hands to hiredis."""
    rng = random.Random(7)
    policy = IdentifierPolicy(b"k" * 32)

    def pick(kind: str, pool: int) -> str | None:
        roll = rng.random()
        if roll < 0.15:
            return None
        value = f"{kind}{rng.randint(1, pool)}"
        return value if roll < 0.3 else (value + "ß" if roll < 0.35 else policy.digest(kind, value))

    stream = [
        (
            EntityRefs(
                device=pick("d", 8), user=pick("u", 12), email=pick("e", 12), ip=pick("i", 8),
                country=rng.choice(["FR", "DE", "ÅX", None]), linked=pick("l", 5),
                event=policy.digest("r", str(n)),
            ),
            T0 + n * 60_000,
            rng.choice([None, None, b"\x00\r\n\xff" + rng.randbytes(8)]),
        )
        for n in range(300)
    ]  # fmt: skip

    async def run(name: str) -> tuple[list[ReuseSnapshot], int]:
        link = _Counting(redis_client)
        store = ReuseStore(
            redis_client, Keys(name), windows_ms=WINDOWS, cap=5, ipqs_window_ms=HOUR, link=link
        )
        snaps = [await store.observe(refs, at, ipqs_blob=blob) for refs, at, blob in stream]
        return snaps, link.packed

    # Both prefixes under ``prefix:``, which the fixture deletes afterwards.
    templated, packed = await run(f"{prefix}:templated{tag}")
    with monkeypatch.context() as patch:
        patch.setattr(KeyedCall, "pack", KeyedCall.command)
        generic, none = await run(f"{prefix}:generic{tag}")
    assert templated == generic
    assert packed > 300 and none == 0
