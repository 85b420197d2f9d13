"""Batch rescoring: stored or exported events, replayed in time order with the current model.

``python -m service rescore --input events.jsonl[.gz] --output scored.jsonl`` reads one raw
event per line (Fingerprint v3 / v4 webhook or IPQS result), recomputes the reuse signals in
memory with the window semantics of the Redis path (``reuse_memory.py``), scores each event
and writes one JSON line per event. Memory stays flat whatever the input size: lines are
streamed, a bounded buffer restores time order among events that arrive slightly out of
order, and idle entities leave the reuse store.

Lines that cannot be decoded are not dropped silently: they go to ``<output>.rejects.jsonl``
with their line number and the error, and are counted in the summary. ``--compare-model``
(default: the model the server is configured with) scores every event a second time, so the
summary can say how many actions a new model or new thresholds would change. ``--emit``
queues an identify per re-scored user or visitor in the Segment outbox, with the event's
historic timestamp and a deterministic messageId, a batch at a time as the run goes
(``rescore_emit.py``).

Events are scored a chunk at a time, each step over the whole chunk before the next: lines
are decoded a block at a time and each event's identifiers named (``MemoPolicy``) as it is
decoded (``rescore_input.py``); a chunk out of the reorder buffer is fed to the store, then
turned into one feature matrix (``FeatureSpec.matrix``), scored and ranked for reasons by
numpy (``RiskModel.scores`` / ``top_reasons``), and encoded. Besides
the numpy work, keeping one step's code and data hot in the processor's caches is most of
the gain over doing every step event by event. Every chunk-wide step equals its single-row
counterpart (tests hold them equal), so the output is what ``Scorer`` gives event by event.
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from service.collector import fewer_collections
from service.features import FeatureRows, FeatureSpec
from service.identifiers import IdentifierPolicy
from service.lists import AccessLists
from service.model import ModelError, Reason, Risk, RiskModel, Thresholds, shown
from service.observation import Observation
from service.rescore_input import (
    CHUNK,
    DecodedBlock,
    InputError,
    Stamped,
    decoded_blocks,
    read_lines,
)
from service.reuse import DEVICE_SPACES, DeviceSpace, EntityRefs
from service.reuse_memory import MemoryReuseStore, StoreInput
from service.scoring import Scorer
from service.settings import Settings
from service.specs import iso8601, rescore_identify


class ScoredLine(msgspec.Struct, rename="camel", omit_defaults=True):
    request_id: str
    source: str
    time: str
    visitor_id: str | None
    user_id: str | None
    score: int
    level: str
    action: str
    reasons: list[str]
    model_version: str
    previous_action: str | None = None


class Emits(Protocol):
    """Where ``--emit``'s identifies go, one at a time (``rescore_emit.OutboxFeed``; a list
    in tests)."""

    def append(self, message: bytes, /) -> None: ...


class Summary(msgspec.Struct):
    events: int = 0
    rejected: int = 0
    late: int = 0
    emitted: int = 0
    seconds: float = 0.0
    events_per_second: float = 0.0
    model_version: str = ""
    compared_with: str | None = None
    by_level: dict[str, int] = {}
    by_action: dict[str, int] = {}
    changed_actions: dict[str, int] = {}


class Progress:
    """A one-line progress bar on a terminal; a line every few seconds otherwise."""

    def __init__(self, total_bytes: int | None, stream: IO[str] = sys.stderr) -> None:
        self._total = total_bytes
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._last = 0.0

    def update(self, events: int, done_bytes: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.25 if self._tty else 5.0):
            return
        self._last = now
        rate = events / max(now - self._started, 1e-9)
        if self._total and done_bytes is not None:
            share = min(done_bytes / self._total, 1.0)
            bar = "#" * int(share * 30)
            text = f"[{bar:<30}] {share:6.1%} {events:>10,} events {rate:>9,.0f}/s"
        else:
            text = f"{events:>10,} events {rate:>9,.0f}/s"
        self._stream.write(("\r" + text) if self._tty else (text + "\n"))
        if force and self._tty:
            self._stream.write("\n")
        self._stream.flush()


# Rescoring allocates a great many long-lived containers (the reuse store's) and, on the
# way, no reference cycles, so the collector's default (a young-generation pass every 700
# allocations, and older ones after it) cost about a tenth of the run for nothing. A pass
# walks the young objects still alive, and every observation in the reorder buffer is (some
# 150,000 objects for 10,000 events): past that many allocations between passes, most of
# them are gone before one. Any cycle is still collected, in larger batches.
_RESCORE_YOUNG_THRESHOLD = 250_000


class MemoPolicy(IdentifierPolicy):
    """``IdentifierPolicy`` for rescoring, with every identifier named rather than hashed:
    ``refs`` remembers each identifier's name per kind (a device, user or IP comes back
    event after event, and hygiene costs more than a lookup). A memo maps the raw value to
    its name, or to None for a value that does not count. Each memo keeps at most ``size``
    values (it starts over when full), so memory stays flat. Request ids are not
    remembered: each comes once.

    A name is what the keyed hash takes in, kind, NUL, value (the value after hygiene, as
    the hash has it), so two identifiers share a name exactly when they would share a hash:
    the store counts the same members under other names. The keyed hash is there to keep
    identifiers out of Redis; these never leave the process, and hashing one cost 0.6 us
    (some 20,000 of them per 12,000 events: a tenth of a run). Members of one time rank by
    member, so which of two such members a set at its cap trims first is not the hash's
    choice: it already differs between any two keys (rescoring had its own), and a count
    can tell only if the member trimmed is written again."""

    # The memos below do the base class's remembering, per kind and without its tuple keys.
    _hashed = IdentifierPolicy._hash_now

    def __init__(self, key: bytes, extra_blocked: Iterable[str] = (), size: int = 1 << 14):
        super().__init__(key, extra_blocked)
        self._size = size
        self._users: dict[str | None, str | None] = {}
        self._emails: dict[str | None, str | None] = {}
        self._linked: dict[str | None, str | None] = {}
        self._ips: dict[str | None, str | None] = {}
        self._countries: dict[str | None, str | None] = {}
        self._devices: dict[DeviceSpace, dict[str | None, str | None]] = {"fp": {}, "ipqs": {}}
        # ``request``'s names, their prefix built once rather than per event.
        self._request_names: dict[str, str] = {s: f"request:{s}\x00" for s in DEVICE_SPACES}

    def digest(self, kind: str, value: str) -> str:
        """``value``'s name as an identifier of ``kind`` (see the class docstring)."""
        return f"{kind}\x00{value}"

    def refs(self, obs: Observation) -> EntityRefs:
        """``Scorer.refs(obs)`` with each identifier named, looked up in its kind's memo
        first (a test holds the two to one naming)."""
        space, _, (user, email, ip, country, linked, event, device) = self.members(obs)
        return EntityRefs(
            device=device,
            device_space=space,
            user=user,
            email=email,
            ip=ip,
            country=country,
            linked=linked,
            event=event,
        )

    def members(self, obs: Observation) -> StoreInput:
        """What ``MemoryReuseStore.observe`` reads off ``refs(obs)``, without building
        the refs: the device space, the entity ids, and the members in the store's
        ``MEMBER_KINDS`` order (a test holds the two to the refs)."""
        space: DeviceSpace = "ipqs" if obs.source == "ipqs" else "fp"
        devices = self._devices[space]
        if (device := devices.get(value := obs.visitor_id, _UNSEEN)) is _UNSEEN:
            device = self._keep(devices, value, self.device(space, value))
        if (user := self._users.get(value := obs.user_id, _UNSEEN)) is _UNSEEN:
            user = self._keep(self._users, value, self.user(value))
        if (email := self._emails.get(value := obs.email, _UNSEEN)) is _UNSEEN:
            email = self._keep(self._emails, value, self.email(value))
        if (ip := self._ips.get(value := obs.ip, _UNSEEN)) is _UNSEEN:
            ip = self._keep(self._ips, value, self.ip(value))
        if (linked := self._linked.get(value := obs.linked_id, _UNSEEN)) is _UNSEEN:
            linked = self._keep(self._linked, value, self.linked(value))
        if (country := self._countries.get(value := obs.country, _UNSEEN)) is _UNSEEN:
            # One string per country, as the hashes are one each: the store then finds the
            # member it holds by identity, before comparing.
            upper = value.upper() if value and len(value) == 2 else None
            country = self._keep(self._countries, value, upper)
        return (
            space,
            (device, user or email, ip),
            (
                user,
                email,
                ip,
                country,
                linked,
                self._request_names[space] + obs.request_id,  # ``request``'s name
                device,
            ),
        )

    def _keep(
        self, memo: dict[str | None, str | None], value: str | None, hashed: str | None
    ) -> str | None:
        if len(memo) >= self._size:
            memo.clear()
        memo[value] = hashed
        return hashed


