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
replays one stream through both stores and compares every count.

Entities untouched for longer than the widest window are evicted (Redis lets their keys
expire), so memory follows the number of active entities, not the length of the input.

This runs once per relation per event in batch rescoring and training, so the loop is
written out flat: the relations of each entity are a precomputed plan, and the usual cases
take a shortcut that gives the same result as the general path — the only member of a
relation written again, a member appended at the newest rank, and every member of a
relation inside the narrowest window (or the second: then only the narrowest is searched).
An entity is one list, and a relation of one member (most of them) two items of it,
until a second member joins (``tests/unit/test_reuse_memory.py`` holds the store to a plain
model of the definition).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from service.reuse import (
    DEVICE_SPACES,
    ENTITIES,
    RELATIONS,
    DeviceSpace,
    Entity,
    EntityRefs,
    ReuseSnapshot,
)

_Relation = tuple[dict[str, float], list[float], list[str]]
"""A relation in its general form: members with their times; and the same in Redis's rank
order (by time, then member) as two parallel lists, times and members: windows are counted
by bisecting the times, and the lowest rank is always first. Updating the newest member's
time, the usual write, then allocates nothing.

Times (and windows) are held as floats, in milliseconds all the same: a time since the
epoch in milliseconds takes two of an int's 30-bit digits, which sends every comparison and
subtraction of two of them down CPython's generic path (the interpreter specialises int
operations for one-digit ints only), where floats have fast paths of their own. Integers
below 2**53 are exact as floats, and so are their differences and comparisons, so every
count and every rank stays the same. The device's first sighting, which leaves the store,
stays an int."""

_State = list[Any]
"""One entity, in one list: ``[last write, first sighting, IPQS blob, its time]``, then two
items per relation slot: nothing (None, None), the relation's only member and its time
(str, float), or the general form (``_Relation``, None). Three relations in four hold one
member for good, and a store holds a great many entities, so both the usual entity and the
usual relation cost no container of their own: fewer allocations per new entity, and far
fewer objects for the garbage collector to walk and for the end of a run to free."""

_LAST_WRITE, _FIRST, _BLOB, _BLOB_AT = range(4)
_Blob = TypeVar("_Blob")


def new_counts(values: Sequence[int] = ()) -> array[int]:
    """Counts as the store appends them: 64-bit integers, numpy's int64."""
    return array("q", values)


# The member kinds, read from ``EntityRefs`` in one call per observation.
MEMBER_KINDS: tuple[str, ...] = tuple(
    dict.fromkeys(kind for e in ENTITIES for _, kind, _ in RELATIONS[e])
)
_members = attrgetter(*MEMBER_KINDS)

StoreInput = tuple[DeviceSpace, tuple[str | None, str | None, str | None], tuple[str | None, ...]]
"""What ``record_members`` takes from one observation's refs: the device space, the ids of
the device, the user (the user id, else the email) and the IP, and the members to write,
one per ``MEMBER_KINDS``."""

# What ``observe`` walks for each entity, per device space: (index of the member kind in
# ``MEMBER_KINDS``, index of the relation's two items in the entity's state), in
# ``RELATIONS`` order; all of them, then the ZADD GT ones, then the NX ones (which come last
# in ``RELATIONS``: each mode has its own loop). Slots are per set name, as the Redis keys are
# named: a user's or an IP's devices have one set per vendor space.
_Step = tuple[int, int, int]
_Plan = tuple[tuple[Entity, tuple[_Step, ...], tuple[_Step, ...], tuple[_Step, ...]], ...]


def _plans() -> dict[DeviceSpace, _Plan]:
    slots: dict[Entity, dict[str, int]] = {entity: {} for entity in ENTITIES}
    plans: dict[DeviceSpace, _Plan] = {}
    for space in DEVICE_SPACES:
        refs = EntityRefs(device_space=space)
        plan = []
        for entity in ENTITIES:
            steps: list[_Step] = []
            modes = [mode for _, _, mode in RELATIONS[entity]]
            if modes != sorted(modes, key="nx".__eq__):
                raise ValueError(f"{entity}: the store counts ZADD GT relations before NX ones")
            for _, kind, _ in RELATIONS[entity]:
                entity_slots = slots[entity]
                slot = entity_slots.setdefault(refs.set_name(kind), len(entity_slots))
                at = _BLOB_AT + 1 + 2 * slot
                steps.append((MEMBER_KINDS.index(kind), at, at + 1))
            gt = tuple(step for step, mode in zip(steps, modes, strict=True) if mode == "gt")
            plan.append((entity, tuple(steps), gt, tuple(steps[len(gt) :])))
        plans[space] = tuple(plan)
    return plans


