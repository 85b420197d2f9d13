"""The reuse signals of ``reuse.py``, computed in process memory for batch rescoring.

Same definition, second store: each relation keeps member → time (last seen, or first seen
for request ids), is trimmed when written to the ``cap`` newest (Redis's rank order: by time,
then member) and of members older than the widest window, and a count over window ``w`` at
time ``t`` is the number of members with time >= ``t - w``. (Redis trims by time lazily;
either way no count ever reaches past the widest window, so the counts agree.) The IPQS
join, the device's first sighting and the per-vendor device sets behave as in Redis.
``tests/integration/test_reuse_equivalence.py``
replays one stream through both stores and compares every count.

Entities untouched for longer than the widest window are evicted (Redis lets their keys
expire), so memory follows the number of active entities, not the length of the input.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Sequence

from service.reuse import ENTITIES, RELATION_NAMES, RELATIONS, Entity, EntityRefs, ReuseSnapshot


class _Relation:
    """Members with their times, plus the (time, member) pairs kept sorted: windows are
    counted by bisection, and the oldest member (Redis's lowest rank) is always first."""

    __slots__ = ("members", "ranked")

    def __init__(self) -> None:
        self.members: dict[str, int] = {}
        self.ranked: list[tuple[int, str]] = []

    def set(self, member: str, now_ms: int, previous: int | None) -> None:
        if previous is not None:
            del self.ranked[bisect_left(self.ranked, (previous, member))]
        self.members[member] = now_ms
        insort(self.ranked, (now_ms, member))

    def drop_oldest(self) -> None:
        _, member = self.ranked.pop(0)
        del self.members[member]

    def count_since(self, since_ms: int) -> int:
        return len(self.ranked) - bisect_left(self.ranked, (since_ms,))


class _EntityState:
    __slots__ = ("blob", "blob_at", "first", "relations")

    def __init__(self) -> None:
        # By set name, as the Redis keys are named (a user's devices per vendor space).
        self.relations: dict[str, _Relation] = {}
        self.first: int | None = None
        self.blob: bytes | None = None
        self.blob_at: int | None = None


class MemoryReuseStore:
    def __init__(self, *, windows_ms: Sequence[int], cap: int, ipqs_window_ms: int) -> None:
        self._windows = tuple(windows_ms)
        self._cap = cap
        self._ipqs_window_ms = ipqs_window_ms
        # Insertion order = last-write order, so expired entities sit at the front.
        self._entities: OrderedDict[tuple[Entity, str], tuple[int, _EntityState]] = OrderedDict()

    @property
    def windows_ms(self) -> tuple[int, ...]:
        return self._windows

    def __len__(self) -> int:
        return len(self._entities)

    def observe(
        self,
        refs: EntityRefs,
        now_ms: int,
        *,
        write: bool = True,
        ipqs_blob: bytes | None = None,
    ) -> ReuseSnapshot:
        self._evict(now_ms)
        counts = {name: (0,) * len(self._windows) for name in RELATION_NAMES}
        first_seen: int | None = None
        blob: bytes | None = None
        for entity in ENTITIES:
            entity_id = refs.entity_id(entity)
            if entity_id is None:
                continue
            state = self._state(entity, entity_id, refs, now_ms, write, ipqs_blob)
            if state is None:
                continue
            for name, kind, _ in RELATIONS[entity]:
                relation = state.relations.get(refs.set_name(kind))
                if relation is not None:
                    counts[name] = tuple(relation.count_since(now_ms - w) for w in self._windows)
            if entity == "device" and state.first is not None:
                first_seen = state.first
            if (
                entity == "user"
                and state.blob_at is not None
                and now_ms - self._ipqs_window_ms <= state.blob_at <= now_ms
            ):
                blob = state.blob
        return ReuseSnapshot(counts, first_seen, blob)

    def _state(
        self,
        entity: Entity,
        entity_id: str,
        refs: EntityRefs,
        now_ms: int,
        write: bool,
        ipqs_blob: bytes | None,
    ) -> _EntityState | None:
        key = (entity, entity_id)
        found = self._entities.get(key)
        state = found[1] if found else None
        if not write:
            return state
        if state is None:
            state = _EntityState()
        touched = False
        horizon = now_ms - self._windows[-1]
        for _, kind, mode in RELATIONS[entity]:
            member = refs.member(kind)
            if not member:
                continue
            touched = True
            name = refs.set_name(kind)
            relation = state.relations.get(name)
            if relation is None:
                relation = state.relations[name] = _Relation()
            previous = relation.members.get(member)
            if previous is not None and (mode == "nx" or now_ms <= previous):
                continue
            relation.set(member, now_ms, previous)
            while relation.ranked and relation.ranked[0][0] < horizon:
                relation.drop_oldest()
            while len(relation.ranked) > self._cap:
                relation.drop_oldest()
        if touched:
            if state.first is None or now_ms < state.first:
                state.first = now_ms
            if entity == "user" and ipqs_blob:
                state.blob, state.blob_at = ipqs_blob, now_ms
            self._entities[key] = (now_ms, state)
            self._entities.move_to_end(key)
        return state

    def _evict(self, now_ms: int) -> None:
        horizon = now_ms - self._windows[-1]
        while self._entities:
            key, (last_write, _) = next(iter(self._entities.items()))
            if last_write >= horizon:
                break
            del self._entities[key]