# Never a hash (those are 16 characters), nor None (a value that does not count): a memo miss.
_UNSEEN = ""

# What an output line takes from its observation, in ``ScoredLine`` order.
_line_fields = attrgetter("request_id", "source", "visitor_id", "user_id")
_ipqs_of = attrgetter("ipqs")


class _Chunk:
    """Up to ``CHUNK`` observations in time order, with their times, in milliseconds (the
    store's) and in seconds (``timestamp()``'s), and their identifiers named for the store.
    Taken apart from the reorder buffer's items in one ``zip``, in C, rather than appended
    to four lists item by item."""

    def __init__(self, stamped: Sequence[Stamped]) -> None:
        self.observations: Sequence[Observation] = ()
        self.moments: Sequence[int] = ()
        self.now: Sequence[float] = ()
        self.inputs: Sequence[StoreInput] = ()
        if stamped:
            self.moments, _, self.now, self.observations, self.inputs = zip(*stamped, strict=True)


def ranking_keys(
    picked: npt.NDArray[np.intp], counts: npt.NDArray[np.intp], features: int
) -> list[int]:
    """Each row's ranking as one integer: its reasons' feature indices (the first
    ``counts[row]`` of ``picked[row]``) plus one as digits in base ``features + 1``, zero past
    its reasons. A row's codes are then looked up by a Python int rather than a tuple built
    and hashed per row (0.4 us a row). Exact: past what an int64 holds, Python ints."""
    width = picked.shape[1]
    digits = np.where(np.arange(width) < counts[:, None], picked + 1, 0)
    base = features + 1
    if base**width <= np.iinfo(np.int64).max:
        keys: list[int] = (digits @ base ** np.arange(width)).tolist()
        return keys
    return [sum(d * base**p for p, d in enumerate(row)) for row in digits.tolist()]