_PLANS = _plans()
# The reuse script trims by time only a set past this many members (``size > 8`` in
# ``reuse._TEMPLATE``): a late event can count members an eager trim would have dropped.
_LAZY = 8
# A new entity's relations, all empty: two items per slot.
_EMPTY = (None,) * (
    max(time_at for plan in _PLANS.values() for _, steps, *_ in plan for *_, time_at in steps)
    - _BLOB_AT
)


class MemoryReuseStore:
    """Windows ascending and a cap of at least one member, as settings require."""

    def __init__(self, *, windows_ms: Sequence[int], cap: int, ipqs_window_ms: int) -> None:
        if cap < 1:
            raise ValueError("the cap must keep at least one member")
        self._windows = tuple(windows_ms)
        self._cap = cap
        self._ipqs_window_ms = ipqs_window_ms
        # Insertion order = last-write order, so expired entities sit at the front.
        self._entities: OrderedDict[tuple[Entity, str], _State] = OrderedDict()
        # The counts of an entity the event does not name, or that is not stored.
        self._absent = {
            e: new_counts((0,) * len(self._windows) * len(RELATIONS[e])) for e in ENTITIES
        }
        # (n, n, ...) per size: the counts of a relation whose members are all in every window.
        self._full = [new_counts((n,) * len(self._windows)) for n in range(min(cap, 1024) + 1)]
        # The counts of a one-member relation, by how many windows (the narrowest first) end
        # before its member's time: ``bisect_left(windows, now - time)``.
        self._single = [
            new_counts((0,) * outside + (1,) * (len(self._windows) - outside))
            for outside in range(len(self._windows) + 1)
        ]
        self._float_windows = tuple(map(float, self._windows))
        # The counts of every window but the narrowest, for a relation the second holds whole.
        self._wider = [new_counts((n,) * (len(self._windows) - 1)) for n in range(len(self._full))]
        # What a read (``write=False``) adds: no member of any kind.
        self._no_members = (None,) * len(MEMBER_KINDS)

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
        counts = new_counts()
        first_seen, blob = self.record(refs, now_ms, counts, write=write, ipqs_blob=ipqs_blob)
        return ReuseSnapshot(counts.tolist(), first_seen, blob)

    def record(
        self,
        refs: EntityRefs,
        now_ms: int,
        counts: array[int],
        *,
        write: bool = True,
        ipqs_blob: bytes | None = None,
    ) -> tuple[int | None, bytes | None]:
        """``observe`` for batch paths: the counts are appended to ``counts`` (relation by
        relation in ``RELATION_NAMES`` order, narrowest window first) instead of a snapshot
        being built, a machine integer each (``numpy.frombuffer`` reads a chunk's without a
        conversion per count); the device's first sighting and the joined IPQS blob are
        returned."""
        return self.record_members(
            refs.device_space,
            (refs.device, refs.user or refs.email, refs.ip),
            _members(refs) if write else self._no_members,
            now_ms,
            counts,
            ipqs_blob,
        )

    def record_members(
        self,
        space: DeviceSpace,
        entity_ids: tuple[str | None, str | None, str | None],
        members_of: tuple[str | None, ...],
        now_ms: int,
        counts: array[int],
        ipqs_blob: bytes | None = None,
    ) -> tuple[int | None, bytes | None]:
        """``record`` from what it reads off the refs, for callers that have it without
        building them: the ids of the device, the user (the user id, else the email) and
        the IP, in ``ENTITIES`` order, and the members to write, one per ``MEMBER_KINDS``
        (all None for a read)."""
        first_seen: list[int | None] = []
        blobs: list[bytes | None] = []
        self.record_many(
            [(space, entity_ids, members_of)], [now_ms], [ipqs_blob], counts, first_seen, blobs
        )
        return first_seen[0], blobs[0]

    def record_many(
        self,
        inputs: Iterable[StoreInput],
        moments: Iterable[int],
        ipqs_blobs: Iterable[_Blob | None],
        counts: array[int],
        first_seen: list[int | None],
        joined: list[_Blob | None],
    ) -> None:
        """``record_members`` of events in turn (batch rescoring: one call per chunk), each
        event's first sighting and joined blob appended to ``first_seen`` and ``joined``.
        A blob is kept as it is given and given back as it is: batch rescoring remembers
        the IPQS signals themselves, never encoded, as they never leave the process."""
        entities = self._entities
        cap = self._cap
        full = self._full
        tabled = len(full)
        none, one = full[0], full[1]
        single = self._single
        windows = self._float_windows
        widest, narrowest_window = windows[-1], windows[0]
        # With a single window, no time is at or after the second's start.
        second_window = windows[1] if len(windows) > 1 else -math.inf
        wider = self._wider
        absent = self._absent
        ipqs_window = float(self._ipqs_window_ms)
        for (space, entity_ids, members_of), now_ms, ipqs_blob in zip(
            inputs, moments, ipqs_blobs, strict=True
        ):
            now = float(now_ms)  # see ``_Relation``: the store holds every time as a float
            horizon = now - widest
            if entities and entities[next(iter(entities))][_LAST_WRITE] < horizon:
                self._evict(horizon)
            narrowest = now - narrowest_window
            second = now - second_window
            first: int | None = None
            blob: _Blob | None = None
            # No ``strict=``: a keyword sends ``zip`` through its argument parser, a tenth of
            # a microsecond per call; both are in ``ENTITIES`` order, one each.
            for (entity, steps, gt_steps, nx_steps), entity_id in zip(  # noqa: B905
                _PLANS[space], entity_ids
            ):
                if entity_id is None:
                    counts += absent[entity]
                    continue
                key = (entity, entity_id)
                state = entities.get(key)
                if state is None:
                    # A new entity: each relation starts with this event's member, in every window
                    # (none is stored when the event names no member, or only reads).
                    for kind, at, time_at in steps:
                        member = members_of[kind]
                        if member:
                            if state is None:
                                state = entities[key] = [now, now_ms, None, None, *_EMPTY]
                            state[at] = member
                            state[time_at] = now
                            counts += one
                        else:
                            counts += none
                    if state is None:
                        continue
                    if ipqs_blob and entity == "user":
                        state[_BLOB] = ipqs_blob
                        state[_BLOB_AT] = now
                else:
                    touched = False
                    for kind, at, time_at in gt_steps:
                        member = members_of[kind]
                        held = state[at]
                        if held is member or (held.__class__ is str and held == member):
                            if held is None:
                                counts += none  # no member held, none written
                                continue
                            # The only member again (the usual write): newer still.
                            touched = True
                            if now > state[time_at]:
                                state[time_at] = now
                            counts += one
                            continue
                        if held.__class__ is not tuple:
                            if held is None:
                                if member:
                                    touched = True
                                    state[at] = member
                                    state[time_at] = now
                                    counts += one
                                else:
                                    counts += none
                                continue
                            if not member:
                                time = state[time_at]  # its only member, read
                                if time >= narrowest:
                                    counts += one
                                else:
                                    counts += single[bisect_left(windows, now - time)]
                                continue
                            # A second member joins: the relation takes the general form.
                            time = state[time_at]
                            held = state[at] = ({held: time}, [time], [held])
                            state[time_at] = None
                        members, times, names = held
                        if member:
                            touched = True
                            if names[-1] == member:
                                # The newest member again: newer still, and never a join, so
                                # no trim.
                                if now > times[-1]:
                                    members[member] = times[-1] = now
                            elif (previous := members.get(member)) is None:
                                # ZADD GT of a new member, then the trims by time and by rank.
                                members[member] = now
                                newest = times[-1]
                                if newest < now or (newest == now and names[-1] < member):
                                    times.append(now)  # the usual join: the newest member
                                    names.append(member)
                                else:
                                    _insert(times, names, now, member)
                                # ``_trim`` drops nothing from a set whose oldest member is
                                # inside the horizon and that is within the cap.
                                size = len(times)
                                if (size > _LAZY and times[0] < horizon) or size > cap:
                                    _trim(members, times, names, horizon, cap)
                            elif now > previous:
                                members[member] = now
                                _remove(times, names, previous, member)
                                _insert(times, names, now, member)
                                # Redis trims only when a member joins (ZADD answers 1).
                        # Members at or after each window's start; when the oldest is inside
                        # the narrowest window, all of them are in every window.
                        size = len(times)
                        if times[0] >= narrowest and size < tabled:
                            counts += full[size]
                        elif times[0] >= second and size < tabled:
                            # A window holding the oldest member holds them all: when the
                            # second does, only the narrowest is searched (the usual case), and
                            # the rest is one block (an ``append`` parses its argument: three
                            # cost four times what a concatenation does).
                            counts.append(size - bisect_left(times, narrowest))
                            counts += wider[size]
                        else:
                            age = now - times[0]
                            for window in windows:
                                counts.append(
                                    size - bisect_left(times, now - window)
                                    if window < age
                                    else size
                                )
                    for kind, at, time_at in nx_steps:
                        # ZADD NX (the events sets: a request id each): a member keeps the
                        # time it joined at.
                        member = members_of[kind]
                        held = state[at]
                        if held.__class__ is not tuple:
                            if held is None:
                                if member:
                                    touched = True
                                    state[at] = member
                                    state[time_at] = now
                                    counts += one
                                else:
                                    counts += none
                                continue
                            if not member or held == member:
                                if member:
                                    touched = True
                                time = state[time_at]  # its only member, read or written again
                                if time >= narrowest:
                                    counts += one
                                else:
                                    counts += single[bisect_left(windows, now - time)]
                                continue
                            time = state[time_at]
                            held = state[at] = ({held: time}, [time], [held])
                            state[time_at] = None
                        members, times, names = held
                        if member:
                            touched = True
                            if member not in members:
                                members[member] = now
                                newest = times[-1]
                                if newest < now or (newest == now and names[-1] < member):
                                    times.append(now)
                                    names.append(member)
                                else:
                                    _insert(times, names, now, member)
                                size = len(times)
                                if (size > _LAZY and times[0] < horizon) or size > cap:
                                    _trim(members, times, names, horizon, cap)
                        size = len(times)
                        if times[0] >= narrowest and size < tabled:
                            counts += full[size]
                        elif times[0] >= second and size < tabled:
                            counts.append(size - bisect_left(times, narrowest))
                            counts += wider[size]
                        else:
                            age = now - times[0]
                            for window in windows:
                                counts.append(
                                    size - bisect_left(times, now - window)
                                    if window < age
                                    else size
                                )
                    if touched:
                        if now_ms < state[_FIRST]:
                            state[_FIRST] = now_ms
                        if ipqs_blob and entity == "user":
                            state[_BLOB] = ipqs_blob
                            state[_BLOB_AT] = now
                        state[_LAST_WRITE] = now
                        entities.move_to_end(key)
                if entity == "device":
                    first = state[_FIRST]
                elif entity == "user":
                    blob_at = state[_BLOB_AT]
                    if blob_at is not None and now - ipqs_window <= blob_at <= now:
                        blob = state[_BLOB]
            first_seen.append(first)
            joined.append(blob)

    def _evict(self, horizon: float) -> None:
        """Entities written before ``horizon``, from the front (the least recently written),
        up to the first one written since."""
        entities = self._entities
        while entities:
            key = next(iter(entities))
            if entities[key][_LAST_WRITE] >= horizon:
                break
            del entities[key]


def _insert(times: list[float], names: list[str], at: float, member: str) -> None:
    """``member`` at time ``at``, in rank order: by time, then member."""
    low = bisect_left(times, at)
    position = bisect_left(names, member, low, bisect_right(times, at, low))
    times.insert(position, at)
    names.insert(position, member)


def _remove(times: list[float], names: list[str], at: float, member: str) -> None:
    """``member``, which is ranked at time ``at``."""
    low = bisect_left(times, at)
    position = bisect_left(names, member, low, bisect_right(times, at, low))
    del times[position], names[position]


def _trim(
    members: dict[str, float], times: list[float], names: list[str], horizon: float, cap: int
) -> None:
    """What the reuse script does when a member joins: members older than ``horizon`` go
    once the set holds more than ``_LAZY``, then the lowest ranks past ``cap``."""
    if len(times) > _LAZY:
        _drop_first(members, times, names, bisect_left(times, horizon))
    _drop_first(members, times, names, len(times) - cap)


def _drop_first(
    members: dict[str, float], times: list[float], names: list[str], count: int
) -> None:
    if count > 0:
        for name in names[:count]:
            del members[name]
        del times[:count], names[:count]
