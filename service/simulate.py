"""Seeded traffic simulator: labelled Fingerprint (v3 / v4) webhooks and IPQS results.

Eleven populations a fraud analyst would recognise — five legitimate (returning and new
customers, VPN / privacy users, families sharing a device, coworkers and students behind
one office or campus network), six fraudulent (credential stuffing, fraud rings, account
takeover, automated checkouts on hijacked sessions, promo abuse, stolen cards on aged
accounts) — act over simulated days; each of their page loads becomes the exact body the
vendor would post, with a ground-truth label. The populations overlap on purpose
(risky-looking customers, careful fraudsters), so no model separates them perfectly. See
``service/simulation/`` for who does what.

Deterministic: the same config gives byte-identical output. Streaming: events are produced
in time order from one generator per actor, never held all at once.

    python -m service.simulate --days 14 --scale 1 --out var/sim
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import msgspec

from service.simulation.clock import DAY_MS, to_datetime, to_ms
from service.simulation.fraud import (
    AccountTakeover,
    Carders,
    CredentialStuffing,
    FraudRings,
    HijackedSessions,
    PromoAbusers,
)
from service.simulation.legit import (
    Families,
    NewCustomers,
    PrivacyUsers,
    ReturningCustomers,
    SharedNetworks,
)
from service.simulation.visit import Format, IpqsOutcome, Label, Visit
from service.simulation.wire import Renderer
from service.simulation.world import Actor, World

Kind = Literal["fingerprint_v3", "fingerprint_v4", "ipqs"]
KINDS: tuple[Kind, ...] = ("fingerprint_v3", "fingerprint_v4", "ipqs")
_FINGERPRINT_KIND: dict[Format, Kind] = {"v3": "fingerprint_v3", "v4": "fingerprint_v4"}
_BUFFER = 1 << 20


class Population(Protocol):
    name: str
    label: Label

    def actors(self, world: World) -> list[Actor]: ...


POPULATIONS: tuple[Population, ...] = (
    ReturningCustomers(),
    NewCustomers(),
    PrivacyUsers(),
    Families(),
    SharedNetworks(),
    CredentialStuffing(),
    FraudRings(),
    AccountTakeover(),
    HijackedSessions(),
    PromoAbusers(),
    Carders(),
)


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 7
    days: int = 14
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    scale: float = 1.0  # multiplies every population's size
    v4_share: float = 0.5  # fraction of Fingerprint events in the v4 format
    ipqs_share: float = 0.3  # fraction of page loads that also produce an IPQS result

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not self.scale > 0:
            raise ValueError("scale must be positive")
        for name in ("v4_share", "ipqs_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.start.tzinfo is None:
            raise ValueError("start must carry a time zone (e.g. 2026-10-01T00:00:00Z)")


class SimEvent(msgspec.Struct, frozen=True):
    kind: Kind
    request_id: str
    time: datetime  # UTC; equals the time the project's decoders read from ``body``
    label: Label
    population: str
    body: bytes  # the exact JSON the vendor would send


class _LabelLine(msgspec.Struct, frozen=True, rename={"request_id": "requestId"}):
    request_id: str
    kind: str
    label: str
    population: str
    time: datetime  # RFC 3339 in UTC, e.g. 2026-10-01T08:12:03.123000Z


class PopulationSummary(msgspec.Struct, frozen=True):
    label: Label
    fingerprint: int
    ipqs: int

    @property
    def events(self) -> int:
        return self.fingerprint + self.ipqs


class SimulationSummary(msgspec.Struct, frozen=True):
    events: int
    by_kind: dict[str, int]
    by_label: dict[str, int]
    populations: dict[str, PopulationSummary]

    @property
    def fraud_share(self) -> float:
        return self.by_label.get("fraud", 0) / self.events if self.events else 0.0

    def render(self) -> str:
        lines = [f"{'population':<22}{'label':<7}{'fingerprint':>12}{'ipqs':>8}{'events':>8}"]
        for name, row in self.populations.items():
            lines.append(
                f"{name:<22}{row.label:<7}{row.fingerprint:>12}{row.ipqs:>8}{row.events:>8}"
            )
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.by_kind.items())
        labels = ", ".join(f"{label} {count}" for label, count in self.by_label.items())
        lines.append(f"total {self.events} events: {kinds}")
        lines.append(f"labels: {labels} (fraud share {self.fraud_share:.1%})")
        return "\n".join(lines)


class _Tally:
    def __init__(self) -> None:
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.labels: dict[str, int] = {"legit": 0, "fraud": 0}
        self.fingerprint: dict[str, int] = {p.name: 0 for p in POPULATIONS}
        self.ipqs: dict[str, int] = dict.fromkeys(self.fingerprint, 0)

    def add(self, event: SimEvent) -> None:
        self.kinds[event.kind] += 1
        self.labels[event.label] += 1
        (self.ipqs if event.kind == "ipqs" else self.fingerprint)[event.population] += 1

    def summary(self) -> SimulationSummary:
        return SimulationSummary(
            events=sum(self.kinds.values()),
            by_kind=dict(self.kinds),
            by_label=dict(self.labels),
            populations={
                p.name: PopulationSummary(p.label, self.fingerprint[p.name], self.ipqs[p.name])
                for p in POPULATIONS
            },
        )


def summarize(events: Iterator[SimEvent]) -> SimulationSummary:
    tally = _Tally()
    for event in events:
        tally.add(event)
    return tally.summary()


def _world(config: SimulationConfig) -> World:
    start_ms = to_ms(config.start.astimezone(UTC))
    return World.build(
        seed=config.seed,
        start_ms=start_ms,
        end_ms=start_ms + config.days * DAY_MS,
        scale=config.scale,
        v4_share=config.v4_share,
        ipqs_share=config.ipqs_share,
    )


def _merge(actors: list[Actor]) -> Iterator[Visit]:
    """All actors' visits in time order. An actor is started only once the merged stream
    reaches its start, so memory holds the actors active at once, not the whole cast."""
    pending = sorted(actors, key=lambda actor: actor.start_ms)  # stable: ties keep order
    running: list[tuple[int, int, Visit, Iterator[Visit]]] = []
    order = itertools.count()  # breaks time ties by arrival, never comparing visits
    index = 0
    while True:
        while index < len(pending) and (not running or pending[index].start_ms <= running[0][0]):
            actor = pending[index]
            stream = actor.run()
            index += 1
            first = next(stream, None)
            if first is not None:
                if first.time_ms < actor.start_ms:
                    raise RuntimeError(f"{first.population} actor began before its start")
                heapq.heappush(running, (first.time_ms, next(order), first, stream))
        if not running:
            return
        _, _, visit, stream = running[0]
        yield visit
        following = next(stream, None)
        if following is None:
            heapq.heappop(running)
        elif following.time_ms < visit.time_ms:
            # Time order is the contract; an actor going back in time is a bug, not data.
            raise RuntimeError(f"{visit.population} actor went back in time")
        else:
            heapq.heapreplace(running, (following.time_ms, next(order), following, stream))


def simulate(config: SimulationConfig | None = None) -> Iterator[SimEvent]:
    """Every event of the run, in non-decreasing event time."""
    config = config or SimulationConfig()
    world = _world(config)
    actors = [actor for population in POPULATIONS for actor in population.actors(world)]
    renderer = Renderer()
    # IPQS results trail their page load by a few seconds; they wait here until the merged
    # stream has passed their time. Ties break on arrival order, so output stays stable.
    waiting: list[tuple[int, int, Visit, IpqsOutcome]] = []
    arrival = itertools.count()
    for visit in _merge(actors):
        while waiting and waiting[0][0] <= visit.time_ms:
            yield _ipqs_event(renderer, *heapq.heappop(waiting)[2:])
        yield SimEvent(
            _FINGERPRINT_KIND[visit.format],
            visit.request_id,
            to_datetime(visit.time_ms),
            visit.label,
            visit.population,
            renderer.fingerprint(visit),
        )
        if visit.ipqs is not None:
            heapq.heappush(waiting, (visit.ipqs.time_ms, next(arrival), visit, visit.ipqs))
    while waiting:
        yield _ipqs_event(renderer, *heapq.heappop(waiting)[2:])


def _ipqs_event(renderer: Renderer, visit: Visit, outcome: IpqsOutcome) -> SimEvent:
    return SimEvent(
        kind="ipqs",
        request_id=outcome.request_id,
        time=to_datetime(outcome.time_ms),
        label=visit.label,
        population=visit.population,
        body=renderer.ipqs(visit),
    )


def write(config: SimulationConfig, out_dir: Path) -> SimulationSummary:
    """Write ``events.jsonl`` (raw bodies, one a line) and ``labels.jsonl``; line N of one
    describes line N of the other. Files appear complete or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = (out_dir / "events.jsonl", out_dir / "labels.jsonl")
    partial = tuple(path.with_name(path.name + ".partial") for path in targets)
    encode = msgspec.json.Encoder().encode
    tally = _Tally()
    try:
        with (
            open(partial[0], "wb", buffering=_BUFFER) as events,
            open(partial[1], "wb", buffering=_BUFFER) as labels,
        ):
            for event in simulate(config):
                events.write(event.body + b"\n")
                line = _LabelLine(
                    event.request_id, event.kind, event.label, event.population, event.time
                )
                labels.write(encode(line) + b"\n")
                tally.add(event)
    except BaseException:
        # Half a file would pass for a complete (smaller) run: leave none behind.
        for path in partial:
            path.unlink(missing_ok=True)
        raise
    for source, target in zip(partial, targets, strict=True):
        os.replace(source, target)
    return tally.summary()


def _start(value: str) -> datetime:
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if start.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-10-01T00:00:00Z")
    return start.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    defaults = SimulationConfig()
    parser = argparse.ArgumentParser(
        prog="python -m service.simulate",
        description="Write a labelled, reproducible stream of simulated Fingerprint / IPQS events.",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--scale", type=float, default=defaults.scale, help="population size")
    parser.add_argument("--start", type=_start, default=defaults.start, help="ISO 8601, UTC")
    parser.add_argument("--out", type=Path, default=Path("var/sim"), help="output directory")
    parser.add_argument("--v4-share", type=float, default=defaults.v4_share)
    parser.add_argument("--ipqs-share", type=float, default=defaults.ipqs_share)
    args = parser.parse_args(argv)
    try:
        config = SimulationConfig(
            seed=args.seed,
            days=args.days,
            start=args.start,
            scale=args.scale,
            v4_share=args.v4_share,
            ipqs_share=args.ipqs_share,
        )
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()
    summary = write(config, args.out)
    elapsed = time.perf_counter() - began
    print(summary.render())
    print(
        f"wrote {args.out / 'events.jsonl'} and labels.jsonl in {elapsed:.2f}s "
        f"({summary.events / elapsed:,.0f} events/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