class _Verdicts:
    """One model's verdicts on a chunk, row by row, as ``Scorer.verdict`` gives them: the
    allow / deny lists first, then the model."""

    def __init__(
        self,
        model: RiskModel,
        thresholds: Thresholds,
        xs: np.ndarray[Any, Any],
        listed: dict[int, Risk],
    ) -> None:
        self.model = model
        self.scores = model.scores(xs)
        self._picked, self._reason_counts, self._contributions = model.top_reasons(xs)
        self.rankings = ranking_keys(self._picked, self._reason_counts, xs.shape[1])
        classes = {score: thresholds.classify(score) for score in set(self.scores)}
        self.classes = [classes[score] for score in self.scores]
        self.listed = listed
        for row, risk in listed.items():
            self.scores[row] = risk.score
            self.classes[row] = (risk.level, risk.action)

    def reasons(self, row: int) -> list[int]:
        """The feature indices of one row's reasons, largest contribution first."""
        ranked: list[int] = self._picked[row, : self._reason_counts[row]].tolist()
        return ranked

    def risk(self, row: int, codes: Sequence[str]) -> Risk:
        """The full verdict of one row (its reasons with their contributions)."""
        listed = self.listed.get(row)
        if listed is not None:
            return listed
        level, action = self.classes[row]
        return Risk(
            score=self.scores[row],
            level=level,
            action=action,
            reasons=[
                Reason(codes[i], shown(float(self._contributions[row, i])))
                for i in self.reasons(row)
            ],
            model_version=self.model.version,
        )


