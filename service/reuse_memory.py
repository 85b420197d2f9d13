"""The reuse signals of ``reuse.py``, computed in process memory for batch rescoring.

Same definition, second store: each relation keeps member → time (last seen, or first seen
for request ids), is trimmed when written to the ``cap`` newest (Redis's rank order: by time,
then member) and of members older than the widest window, and a count over window ``w`` at
time ``t`` is the number of members with time >= ``t - w``. Trimming follows the reuse
script step for step — only when a member joins, by time once the set holds more than 8,
then by rank — because a late event's windows reach back past the newest event's horizon
and count whatever trimming left. The IPQS join, the device's first sighting and the
per-vendor device sets behave as in Redis.
``tests/integration/test_reuse_equivalence.py``
replays one stream through both stores and compares every count, and
``tests/unit/test_reuse_memory.py`` holds the store to a plain model of the definition.

Entities untouched for longer than the widest window are evicted (Redis lets their keys
expire), so memory follows the number of active entities, not the length of the input.

The event loop is C (``_reuse_native.c``, built by ``pip install``): it runs once per
relation per event in batch rescoring and training, and written in Python, however flat,
it cost rescoring more than a third of what decoding the events did
(docs/BENCHMARKS.md, session 13). This module lays out what the loop walks, per device
space: the relations of each entity, as (member kind, slot) steps, ZADD GT ones first.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TypeVar

from service._reuse_native import ReuseTables
from service.reuse import (
    DEVICE_SPACES,
    ENTITIES,
    RELATIONS,
    DeviceSpace,
    Entity,
    EntityRefs,
    ReuseSnapshot,
)

_Blob = TypeVar("_Blob")

# The member kinds, read from ``EntityRefs`` in one call per observation.
MEMBER_KINDS: tuple[str, ...] = tuple(
    dict.fromkeys(kind for e in ENTITIES for _, kind, _ in RELATIONS[e])
)
_members = attrgetter(*MEMBER_KINDS)

StoreInput = tuple[DeviceSpace, tuple[str | None, str | None, str | None], tuple[str | None, ...]]
"""What the store takes from one observation's refs: the device space, the ids of the
device, the user (the user id, else the email) and the IP, and the members to write, one
per ``MEMBER_KINDS`` (all None for a read)."""

_Steps = tuple[tuple[int, int], ...]
"""(index of the member kind in ``MEMBER_KINDS``, relation slot of the entity)."""


def _layout() -> tuple[tuple[int, ...], dict[str, tuple[tuple[_Steps, _Steps], ...]]]:
    """Each entity's number of relation slots, and per device space each entity's ZADD GT
    and ZADD NX steps, in ``RELATIONS`` order. Slots are per set name, as the Redis keys
    are named: a user's or an IP's devices have one set per vendor space."""
    slots: dict[Entity, dict[str, int]] = {entity: {} for entity in ENTITIES}
    plans: dict[str, tuple[tuple[_Steps, _Steps], ...]] = {}
    for space in DEVICE_SPACES:
        refs = EntityRefs(device_space=space)
        plan = []
        for entity in ENTITIES:
            modes = [mode for _, _, mode in RELATIONS[entity]]
            if modes != sorted(modes, key="nx".__eq__):
                raise ValueError(f"{entity}: the store counts ZADD GT relations before NX ones")
            steps = [
                (
                    MEMBER_KINDS.index(kind),
                    slots[entity].setdefault(refs.set_name(kind), len(slots[entity])),
                )
                for _, kind, _ in RELATIONS[entity]
            ]
            gt = modes.count("gt")
            plan.append((tuple(steps[:gt]), tuple(steps[gt:])))
        plans[space] = tuple(plan)
    return tuple(len(slots[entity]) for entity in ENTITIES), plans


_SLOTS, _PLANS = _layout()


class MemoryReuseStore:
    """Windows ascending and a cap of at least one member, as settings require."""

    def __init__(self, *, windows_ms: Sequence[int], cap: int, ipqs_window_ms: int) -> None:
        if cap < 1:
            raise ValueError("the cap must keep at least one member")
        self._windows = tuple(windows_ms)
        # Times are held as floats, in milliseconds: exact below 2**53, as are their
        # differences, so every count and rank is the integers' own.
        self._tables = ReuseTables(
            windows=tuple(map(float, self._windows)),
            cap=cap,
            ipqs_window=float(ipqs_window_ms),
            kinds=len(MEMBER_KINDS),
            device=ENTITIES.index("device"),
            user=ENTITIES.index("user"),
            slots=_SLOTS,
            plans=_PLANS,
        )
        self._no_members = (None,) * len(MEMBER_KINDS)

    @property
    def windows_ms(self) -> tuple[int, ...]:
        return self._windows

    def __len__(self) -> int:
        return len(self._tables)

    def observe(
        self,
        refs: EntityRefs,
        now_ms: int,
        *,
        write: bool = True,
        ipqs_blob: bytes | None = None,
    ) -> ReuseSnapshot:
        """One observation's counts (relation by relation in ``RELATION_NAMES`` order,
        narrowest window first), its device's first sighting and the IPQS blob joined on
        its user; with ``write`` False, a read that stores nothing."""
        store_input: StoreInput = (
            refs.device_space,
            (refs.device, refs.user or refs.email, refs.ip),
            _members(refs) if write else self._no_members,
        )
        counts, first_seen, joined = self.record_many([store_input], [now_ms], [ipqs_blob])
        return ReuseSnapshot(memoryview(counts).cast("q").tolist(), first_seen[0], joined[0])

    def record_many(
        self,
        inputs: Sequence[StoreInput],
        moments: Sequence[int],
        ipqs_blobs: Sequence[_Blob | None],
    ) -> tuple[bytes, list[int | None], list[_Blob | None]]:
        """``observe`` of events in turn, each given as ``StoreInput`` at its time in
        milliseconds (batch rescoring: one call per chunk): every event's counts, as 64-bit
        integers one event after the other (what ``numpy.frombuffer`` reads), and each
        event's first sighting and joined blob. A blob is kept as it is given and given back
        as it is: batch rescoring remembers the IPQS signals themselves, never encoded, as
        they never leave the process."""
        return self._tables.record_many(inputs, moments, ipqs_blobs)
