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
historic timestamp and a deterministic messageId.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import heapq
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np

from service.decode import decode_event
from service.errors import RiskwireError
from service.features import FeatureSpec
from service.identifiers import IdentifierPolicy
from service.lists import AccessLists
from service.model import Risk, RiskModel, Thresholds
from service.observation import Observation
from service.reuse_memory import MemoryReuseStore
from service.scoring import Scorer
from service.settings import Settings
from service.specs import iso8601, rescore_identify

CHUNK = 512  # rows scored together by the vectorised model path


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


class Reject(msgspec.Struct):
    line: int
    error: str
    field: str | None = None


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


def read_lines(path: Path) -> Iterator[bytes]:
    """Lines of a plain or gzip file, streamed."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as packed:
            yield from (line for line in packed if line.strip())
    else:
        with path.open("rb", buffering=1 << 20) as plain:
            yield from (line for line in plain if line.strip())


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


@contextmanager
def _fewer_collections(young: int = 50_000) -> Iterator[None]:
    """Let the cyclic garbage collector run less often: rescoring allocates a great many
    long-lived containers (the reuse store's) and, on the way, no reference cycles, so the
    default (a young-generation pass every 700 allocations, and older ones after it) costs
    about a tenth of the run for nothing. Any cycle is still collected, in larger batches."""
    previous = gc.get_threshold()
    if 0 < previous[0] < young:  # 0: automatic collection is off, and stays off
        gc.set_threshold(young, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class MemoPolicy(IdentifierPolicy):
    """``IdentifierPolicy`` whose digests are remembered: a device, user or IP comes back
    event after event, and its keyed hash costs more than the lookup. At most ``size``
    digests are kept (the memo starts over when full), so memory stays flat."""

    def __init__(self, key: bytes, extra_blocked: Iterable[str] = (), size: int = 1 << 14):
        super().__init__(key, extra_blocked)
        self._memo: dict[tuple[str, str], str] = {}
        self._size = size

    def digest(self, kind: str, value: str) -> str:
        found = self._memo.get((kind, value))
        if found is None:
            if len(self._memo) >= self._size:
                self._memo.clear()
            found = self._memo[kind, value] = super().digest(kind, value)
        return found


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
        self._store = MemoryReuseStore(
            windows_ms=settings.reuse_windows_ms,
            cap=settings.reuse_cap,
            ipqs_window_ms=settings.ipqs_join_window_s * 1000,
        )
        self._scorer = Scorer(
            # In-memory hashes never leave the process: any key keeps them consistent.
            policy=MemoPolicy(b"riskwire-rescore", settings.blocked_identifiers),
            store=None,
            spec=self.spec,
            model=model,
            thresholds=thresholds,
            lists=AccessLists(settings),
        )
        self._model = model
        self._thresholds = thresholds
        self._compare = compare
        self._reorder_window = reorder_window
        self._prefix = settings.trait_prefix
        self._bytes_read = 0
        self._started_at = datetime.now(UTC)

    def run(
        self,
        lines: Iterator[bytes],
        out: IO[bytes],
        rejects: IO[bytes],
        progress: Progress | None = None,
        emitted: list[bytes] | None = None,
    ) -> Summary:
        with _fewer_collections():
            return self._run(lines, out, rejects, progress, emitted)

    def _run(
        self,
        lines: Iterator[bytes],
        out: IO[bytes],
        rejects: IO[bytes],
        progress: Progress | None,
        emitted: list[bytes] | None,
    ) -> Summary:
        summary = Summary(model_version=self._model.version)
        if self._compare is not None:
            summary.compared_with = self._compare[0].version
        levels: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        changed: Counter[str] = Counter()
        started = time.perf_counter()
        encoder = msgspec.json.Encoder()
        scorer, store = self._scorer, self._store
        observations: list[Observation] = []
        rows: list[np.ndarray[Any, Any]] = []

        def flush() -> None:
            if not observations:
                return
            xs = np.vstack(rows)
            risks = self._verdicts(observations, xs, self._model, self._thresholds)
            previous: list[Risk] | None = None
            if self._compare is not None:
                previous = self._verdicts(observations, xs, *self._compare)
            scored = []
            for index, (obs, risk) in enumerate(zip(observations, risks, strict=True)):
                levels[risk.level] += 1
                actions[risk.action] += 1
                before = previous[index].action if previous is not None else None
                if before is not None and before != risk.action:
                    changed[f"{before}->{risk.action}"] += 1
                scored.append(
                    ScoredLine(
                        request_id=obs.request_id,
                        source=obs.source,
                        time=iso8601(obs.time),
                        visitor_id=obs.visitor_id,
                        user_id=obs.user_id,
                        score=risk.score,
                        level=risk.level,
                        action=risk.action,
                        reasons=[r.code for r in risk.reasons],
                        model_version=risk.model_version,
                        previous_action=before,
                    )
                )
                if emitted is not None:
                    message = self.identify(obs, risk)
                    if message is not None:
                        emitted.append(message)
            out.write(encoder.encode_lines(scored))
            observations.clear()
            rows.clear()

        for moment, obs in self._ordered(lines, rejects, summary):
            observations.append(obs)
            rows.append(scorer.features_in(store, obs, moment))
            summary.events += 1
            if len(observations) >= CHUNK:
                flush()
                if progress is not None:
                    progress.update(summary.events, self._bytes_read)
        flush()
        if progress is not None:
            progress.update(summary.events, self._bytes_read, force=True)
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.events_per_second = round(summary.events / max(summary.seconds, 1e-9), 1)
        summary.by_level = dict(sorted(levels.items()))
        summary.by_action = dict(sorted(actions.items()))
        summary.changed_actions = dict(sorted(changed.items()))
        summary.emitted = len(emitted) if emitted is not None else 0
        return summary

    def _verdicts(
        self,
        observations: list[Observation],
        xs: np.ndarray[Any, Any],
        model: RiskModel,
        thresholds: Thresholds,
    ) -> list[Risk]:
        risks = model.risk_many(xs, thresholds)
        # The allow / deny lists apply in batch exactly as online.
        for index, obs in enumerate(observations):
            listed = self._scorer.listed(obs, model)
            if listed is not None:
                risks[index] = listed
        return risks

    def _ordered(
        self, lines: Iterator[bytes], rejects: IO[bytes], summary: Summary
    ) -> Iterator[tuple[int, Observation]]:
        """Observations with their time in milliseconds, in time order as far as a bounded
        buffer can restore it."""
        heap: list[tuple[int, int, Observation]] = []
        newest_out = -(2**62)
        epoch = datetime.fromtimestamp(0, UTC)
        encoder = msgspec.json.Encoder()
        for number, line in enumerate(lines, start=1):
            self._bytes_read += len(line)
            try:
                obs = decode_event(line, received_at=epoch)
            except RiskwireError as exc:
                summary.rejected += 1
                rejects.write(encoder.encode(Reject(number, exc.message, exc.field)) + b"\n")
                continue
            if obs.source == "ipqs" and obs.time == epoch:
                summary.rejected += 1
                reject = Reject(number, "IPQS result without `time`: cannot place it", "$.time")
                rejects.write(encoder.encode(reject) + b"\n")
                continue
            moment = int(obs.time.timestamp() * 1000)
            if len(heap) < self._reorder_window:
                heapq.heappush(heap, (moment, number, obs))
            else:
                # The earliest of the buffer and this one (push, then pop, in one step).
                moment, _, first = heapq.heappushpop(heap, (moment, number, obs))
                if moment < newest_out:
                    summary.late += 1
                newest_out = max(newest_out, moment)
                yield moment, first
        while heap:
            moment, _, first = heapq.heappop(heap)
            if moment < newest_out:
                summary.late += 1
            newest_out = max(newest_out, moment)
            yield moment, first

    def identify(self, obs: Observation, risk: Risk) -> bytes | None:
        return rescore_identify(obs, risk, self._prefix, self._started_at)


def main(argv: Sequence[str] | None = None) -> int:
    from service.app import load_model

    parser = argparse.ArgumentParser(prog="python -m service rescore", description=__doc__)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--model", type=Path, help="model to score with (default: configured)")
    parser.add_argument("--compare-model", type=Path, help="model to compare actions with")
    parser.add_argument("--review-threshold", type=float)
    parser.add_argument("--block-threshold", type=float)
    parser.add_argument("--reorder-window", type=int, default=10_000)
    parser.add_argument("--emit", action="store_true", help="queue identifies in the outbox")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings.from_env(os.environ)
    spec, configured, configured_thresholds = load_model(settings)
    model = RiskModel.load(args.model, spec) if args.model else configured
    thresholds = Thresholds(
        review=args.review_threshold
        if args.review_threshold is not None
        else (model.artifact.thresholds.review if args.model else configured_thresholds.review),
        block=args.block_threshold
        if args.block_threshold is not None
        else (model.artifact.thresholds.block if args.model else configured_thresholds.block),
    )
    if args.compare_model:
        other = RiskModel.load(args.compare_model, spec)
        compare = (other, other.artifact.thresholds)
    else:
        compare = (configured, configured_thresholds)
    rescorer = Rescorer(settings, model, thresholds, compare, args.reorder_window)
    progress = None if args.quiet else Progress(args.input.stat().st_size)
    emitted: list[bytes] | None = [] if args.emit else None
    rejects_path = args.output.with_name(args.output.name + ".rejects.jsonl")
    with args.output.open("wb") as out, rejects_path.open("wb") as rejects:
        summary = rescorer.run(read_lines(args.input), out, rejects, progress, emitted)
    if emitted:
        summary.emitted = _emit(settings, emitted)
    if summary.rejected == 0:
        rejects_path.unlink()
    print(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode())
    return 0


def _emit(settings: Settings, messages: list[bytes]) -> int:
    """Queue the identifies in the outbox the service's forwarder delivers."""
    import asyncio

    from service.app import connect_redis
    from service.keys import Keys
    from service.outbox import Outbox

    async def run() -> int:
        redis = connect_redis(settings, max_connections=2)
        try:
            outbox = Outbox(redis, Keys(settings.redis_prefix), settings.idempotency_ttl_s)
            return await outbox.enqueue(messages)
        finally:
            await redis.aclose(close_connection_pool=True)

    return asyncio.run(run())