class Rescorer:
    def __init__(
        self,
        settings: Settings,
        model: RiskModel,
        thresholds: Thresholds,
        compare: tuple[RiskModel, Thresholds] | None = None,
        reorder_window: int = 10_000,
    ) -> None:
        self.spec = FeatureSpec(settings.reuse_window_labels)
        self._new_store = partial(
            MemoryReuseStore,
            windows_ms=settings.reuse_windows_ms,
            cap=settings.reuse_cap,
            ipqs_window_ms=settings.ipqs_join_window_s * 1000,
        )
        self._lists = AccessLists(settings)
        # In-memory hashes never leave the process: any key keeps them consistent.
        self._policy = MemoPolicy(b"riskwire-rescore", settings.blocked_identifiers)
        self._scorer = Scorer(
            policy=self._policy,
            store=None,
            spec=self.spec,
            model=model,
            thresholds=thresholds,
            lists=self._lists,
        )
        self._model = model
        self._thresholds = thresholds
        self._compare = compare
        self._reorder_window = reorder_window
        self._prefix = settings.trait_prefix
        self._bytes_read = 0
        self._started_at = datetime.now(UTC)
        self._codes = [f.reason_code for f in self.spec.features]
        self._code_lists: dict[int, list[str]] = {}

    def run(
        self,
        lines: Iterator[bytes],
        out: IO[bytes],
        rejects: IO[bytes],
        progress: Progress | None = None,
        emitted: Emits | None = None,
    ) -> Summary:
        with fewer_collections(_RESCORE_YOUNG_THRESHOLD):
            return self._run(lines, out, rejects, progress, emitted)

    def _run(
        self,
        lines: Iterator[bytes],
        out: IO[bytes],
        rejects: IO[bytes],
        progress: Progress | None,
        emitted: Emits | None,
    ) -> Summary:
        summary = Summary(model_version=self._model.version)
        if self._compare is not None:
            summary.compared_with = self._compare[0].version
        tally = _Tally()
        started = time.perf_counter()
        encoder = msgspec.json.Encoder()
        # One store per run, a local: it is freed when the run ends, before the garbage
        # collector's thresholds are put back (``fewer_collections``). Kept alive past
        # that, its containers (over a hundred thousand for a few days of events) were
        # all walked by the first young-generation pass, some 5% of a run, only to be
        # freed right after.
        store = self._new_store()
        pending: list[Stamped] = []
        for block in self._ordered(lines, rejects, summary):
            pending += block
            del block  # held by ``pending`` alone, an item is freed once its chunk is scored
            while len(pending) >= CHUNK:
                scored = self._scored(_Chunk(pending[:CHUNK]), store, tally, emitted)
                del pending[:CHUNK]
                summary.events += len(scored)
                out.write(encoder.encode_lines(scored))
                if progress is not None:
                    progress.update(summary.events, self._bytes_read)
        summary.events += len(pending)
        out.write(encoder.encode_lines(self._scored(_Chunk(pending), store, tally, emitted)))
        if progress is not None:
            progress.update(summary.events, self._bytes_read, force=True)
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.events_per_second = round(summary.events / max(summary.seconds, 1e-9), 1)
        summary.by_level = dict(sorted(tally.levels.items()))
        summary.by_action = dict(sorted(tally.actions.items()))
        summary.changed_actions = dict(sorted(tally.changed.items()))
        summary.emitted = tally.emitted
        return summary

    def _scored(
        self, chunk: _Chunk, store: MemoryReuseStore, tally: _Tally, emitted: Emits | None
    ) -> list[ScoredLine]:
        """The output lines of a chunk, counted in ``tally`` (identifies in ``emitted``).
        Built column by column and zipped in C: a line is a struct of values the chunk's
        steps already hold."""
        observations = chunk.observations
        if not observations:
            return []
        xs = self._features(chunk, store)
        verdicts = self._verdicts(observations, xs, self._model, self._thresholds)
        previous = None
        if self._compare is not None:
            previous = self._verdicts(observations, xs, *self._compare)
        levels, actions = zip(*verdicts.classes, strict=True)
        request_ids, sources, visitor_ids, user_ids = zip(
            *map(_line_fields, observations), strict=True
        )
        scored = list(
            map(
                ScoredLine,
                request_ids,
                sources,
                _iso_times(observations, chunk.now),
                visitor_ids,
                user_ids,
                verdicts.scores,
                levels,
                actions,
                self._reason_codes(verdicts),
                repeat(self._model.version),
                repeat(None) if previous is None else [action for _, action in previous.classes],
            )
        )
        if emitted is not None:
            for row, obs in enumerate(observations):
                message = self.identify(obs, verdicts.risk(row, self._codes))
                if message is not None:
                    emitted.append(message)
                    tally.emitted += 1
        tally.add(levels, actions, previous)
        return scored

    def _features(self, chunk: _Chunk, store: MemoryReuseStore) -> np.ndarray[Any, Any]:
        """What ``Scorer.features_in`` gives each observation of the chunk, in order. Each
        step runs over the whole chunk before the next (the store, then the matrix), which
        keeps its code and data in the processor's caches."""
        observations = chunk.observations
        # What ``ipqs_blob`` encodes (an IPQS result's signals), remembered as it is: the
        # store never lets it out of the process, so it is not encoded, nor decoded when
        # joined (msgpack both ways cost a tenth of a microsecond per event).
        own = list(map(_ipqs_of, observations))
        remembered = [
            signals if obs.source == "ipqs" else None
            for obs, signals in zip(observations, own, strict=True)
        ]
        counts, first_seen, joined_signals = store.record_many(
            chunk.inputs, chunk.moments, remembered
        )
        # An IPQS result of the event's own stands; otherwise the one joined on its user.
        joined = [
            signals if signals is not None else other
            for signals, other in zip(own, joined_signals, strict=True)
        ]
        reuse = np.frombuffer(counts, dtype=np.int64).reshape(len(observations), -1)
        return self.spec.matrix(FeatureRows(observations, joined, reuse, first_seen, chunk.now))

    def _reason_codes(self, verdicts: _Verdicts) -> list[list[str]]:
        """Each row's reason codes: the list of each ranking is built once and shared by the
        lines that have it (which are only encoded)."""
        rankings = verdicts.rankings
        codes = [
            known if known is not None else self._new_codes(ranking, verdicts.reasons(row))
            for row, (known, ranking) in enumerate(
                zip(map(self._code_lists.get, rankings), rankings, strict=True)
            )
        ]
        for row, listed in verdicts.listed.items():
            codes[row] = [reason.code for reason in listed.reasons]
        return codes

    def _new_codes(self, ranking: int, reasons: list[int]) -> list[str]:
        if len(self._code_lists) >= 1 << 12:
            self._code_lists.clear()
        codes = self._code_lists[ranking] = [self._codes[i] for i in reasons]
        return codes

    def _verdicts(
        self,
        observations: Sequence[Observation],
        xs: np.ndarray[Any, Any],
        model: RiskModel,
        thresholds: Thresholds,
    ) -> _Verdicts:
        listed = {}
        # The allow / deny lists apply in batch exactly as online.
        if not self._lists.empty:
            for row, obs in enumerate(observations):
                risk = self._scorer.listed(obs, model)
                if risk is not None:
                    listed[row] = risk
        return _Verdicts(model, thresholds, xs, listed)

    def _ordered(
        self, lines: Iterator[bytes], rejects: IO[bytes], summary: Summary
    ) -> Iterator[list[Stamped]]:
        """Observations with their time in milliseconds and in seconds, in time order as far
        as a bounded buffer can restore it, a block at a time (``rescore_input.py``)."""
        blocks = decoded_blocks(lines, self._policy.members)
        accepted = self._accepted(blocks, rejects, summary)
        return _in_time_order(accepted, self._reorder_window, summary)

    def _accepted(
        self, blocks: Iterable[DecodedBlock], rejects: IO[bytes], summary: Summary
    ) -> Iterator[list[Stamped]]:
        """Each block's observations, its rejects written and counted on the way."""
        encoder = msgspec.json.Encoder()
        for block in blocks:
            self._bytes_read += block.size
            if block.rejects:
                summary.rejected += len(block.rejects)
                rejects.write(encoder.encode_lines(block.rejects))
            yield block.events

    def identify(self, obs: Observation, risk: Risk) -> bytes | None:
        return rescore_identify(obs, risk, self._prefix, self._started_at)


