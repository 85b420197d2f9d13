"""The in-memory reuse store against a plain model of its definition (no I/O): one dict of
member -> time per set, trimmed as the reuse script trims, counted member by member. The
store keeps a relation of one member without a container of its own and moves it to its
general form when a second joins; streams here make every such move, both ways of naming a
member (the same string object, or an equal one), members that do not count (""), reads,
ties, late events, caps down to one and entities idle long enough to be evicted."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pytest

from service._reuse_native import ReuseTables
from service.reuse import DEVICE_SPACES, ENTITIES, RELATIONS, Entity, EntityRefs, ReuseSnapshot
from service.reuse_memory import MEMBER_KINDS, MemoryReuseStore

MINUTE = 60_000
T0 = 1_790_000_000_000


@dataclass
class _Entity:
    sets: dict[str, dict[str, int]] = field(default_factory=dict)
    first: int | None = None
    blob: bytes | None = None
    blob_at: int | None = None
    last_write: int = 0


class PlainStore:
    """``MemoryReuseStore`` as its docstring defines it, with none of its shortcuts."""

    def __init__(self, windows: tuple[int, ...], cap: int, ipqs_window: int) -> None:
        self.windows, self.cap, self.ipqs_window = windows, cap, ipqs_window
        self.entities: OrderedDict[tuple[Entity, str], _Entity] = OrderedDict()

    def observe(
        self, refs: EntityRefs, now: int, write: bool = True, blob: bytes | None = None
    ) -> ReuseSnapshot:
        horizon = now - self.windows[-1]
        while self.entities and next(iter(self.entities.values())).last_write < horizon:
            self.entities.popitem(last=False)
        counts: list[int] = []
        first_seen, joined = None, None
        for entity in ENTITIES:
            entity_id = refs.entity_id(entity)
            if entity_id is None:
                counts += [0] * len(self.windows) * len(RELATIONS[entity])
                continue
            key = (entity, entity_id)
            written = [
                (refs.set_name(kind), mode, getattr(refs, kind) if write else None)
                for _, kind, mode in RELATIONS[entity]
            ]
            state = self.entities.get(key)
            touched = any(member for _, _, member in written)
            if touched and state is None:
                state = self.entities[key] = _Entity()
            for name, mode, member in written:
                members = {} if state is None else state.sets.setdefault(name, {})
                if touched and member:
                    if member not in members:
                        members[member] = now
                        self._trim(members, horizon)
                    elif mode == "gt":
                        members[member] = max(members[member], now)
                counts += [sum(at >= now - w for at in members.values()) for w in self.windows]
            if state is None:
                continue
            if touched:
                state.first = now if state.first is None else min(state.first, now)
                if blob and entity == "user":
                    state.blob, state.blob_at = blob, now
                state.last_write = now
                self.entities.move_to_end(key)
            if entity == "device":
                first_seen = state.first
            elif entity == "user" and state.blob_at is not None:
                joined = state.blob if now - self.ipqs_window <= state.blob_at <= now else None
        return ReuseSnapshot(counts, first_seen, joined)

    def _trim(self, members: dict[str, int], horizon: int) -> None:
        if len(members) > 8:
            for member in [m for m, at in members.items() if at < horizon]:
                del members[member]
        ranked = sorted(members, key=lambda m: (members[m], m))
        for member in ranked[: max(0, len(ranked) - self.cap)]:
            del members[member]


def plain_stream(seed: int, length: int) -> list[tuple[EntityRefs, int, bool, bytes | None]]:
    rng = random.Random(seed)
    # Identifiers as one string object each (as the rescoring memos give them), or as a new
    # equal string per event (as parsing gives them): the store must not tell them apart.
    pools = {prefix: [f"{prefix}{n}" for n in range(8)] for prefix in "dueilc"}

    def pick(prefix: str, pool: int) -> str | None:
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.18:
            return ""  # names nothing, as None
        n = rng.randrange(pool)
        return pools[prefix][n] if rng.random() < 0.5 else f"{prefix}{n}"

    events = []
    now = T0
    for n in range(length):
        # Mostly minutes apart (ties when 0), now and then idle past every window.
        now += rng.choice([0, 0, MINUTE, 3 * MINUTE, 20 * MINUTE, 3 * 60 * MINUTE])
        if rng.random() < 0.01:
            now += 2 * 24 * 60 * MINUTE
        at = now - rng.choice([0] * 8 + [MINUTE, 40 * MINUTE, 5 * 60 * MINUTE])
        space = rng.choice(DEVICE_SPACES)
        refs = EntityRefs(
            device=pick("d", 6),
            device_space=space,
            user=pick("u", 5),
            email=pick("e", 4),
            ip=pick("i", 6),
            country=pick("c", 3),
            linked=pick("l", 3),
            event=f"r{n}" if rng.random() < 0.95 else f"r{max(0, n - rng.randint(1, 30))}",
        )
        write = rng.random() < 0.9
        blob = f"ipqs{n}".encode() if rng.random() < 0.1 else None
        events.append((refs, at, write, blob))
    return events


@pytest.mark.parametrize("cap", [1, 2, 3, 9, 40])
@pytest.mark.parametrize("seed", range(4))
def test_the_store_counts_as_its_definition(cap: int, seed: int) -> None:
    windows = (10 * MINUTE, 6 * 60 * MINUTE, 24 * 60 * MINUTE)
    store = MemoryReuseStore(windows_ms=windows, cap=cap, ipqs_window_ms=30 * MINUTE)
    plain = PlainStore(windows, cap, 30 * MINUTE)
    largest = 0
    for refs, at, write, blob in plain_stream(seed, 3000):
        expected = plain.observe(refs, at, write, blob)
        assert store.observe(refs, at, write=write, ipqs_blob=blob) == expected, (refs, at)
        largest = max(largest, *expected.flat)
    assert len(store) == len(plain.entities)  # evicted alike
    # Small caps were reached; the large one was not, and relations grew past the size from
    # which the reuse script trims by time.
    assert largest == cap if cap < 10 else largest > 8


def test_the_compiled_loop_refuses_malformed_input_and_stays_usable() -> None:
    """``record_many`` is C: input of the wrong shape is a Python exception naming what was
    expected, never a crash, and the store keeps counting afterwards."""
    store = MemoryReuseStore(windows_ms=(MINUTE, 60 * MINUTE), cap=5, ipqs_window_ms=MINUTE)
    refs = EntityRefs(device="d1", device_space="fp", user="u1", ip="i1", event="r1")
    first = store.observe(refs, T0)
    kinds = len(MEMBER_KINDS)
    good: Any = ("fp", ("d1", "u1", "i1"), (None,) * kinds)
    bad: list[tuple[Any, Any, type[Exception], str]] = [
        (("fp", ("d1", "u1")), T0, TypeError, "an input is"),
        (("fp", ("d1", "u1"), (None,) * kinds), T0, TypeError, "entity ids"),
        (("fp", ("d1", "u1", "i1"), (None,) * (kinds - 1)), T0, TypeError, "members"),
        (("fp", ("d1", "u1", "i1"), (7,) + (None,) * (kinds - 1)), T0, TypeError, "members"),
        (("nope", ("d1", "u1", "i1"), (None,) * kinds), T0, ValueError, "unknown device space"),
        (good, "soon", TypeError, "cannot be interpreted as an integer"),
    ]
    for store_input, moment, error, message in bad:
        with pytest.raises(error, match=message):
            store.record_many([good, store_input], [T0, moment], [None, None])
    with pytest.raises(ValueError, match="differ in length"):
        store.record_many([good], [T0, T0], [None])
    with pytest.raises(ValueError, match="at least one member"):
        MemoryReuseStore(windows_ms=(MINUTE,), cap=0, ipqs_window_ms=MINUTE)
    with pytest.raises(TypeError, match="__init__ was not called"):
        ReuseTables.__new__(ReuseTables).record_many([good], [T0], [None])
    # A read of the same refs sees exactly the first write: the refused calls stored nothing
    # of their own (the good events before them only read).
    assert store.observe(refs, T0 + 1, write=False).flat == first.flat
    assert len(store) == 3
