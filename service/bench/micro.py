"""In-process microbenchmarks, each against a baseline measured in the same run:

- model inference per row: the numpy fast path vs scikit-learn's ``predict_proba`` on the
  same fitted model (a small training run on simulated traffic), single rows and batches;
- batch rescoring: events/s of ``Rescorer`` vs a decode-only pass (``decode_event``, msgspec
  into the event Structs) over the same simulated file; its peak memory on a steady stream
  three times as long (``steady_ipqs_stream``), which must stay within 15 % of the shorter's.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec
import numpy as np
from threadpoolctl import threadpool_limits

from service.bench.report import Row
from service.decode import decode_event
from service.model import RiskModel, Thresholds
from service.rescore import Emits, Rescorer
from service.rescore_input import read_lines
from service.settings import Settings
from service.simulate import SimulationConfig, simulate
from service.training import TrainingConfig, train

INFERENCE_MIN_SPEEDUP = 50.0
RESCORE_MIN_RATIO = 0.5
# Peak memory on three times the days at the same rate, against the shorter stream's. Both
# past the first ~120 days, over which the peak still climbs by a tenth (6.2 MiB at 60 days,
# 6.8 at 120, 7.1 at 360 and 540): the store's dictionaries, a member in and one out at
# every event, settle at a larger table than they start with (tracemalloc, by line).
RESCORE_MEMORY_MAX_GROWTH = 1.15
STEADY_DAYS = (120, 360)
NONE = "—"


def _per_call(function: Callable[[], object], budget_s: float = 1.0) -> float:
    """Seconds per call, repeating until ``budget_s`` is spent (after one warm-up call)."""
    function()
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget_s:
        function()
        calls += 1
    return elapsed / max(calls, 1)


def inference_rows() -> list[Row]:
    result = train(TrainingConfig(seed=11, days=4, scale=0.3, gbdt_trees=150))
    rows: list[Row] = []
    for candidate in result.candidates:
        from service.model import Artifact, RiskModel

        artifact = Artifact(
            format=result.artifact.format,
            model_version=candidate.name,
            feature_spec=result.artifact.feature_spec,
            model=candidate.artifact_model,
            calibration=candidate.calibration,
            thresholds=result.artifact.thresholds,
        )
        fast = RiskModel(artifact, result.spec)
        x = result.test.x
        one = x[:1]
        exact = float(
            np.max(np.abs(fast.predict_proba(x) - candidate.calibrated.predict_proba(x)[:, 1]))
        )
        # One OpenMP thread for scikit-learn, as the numpy path has: the histogram trees'
        # default two threads made single rows erratic (0.05-1 s) while wrk held a core.
        with threadpool_limits(limits=1):
            sk_single = _per_call(partial(candidate.calibrated.predict_proba, one))
            sk_batch = _per_call(partial(candidate.calibrated.predict_proba, x)) / len(x)
        np_single = _per_call(partial(fast.probability, one[0]))
        np_batch = _per_call(partial(fast.predict_proba, x)) / len(x)
        # The target is per row (the score API scores one row at a time); batches are
        # reported for rescoring and training, with the equality check alone deciding.
        for label, ours, theirs, target in (
            ("1 row", np_single, sk_single, INFERENCE_MIN_SPEEDUP),
            (f"{len(x)} rows", np_batch, sk_batch, None),
        ):
            speedup = theirs / ours
            ok = (target is None or speedup >= target) and exact <= 1e-9
            rows.append(
                Row(
                    figure=f"{candidate.name} inference us/row, {label} (max |diff| {exact:.0e})",
                    value=f"{ours * 1e6:.2f}",
                    baseline=f"{theirs * 1e6:.2f} (sklearn)",
                    ratio=f"{speedup:.1f}x",
                    target="equal to 1e-9 (speed: info)"
                    if target is None
                    else f">= {target:g}x, equal to 1e-9",
                    result=("pass" if target is not None else "info") if ok else "FAIL",
                )
            )
    return rows


def _seconds(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def steady_ipqs_stream(days: int, per_day: int = 100, seed: int = 11) -> Iterator[bytes]:
    """IPQS results at a steady rate over ``days`` from fixed pools of 300 devices, 300 users
    and ~1,000 IPs: a longer stream has more events, but past the widest window (30 days)
    not more of anything the reuse store or the naming memos keep."""
    rng = random.Random(seed)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    for n in range(days * per_day):
        yield msgspec.json.encode(
            {
                "request_id": f"ipqs-{n}",
                "guid": f"guid-{rng.randrange(300)}",
                "userID": f"user-{rng.randrange(300)}",
                "ip_address": f"10.0.{rng.randrange(4)}.{rng.randrange(1, 250)}",
                "fraud_chance": rng.randrange(100),
                "time": start + n * 86_400 // per_day,
            }
        )


def rescore_peak_bytes(
    settings: Settings,
    model: RiskModel,
    thresholds: Thresholds,
    lines: list[bytes],
    emitted: Emits | None = None,
) -> int:
    """The peak of memory traced during one run over ``lines`` (held before it starts), with
    a reorder buffer of 500 events so that a short stream fills it too."""
    # Outputs that keep nothing, opened before tracing starts: the peak is the run's own.
    with open(os.devnull, "wb") as out, open(os.devnull, "wb") as rejects:
        # A first pass, not traced, leaves what the process keeps after any run (module
        # caches, such as the IP canonicalisation's) in place: otherwise the first of two
        # measured runs would pay for them and the second would look the smaller.
        Rescorer(settings, model, thresholds, reorder_window=500).run(iter(lines), out, rejects)
        tracemalloc.start()
        try:
            Rescorer(settings, model, thresholds, reorder_window=500).run(
                iter(lines), out, rejects, emitted=emitted
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def _rescore_rates(
    settings: Settings, model: RiskModel, thresholds: Thresholds, days: int, runs: int
) -> tuple[int, float, float]:
    """Events, then rescored and decoded-only events per second over the same file (what
    ``python -m service rescore`` reads), ``runs`` times, taking turns, each at its fastest:
    on a busy machine a single pass measures the neighbours as much as the code. Rescoring
    writes its lines to a file as the command does (on a tmpfs where there is one), the
    decode-only pass reads and decodes only."""
    lines = [e.body for e in simulate(SimulationConfig(seed=13, days=days))]
    epoch = datetime.fromtimestamp(0, UTC)
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="riskwire-rescore-", dir=scratch) as tmp:
        events = Path(tmp) / "events.jsonl"
        events.write_bytes(b"".join(line + b"\n" for line in lines))
        scored = Path(tmp) / "scored.jsonl"

        def decode_only() -> None:
            for line in read_lines(events):
                decode_event(line, epoch)

        def rescore() -> None:
            with scored.open("wb") as out, open(os.devnull, "wb") as rejects:
                Rescorer(settings, model, thresholds).run(read_lines(events), out, rejects)

        decode_s = rescore_s = float("inf")
        for _ in range(runs):
            decode_s = min(decode_s, _seconds(decode_only))
            rescore_s = min(rescore_s, _seconds(rescore))
    return len(lines), len(lines) / rescore_s, len(lines) / decode_s


def rescore_rows(days: int = 3, runs: int = 5, long_days: int = 30) -> list[Row]:
    """Rescoring against the decode-only floor on ``days`` of simulated traffic (the
    target), the same on ``long_days`` (for information: the in-memory store outgrows the
    caches, see docs/BENCHMARKS.md), and peak memory on a steady stream."""
    settings = Settings()
    from service.app import load_model

    _, model, thresholds = load_model(settings)
    events, rescore_rate, decode_rate = _rescore_rates(settings, model, thresholds, days, runs)
    long_events, long_rescore, long_decode = _rescore_rates(
        settings, model, thresholds, long_days, 2
    )
    # Memory separately: tracing slows Python down several times.
    short, long = (
        rescore_peak_bytes(settings, model, thresholds, list(steady_ipqs_stream(span)))
        for span in STEADY_DAYS
    )
    growth = long / short
    ratio = rescore_rate / decode_rate
    return [
        Row(
            figure=f"rescore events/s ({events:,} simulated events in a file, best of {runs})",
            value=f"{rescore_rate:,.0f}",
            baseline=f"{decode_rate:,.0f} (decode only)",
            ratio=f"{ratio:.2f}",
            target=f">= {RESCORE_MIN_RATIO:g} x decode-only",
            result="pass" if ratio >= RESCORE_MIN_RATIO else "FAIL",
        ),
        Row(
            figure=f"rescore events/s ({long_events:,} events, {long_days} days, best of 2)",
            value=f"{long_rescore:,.0f}",
            baseline=f"{long_decode:,.0f} (decode only)",
            ratio=f"{long_rescore / long_decode:.2f}",
            target="—",
            result="info",
        ),
        Row(
            figure=(
                f"rescore peak traced MiB, {STEADY_DAYS[1]} days of a steady stream vs "
                f"{STEADY_DAYS[0]} (input and output excluded)"
            ),
            value=f"{long / 2**20:.1f}",
            baseline=f"{short / 2**20:.1f} ({STEADY_DAYS[0]} days)",
            ratio=f"{growth:.2f}",
            target=f"<= {RESCORE_MEMORY_MAX_GROWTH:g} x",
            result="pass" if growth <= RESCORE_MEMORY_MAX_GROWTH else "FAIL",
        ),
    ]


DEVICE_BYTES_MAX = 2048


def redis_memory_rows(redis_url: str, devices: int = 2000) -> list[Row]:
    """Bytes of Redis per tracked device (MEMORY USAGE), for typical devices at default caps:
    one or two users and IPs, one country, a few events, over a day."""
    import asyncio
    import random
    import secrets

    import redis as sync_redis
    from redis.asyncio import Redis

    from service.identifiers import IdentifierPolicy
    from service.keys import Keys
    from service.reuse import EntityRefs, ReuseStore

    prefix = f"rwmem-{secrets.token_hex(4)}"
    settings = Settings()
    policy = IdentifierPolicy(b"bench")
    rng = random.Random(3)

    async def fill() -> None:
        client = Redis.from_url(redis_url)
        store = ReuseStore(
            client,
            Keys(prefix),
            windows_ms=settings.reuse_windows_ms,
            cap=settings.reuse_cap,
            ipqs_window_ms=settings.ipqs_join_window_s * 1000,
        )
        start = 1_790_000_000_000
        for n in range(devices):
            users = [f"u-{n}"] + ([f"u-{n}-b"] if rng.random() < 0.2 else [])
            ips = [f"10.{n % 250}.{rng.randrange(250)}.{rng.randrange(250)}" for _ in range(2)]
            for event in range(rng.randint(2, 6)):
                refs = EntityRefs(
                    device=policy.device("fp", f"device-{n}"),
                    user=policy.user(rng.choice(users)),
                    ip=policy.ip(rng.choice(ips)),
                    country="FR",
                    event=policy.request("fp", f"r-{n}-{event}"),
                )
                await store.observe(refs, start + event * 600_000)
        await client.aclose()

    asyncio.run(fill())
    client = sync_redis.Redis.from_url(redis_url)
    try:
        device_bytes = all_bytes = 0
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            size = int(client.memory_usage(key, samples=0) or 0)
            all_bytes += size
            if b"{d:" in key:
                device_bytes += size
            client.delete(key)
    finally:
        client.close()
    per_device = device_bytes / devices
    return [
        Row(
            figure="Redis bytes per tracked device (device keys, default caps)",
            value=f"{per_device:,.0f}",
            baseline=NONE,
            ratio=NONE,
            target=f"<= {DEVICE_BYTES_MAX} B",
            result="pass" if per_device <= DEVICE_BYTES_MAX else "FAIL",
        ),
        Row(
            figure="Redis bytes per tracked device (device + its users' and IPs' keys)",
            value=f"{all_bytes / devices:,.0f}",
            baseline=NONE,
            ratio=NONE,
            target=NONE,
            result="info",
        ),
    ]


FORWARDER_MIN_RATE = 20_000


def forwarder_rows(redis_url: str, messages: int = 20_000) -> list[Row]:
    """Forwarder events/s draining an outbox into a minimal local HTTP receiver (reads each
    body, answers 200) — the forwarder's own cost, not a Segment twin's parsing."""
    import asyncio
    import secrets

    from redis.asyncio import Redis

    from service.forwarder import Forwarder, RetryPolicy
    from service.keys import Keys
    from service.outbox import Outbox
    from service.transport import HttpTransport

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def run() -> float:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Redis.from_url(redis_url)
        keys = Keys(f"rwfwd-{secrets.token_hex(4)}")
        outbox = Outbox(client, keys, 60)
        body = b'{"type":"identify","messageId":"m","anonymousId":"a","traits":{"fraud_score":7}}'
        await outbox.enqueue([body] * messages)
        transport = HttpTransport(f"http://127.0.0.1:{port}/v1/batch", "key", 10.0)
        forwarder = Forwarder(
            outbox,
            transport,
            consumer="bench",
            batch_max_messages=2500,
            block_ms=10,
            retry=RetryPolicy(0.01, 0.05),
        )
        started = time.perf_counter()
        await forwarder.drain()
        elapsed = time.perf_counter() - started
        assert forwarder.stats.delivered == messages
        await client.delete(keys.outbox)
        await client.aclose()
        await transport.aclose()  # closes the connection: the handler sees EOF and ends
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return messages / elapsed

    rate = asyncio.run(run())
    return [
        Row(
            figure=f"forwarder events/s into a local receiver ({messages:,} messages)",
            value=f"{rate:,.0f}",
            baseline=NONE,
            ratio=NONE,
            target=f">= {FORWARDER_MIN_RATE:,}",
            result="pass" if rate >= FORWARDER_MIN_RATE else "FAIL",
        )
    ]