# Within 2**31 seconds of the epoch (1901 to 2038), a time's ``timestamp()`` times 10**6,
# rounded, is its exact count of microseconds: ``timestamp()`` and the product are each
# rounded to a float there, together by less than half a microsecond.
_EXACT_SECONDS = 2.0**31


def _iso_times(observations: Sequence[Observation], seconds: Sequence[float]) -> list[str]:
    """``iso8601`` of each observation's time, from its ``timestamp()`` (``seconds``):
    formatted by numpy for the whole chunk, where the seconds give the milliseconds
    exactly, and by ``iso8601`` elsewhere."""
    at = np.asarray(seconds, dtype=np.float64)
    milliseconds = np.rint(at * 1e6).astype(np.int64) // 1000  # as isoformat: truncated
    times: list[str] = np.datetime_as_string(
        milliseconds.astype("datetime64[ms]"), timezone="UTC"
    ).tolist()
    for row in np.flatnonzero(np.abs(at) >= _EXACT_SECONDS).tolist():
        times[row] = iso8601(observations[row].time)
    return times


# (time in ms, line number, ...): ordered by time, then line (a line number is never
# repeated, so no two items compare past it).
T = TypeVar("T", bound=tuple[Any, ...])


def _in_time_order(blocks: Iterable[list[T]], window: int, summary: Summary) -> Iterator[list[T]]:
    """The items of ``blocks`` in time order as far as a buffer of ``window`` items restores
    it: once the buffer is full, the earliest item leaves as each new one comes (items that
    still leave after a later one are counted late). The buffer is a queue of items in
    order, which is all of them when the input is in order, and a heap of the ones that
    came early; the earliest item heads one of the two. What leaves is yielded a list per
    block taken in, and what is left at the end in lists of ``CHUNK``.

    A block in order that goes after the queue, with no item early, is the usual case: it
    joins the queue, and as many items leave its head, in two slices rather than item by
    item (the same items, in the same order)."""
    run: list[T] = []  # the queue: ``run[head:]``
    head = 0
    early: list[T] = []
    newest_out = -(2**62)
    late = 0
    for block in blocks:
        if (
            not early
            and block
            and (head == len(run) or block[0][0] >= run[-1][0])
            and block == sorted(block, key=_time_of)
        ):
            run += block
            leaving = run[head : max(head, len(run) - window)]
            head += len(leaving)
            if leaving:
                # In order: the late ones lead, up to the first at or after the newest so far.
                late += bisect_left(leaving, newest_out, key=_time_of)
                newest_out = max(newest_out, leaving[-1][0])
        else:
            leaving = []
            for item in block:
                if head == len(run) or item[0] >= run[-1][0]:
                    run.append(item)  # after every item of the queue: its line number is larger
                else:
                    heapq.heappush(early, item)
                if len(run) - head + len(early) > window:
                    if early and early[0] < run[head]:
                        first = heapq.heappop(early)
                    else:
                        first = run[head]
                        head += 1
                    if first[0] < newest_out:
                        late += 1
                    else:
                        newest_out = first[0]
                    leaving.append(first)
        # What left the queue goes now, not when the list next grows past it.
        del run[:head]
        head = 0
        yield leaving
    # The end of the input: the earliest of the two leaves while any came early, then the
    # rest of the queue in order, all at once.
    leaving = []
    while early:
        if head == len(run) or early[0] < run[head]:
            first = heapq.heappop(early)
        else:
            first = run[head]
            head += 1
        if first[0] < newest_out:
            late += 1
        else:
            newest_out = first[0]
        leaving.append(first)
    rest = run[head:]
    run.clear()
    if rest:
        late += bisect_left(rest, newest_out, key=_time_of)
    summary.late += late
    leaving += rest
    del rest
    # A chunk at a time, each let go of here: it can be freed once scored.
    while leaving:
        piece = leaving[:CHUNK]
        del leaving[:CHUNK]
        yield piece


