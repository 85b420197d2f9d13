"""The input of batch rescoring: one raw event per line, in a plain or gzip file, decoded a
block of lines at a time into observations stamped with their times and named for the
reuse store, and rejects.

What the reorder buffer holds (``rescore.py``: by default 10,000 events) was decoded that
many events before it is scored, and is long out of the processor's caches by then. So
whatever rescoring can do with an observation alone is done here, while it is hot: its
identifiers are named for the store, and it is kept without the three fields rescoring
never reads (the URL, the browser details and the Segment tag), which are most of its
memory. What that gains is small against this machine's noise (docs/BENCHMARKS.md, session
12: 0.489x to 0.498x of the decode-only pass, the mean of six runs each, taking turns).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice, repeat
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

import msgspec
import numpy as np

from service.decode import decode_event_unprobed
from service.errors import RiskwireError
from service.observation import Observation
from service.reuse_memory import StoreInput

CHUNK = 512  # lines decoded together, and rows scored together by the vectorised model path

Stamped = tuple[int, int, float, Observation, StoreInput]
"""An observation with its time in milliseconds (the reuse store's), its line number, its
time in seconds (``timestamp()``'s) and its identifiers named for the store."""

Namer = Callable[[Observation], StoreInput]
"""An observation's identifiers named for the store (``MemoPolicy.members``)."""


class Reject(msgspec.Struct):
    line: int
    error: str
    field: str | None = None


class DecodedBlock(NamedTuple):
    """A block of lines decoded: its observations in line order, its rejects, and its size
    in bytes (for the progress bar)."""

    events: list[Stamped]
    rejects: list[Reject]
    size: int


class InputError(Exception):
    """The input could not be read: a missing, truncated or corrupt file."""


# What reading a plain or gzip file raises when it cannot go on.
_UNREADABLE = (OSError, EOFError, zlib.error)


def read_lines(path: Path) -> Iterator[bytes]:
    """Lines of a plain or gzip file, streamed."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as packed:
            yield from (line for line in packed if line.strip())
    else:
        with path.open("rb", buffering=1 << 20) as plain:
            yield from (line for line in plain if line.strip())


_time_of_observation = attrgetter("time")


def decoded_blocks(lines: Iterator[bytes], name: Namer) -> Iterator[DecodedBlock]:
    """``lines`` decoded ``CHUNK`` at a time, each observation's identifiers named by
    ``name``."""
    epoch = datetime.fromtimestamp(0, UTC)
    first = 1  # the line number of the block's first line
    while True:
        try:
            block = list(islice(lines, CHUNK))
        except _UNREADABLE as exc:
            raise InputError(f"the input cannot be read: {exc}") from exc
        if not block:
            return
        yield _decoded(block, first, epoch, name)
        first += len(block)


def _decoded(block: list[bytes], first: int, epoch: datetime, name: Namer) -> DecodedBlock:
    """A block decoded from C (``map``), which keeps the decoder's code and data in the
    processor's caches (event by event, decoding and scoring both ran a fifth slower); one
    with a line to reject is taken again line by line, which numbers its rejects."""
    size = sum(map(len, block))
    try:
        observations = list(map(decode_event_unprobed, block, repeat(epoch)))
    except RiskwireError:
        observations = []
    seconds = list(map(datetime.timestamp, map(_time_of_observation, observations)))
    # An IPQS result without a time was given the epoch's (rejected below).
    if len(observations) == len(block) and epoch.timestamp() not in seconds:
        # ``int(seconds * 1000)`` of each: the same product, truncated the same way.
        moments = (np.array(seconds) * 1000).astype(np.int64).tolist()
        numbers = range(first, first + len(block))
        kept = list(map(_slim, observations))
        stamped = zip(moments, numbers, seconds, kept, map(name, kept), strict=True)
        return DecodedBlock(list(stamped), [], size)
    events: list[Stamped] = []
    rejects: list[Reject] = []
    for number, line in enumerate(block, start=first):
        try:
            obs = decode_event_unprobed(line, received_at=epoch)
        except RiskwireError as exc:
            rejects.append(Reject(number, exc.message, exc.field))
            continue
        if obs.source == "ipqs" and obs.time == epoch:
            rejects.append(Reject(number, "IPQS result without `time`: cannot place it", "$.time"))
            continue
        at = obs.time.timestamp()
        held = _slim(obs)
        events.append((int(at * 1000), number, at, held, name(held)))
    return DecodedBlock(events, rejects, size)


def _slim(obs: Observation) -> Observation:
    """``obs`` without what rescoring never reads: the output lines, the features and the
    identifies of ``--emit`` come from its other fields (the tests hold a run's lines and
    identifies to those of ``Scorer`` and ``rescore_identify`` on whole events)."""
    return msgspec.structs.replace(obs, url=None, browser=None, segment=None)
