"""One benchmark run, start to finish: servers up, checks, load, figures, servers down."""

from __future__ import annotations

import math
import secrets
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from service.bench import figures, micro, probe, wrk
from service.bench.machine import cpu_times, describe
from service.bench.payloads import (
    API_KEY,
    SIGNATURE_HEADER,
    WEBHOOK_SECRET,
    BodyFactory,
    write_pool,
)
from service.bench.redis_stats import CommandCount, count_commands, delete_prefix, redis_version
from service.bench.report import Report, Run
from service.bench.servers import BASELINE_FACTORY, SERVICE_FACTORY, Server
from service.keys import Keys
from service.redis_server import LocalRedis, any_binary, free_port, local_port, redis_answers

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WARMUP_BODIES = 1000
# Measured runs get fresh bodies: two and a half times what the warm-up rate says they will
# need (a warm-up once ran at half the rate of the run after it, and one and a half times
# was too few), so scores and webhooks never become replays. The cap bounds the pool file
# and wrk's memory.
HEADROOM = 2.5
MAX_BODIES = 60_000
COUNTED_REQUESTS = 200
BENCH_RATE_LIMIT_PER_MINUTE = 100_000_000


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    redis_url: str
    # wrk takes whole seconds only.
    seconds: int = 4
    warmup_seconds: int = 1
    # Baseline and service runs take turns, round after round; figures are medians. Five
    # rounds: the median then stands two rounds taken in a slow moment, not just one.
    rounds: int = 5


Pool = Callable[[int], tuple[Path, int]]


@contextmanager
def redis_for(url: str) -> Iterator[str]:
    """``url`` if a Redis answers there, else a throwaway local one (as the tests do)."""
    if redis_answers(url):
        yield url
        return
    if local_port(url) is None:
        raise BenchError(f"no Redis answers at {url} and it is not local")
    server = LocalRedis(any_binary(), free_port()).start()
    print(f"no Redis answered at {url}: started redis-server on port {server.port} for the run")
    try:
        yield server.url
    finally:
        server.stop()