_time_of = itemgetter(0)


class _Tally:
    """The summary's counts of levels, actions and changed actions."""

    def __init__(self) -> None:
        self.levels: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.changed: Counter[str] = Counter()
        self.emitted = 0

    def add(
        self, levels: Iterable[str], actions: Sequence[str], previous: _Verdicts | None
    ) -> None:
        self.levels.update(levels)
        self.actions.update(actions)
        if previous is not None:
            self.changed.update(
                f"{before}->{after}"
                for (_, before), after in zip(previous.classes, actions, strict=True)
                if before != after
            )


def _events(text: str) -> int:
    """A count of events, 0 or more."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"a count of events, 0 or more, not {text!r}")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    from service.app import load_model
    from service.rescore_emit import EmitError, OutboxFeed

    parser = argparse.ArgumentParser(prog="python -m service rescore", description=__doc__)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--model", type=Path, help="model to score with (default: configured)")
    parser.add_argument("--compare-model", type=Path, help="model to compare actions with")
    parser.add_argument("--review-threshold", type=float)
    parser.add_argument("--block-threshold", type=float)
    parser.add_argument(
        "--reorder-window",
        type=_events,
        default=10_000,
        help="events held to restore time order (0: none; default: 10,000)",
    )
    parser.add_argument("--emit", action="store_true", help="queue identifies in the outbox")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"--input {args.input}: no such file")
    rejects_path = args.output.with_name(args.output.name + ".rejects.jsonl")
    for written in (args.output, rejects_path):
        # Opening it for writing would empty the input before a line of it is read.
        if written.exists() and written.samefile(args.input):
            parser.error(f"--output {args.output}: would overwrite the input {args.input}")
    if not args.output.parent.is_dir():
        parser.error(f"--output {args.output}: no such directory {args.output.parent}")

    settings = Settings.from_env(os.environ)
    spec, configured, configured_thresholds = load_model(settings)
    try:
        model = RiskModel.load(args.model, spec) if args.model else configured
        other = RiskModel.load(args.compare_model, spec) if args.compare_model else None
    except ModelError as exc:
        parser.error(str(exc))
    # A threshold not given is the chosen model's own.
    defaults = model.artifact.thresholds if args.model else configured_thresholds
    try:
        thresholds = Thresholds(
            review=defaults.review if args.review_threshold is None else args.review_threshold,
            block=defaults.block if args.block_threshold is None else args.block_threshold,
        )
    except ValueError as exc:
        parser.error(f"--review-threshold / --block-threshold: {exc}")
    if other is not None:
        compare = (other, other.artifact.thresholds)
    else:
        compare = (configured, configured_thresholds)
    rescorer = Rescorer(settings, model, thresholds, compare, args.reorder_window)
    progress = None if args.quiet else Progress(args.input.stat().st_size)
    try:
        with (
            OutboxFeed(settings) if args.emit else nullcontext() as feed,
            args.output.open("wb") as out,
            rejects_path.open("wb") as rejects,
        ):
            summary = rescorer.run(read_lines(args.input), out, rejects, progress, feed)
    except (EmitError, InputError) as exc:
        # What was scored before stays in the output: the summary is not printed, so a
        # partial run cannot pass for a whole one.
        print(exc, file=sys.stderr)
        return 1
    if summary.rejected == 0:
        rejects_path.unlink()
    print(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode())
    return 0
