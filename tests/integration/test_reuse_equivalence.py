"""One stream, two stores: the Lua/Redis reuse counts and the in-memory ones must agree."""

from __future__ import annotations

import random

import pytest
from redis.asyncio import Redis

from service.keys import Keys
from service.reuse import DEVICE_SPACES, DeviceSpace, EntityRefs, ReuseStore
from service.reuse_memory import MemoryReuseStore

MINUTE = 60_000
WINDOWS = (5 * MINUTE, 60 * MINUTE, 24 * 60 * MINUTE)
WIDE = (5 * MINUTE, 60 * MINUTE, 72 * 60 * MINUTE)  # the whole stream: large relations
T0 = 1_790_000_000_000


def stream(
    seed: int, length: int, late: bool = True, tick: int = 1
) -> list[tuple[EntityRefs, int, bytes | None]]:
    """Random observations over ~50 hours with heavy reuse, retries and (unless ``late`` is
    False) late arrivals; times are multiples of ``tick`` ms (whole minutes: many ties,
    which rank by member)."""
    rng = random.Random(seed)
    events: list[tuple[EntityRefs, int, bytes | None]] = []
    now = T0
    for n in range(length):
        now += rng.randint(0, 4 * MINUTE // tick) * tick
        delay = rng.choice([0, 0, 0, 0, rng.randint(0, 30 * MINUTE // tick) * tick])
        at = now - delay if late else now

        def pick(prefix: str, pool: int) -> str | None:
            return None if rng.random() < 0.15 else f"{prefix}{rng.randint(1, pool)}"

        # Fingerprint visitor ids and IPQS guids: the users' and IPs' device sets per vendor.
        space = rng.choice(DEVICE_SPACES)
        refs = EntityRefs(
            device=pick(f"{space}-d", 12),
            device_space=space,
            user=pick("u", 25),
            email=pick("e", 30),
            ip=pick("i", 15),
            country=rng.choice(["FR", "DE", "US", None]),
            linked=pick("l", 10),
            event=f"r{n}",
        )
        blob = f"ipqs{n}".encode() if rng.random() < 0.1 else None
        events.append((refs, at, blob))
        if rng.random() < 0.05:  # a retried delivery of the same request
            events.append((refs, at, blob))
    return events


@pytest.mark.parametrize(
    ("cap", "late", "windows", "tick"),
    [
        pytest.param(6, True, WINDOWS, 1, id="small-cap"),  # rank trimming happens often
        # Members that tie on time: the rank order (and so trimming) falls to the member.
        pytest.param(6, True, WINDOWS, MINUTE, id="ties-small-cap"),
        pytest.param(50, True, WIDE, MINUTE, id="ties-late-wide"),
        # Relations grow past the sizes whose counts the memory store takes from a table.
        pytest.param(80, False, WIDE, 1, id="large-relations"),
        # Late events reach back past trims: both stores must trim at the same moments.
        pytest.param(50, True, WINDOWS, 1, id="late-events-past-8-members"),
        pytest.param(12, True, WIDE, 1, id="late-events-wide-windows"),
    ],
)
async def test_redis_and_memory_agree_on_every_count(
    redis_client: Redis, prefix: str, cap: int, late: bool, windows: tuple[int, ...], tick: int
) -> None:
    redis_store = ReuseStore(
        redis_client, Keys(prefix), windows_ms=windows, cap=cap, ipqs_window_ms=30 * MINUTE
    )
    memory_store = MemoryReuseStore(windows_ms=windows, cap=cap, ipqs_window_ms=30 * MINUTE)
    compared, largest, joined = 0, 0, 0
    for refs, at, blob in stream(seed=11, length=1500, late=late, tick=tick):
        from_redis = await redis_store.observe(refs, at, ipqs_blob=blob)
        from_memory = memory_store.observe(refs, at, ipqs_blob=blob)
        assert from_memory == from_redis, (refs, at)
        compared += 1
        largest = max(largest, *(c[-1] for c in from_redis.counts.values()))
        joined += from_redis.ipqs_blob is not None
    # The stream exercised what matters: caps reached, IPQS joins made.
    assert largest == cap
    assert joined > 50
    # Read-only lookups at a later time agree too.
    reads: tuple[tuple[str, DeviceSpace], ...] = (("fp-d1", "fp"), ("ipqs-d5", "ipqs"))
    for device, space in reads:
        refs = EntityRefs(device=device, device_space=space, user="u3", ip="i2")
        later = T0 + 22 * 60 * MINUTE
        assert memory_store.observe(refs, later, write=False) == await redis_store.observe(
            refs, later, write=False
        )
    assert compared > 1500


def test_memory_is_bounded_by_active_entities() -> None:
    store = MemoryReuseStore(windows_ms=WINDOWS, cap=10, ipqs_window_ms=MINUTE)
    for n in range(5000):
        # A new device every minute: after a day, old ones must have been evicted.
        store.observe(EntityRefs(device=f"d{n}", event=f"r{n}"), T0 + n * MINUTE)
    assert len(store) <= 24 * 60 + 1


async def test_a_late_event_counts_what_trimming_left_in_both_stores(
    redis_client: Redis, prefix: str
) -> None:
    """Redis trims a small set by time only once it holds more than 8 members, so a late
    event still counts a member older than the newest event's horizon; so must memory."""
    day = 24 * 60 * MINUTE
    windows = (MINUTE, day)
    redis_store = ReuseStore(
        redis_client, Keys(prefix), windows_ms=windows, cap=100, ipqs_window_ms=MINUTE
    )
    memory_store = MemoryReuseStore(windows_ms=windows, cap=100, ipqs_window_ms=MINUTE)
    history = [
        (EntityRefs(device="D", user="old"), T0),
        # The device stays active (memory evicts an entity a whole window idle; Redis's TTLs
        # run on the wall clock, not on these event times).
        (EntityRefs(device="D", event="visit"), T0 + day // 2),
        (EntityRefs(device="D", user="new"), T0 + day + 10 * MINUTE),  # past old's horizon
        (EntityRefs(device="D", user="late"), T0 + day - 10 * MINUTE),  # happened before
    ]
    for refs, at in history:
        from_redis = await redis_store.observe(refs, at)
        assert memory_store.observe(refs, at) == from_redis
    # The late event's day reaches back to "old", which neither store has trimmed (and its
    # minute holds itself and "new": counts run from the window's start onwards).
    assert from_redis.counts["users_per_device"] == (2, 3)


async def test_members_tied_on_time_rank_by_member_in_both_stores(
    redis_client: Redis, prefix: str
) -> None:
    """At one time, members rank by member: the cap trims "a" before "b", whichever came
    first; "a" then joins again, and only its new time is in the last hour."""
    windows = (60 * MINUTE, 24 * 60 * MINUTE)
    redis_store = ReuseStore(
        redis_client, Keys(prefix), windows_ms=windows, cap=2, ipqs_window_ms=MINUTE
    )
    memory_store = MemoryReuseStore(windows_ms=windows, cap=2, ipqs_window_ms=MINUTE)
    history = [("b", T0), ("a", T0), ("c", T0), ("a", T0 + 120 * MINUTE)]
    for event, at in history:
        refs = EntityRefs(device="D", event=event)
        from_redis = await redis_store.observe(refs, at)
        assert memory_store.observe(refs, at) == from_redis
    assert from_redis.counts["events_per_device"] == (1, 2)