class Bench:
    def __init__(self, options: Options, redis_url: str, workdir: Path, wrk_path: str) -> None:
        self.options = options
        self.redis_url = redis_url
        self.workdir = workdir
        self.redis = redis.Redis.from_url(redis_url)
        self.prefix = f"rwbench-{secrets.token_hex(4)}"
        self.bodies = BodyFactory(seed=20240601, tag=secrets.token_hex(3))
        self.wrk = wrk_path
        self.script = wrk.write_script(workdir)
        self.service = Server(
            "riskwire",
            SERVICE_FACTORY,
            {
                "RISKWIRE_REDIS_URL": redis_url,
                "RISKWIRE_REDIS_PREFIX": self.prefix,
                "RISKWIRE_API_KEYS": API_KEY,
                "RISKWIRE_FINGERPRINT_SECRET": WEBHOOK_SECRET,
                "RISKWIRE_SINK_PATH": str(workdir / "segment-sink.jsonl"),
                "RISKWIRE_FORWARDER_ENABLED": "true",
                # The limiter still runs (its counter rides in every score batch), with a
                # budget the load cannot reach: at the default 60,000 a minute, a fast run
                # got 429s, which are cheaper than scores and would flatter the figure.
                "RISKWIRE_RATE_LIMIT_PER_MINUTE": str(BENCH_RATE_LIMIT_PER_MINUTE),
            },
            workdir / "service.log",
        )
        self.baseline = Server("baseline", BASELINE_FACTORY, {}, workdir / "baseline.log")
        self.runs: list[Run] = []
        self.notes: list[str] = []
        self._pools = 0
        self._kept: set[Path] = set()

    def _pool(self, make: Callable[[int], Iterator[tuple[str, bytes]]]) -> Pool:
        def build(count: int) -> tuple[Path, int]:
            self._pools += 1
            path = self.workdir / f"pool-{self._pools}.txt"
            return path, write_pool(path, make(count))

        return build

    def _discard(self, path: Path) -> None:
        # Pools run to hundreds of MB at high rates: drop each once its run is over.
        if path not in self._kept:
            path.unlink()

    def measure(
        self,
        label: str,
        server: Server,
        path: str,
        connections: int,
        pool: Pool,
        header: str = "",
        *,
        fresh_ids: bool = True,
    ) -> wrk.WrkResult:
        """Warm up, then measure with a pool sized so ``fresh_ids`` runs never repeat a body."""
        threads = 1 if connections == 1 else 2
        url = server.base_url + path
        warm_pool, _ = pool(WARMUP_BODIES)
        warm = wrk.run(
            self.wrk,
            self.script,
            wrk.Load(url, connections, threads, self.options.warmup_seconds, warm_pool, header),
        )
        self._discard(warm_pool)
        wanted = math.ceil(warm.rate * self.options.seconds * HEADROOM)
        pool_path, size = pool(min(MAX_BODIES, max(WARMUP_BODIES, wanted)))
        load = wrk.Load(url, connections, threads, self.options.seconds, pool_path, header)
        cpu_before, machine_before = server.cpu_seconds(), cpu_times()
        result = wrk.run(self.wrk, self.script, load)
        cpu_after, machine_after = server.cpu_seconds(), cpu_times()
        stolen = (
            machine_before.steal_share(machine_after)
            if machine_before is not None and machine_after is not None
            else None
        )
        self._discard(pool_path)
        cpu_ms = (
            (cpu_after - cpu_before) * 1000 / result.requests
            if cpu_before is not None and cpu_after is not None and result.requests
            else None
        )
        command = ["wrk", *load.command(self.wrk, self.script)[1:]]
        self.runs.append(
            Run(label, connections, threads, size, shlex.join(command), result, cpu_ms, stolen)
        )
        print(
            f"  {label:<13} c={connections:<3} {result.rate:>7,.0f} req/s  "
            f"p50 {result.p50_us / 1000:6.2f} ms  p99 {result.p99_us / 1000:6.2f} ms  "
            f"server CPU {cpu_ms if cpu_ms is not None else float('nan'):5.2f} ms/req  "
            f"stolen {stolen if stolen is not None else float('nan'):5.1%}  "
            f"errors {result.errors.total}",
            flush=True,
        )
        if result.errors.total:
            # Which kind, so a refused or failed answer is told from a slow one.
            e = result.errors
            self.notes.append(
                f"{label} c={connections}: {e.total} errors of {result.requests} requests "
                f"(connect {e.connect}, read {e.read}, write {e.write}, non-2xx status "
                f"{e.status}, timeout {e.timeout})"
            )
        if fresh_ids and result.requests > size:
            self.notes.append(
                f"{label} c={connections} sent {result.requests} requests from {size} distinct "
                "bodies: some request ids repeated"
            )
        return result

    def count(self, send: Callable[[probe.Client], None]) -> CommandCount | None:
        client = probe.Client(self.service.port)

        def requests() -> None:
            send(client)
            # /v1/score records history after the response, in a background task.
            time.sleep(0.3)

        try:
            return count_commands(
                self.redis, self.redis_url, self.prefix, COUNTED_REQUESTS, requests
            )
        finally:
            client.close()

    def run(self) -> Report:
        when = datetime.now(UTC)
        print(f"starting riskwire on :{self.service.port} and baseline on :{self.baseline.port}")
        self.service.start()
        self.baseline.start()
        self.service.wait_ready(("GET", "/health", b""))
        self.baseline.wait_ready(("POST", "/v1/score", b"{}"))
        client = probe.Client(self.service.port)
        try:
            probe.check_service(client, self.bodies)
        finally:
            client.close()
        score_commands = self.count(lambda c: probe.send_scores(c, self.bodies, COUNTED_REQUESTS))
        webhook_commands = self.count(
            lambda c: probe.send_webhooks(c, self.bodies, COUNTED_REQUESTS)
        )

        # The baseline gets the score bodies, byte for byte; it stores nothing, so one
        # pool of them is as good as fresh ones.
        baseline_path, baseline_size = self._pool(self.bodies.score_bodies)(WARMUP_BODIES)
        self._kept.add(baseline_path)

        def baseline_pool(_: int) -> tuple[Path, int]:
            return baseline_path, baseline_size

        score_pool = self._pool(self.bodies.score_bodies)
        webhook_pool = self._pool(self.bodies.webhook_bodies)
        print(
            f"load: {self.options.rounds} rounds, {self.options.seconds} s per run after "
            f"{self.options.warmup_seconds} s"
        )
        rounds = []
        for number in range(1, self.options.rounds + 1):
            tag = f" #{number}"

            def baseline(connections: int, tag: str = tag) -> wrk.WrkResult:
                return self.measure(
                    "baseline" + tag,
                    self.baseline,
                    "/v1/score",
                    connections,
                    baseline_pool,
                    fresh_ids=False,
                )

            # Every measured run sits between two baseline runs (see ``figures.Round``).
            base_c1 = baseline(1)
            score_c1 = self.measure("/v1/score" + tag, self.service, "/v1/score", 1, score_pool)
            base_c1_after = baseline(1)
            base_c32 = baseline(32)
            score_c32 = self.measure("/v1/score" + tag, self.service, "/v1/score", 32, score_pool)
            base_c32_between = baseline(32)
            webhook_c32 = self.measure(
                "webhook" + tag,
                self.service,
                "/webhooks/fingerprint",
                32,
                webhook_pool,
                SIGNATURE_HEADER,
            )
            base_c32_after = baseline(32)
            rounds.append(
                figures.Round(
                    base_c1,
                    score_c1,
                    base_c1_after,
                    base_c32,
                    score_c32,
                    base_c32_between,
                    webhook_c32,
                    base_c32_after,
                )
            )
        stolen = [run.steal_share for run in self.runs if run.steal_share is not None]
        if stolen:
            self.notes.append(
                f"CPU time stolen by the hypervisor during the measured runs: "
                f"{min(stolen):.1%}-{max(stolen):.1%} of the machine's (each run's in the "
                "wrk table)"
            )
        backlog = int(self.redis.xlen(Keys(self.prefix).outbox))
        self.notes.append(
            f"Outbox entries not yet delivered to the file sink when the webhook run ended: "
            f"{backlog} (the forwarder runs in the same process)"
        )
        for what, count in (("/v1/score", score_commands), ("webhook", webhook_commands)):
            if count is not None:
                self.notes.append(
                    f"Redis commands per {what} (MONITOR over {count.requests} sequential "
                    f"requests): {count.breakdown()}"
                )
        measured = figures.Measured(rounds, score_commands, webhook_commands)
        self.notes.extend(figures.round_notes(measured))
        print("microbenchmarks: model inference, rescoring, Redis bytes per device, forwarder")
        micro_rows = (
            micro.inference_rows()
            + micro.rescore_rows()
            + micro.redis_memory_rows(self.redis_url)
            + micro.forwarder_rows(self.redis_url)
        )
        return Report(
            when=when,
            rows=figures.rows(measured) + micro_rows,
            runs=self.runs,
            notes=self.notes,
            machine=describe(redis_version(self.redis), self.wrk),
            commands=[
                "make bench  # = .venv/bin/python -m service.bench",
                self.service.shell_command(),
                self.baseline.shell_command(),
                *(run.command for run in self.runs),
            ],
        )

    def close(self) -> None:
        self.service.stop()
        self.baseline.stop()
        deleted = delete_prefix(self.redis, self.prefix)
        print(f"stopped both servers; deleted {deleted} Redis keys under {self.prefix}:")
        self.redis.close()


def run(options: Options) -> Report:
    wrk_path = wrk.ensure_wrk()
    with (
        redis_for(options.redis_url) as url,
        tempfile.TemporaryDirectory(prefix="riskwire-bench-") as tmp,
    ):
        bench = Bench(options, url, Path(tmp), wrk_path)
        try:
            return bench.run()
        except BaseException:
            for server in (bench.service, bench.baseline):
                tail = server.log_tail()
                if tail:
                    print(f"--- last lines of the {server.name} log ---\n{tail}")
            raise
        finally:
            bench.close()
