"""``python -m service.bench``: run the benchmark, print the table, update docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service.bench.harness import DEFAULT_REDIS_URL, BenchError, Options, run
from service.bench.payloads import REPO_ROOT
from service.bench.probe import ProbeError
from service.bench.report import markdown, text_table, write_section
from service.bench.servers import ServerError
from service.bench.wrk import WrkError


def whole_seconds(text: str) -> int:
    # wrk's --duration takes whole seconds only.
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1 second")
    return value


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.bench", description=__doc__)
    parser.add_argument(
        "--seconds", type=whole_seconds, default=4, help="length of a measured run (s)"
    )
    parser.add_argument(
        "--rounds", type=at_least_one, default=5, help="rounds of baseline and service runs"
    )
    parser.add_argument("--warmup", type=whole_seconds, default=1, help="warm-up per run (s)")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "docs" / "BENCHMARKS.md",
        help="Markdown file whose bench section is rewritten",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a figure misses its target"
    )
    args = parser.parse_args(argv)
    options = Options(
        redis_url=os.environ.get("RISKWIRE_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        rounds=args.rounds,
    )
    try:
        report = run(options)
    except (BenchError, ProbeError, ServerError, WrkError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    print()
    print(text_table(report.rows))
    for note in report.notes:
        print(f"  * {note}")
    if not args.no_write:
        write_section(args.output, markdown(report))
        print(f"wrote {args.output}")
    return 1 if args.check and not report.passed else 0


if __name__ == "__main__":
    sys.exit(main())
